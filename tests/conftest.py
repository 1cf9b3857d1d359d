"""Shared fixtures: synthetic HR exports and configuration files written per test."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS

# The `env` fixture: a simulator over HTTP with a unit's configuration and export beside it.
pytest_plugins = ["tests.sim_env"]

PEOPLE_HEADER = list(DEFAULT_PEOPLE_COLUMNS.values())
DEPARTMENT_HEADER = list(DEFAULT_DEPARTMENT_COLUMNS.values())

# A small synthetic bureau. Every name and number here is invented.
DEPARTMENTS = [
    {"部门编号": "D0001", "部门名称": "郑州市审计局", "简称": "市审计局", "上级部门编号": "", "排序": "1"},
    {"部门编号": "D0002", "部门名称": "办公室", "简称": "", "上级部门编号": "D0001", "排序": "1"},
    {"部门编号": "D0003", "部门名称": "财政审计处", "简称": "财政处", "上级部门编号": "D0001", "排序": "2"},
    {"部门编号": "D0004", "部门名称": "局属单位", "简称": "", "上级部门编号": "D0001", "排序": "9"},
    {"部门编号": "D0005", "部门名称": "审计信息中心", "简称": "信息中心", "上级部门编号": "D0004", "排序": "1"},
]


def person(employee_id: str, name: str, mobile: str, department: str, **extra: str) -> dict[str, str]:
    """A person row with sensible defaults for every column."""
    row = {
        "工号": employee_id, "姓名": name, "性别": "男", "手机号": mobile, "部门编号": department,
        "编制": "行政编制", "职级": "一级主任科员", "政治面貌": "中共党员", "人员角色": "普通人员", "职务": "科员",
        "职务层次": "科员级", "办公电话": "0371-67180000", "领导分工": "", "人员状态": "在职", "排序": "1",
    }
    row.update(extra)
    return row


PEOPLE = [
    person("A000001", "张明", "13800000001", "D0002", 人员角色="领导", 职务="主任", 领导分工="负责办公室全面工作"),
    person("A000002", "李华", "13800000002", "D0002", 性别="女"),
    person("A000003", "王芳", "13800000003", "D0003", 性别="女", 政治面貌="群众"),
    person("A000004", "赵强", "13800000004", "D0003"),
    person("A000005", "阿依古丽·买买提", "13800000005", "D0005", 性别="女"),
    person("A000006", "陈刚", "13800000006", "D0005", 人员状态="退休"),
]


def config_toml(base_url: str = "http://127.0.0.1:1", root: str = "GO_0123abcd", app_key: str = "k",
                app_secret: str | None = "s", tenant_id: int = 196729, **sections: dict[str, object]) -> str:
    """The text of a configuration reading people.csv and departments.csv beside it; `sections` add
    or override keys by section (`safety={"structure_changes": "apply"}`)."""
    config: dict[str, dict[str, object]] = {
        "unit": {"name": "郑州市审计局", "root_department": "D0001", "root_organization_code": root},
        "source": {"kind": "csv", "people": "people.csv", "departments": "departments.csv"},
        "target": {"base_url": base_url, "app_key": app_key, "app_secret": app_secret, "tenant_id": tenant_id},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return "\n".join(f"[{name}]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in values.items()
                                             if value is not None)
                     for name, values in config.items())


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    return str(value)


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]], encoding: str = "utf-8") -> Path:
    """Write rows under a header; missing cells are empty."""
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(column, "") for column in header])
    return path


@pytest.fixture
def export(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Write an HR export (departments.csv, people.csv) into tmp_path; defaults to the small bureau."""

    def write(people: list[dict[str, str]] | None = None, departments: list[dict[str, str]] | None = None,
              encoding: str = "utf-8") -> tuple[Path, Path]:
        return (
            write_csv(tmp_path / "people.csv", PEOPLE_HEADER, PEOPLE if people is None else people, encoding),
            write_csv(tmp_path / "departments.csv", DEPARTMENT_HEADER,
                      DEPARTMENTS if departments is None else departments, encoding),
        )

    return write
