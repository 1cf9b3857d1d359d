"""The simulator's HTTP face: the signing gateway (zzd-api.md §1), the envelopes (§2), admin endpoints.

Gateway refusals use the outer `success: false` shape; business results and refusals use the
two-layer envelope. Admin endpoints (`/_sim/...`) need the header `X-Sim-Admin-Token`.
"""

from __future__ import annotations

import hmac
import json
import random
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from flask import Flask, Response, request

from connectors.zzd.signing import (
    HEADER_API_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    signature,
    string_to_sign,
)
from connectors.zzd.simulator.directory import ROUTES, Directory, Params, Result, SimError
from connectors.zzd.simulator.tenant import Faults, SimTenant

TIMESTAMP_WINDOW = 15 * 60  # seconds, both for the timestamp and for remembering nonces
ADMIN_HEADER = "X-Sim-Admin-Token"
EXTENSION = "zzd_simulator"


class Simulator:
    """The state behind one simulator app: directory, counters, seen nonces and faults."""

    def __init__(self, tenant: SimTenant) -> None:
        self.tenant = tenant
        self.directory = Directory(
            tenant.tenant_id, tenant.root_code, tenant.root_name, tenant.other_units, tenant.state_file,
        )
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.reads = 0
        self.writes = 0
        self._nonces: dict[str, float] = {}
        self._recent: deque[float] = deque()
        self.set_faults(tenant.faults)

    # -- counters and faults -----------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        """Calls per path, reads and writes since start or the last reset."""
        with self._lock:
            return {"calls": dict(self.calls), "reads": self.reads, "writes": self.writes}

    def reset_counters(self) -> None:
        """Zero all counters."""
        with self._lock:
            self.calls.clear()
            self.reads = self.writes = 0

    def set_faults(self, faults: Faults) -> None:
        """Replace the injected faults; the random sequence restarts from their seed."""
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
            self._recent.clear()

    def _draw(self, share: float) -> bool:
        # Only draw when the fault is on, so that one fault's seed sequence does not depend on another.
        if share <= 0:
            return False
        with self._lock:
            return self._rng.random() < share

    def _over_limit(self) -> bool:
        limit = self.faults.per_second_limit
        if limit is None:
            return False
        now = time.monotonic()
        with self._lock:
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            if len(self._recent) >= limit:
                return True
            self._recent.append(now)
            return False

    # -- one API request ---------------------------------------------------------------------

    def handle(self, path: str) -> Response:
        """Answer one API request: faults, gateway checks, then the directory."""
        known = path in ROUTES
        write = Directory.is_write(path)
        with self._lock:
            self.calls[path] += 1
            if write:
                self.writes += 1
            elif known:
                self.reads += 1
        faults = self.faults
        if faults.latency or (write and faults.write_latency):
            time.sleep(faults.latency + (faults.write_latency if write else 0.0))
        if self._over_limit() or self._draw(faults.throttle_share):
            response = _gateway_error("Throttling.User", "request was denied due to user flow control", 429)
            response.headers["Retry-After"] = str(faults.retry_after)
            return response
        if self._draw(faults.error_share):
            return Response("internal error", status=500, mimetype="text/plain")

        values = request.form if request.method == "POST" else request.args
        pairs = [(key, value) for key, value in values.items(multi=True)]
        refused = self._check_gateway(path, pairs)
        if refused is not None:
            return refused
        if not known:
            return _gateway_error("ApiNotFound", "no such API", 404)

        grouped: dict[str, list[str]] = {}
        for key, value in pairs:
            grouped.setdefault(key, []).append(value)
        try:
            result = self.directory.call(path, Params(grouped))
        except SimError as exc:
            return _business_error(exc)
        if write and self._draw(faults.drop_after_commit):
            # The write is committed; only the answer is lost.
            return Response("bad gateway", status=502, mimetype="text/plain")
        return _success(result)

    def _check_gateway(self, path: str, pairs: list[tuple[str, str]]) -> Response | None:
        headers = request.headers
        if not hmac.compare_digest(headers.get(HEADER_API_KEY, ""), self.tenant.app_key):
            return _gateway_error("InvalidApiKey", "the apiKey is unknown")
        timestamp = headers.get(HEADER_TIMESTAMP, "")
        try:
            sent = datetime.fromisoformat(timestamp)
        except ValueError:
            return _gateway_error("InvalidTimestamp", "the timestamp is not ISO-8601")
        now = time.time() + self.faults.clock_skew
        if sent.tzinfo is None or abs(now - sent.timestamp()) > TIMESTAMP_WINDOW:
            return _gateway_error("InvalidTimestamp", "the timestamp is outside the allowed window")
        nonce = headers.get(HEADER_NONCE, "")
        expected = signature(
            self.tenant.app_secret, string_to_sign(request.method, timestamp, nonce, path, pairs),
        )
        if not nonce or not hmac.compare_digest(headers.get(HEADER_SIGNATURE, ""), expected):
            return _gateway_error("SignatureDoesNotMatch", "the signature does not match", biz="OPF-B001-05-16-0009")
        with self._lock:
            for seen, at in list(self._nonces.items()):
                if now - at > TIMESTAMP_WINDOW:
                    del self._nonces[seen]
            if nonce in self._nonces:
                return _gateway_error("NonceReused", "the nonce was already used")
            self._nonces[nonce] = now
        return None


