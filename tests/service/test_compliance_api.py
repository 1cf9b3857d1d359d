"""`GET /api/v1/compliance` and the auditor role, over real HTTP against the daemon's app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from openpyxl import load_workbook

from syncd.cli import main
from syncd.console import read_hr
from syncd.domain.compliance import PERSON_KINDS
from syncd.reporting.report import completeness
from syncd.service.tokens import add_token
from tests.console.conftest import csrf_of
from tests.console.harness import Bureau, Console, build_console, bureau_at, serve


@pytest.fixture(scope="module")
def unit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bureau, Console]]:
    """The small bureau after its first sync, served, with an auditor token besides hr and operator."""
    root: Path = tmp_path_factory.mktemp("compliance")
    with bureau_at(root) as bureau:
        bureau.tokens["auditor"] = add_token(root / "tokens.toml", "city-bureau", "auditor")
        with serve(build_console(bureau)) as console:
            yield bureau, console


def _get(console: Console, path: str, token: str) -> requests.Response:
    return requests.get(f"{console.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_an_auditor_reads_the_units_figures_of_its_first_sync(unit: tuple[Bureau, Console]) -> None:
    bureau, console = unit
    today = console.daemon.today().isoformat()
    response = _get(console, f"/api/v1/compliance?from={today}&to={today}", bureau.tokens["auditor"])
    assert response.status_code == 200, response.text
    body = response.json()
    [first] = console.daemon.store.runs(1)
    joined = sum(count for key, count in first.counts.items()
                 if key.endswith(".done") and key.rpartition(".")[0] in PERSON_KINDS)
    assert joined > 0
    # Every person of the first sync reached the directory the day HR's record was read.
    assert (body["changes"], body["on_time"], body["on_time_share"]) == (joined, joined, 1.0)
    assert (body["median_workdays"], body["max_workdays"], body["overdue"], body["pending"]) == (0, 0, 0, 0)
    report = completeness(read_hr(bureau.config))
    assert body["completeness_share"] == round(report.complete / report.in_post, 4)
    assert body["in_post"] == report.in_post
    assert body["open_problems"] == {"1": 0, "2": 0} and body["held"] == 0
    assert body["unit"] == bureau.config.unit.name and body["from"] == body["to"] == today


def test_a_period_before_the_first_sync_has_no_changes(unit: tuple[Bureau, Console]) -> None:
    bureau, console = unit
    body = _get(console, "/api/v1/compliance?from=2020-01-01&to=2020-12-31", bureau.tokens["hr"]).json()
    assert (body["changes"], body["on_time_share"], body["median_workdays"]) == (0, None, None)


@pytest.mark.parametrize(("query", "field"), [
    ("to=2026-10-31", "from"),
    ("from=2026-10-01", "to"),
    ("from=2026-02-30&to=2026-03-31", "from"),
    ("from=20261001&to=2026-10-31", "from"),
    ("from=2026-10-01&to=2026-1-31", "to"),
    ("from=2026-10-31&to=2026-10-01", "to"),
    ("from=0001-01-01&to=2026-10-01", "from"),
    ("from=2026-10-01&to=9999-12-31", "to"),
])
def test_a_bad_period_is_422_json_naming_the_parameter(unit: tuple[Bureau, Console], query: str, field: str) -> None:
    bureau, console = unit
    response = _get(console, f"/api/v1/compliance?{query}", bureau.tokens["auditor"])
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "invalid_request" and response.json()["field"] == field


def test_an_auditor_reads_status_and_compliance_only(unit: tuple[Bureau, Console]) -> None:
    bureau, console = unit
    token = bureau.tokens["auditor"]
    assert _get(console, "/api/v1/status", token).status_code == 200
    assert _get(console, "/api/v1/escalations", token).status_code == 403
    headers = {"Authorization": f"Bearer {token}"}
    for path, body in (("/api/v1/resync", {"all": True}), ("/api/v1/people/A000001/freeze", {}),
                       ("/api/v1/runs/R1/approve", {})):
        response = requests.post(f"{console.base_url}{path}", json=body, headers=headers, timeout=10)
        assert response.status_code == 403, path
        assert response.json()["error"] == "forbidden"


def test_hr_and_operator_read_compliance_and_no_token_is_401(unit: tuple[Bureau, Console]) -> None:
    bureau, console = unit
    for role in ("hr", "operator"):
        assert _get(console, "/api/v1/compliance?from=2026-01-01&to=2026-12-31", bureau.tokens[role]).status_code == 200
    response = requests.get(f"{console.base_url}/api/v1/compliance?from=2026-01-01&to=2026-12-31", timeout=10)
    assert response.status_code == 401


def test_an_auditor_token_opens_no_console_session(unit: tuple[Bureau, Console]) -> None:
    bureau, console = unit
    with requests.Session() as client:
        form = client.get(f"{console.base_url}/signin", timeout=10)
        client.post(f"{console.base_url}/signin", data={"csrf_token": csrf_of(form.text),
                                                         "token": bureau.tokens["auditor"]}, timeout=10)
        page = client.get(f"{console.base_url}/", allow_redirects=False, timeout=10)
        assert page.status_code in (302, 303) and "/signin" in page.headers["Location"]


def test_the_report_command_prints_what_the_api_answers_as_json_table_and_xlsx(
        unit: tuple[Bureau, Console], tmp_path: Path) -> None:
    bureau, console = unit
    today = console.daemon.today().isoformat()
    answered = _get(console, f"/api/v1/compliance?from={today}&to={today}", bureau.tokens["auditor"]).json()
    command = ["--config", str(bureau.config_path), "report", "compliance", "--from", today, "--to", today]
    printed = CliRunner().invoke(main, [*command, "--format", "json"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output) == answered
    table = CliRunner().invoke(main, command)
    assert table.exit_code == 0, table.output
    assert f"人员变动数  {answered['changes']}" in table.output.replace("　", "")
    assert "按期同步率  100.0%" in table.output.replace("　", "")
    workbook = tmp_path / "第九条.xlsx"
    written = CliRunner().invoke(main, [*command, "--format", "xlsx", "--output", str(workbook)])
    assert written.exit_code == 0, written.output
    sheet = load_workbook(workbook).active
    rows = {label: value for label, value in sheet.iter_rows(min_row=2, values_only=True)}
    assert sheet.title == "第九条执行情况" and next(sheet.iter_rows(max_row=1, values_only=True)) == ("项目", "数值")
    assert rows["单位"] == bureau.config.unit.name
    assert rows["人员变动数"] == str(answered["changes"]) and rows["按期同步数"] == str(answered["on_time"])
    assert rows["在职人员信息完整率"] == f"{answered['completeness_share']:.1%}"
    assert rows["同步用时中位数（工作日）"] == "0" and rows["待审批变更"] == "0"
    assert all(cell.data_type == "s" for row in sheet.iter_rows() for cell in row)


def test_the_report_command_refuses_a_period_ending_before_it_starts(unit: tuple[Bureau, Console]) -> None:
    bureau, _ = unit
    result = CliRunner().invoke(main, ["--config", str(bureau.config_path), "report", "compliance",
                                       "--from", "2026-10-02", "--to", "2026-10-01"])
    assert result.exit_code == 2 and "--to" in result.output


def test_metrics_carry_this_years_on_time_share_and_the_completeness_share(unit: tuple[Bureau, Console]) -> None:
    bureau, console = unit
    today = console.daemon.today()
    console.daemon.snapshots()  # the daemon's own HR read, as its first cycle offers it
    answered = _get(console, f"/api/v1/compliance?from={today.year}-01-01&to={today.isoformat()}",
                    bureau.tokens["auditor"]).json()
    text = requests.get(f"{console.base_url}/metrics", timeout=10).text
    samples = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
               if line.startswith(("syncd_changes_on_time_ratio ", "syncd_completeness_ratio "))}
    assert samples == {"syncd_changes_on_time_ratio": answered["on_time_share"],
                       "syncd_completeness_ratio": answered["completeness_share"]}
    assert samples["syncd_changes_on_time_ratio"] == 1.0
