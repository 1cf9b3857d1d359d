"""Property: for any sequence of HR snapshots, each sync makes the directory the projection of HR,
and an immediate second sync makes zero writes (simulator over HTTP, hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.zzd.simulator.admin import SimAdmin
from connectors.zzd.simulator.server import SimulatorServer
from connectors.zzd.simulator.tenant import SimTenant
from syncd.config import Config
from syncd.engine.cycle import run_cycle
from syncd.state.store import StateStore
from syncd.wiring import build_source, build_target
from tests.conftest import DEPARTMENT_HEADER, PEOPLE_HEADER, person, write_csv
from tests.projection import directory_projection, hr_projection, same

TENANT = SimTenant(app_key="prop-key", app_secret="prop-secret", admin_token="prop-admin")
POOL = [(f"A{i:06d}", f"测试{i}", f"1390000{i:04d}") for i in range(10)]
DEPARTMENT_IDS = ["D0002", "D0003", "D0004"]
STATUSES = ["在职"] * 6 + ["退休", "调离", "离职"]
POSTS = ["科员", "副科长", "科长"]
NAMES = ["办公室", "综合处", "财政审计处", "金融审计处", "信息中心"]


@st.composite
def hr_snapshot(draw: st.DrawFn) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """A tree of up to three departments under the root (names and nesting vary) and some people."""
    departments = [{"部门编号": "D0001", "部门名称": "郑州市审计局", "上级部门编号": "", "简称": "", "排序": "1"}]
    for i, dept_id in enumerate(DEPARTMENT_IDS):
        parent = draw(st.sampled_from(["D0001", *DEPARTMENT_IDS[:i]]))
        name = f"{draw(st.sampled_from(NAMES))}{i}"  # unique under any parent
        departments.append({"部门编号": dept_id, "部门名称": name, "上级部门编号": parent, "简称": "", "排序": str(i)})
    chosen = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=len(POOL), unique=True))
    people = [person(emp, name, mobile, draw(st.sampled_from(["D0001", *DEPARTMENT_IDS])),
                     人员状态=draw(st.sampled_from(STATUSES)), 职务=draw(st.sampled_from(POSTS)))
              for emp, name, mobile in chosen]
    return people, departments


def make_config(directory: Path, base_url: str) -> Config:
    return Config.model_validate({
        "unit": {"name": "郑州市审计局", "root_department": "D0001", "root_organization_code": TENANT.root_code},
        "source": {"kind": "csv", "people": str(directory / "people.csv"),
                   "departments": str(directory / "departments.csv")},
        "target": {"base_url": base_url, "app_key": TENANT.app_key, "app_secret": TENANT.app_secret,
                   "tenant_id": TENANT.tenant_id, "rate_limit": 1000},
        "state": {"url": f"sqlite:///{directory / 'state.db'}"},
        "safety": {"structure_changes": "apply", "max_deactivation_share": 1.0, "max_deactivations": 1000,
                   "max_shrink_share": 1.0},
    })


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(snapshots=st.lists(hr_snapshot(), min_size=1, max_size=4))
def test_each_sync_makes_the_directory_the_projection_of_hr(
        snapshots: list[tuple[list[dict[str, str]], list[dict[str, str]]]],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("prop")
    with SimulatorServer(TENANT) as server:
        sync_all(snapshots, directory, server)


def sync_all(snapshots: list[tuple[list[dict[str, str]], list[dict[str, str]]]], directory: Path,
             server: SimulatorServer) -> None:
    admin = SimAdmin(server.base_url, TENANT.admin_token)
    config = make_config(directory, server.base_url)
    store = StateStore(config.state.url)
    created: set[str] = set()  # mobiles syncd has ever created: they stay, inactive when gone from HR
    try:
        for people, departments in snapshots:
            write_csv(directory / "people.csv", PEOPLE_HEADER, people)
            write_csv(directory / "departments.csv", DEPARTMENT_HEADER, departments)
            result = run_cycle(config, build_source(config), build_target(config), store)
            assert result.outcome == "success", [(o.change.describe(), o.message) for o in result.report.outcomes
                                                 if o.state != "done"]
            created |= {p["手机号"] for p in people if p["人员状态"] == "在职"}
            expected = hr_projection(people, departments, inactive_mobiles=created)
            actual = directory_projection(admin.directory())
            assert same(actual, expected), (actual, expected)
            before = admin.counters()["writes"]
            again = run_cycle(config, build_source(config), build_target(config), store)
            assert len(again.plan) == 0 and admin.counters()["writes"] == before
    finally:
        store.close()
