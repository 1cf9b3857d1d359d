"""The sanity floor on HR's size: a well-formed export with far fewer people holds its deactivations.

End to end: the CLI syncs real files into the bundled simulator over HTTP, with the deactivation
count and share guards opened wide so that only `safety.max_shrink_share` (its default, 10 %) and
`safety.max_shrink_count` (its default, 5 people) can hold: a shrink is held past both.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from syncd.config import EscalationConfig
from syncd.domain.escalation import Escalation, gather_facts
from tests.conftest import DEPARTMENTS, person
from tests.projection import hr_projection as expected
from tests.sim_env import Env
from tests.test_escalation import Recorder

BUREAU = [person(f"A{i:06d}", f"人员{i}", f"138000{i:05d}", "D0003" if i % 2 else "D0005") for i in range(1, 41)]


@pytest.mark.parametrize("env", [{"max_deactivations": 1000, "share": 1.0, "shrink": 0.10}], indirect=True)
def test_an_export_with_20_percent_fewer_people_is_held_until_approved(env: Env) -> None:
    env.write_export(people=BUREAU)
    assert env.sync().exit_code == 0
    kept = BUREAU[:32]  # eight of forty gone: well-formed, complete, 20 % and more than 5 people fewer
    env.write_export(people=kept)
    held = env.sync()
    assert held.exit_code == 3, held.output
    assert "mass_deactivation" in held.output
    assert env.directory() == expected(BUREAU, DEPARTMENTS)
    assert env.sync().exit_code == 3  # held again next cycle: the baseline is still the whole bureau
    [run_id] = re.findall(r"syncd approve (\w+)", held.output)
    assert env.cli("approve", run_id).exit_code == 0
    assert env.sync().exit_code == 0
    statuses = {mobile: status for mobile, (_, _, status, _) in env.directory()["people"].items()}
    assert {m for m, status in statuses.items() if status == "F"} == {p["手机号"] for p in BUREAU[32:]}
    # The approved, smaller HR is the new baseline: one more leaving (1 of 32, 3 %) passes.
    env.write_export(people=kept[:31])
    assert env.sync().exit_code == 0


@pytest.mark.parametrize("env", [{"max_deactivations": 1000, "share": 1.0, "shrink": 0.10}], indirect=True)
def test_a_drop_within_the_floor_is_applied(env: Env) -> None:
    env.write_export(people=BUREAU)
    assert env.sync().exit_code == 0
    env.write_export(people=BUREAU[:36])  # 10 %: not more than the floor
    assert env.sync().exit_code == 0
    statuses = {mobile: status for mobile, (_, _, status, _) in env.directory()["people"].items()}
    assert sum(status == "F" for status in statuses.values()) == 4


@pytest.mark.parametrize(("env", "held"), [
    ({"max_deactivations": 1000, "share": 1.0, "shrink": 0.10}, False),  # the default count, 5
    ({"max_deactivations": 1000, "share": 1.0, "shrink": 0.10, "shrink_count": 1}, True),
], indirect=["env"])
def test_a_ten_person_unit_losing_two_people_is_held_only_under_a_lower_count(env: Env, held: bool) -> None:
    """20 % fewer, but two people: a small unit's ordinary departures, not a wrong export."""
    env.write_export(people=BUREAU[:10])
    assert env.sync().exit_code == 0
    env.write_export(people=BUREAU[:8])
    result = env.sync()
    assert result.exit_code == (3 if held else 0), result.output
    statuses = {mobile: status for mobile, (_, _, status, _) in env.directory()["people"].items()}
    left = {m for m, status in statuses.items() if status == "F"}
    assert left == (set() if held else {p["手机号"] for p in BUREAU[8:10]})


def held_notice(env: Env, kept: int) -> str:
    """The open text of the hold the unit admin is told of when the whole bureau's export shrinks to `kept`."""
    env.write_export(people=BUREAU)
    assert env.sync().exit_code == 0
    env.write_export(people=BUREAU[:kept])
    assert env.sync().exit_code == 3
    config = env.loaded_config()
    admins = EscalationConfig.model_validate({"unit_admins": [{"name": "管理员甲", "account_id": 9001}]})
    recorder = Recorder()
    store = env.store()
    try:
        now = datetime.now(UTC)
        Escalation(store, config.model_copy(update={"escalation": admins}), [recorder], config.unit.name).observe(
            now, gather_facts(store, now.date(), config.escalation))
    finally:
        store.close()
    [text] = [n.text for n in recorder.sent if n.kind == "held"]
    return text


@pytest.mark.parametrize("env", [{"max_deactivations": 1000, "share": 1.0, "shrink": 0.10}], indirect=True)
def test_the_notice_of_a_shrink_hold_names_the_floor_with_hr_before_and_now_and_says_to_fix_the_export(
        env: Env) -> None:
    text = held_notice(env, 32)
    assert ("8 项停用（离职、退休、调离）因在职人数骤减而暂缓：人事数据中的在职人数由上次完整读取时的 40 人降为 32 人，"
            "少了 8 人（20%），超过骤减下限（减少超过 10% 且多于 5 人即暂缓）") in text
    assert "请人事部门重新完整导出" in text and "syncd approve" in text
    assert "批量停用上限" not in text


@pytest.mark.parametrize("env", [{"max_deactivations": 3, "share": 1.0, "shrink": 1.0}], indirect=True)
def test_the_notice_of_a_hold_past_the_deactivation_limit_names_that_limit_not_the_floor(env: Env) -> None:
    text = held_notice(env, 36)
    assert ("4 项停用（离职、退休、调离）超过批量停用上限（一次停用超过 3 人或超过在用人数（40 人）的 100% 即暂缓）"
            in text)
    assert "骤减" not in text
