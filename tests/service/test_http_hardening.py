"""The daemon's HTTP surface under a hostile neighbour, over real HTTP against `syncd run`."""

from __future__ import annotations

from tests.service.daemon_harness import Bureau


def test_wrong_tokens_on_the_api_are_limited_per_client_and_a_right_token_still_answers(bureau: Bureau) -> None:
    daemon = bureau.start(schedule={"incremental_every": "1h"})
    mark = daemon.mark()
    statuses = [daemon.call("GET", "/api/v1/status", token=f"guess-{n}").status_code for n in range(40)]
    assert statuses == [401] * 5 + [429] * 35
    limited = daemon.call("POST", "/api/v1/resync", token="another-guess", json={"all": True})
    assert limited.status_code == 429 and limited.json()["error"] == "too_many_failures"
    assert int(limited.headers["Retry-After"]) > 0
    assert daemon.call("GET", "/api/v1/status", token="hr").status_code == 200  # never refused while limited
    daemon.wait_for("api.auth_limited", after=mark)
    assert len(daemon.find("api.auth_failed", after=mark)) == 5  # 41 wrong tokens, 6 log lines
    assert len(daemon.find("api.auth_limited", after=mark)) == 1
    assert "guess-" not in daemon.log_text()
