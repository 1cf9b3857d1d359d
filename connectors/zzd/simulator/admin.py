"""`SimAdmin`: a small client of the simulator's admin endpoints, for tests, demos and benchmarks."""

from __future__ import annotations

from typing import Any

import requests

from connectors.zzd.simulator.app import ADMIN_HEADER


class SimAdmin:
    """Reads and steers a running simulator through `/_sim/...` with its admin token."""

    def __init__(self, base_url: str, token: str, timeout: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers[ADMIN_HEADER] = token
        self._timeout = timeout

    def directory(self) -> dict[str, Any]:
        """The whole directory: organisations, employees (mobiles included), accounts, notifications."""
        return self._call("GET", "/_sim/directory")

    def counters(self) -> dict[str, Any]:
        """`{"calls": {path: n}, "reads": n, "writes": n}` since start or the last reset."""
        return self._call("GET", "/_sim/counters")

    def reset_counters(self) -> None:
        """Zero the counters."""
        self._call("POST", "/_sim/counters/reset")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the injected faults (the fields of `Faults`); returns them as now in force."""
        return self._call("POST", "/_sim/faults", json=faults)

    def employee(self, code: str) -> dict[str, Any]:
        """One employee of the directory, mobile and positions included."""
        return next(e for e in self.directory()["employees"] if e["employeeCode"] == code)

    def organization(self, code: str) -> dict[str, Any]:
        """One organisation of the directory."""
        return next(o for o in self.directory()["organizations"] if o["organizationCode"] == code)

    def notifications(self) -> list[dict[str, Any]]:
        """The work notifications delivered: `bizMsgId`, `msgId`, `receiverIds`, `organizationCodes`, `msg`."""
        return list(self.directory()["notifications"])

    def _call(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        response = self._session.request(method, self._base + path, json=json, timeout=self._timeout)
        response.raise_for_status()
        return response.json()
