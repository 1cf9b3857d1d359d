"""`SimTenant`: what one simulated Zhengzhengding tenant is: its app credentials, root and options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Faults:
    """Injected misbehaviour of the simulated gateway; all off by default, deterministic with `seed`.

    Shares are probabilities per request in [0, 1]. `drop_after_commit` applies a write and then
    answers HTTP 502, as a response lost on the way back would look to the client.
    """

    latency: float = 0.0  # seconds added to every API request
    write_latency: float = 0.0  # seconds added to every write on top (a gateway slow to commit)
    error_share: float = 0.0  # HTTP 500 before the call is processed
    throttle_share: float = 0.0  # HTTP 429 `Throttling.User` with Retry-After
    per_second_limit: int | None = None  # at most this many API requests in any 1-second window
    drop_after_commit: float = 0.0  # writes only: apply, then HTTP 502
    clock_skew: float = 0.0  # seconds added to the gateway's clock
    retry_after: int = 1  # the Retry-After header of a throttled answer, in seconds
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("error_share", "throttle_share", "drop_after_commit"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.latency < 0 or self.write_latency < 0 or self.retry_after < 0:
            raise ValueError("latency, write_latency and retry_after must not be negative")
        if self.per_second_limit is not None and self.per_second_limit < 1:
            raise ValueError("per_second_limit must be at least 1")


@dataclass(frozen=True, slots=True)
class SimTenant:
    """One simulated tenant: the app's key and secret, the app's root organisation, the admin token.

    The app's scope (`/auth/scopesV2`) is `[root_code]`. `other_units` (code → name) are created
    at start as further top-level organisations: outside the scope, so that writes to them fail
    with 300037 as on the real platform. `state_file`, when set, is loaded at start and
    rewritten atomically after every write.
    """

    tenant_id: int = 196729
    app_key: str = "syncd-sim"
    app_secret: str = "sim-secret"
    root_code: str = "GO_00000000000000000000000000000001"
    root_name: str = "郑州市审计局"
    admin_token: str = "sim-admin"
    state_file: Path | None = None
    other_units: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    faults: Faults = field(default_factory=Faults)
