"""`syncd report completeness`: what HR must fix, by department, as a table, CSV or XLSX."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook

from syncd.cli import main
from tests.conftest import PEOPLE, config_toml, person

CONFIG = config_toml(root="GO_1", tenant_id=1)


def run_report(tmp_path: Path, export: Callable[..., tuple[Path, Path]], *args: str) -> str:
    people = [*PEOPLE,
              person("A000007", "孙丽", "1380000", "D0003", 职级=""),
              person("A000008", "周杰", "13800000008", "D0002", 人员角色="领导", 领导分工="")]
    export(people=people)
    (tmp_path / "syncd.toml").write_text(CONFIG, encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "syncd.toml"), "report", "completeness", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_table_groups_incomplete_people_by_department(tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> None:
    out = run_report(tmp_path, export)
    assert "在职人数 7" in out and "信息不完整 2" in out
    office = out.index("郑州市审计局 / 办公室")
    audit = out.index("郑州市审计局 / 财政审计处")
    assert office < out.index("A000008") < audit < out.index("A000007")
    assert "缺少 职级" in out and "缺少 领导分工" in out
    assert "无效 手机号不是11位大陆手机号" in out  # the reason in Chinese, from its code


def test_every_reason_hr_reads_is_chinese(tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> None:
    """Reasons carry a stable code for the logs; the report renders them in Chinese, never the English reason."""
    people = [*PEOPLE, person("A000007", "孙丽", "1380000", "D0003", 性别="未知", 职务="长" * 65),
              person("A000008", "周杰", "13800000008", "D0009"), person("A000009", "吴敏", "13800000009", "D0002",
                                                                    人员状态="在岗")]
    export(people=people)
    (tmp_path / "syncd.toml").write_text(CONFIG, encoding="utf-8")
    out_file = tmp_path / "report.csv"
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "syncd.toml"), "report", "completeness",
                                       "--format", "csv", "--output", str(out_file)])
    assert result.exit_code == 0, result.output
    by_id = {row["工号"]: row for row in csv.DictReader(out_file.open(encoding="utf-8-sig"))}
    assert by_id["A000007"]["说明"] == ("性别不是已知的值，应为：女、女性、未知的性别、未说明、未说明的性别、男、男性；"
                                       "手机号不是11位大陆手机号；职务超过64个字符")
    assert by_id["A000008"]["状态"] == "已拒绝"
    assert by_id["A000008"]["说明"] == "部门编号 D0009 不存在（部门表中没有，或该部门被拒绝）"
    assert by_id["A000009"]["说明"].startswith("人员状态不是已知的值，应为：在职、")
    for row in by_id.values():
        assert not re.search(r"[A-Za-z]{3,}", row["说明"]), row["说明"]  # ids like D0009 only, no English words


def test_csv_lists_each_problem_with_its_location(tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> None:
    out_file = tmp_path / "report.csv"
    run_report(tmp_path, export, "--format", "csv", "--output", str(out_file))
    rows = list(csv.DictReader(out_file.open(encoding="utf-8-sig")))
    by_id = {row["工号"]: row for row in rows}
    assert set(by_id) == {"A000007", "A000008"}
    assert by_id["A000007"]["缺少字段"] == "职级" and by_id["A000007"]["无效字段"] == "手机号"
    assert by_id["A000007"]["位置"] == "人员表第 8 行"  # the console's words for the line


def test_xlsx_has_the_rows_and_a_summary(tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> None:
    out_file = tmp_path / "report.xlsx"
    run_report(tmp_path, export, "--format", "xlsx", "--output", str(out_file))
    workbook = load_workbook(out_file)
    rows = list(workbook["完整性"].iter_rows(values_only=True))
    assert rows[0][:3] == ("部门", "部门编号", "工号") and len(rows) == 3
    summary = dict(workbook["汇总"].iter_rows(values_only=True))
    assert summary["在职人数"] == "7" and summary["信息不完整"] == "2"  # text cells, like every cell


def test_every_format_renders_exactly_this_wording(tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> None:
    """The report's headings, statuses, sheets, summary, prefixes and separators, byte for byte."""
    export(people=[*PEOPLE, person("A000007", "孙丽", "1380000", "D0003", 职级="", 职务="长" * 65),
                   person("A000008", "周杰", "13800000008", "D0002", 人员角色="领导", 领导分工=""),
                   person("A000009", "吴敏", "13800000009", "D0009")])
    (tmp_path / "syncd.toml").write_text(CONFIG, encoding="utf-8")
    config = ["--config", str(tmp_path / "syncd.toml"), "report", "completeness"]
    table = CliRunner().invoke(main, config)
    assert table.exit_code == 0, table.output
    assert table.output == (
        "在职人数 7  信息完整 5  完整率 71.4%  信息不完整 2  记录被拒绝 1\n"
        "\n郑州市审计局 / 办公室 (D0002)\n"
        "  A000008    周杰       不完整  缺少 领导分工  [人员表第 9 行]\n"
        "\n郑州市审计局 / 财政审计处 (D0003)\n"
        "  A000007    孙丽       不完整  缺少 职级；无效 手机号不是11位大陆手机号；职务超过64个字符  [人员表第 8 行]\n"
        "\n（未入库）\n"
        "  A000009             已拒绝  无效 部门编号 D0009 不存在（部门表中没有，或该部门被拒绝）  [人员表第 10 行]\n")
    header = ("部门", "部门编号", "工号", "姓名", "状态", "缺少字段", "无效字段", "说明", "位置")
    rows = [("郑州市审计局 / 办公室", "D0002", "A000008", "周杰", "不完整", "领导分工", "", "", "人员表第 9 行"),
            ("郑州市审计局 / 财政审计处", "D0003", "A000007", "孙丽", "不完整", "职级", "手机号、职务",
             "手机号不是11位大陆手机号；职务超过64个字符", "人员表第 8 行"),
            ("（未入库）", "", "A000009", "", "已拒绝", "", "部门编号",
             "部门编号 D0009 不存在（部门表中没有，或该部门被拒绝）", "人员表第 10 行")]
    csv_file, xlsx_file = tmp_path / "report.csv", tmp_path / "report.xlsx"
    for out_file in (csv_file, xlsx_file):
        result = CliRunner().invoke(main, [*config, "--format", out_file.suffix[1:], "--output", str(out_file)])
        assert result.exit_code == 0, result.output
    assert csv_file.read_bytes().decode("utf-8") == "\ufeff" + "".join(",".join(row) + "\r\n"
                                                                       for row in [header, *rows])
    workbook = load_workbook(xlsx_file)
    assert workbook.sheetnames == ["完整性", "汇总"]
    assert list(workbook["完整性"].iter_rows(values_only=True)) == [
        header, *(tuple(cell or None for cell in row) for row in rows)]
    assert list(workbook["汇总"].iter_rows(values_only=True)) == [
        ("在职人数", "7"), ("信息完整", "5"), ("完整率", "71.4%"), ("信息不完整", "2"), ("记录被拒绝", "1")]
