"""Two real `syncd run` nodes on PostgreSQL while it goes away, and while the leader is frozen.

The database server itself is stopped and restarted (`pg_ctlcluster`), so these tests own the
machine's PostgreSQL while they run: every session on it is cut, not only the daemons'.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import Counter

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from syncd.service.leader import LEADER
from syncd.state.store import StateStore
from tests.conftest import DEPARTMENTS, PEOPLE, person
from tests.projection import hr_projection
from tests.service.daemon_harness import Bureau, DaemonProcess, people_with, poll, post_in

ELECTED_WITHIN = 30.0  # the database back: a leader again within this, with nobody's help
FROZEN_TAKEOVER_WITHIN = 60.0  # a frozen leader replaced within this
CLUSTER = ("15", "main")


def pg_cluster(action: str) -> None:
    """Stop, start or restart the machine's PostgreSQL cluster (as root, or through sudo)."""
    command = ["pg_ctlcluster", *CLUSTER, action]
    if os.geteuid() != 0:
        command = ["sudo", "-n", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def two_nodes(bureau: Bureau) -> tuple[DaemonProcess, DaemonProcess]:
    """Two daemons on the bureau's PostgreSQL state: (leader, standby) once the leader's first cycle is done."""
    leader, standby = bureau.leader_and_standby()
    assert leader.wait_for("cycle.finished", trigger="start")["outcome"] == "success"
    return leader, standby


def health(daemon: DaemonProcess) -> tuple[int, dict[str, object]]:
    """`/healthz`: the status code and the body."""
    response = daemon.call("GET", "/healthz")
    return response.status_code, response.json()


def leader_of(*nodes: DaemonProcess, after: dict[str, int]) -> DaemonProcess | None:
    """The node that logged `daemon.leading` after its mark, if exactly one did."""
    leading = [node for node in nodes if node.find("daemon.leading", after=after[node.name])]
    return leading[0] if len(leading) == 1 else None


def test_a_standby_is_healthy_while_hr_is_quiet_and_both_nodes_outlive_postgresql_stopped_and_restarted(
        pg_bureau: Bureau) -> None:
    leader, standby = two_nodes(pg_bureau)
    # HR quiet for more than three intervals: the leader's cycles are skipped, and recorded as cycles.
    mark = leader.mark()
    for n in range(4):
        leader.wait_for("cycle.skipped", timeout=10, after=mark + n)
        mark = leader.mark()
    code, body = health(standby)
    assert (code, body["status"], body.get("role")) == (200, "ok", "standby"), body
    assert health(leader)[0] == 200

    marks = {node.name: node.mark() for node in (leader, standby)}
    pg_cluster("stop")
    try:
        for node in (leader, standby):
            node.wait_for("state.unwritable", timeout=20, after=marks[node.name])
        time.sleep(6)  # several retries and cycles with the database away
        for node in (leader, standby):
            assert node.process.poll() is None, f"{node.name} exited:\n{node.tail()}"
            code, body = health(node)
            assert code == 503 and "cannot be written or reached" in str(body["reason"]), (code, body)
        assert leader.find("daemon.leadership_lost", after=marks[leader.name])
    finally:
        pg_cluster("start")
    back = time.monotonic()
    new_leader = poll(lambda: leader_of(leader, standby, after=marks), ELECTED_WITHIN, "a leader elected again")
    assert time.monotonic() - back <= ELECTED_WITHIN
    pg_bureau.write_export(people=people_with("A000003", 职务="副处长"))
    pg_bureau.wait_directory(lambda d: post_in(d, "A000003") == "副处长", 20, "an HR change synced after the outage")
    for node in (leader, standby):
        poll(lambda node=node: health(node)[0] == 200, 20, f"{node.name} healthy again")
        node.wait_for("state.writable_again", timeout=5, after=marks[node.name])
        assert node.process.poll() is None
    assert new_leader.find("cycle.finished", after=marks[new_leader.name])

    # Restarted (not only stopped and started): the same.
    marks = {node.name: node.mark() for node in (leader, standby)}
    pg_cluster("restart")
    poll(lambda: leader_of(leader, standby, after=marks), ELECTED_WITHIN, "a leader elected after the restart")
    pg_bureau.write_export(people=people_with("A000003", 职务="处长"))
    pg_bureau.wait_directory(lambda d: post_in(d, "A000003") == "处长", 20, "an HR change synced after the restart")
    assert leader.process.poll() is None and standby.process.poll() is None


def test_a_frozen_leader_is_replaced_within_60_s_and_thawed_writes_nothing_more(pg_bureau: Bureau) -> None:
    leader, standby = two_nodes(pg_bureau)
    people = [*PEOPLE, *(person(f"A0001{i:02d}", f"新人{i}", f"139000001{i:02d}", "D0003") for i in range(12))]
    pg_bureau.admin.set_faults(latency=1.0)
    mark = leader.mark()
    pg_bureau.write_export(people=people)
    leader.wait_for("change.done", timeout=20, after=mark)
    os.kill(leader.pid, signal.SIGSTOP)  # a paused VM: its TCP connections stay up
    frozen = time.monotonic()
    try:
        standby.wait_for("daemon.leading", timeout=FROZEN_TAKEOVER_WITHIN)
        assert time.monotonic() - frozen <= FROZEN_TAKEOVER_WITHIN
        # The frozen leader was mid-cycle: its cycle session is ended, or the new leader could never sync.
        assert standby.wait_for("daemon.evicted", timeout=5)["sessions"] >= 1
        taken_over = standby.wait_for("cycle.finished", timeout=60, trigger="start")
        assert taken_over["outcome"] == "success", taken_over
    finally:
        pg_bureau.admin.set_faults()
        thawed = leader.mark()
        os.kill(leader.pid, signal.SIGCONT)
    leader.wait_for("daemon.leadership_lost", timeout=15, after=thawed)
    leader.wait_for("daemon.standby", timeout=15, after=thawed)
    # What it had in flight when frozen may land (at most one call per worker); nothing after that.
    late = leader.find("change.done", after=thawed)
    assert len(late) <= 2, late
    assert pg_bureau.directory() == hr_projection(people, DEPARTMENTS)
    joins = Counter(entry.subject for entry in pg_bureau.journal() if entry.kind == "join" and entry.state == "done")
    assert max(joins.values()) == 1, joins
    code, body = health(leader)
    assert (code, body.get("role")) == (200, "standby"), body


def leader_session(bureau: Bureau) -> str:
    """The session name the leader recorded with its leadership (`syncd <tag> <pid> <host>`)."""
    store = StateStore(bureau.state_url)
    try:
        return str(store.value(LEADER)["session"])
    finally:
        store.close()


def test_a_frozen_leaders_open_transaction_does_not_stall_the_new_leader(pg_bureau: Bureau) -> None:
    leader, standby = two_nodes(pg_bureau)
    # What a leader frozen between a write and its commit holds: locks on the state's tables, in a
    # session of its own (not the one holding the cycle lock). Opened here under the leader's session
    # name, because a SIGSTOP cannot be timed to land inside a transaction.
    engine = create_engine(pg_bureau.state_url, poolclass=NullPool,
                           connect_args={"application_name": leader_session(pg_bureau)})
    frozen_transaction = engine.connect()
    frozen_transaction.execute(text("LOCK TABLE runs, journal, service_state, problems, notices IN EXCLUSIVE MODE"))
    os.kill(leader.pid, signal.SIGSTOP)
    try:
        standby.wait_for("daemon.leading", timeout=FROZEN_TAKEOVER_WITHIN)
        taken_over = standby.wait_for("cycle.finished", timeout=30, trigger="start")
        assert taken_over["outcome"] == "success", taken_over
        with pytest.raises(OperationalError):  # ended by the new leader, which released its locks
            frozen_transaction.execute(text("SELECT 1"))
    finally:
        os.kill(leader.pid, signal.SIGCONT)
        with contextlib.suppress(OperationalError):
            frozen_transaction.close()
        engine.dispose()
    leader.wait_for("daemon.standby", timeout=30)
    assert health(leader)[1].get("role") == "standby"


def test_chaos_two_nodes_postgresql_restarted_leader_killed_twice_hr_changing_ends_equal_to_hr(
        pg_bureau: Bureau) -> None:
    leader, standby = two_nodes(pg_bureau)
    nodes = [leader, standby]
    killed: list[DaemonProcess] = []
    people = [dict(p) for p in PEOPLE]

    def hr_changes(step: int) -> None:
        """Three joins and one post change: HR keeps changing whatever happens to the nodes."""
        people.extend(person(f"A02{step}{i:03d}", f"变动{step}{i}", f"1370{step}{i:06d}", "D0003") for i in range(3))
        people[1]["职务"] = f"职务{step}"
        pg_bureau.write_export(people=people)

    def the_leader() -> DaemonProcess | None:
        alive = [node for node in nodes if node.process.poll() is None]
        leading = [node for node in alive if health(node)[1].get("role") == "leader"]
        return leading[0] if len(leading) == 1 else None

    pg_bureau.admin.set_faults(latency=0.3)  # cycles take seconds: a kill lands in the middle of one
    for step in range(1, 4):
        current = poll(the_leader, ELECTED_WITHIN, f"a leader before step {step}")
        mark = current.mark()
        hr_changes(step)
        current.wait_for("change.done", timeout=20, after=mark)
        if step == 2:
            pg_cluster("restart")
        else:
            current.kill()
            killed.append(current)
            nodes.append(pg_bureau.start())  # systemd would restart it: two nodes again
    pg_bureau.admin.set_faults()
    pg_bureau.wait_directory(lambda d: d == hr_projection(people, DEPARTMENTS), 60, "the directory equal to HR")
    joins = Counter(entry.subject for entry in pg_bureau.journal() if entry.kind == "join" and entry.state == "done")
    assert set(joins) == {p["工号"] for p in people if p["人员状态"] == "在职"}
    assert max(joins.values()) == 1, joins
    assert all(node.process.poll() is None for node in nodes if node not in killed), "a node exited"


def test_a_node_started_while_postgresql_is_down_waits_for_it_then_leads(pg_bureau: Bureau) -> None:
    pg_cluster("stop")
    try:
        node = pg_bureau.start(wait=False)
        waiting = node.wait_for("state.unwritable", timeout=20)
        assert waiting["doing"] == "opening the state" and waiting["reason"], waiting
        time.sleep(3)  # several tries with the database away
        assert node.process.poll() is None, node.tail()
    finally:
        pg_cluster("start")
    node.wait_for("daemon.leading", timeout=ELECTED_WITHIN)
    assert node.wait_for("cycle.finished", trigger="start")["outcome"] == "success"
    assert pg_bureau.directory() == hr_projection(PEOPLE, DEPARTMENTS)


def metric(text: str, name: str) -> float:
    """The value of an unlabelled series in a Prometheus text exposition."""
    [value] = [line.split()[-1] for line in text.splitlines() if line.split(" ")[0] == name]
    return float(value)


def test_status_answers_503_and_metrics_keep_their_figures_with_state_up_0_while_postgresql_is_down(
        pg_bureau: Bureau) -> None:
    node = pg_bureau.start()
    assert node.wait_for("cycle.finished", trigger="start")["outcome"] == "success"
    assert node.call("GET", "/api/v1/status", token="hr").status_code == 200
    before = node.call("GET", "/metrics")
    assert before.status_code == 200 and metric(before.text, "syncd_state_up") == 1
    held, overdue = metric(before.text, "syncd_held_changes"), metric(before.text, "syncd_overdue_changes")
    mark = node.mark()
    pg_cluster("stop")
    try:
        node.wait_for("state.unwritable", timeout=20, after=mark)
        for _ in range(3):  # several scrapes and polls: each answered, one log line in all
            status = node.call("GET", "/api/v1/status", token="hr")
            assert status.status_code == 503, status.text
            assert status.json()["error"] == "state_unavailable" and status.json()["message"]
            assert int(status.headers["Retry-After"]) > 0
            scraped = node.call("GET", "/metrics")
            assert scraped.status_code == 200, scraped.text
            assert metric(scraped.text, "syncd_state_up") == 0
            # The last good figures, so that alerts on them neither resolve nor flap during the outage.
            assert (metric(scraped.text, "syncd_held_changes"), metric(scraped.text, "syncd_overdue_changes")) == (
                held, overdue)
            assert metric(scraped.text, "syncd_last_success_timestamp_seconds") > 0
        assert not node.find("api.error", after=mark), node.tail()
        assert "Traceback" not in node.log_text()
        assert len(node.find("api.state_unavailable", after=mark)) == 1
        assert len(node.find("metrics.state_unavailable", after=mark)) == 1
    finally:
        pg_cluster("start")
    poll(lambda: node.call("GET", "/api/v1/status", token="hr").status_code == 200, ELECTED_WITHIN,
         "the status answered again")
    poll(lambda: metric(node.call("GET", "/metrics").text, "syncd_state_up") == 1, ELECTED_WITHIN,
         "the state up again on /metrics")
    assert node.process.poll() is None
