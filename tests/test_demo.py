"""`syncd demo --keep DIR`: what it leaves behind."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path


def test_the_kept_demo_leaves_its_secrets_readable_by_their_owner_only(tmp_path: Path) -> None:
    kept = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "syncd.cli", "demo", "--keep", str(kept)], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for name in ("app-secret", "webhook-secret", "tokens.toml"):
        assert stat.S_IMODE((kept / name).stat().st_mode) == 0o600, name
