"""`syncd demo`: the whole job on bundled synthetic data against the bundled simulator.

`bureau` runs the three syncs of the demo bureau, `daemon` the same unit under `syncd run`, and
`city` a second small unit with the city bureau's console over both.
"""

from syncd.demo.bureau import APP_KEY, DEMO_ADMIN_TOKEN, DEMO_SECRET, ROOT_CODE, TENANT_ID, run_demo

__all__ = ["APP_KEY", "DEMO_ADMIN_TOKEN", "DEMO_SECRET", "ROOT_CODE", "TENANT_ID", "run_demo"]