def _request_id() -> str:
    return uuid.uuid4().hex


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def _gateway_error(code: str, message: str, status: int = 200, biz: str | None = None) -> Response:
    return _json({"success": False, "Code": code, "Message": message, "_RequestId": _request_id(),
                  "bizErrorCode": biz or code}, status)


def _business_error(exc: SimError) -> Response:
    request_id = _request_id()
    return _json({
        "success": True, "_RequestId": request_id, "bizErrorCode": exc.biz_code,
        "content": {"success": False, "responseCode": exc.code, "responseMessage": exc.message,
                    "requestId": request_id, "data": None},
    })


def _success(result: Result) -> Response:
    request_id = _request_id()
    content: dict[str, Any] = {
        "success": True, "responseCode": "0", "responseMessage": "OK", "requestId": request_id, "data": result.data,
    }
    if result.page is not None:
        current, size, total = result.page
        content.update(currentPage=current, pageSize=size)
        if total is not None:
            content["totalSize"] = total
    return _json({"success": True, "_RequestId": request_id, "bizErrorCode": "0", "content": content})


def create_app(tenant: SimTenant) -> Flask:
    """A Flask app simulating the tenant's gateway and contacts API."""
    app = Flask(__name__)
    sim = Simulator(tenant)
    app.extensions[EXTENSION] = sim

    def admin_denied() -> Response | None:
        if hmac.compare_digest(request.headers.get(ADMIN_HEADER, ""), tenant.admin_token):
            return None
        return _json({"error": f"admin endpoints need the {ADMIN_HEADER} header"}, 403)

    @app.get("/_sim/directory")
    def directory() -> Response:
        return admin_denied() or _json(sim.directory.snapshot())

    @app.get("/_sim/counters")
    def counters() -> Response:
        return admin_denied() or _json(sim.counters())

    @app.post("/_sim/counters/reset")
    def reset_counters() -> Response:
        if denied := admin_denied():
            return denied
        sim.reset_counters()
        return _json(sim.counters())

    @app.post("/_sim/faults")
    def set_faults() -> Response:
        if denied := admin_denied():
            return denied
        body = request.get_json(silent=True)
        names = {f.name for f in fields(Faults)}
        if not isinstance(body, dict) or set(body) - names:
            return _json({"error": f"a JSON object with keys among {sorted(names)}"}, 400)
        try:
            sim.set_faults(Faults(**body))
        except (TypeError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(asdict(sim.faults))

    @app.route("/<path:api_path>", methods=["GET", "POST"])
    def api(api_path: str) -> Response:
        return sim.handle("/" + api_path)

    return app
