"""`syncd demo --keep DIR`: what it leaves behind."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`syncd demo --keep DIR` run once: the directory it kept and what it printed."""
    kept = tmp_path_factory.mktemp("demo")
    result = subprocess.run([sys.executable, "-m", "syncd.cli", "demo", "--keep", str(kept)], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return kept, result


def test_the_kept_demo_leaves_its_secrets_readable_by_their_owner_only(
        demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    kept, _ = demo
    for name in ("app-secret", "webhook-secret", "tokens.toml", "city/demo.token", "city/erqi.token",
                 "city/city-tokens.toml", "city/erqi/app-secret"):
        assert stat.S_IMODE((kept / name).stat().st_mode) == 0o600, name


def test_the_demo_ends_with_the_city_view_over_the_demo_bureau_and_a_second_unit(
        demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, result = demo
    city = result.stdout[result.stdout.index("== The city bureau's view"):]
    assert "and saw 全市概览" in city
    [header, first, second] = [re.split(r"  +", line.strip()) for line in city.splitlines()[2:5]]
    assert header[:3] == ["单位", "状态", "最近成功同步"]
    # Both units answered and are healthy; the district, with a person lacking 职级, comes first.
    assert (first[0], first[1]) == ("郑州市二七区审计局（演示）", "正常") and first[6] == "91.7%"
    assert (second[0], second[1]) == ("郑州市审计局", "正常")
