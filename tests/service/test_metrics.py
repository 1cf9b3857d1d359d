"""Prometheus metrics: own registry, cycle/change/API-call counts, gauges read at scrape time."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import prometheus_client
import pytest
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from syncd.service.metrics import CYCLE_OUTCOMES, Metrics

NAMES = ("syncd_last_success_timestamp_seconds", "syncd_cycles_total", "syncd_changes_total",
         "syncd_api_calls_total", "syncd_cycle_duration_seconds", "syncd_held_changes", "syncd_overdue_changes",
         "syncd_build_info")


def test_every_metric_is_exposed_after_a_cycle_and_a_call() -> None:
    metrics = Metrics(held_changes=lambda: 4, overdue_changes=lambda: 2, version="1.2.3")
    metrics.observe_cycle("partial", 12.5, {"join.done": 3, "update.failed": 1})
    metrics.mark_success(1_700_000_000.0)
    metrics.count_api_call("ok")
    metrics.count_api_call("throttled")
    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    for name in NAMES:
        assert f"\n{name}" in text or text.startswith(name), name
    assert 'syncd_changes_total{kind="join",state="done"} 3.0' in text
    assert 'syncd_changes_total{kind="update",state="failed"} 1.0' in text
    assert 'syncd_api_calls_total{category="throttled"} 1.0' in text
    assert 'syncd_build_info{version="1.2.3"} 1.0' in text
    assert "syncd_held_changes 4.0" in text and "syncd_overdue_changes 2.0" in text
    assert "syncd_last_success_timestamp_seconds 1.7e+09" in text


def test_cycle_outcomes_start_at_zero_and_count() -> None:
    metrics = Metrics()
    for outcome in CYCLE_OUTCOMES:
        assert metrics.registry.get_sample_value("syncd_cycles_total", {"outcome": outcome}) == 0
    metrics.observe_cycle("success", 0.02, {})
    metrics.observe_cycle("success", 0.5, {"join.done": 2})
    metrics.observe_cycle("held", 1, {"leave.held": 60})
    get = metrics.registry.get_sample_value
    assert get("syncd_cycles_total", {"outcome": "success"}) == 2
    assert get("syncd_cycles_total", {"outcome": "held"}) == 1
    assert get("syncd_changes_total", {"kind": "join", "state": "done"}) == 2
    assert get("syncd_changes_total", {"kind": "leave", "state": "held"}) == 60
    assert get("syncd_cycle_duration_seconds_count") == 3
    assert get("syncd_cycle_duration_seconds_bucket", {"le": "0.025"}) == 1
    assert get("syncd_cycle_duration_seconds_bucket", {"le": "3600.0"}) == 3


@pytest.mark.parametrize(("outcome", "changes"), [("dry_run", {}), ("success", {"join": 1}),
                                                  ("success", {"join.done": -1})])
def test_a_bad_cycle_is_refused_without_counting_half_of_it(outcome: str, changes: dict[str, int]) -> None:
    metrics = Metrics()
    with pytest.raises(ValueError):
        metrics.observe_cycle(outcome, 1.0, changes)
    assert metrics.registry.get_sample_value("syncd_cycles_total", {"outcome": "success"}) == 0
    assert metrics.registry.get_sample_value("syncd_cycle_duration_seconds_count") == 0


def test_held_and_overdue_are_read_at_each_scrape() -> None:
    held = [1]
    metrics = Metrics(held_changes=lambda: held[0], overdue_changes=lambda: 0)
    assert metrics.registry.get_sample_value("syncd_held_changes") == 1
    held[0] = 7
    assert b"syncd_held_changes 7.0" in metrics.render()[0]


def test_a_failing_gauge_source_reads_nan_and_the_rest_still_renders() -> None:
    def broken() -> float:
        raise ConnectionError("database down")

    metrics = Metrics(held_changes=broken)
    metrics.mark_success(5.0)
    assert math.isnan(metrics.registry.get_sample_value("syncd_held_changes") or 0.0)
    assert b"syncd_last_success_timestamp_seconds 5.0" in metrics.render()[0]


def test_instances_have_their_own_registries_and_leave_the_global_one_alone() -> None:
    first, second = Metrics(), Metrics()
    first.count_api_call("auth")
    assert first.registry.get_sample_value("syncd_api_calls_total", {"category": "auth"}) == 1
    assert second.registry.get_sample_value("syncd_api_calls_total", {"category": "auth"}) is None
    assert prometheus_client.REGISTRY.get_sample_value("syncd_api_calls_total", {"category": "auth"}) is None


def test_api_calls_are_counted_exactly_from_many_threads() -> None:
    metrics = Metrics()

    def work() -> None:
        for _ in range(2000):
            metrics.count_api_call("ok")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert metrics.registry.get_sample_value("syncd_api_calls_total", {"category": "ok"}) == 16000


def test_openmetrics_is_served_when_asked_for() -> None:
    body, content_type = Metrics().render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")


def test_open_problems_and_notices_are_exposed() -> None:
    metrics = Metrics(open_problems=lambda: {(1, "run_failed"): 1, (2, "overdue"): 3})
    metrics.count_notice("work_notification", ok=False)
    metrics.count_notice("webhook", ok=True)
    text = metrics.render()[0].decode()
    assert 'syncd_open_problems{kind="run_failed",level="1"} 1.0' in text
    assert 'syncd_open_problems{kind="overdue",level="2"} 3.0' in text
    assert 'syncd_notices_total{channel="work_notification",result="failed"} 1.0' in text
    assert 'syncd_notices_total{channel="webhook",result="ok"} 1.0' in text


def test_the_article_9_shares_are_read_at_each_scrape_and_nan_when_nothing_counts() -> None:
    shares: list[tuple[float | None, float | None]] = [(0.75, 0.9), (None, None)]
    metrics = Metrics(compliance=lambda: shares[0])
    get = metrics.registry.get_sample_value
    assert get("syncd_changes_on_time_ratio") == 0.75 and get("syncd_completeness_ratio") == 0.9
    shares.pop(0)
    assert math.isnan(get("syncd_changes_on_time_ratio")) and math.isnan(get("syncd_completeness_ratio"))


def test_a_failing_compliance_source_reads_nan_and_the_rest_still_renders() -> None:
    def broken() -> tuple[float | None, float | None]:
        raise RuntimeError("state down")

    metrics = Metrics(held_changes=lambda: 1, compliance=broken)
    text = metrics.render()[0].decode()
    assert "syncd_changes_on_time_ratio NaN" in text and "syncd_completeness_ratio NaN" in text
    assert "syncd_held_changes 1.0" in text


def test_while_the_state_cannot_be_read_the_last_figures_stay_with_state_up_0_and_one_log_line() -> None:
    state = {"up": True}

    def read(value: object) -> Callable[[], object]:
        def source() -> object:
            if not state["up"]:
                raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
            return value
        return source

    metrics = Metrics(held_changes=read(3), overdue_changes=read(2),  # type: ignore[arg-type]
                      open_problems=read({(1, "run_failed"): 1}), compliance=read((0.5, 0.9)))  # type: ignore[arg-type]
    get = metrics.registry.get_sample_value
    assert get("syncd_state_up") == 1 and get("syncd_held_changes") == 3
    with capture_logs() as logs:
        state["up"] = False
        for _ in range(3):  # three scrapes of an outage
            text = metrics.render()[0].decode()
            assert "syncd_state_up 0.0" in text
            assert "syncd_held_changes 3.0" in text and "syncd_overdue_changes 2.0" in text
            assert 'syncd_open_problems{kind="run_failed",level="1"} 1.0' in text
            assert "syncd_changes_on_time_ratio 0.5" in text and "syncd_completeness_ratio 0.9" in text
        state["up"] = True
        assert get("syncd_state_up") == 1
        state["up"] = False
        assert get("syncd_state_up") == 0  # a second outage
    assert [entry["event"] for entry in logs] == ["metrics.state_unavailable"] * 2
    assert logs[0]["reason"] == "connection refused" and logs[0]["error"] == "OperationalError"


def test_before_the_state_was_ever_read_an_outage_shows_nan_not_zero() -> None:
    def down() -> float:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    metrics = Metrics(held_changes=down, overdue_changes=down)
    assert metrics.registry.get_sample_value("syncd_state_up") == 0
    assert math.isnan(metrics.registry.get_sample_value("syncd_held_changes") or 0.0)
