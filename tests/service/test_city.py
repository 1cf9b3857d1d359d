"""`syncd city report`: two real units' apps over HTTP, one unit down, one refusing the token, worst first."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.console.harness import city_of_four


def _city(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    """`syncd city ...` in a process of its own, as the city bureau runs it."""
    return subprocess.run([sys.executable, "-m", "syncd.cli", "city", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """city.toml over A (healthy figures), B (an overdue change), C (nothing listens) and D (a wrong token)."""
    with city_of_four(tmp_path_factory.mktemp("city")) as city:
        yield city.config_path


def _period() -> list[str]:
    today = datetime.now(UTC).date()
    return ["--from", (today - timedelta(days=30)).isoformat(), "--to", (today + timedelta(days=1)).isoformat()]


def test_every_unit_is_listed_worst_first_and_a_unit_that_does_not_answer_is_shown_as_such(city: Path) -> None:
    result = _city("report", *_period(), "--format", "json", config=city)
    assert result.returncode == 1, result.stderr  # a unit did not answer: the report says so by its exit code
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["C区", "D区", "B区", "A区"]
    down, refused, late, fine = rows
    assert (down["reachable"], down["error"], down["figures"]) == (False, "unreachable", None)
    assert (refused["error"], refused["status"]) == ("refused", 401)
    assert late["figures"]["overdue"] == 1 and fine["figures"]["overdue"] == 0
    assert fine["figures"]["changes"] > 0 and fine["figures"]["on_time_share"] == 1.0
    assert fine["figures"]["unit"] and fine["reachable"] and fine["error"] is None
    assert '"event": "city.unit_unreachable"' in result.stderr and "A000001" not in result.stderr


def test_the_table_and_the_annual_assessment_workbook_are_chinese(city: Path, tmp_path: Path) -> None:
    table = _city("report", *_period(), config=city)
    lines = table.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["单位", "状态", "最近成功同步"]
    assert lines[1].split("\t")[:2] == ["C区", "无法连接"]
    assert lines[2].split("\t")[:2] == ["D区", "令牌被拒绝（HTTP 401）"]
    workbook_path = tmp_path / "年度考核.xlsx"
    written = _city("report", *_period(), "--format", "xlsx", "--output", str(workbook_path), config=city)
    assert written.returncode == 1 and workbook_path.exists()
    sheet = load_workbook(workbook_path).active
    assert sheet.title.startswith("年度考核")
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("单位", "状态") and [r[0] for r in rows[1:]] == ["C区", "D区", "B区", "A区"]
    late = rows[3]
    assert late[5] == "1" and late[4].endswith("%")  # 逾期未同步, 按期同步率
    assert all(cell.data_type == "s" for r in sheet.iter_rows() for cell in r)


def test_a_bad_city_configuration_fails_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "city.toml"
    config.write_text('[[unit]]\nname = "A区"\nurl = "ftp://x"\ntoken_file = "missing.token"\n'
                      '[[unit]]\nname = "A区"\nurl = "http://127.0.0.1:1"\ntoken_file = "missing.token"\n',
                      encoding="utf-8")
    result = _city("report", "--from", "2026-01-01", "--to", "2026-12-31", config=config)
    assert result.returncode == 2
    assert "unit.0.url" in result.stderr
    config.write_text('[[unit]]\nname = "A区"\nurl = "http://127.0.0.1:1"\ntoken_file = "missing.token"\n'
                      '[[unit]]\nname = "A区"\nurl = "http://127.0.0.1:1"\ntoken_file = "city.toml"\n',
                      encoding="utf-8")
    result = _city("report", "--from", "2026-01-01", "--to", "2026-12-31", config=config)
    assert result.returncode == 2
    assert "unit.0.token_file" in result.stderr and "unit.1.name" in result.stderr
