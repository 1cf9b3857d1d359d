"""The city bureau's console over real units' APIs: sign-in, 全市概览 worst first, a unit's detail, 年度考核.

Four units (`city_of_four`): A区 healthy, C区 where nothing listens, B区 with an overdue change, D区
refusing the city's token. The city app is built as `syncd city` builds it, from city.toml, and
asked through Flask's test client; the units answer over real HTTP.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from syncd.city import CityReader, load_city
from syncd.console.city import create_city_app
from syncd.console.web import CSP
from tests.console.conftest import csrf_of, sign_in
from tests.console.harness import City, city_of_four
from tests.service.daemon_harness import poll

SECRET = b"c" * 32
CITY_ZONE = ZoneInfo("Asia/Shanghai")  # city.toml's default timezone: its pages' today


def today() -> date:
    return datetime.now(CITY_ZONE).date()


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    with city_of_four(tmp_path_factory.mktemp("city")) as city:
        yield city


@pytest.fixture
def app(city: City) -> Flask:
    return create_city_app(load_city(city.config_path), SECRET)


@pytest.fixture
def client(app: Flask, city: City) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, city.token).status_code == 303
    return client


def _units_in_order(html: str) -> list[str]:
    """The unit names of the overview's table, top to bottom."""
    table = html[html.index('id="units"'):]
    return re.findall(r'<tr id="unit-\d+"[^>]*>\s*<td><a href="[^"]+">([^<]+)</a>', table)


def test_nothing_is_shown_without_signing_in_and_a_units_own_token_does_not_sign_in(app: Flask, city: City) -> None:
    anonymous = app.test_client()
    for path in ("/", "/unit/1", "/assessment", "/assessment.xlsx"):
        answer = anonymous.get(path)
        assert answer.status_code == 303 and answer.headers["Location"].startswith("/signin"), path
    unit_token = (city.config_path.parent / "a.token").read_text().strip()  # A区's auditor token
    refused = sign_in(anonymous, unit_token)
    assert refused.status_code == 401 and "令牌无效" in refused.text
    form = anonymous.get("/signin").text
    assert "市局管理员" in form and "<h1>登录市局控制台</h1>" in form
    assert sign_in(anonymous, city.token).status_code == 303
    assert anonymous.get("/").status_code == 200


def test_the_overview_lists_every_unit_worst_first_and_shows_the_ones_that_do_not_answer(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert _units_in_order(html) == ["C区", "D区", "B区", "A区"]
    assert "无法连接" in html and "令牌被拒绝（HTTP 401）" in html
    assert re.search(r'id="count-unreadable">2<', html) and re.search(r'id="count-units">4<', html)
    assert re.search(r'id="count-overdue">1<', html)
    b_row = html[html.index('id="unit-3"'):].split("</tr>")[0]
    assert '<span class="tag warn">异常</span>' in b_row  # its last run ended partial
    assert '<span class="tag bad">1</span>' in b_row  # its overdue change, flagged
    a_row = html[html.index('id="unit-1"'):].split("</tr>")[0]
    assert '<span class="tag ok">正常</span>' in a_row and "100.0%" in a_row
    assert "郑州市审计局（市局）" in html and "全市概览" in html


def test_a_units_page_shows_its_figures_runs_and_overdue_changes(client: FlaskClient) -> None:
    page = client.get("/unit/3").text  # B区, third in city.toml
    assert "B区" in page and "第九条执行情况" in page
    for label in ("人员变动数", "按期同步率", "逾期未同步", "在职人员信息完整率"):
        assert label in page
    overdue = page[page.index('id="overdue"'):].split("</table>")[0]
    due = (datetime.now(UTC) - timedelta(days=7)).date().isoformat()  # detected ten days ago, due three after
    assert re.search(rf"<td class=\"nowrap\">{due}</td><td>新增人员</td><td>[^<]+</td><td class=\"num\">1</td>",
                     overdue), overdue
    assert "最近运行" in page and 'id="runs"' in page
    down = client.get("/unit/2").text  # C区: nothing listens
    assert "无法连接" in down and "systemctl status syncd" in down
    refused = client.get("/unit/4").text  # D区: a wrong token
    assert "syncd token add city-bureau --role auditor" in refused
    missing = client.get("/unit/9")
    assert missing.status_code == 404 and "页面不存在" in missing.text


def test_a_period_that_is_not_one_is_refused_with_a_chinese_page(client: FlaskClient) -> None:
    for query in ("from=2026-13-01", "from=yesterday", "from=2026-06-01&to=2026-05-01", "from=1999-01-01"):
        answer = client.get(f"/?{query}")
        assert answer.status_code == 400 and "请求无效" in answer.text, query
    assert client.get("/?from=2026-01-01&to=2026-06-30").status_code == 200


def test_the_annual_assessment_downloads_as_a_workbook_of_every_unit(client: FlaskClient) -> None:
    year = today().year
    page = client.get("/assessment").text
    assert f"年度考核 · {year} 年" in page and 'id="unreadable-warning"' in page
    download = client.get(f"/assessment.xlsx?year={year}")
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in download.headers["Content-Disposition"]
    assert f"%E5%B9%B4%E5%BA%A6%E8%80%83%E6%A0%B8-{year}" in download.headers["Content-Disposition"]  # 年度考核-YEAR
    sheet = load_workbook(io.BytesIO(download.data)).active
    assert sheet.title == f"年度考核 {year}-01-01 至 {min(date(year, 12, 31), today())}"[:31]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("单位", "状态", "最近成功同步")
    assert [r[0] for r in rows[1:]] == ["C区", "D区", "B区", "A区"]
    assert rows[1][1] == "无法连接" and rows[1][2] == "无"
    assert all(cell.data_type == "s" for r in sheet.iter_rows() for cell in r)
    assert client.get("/assessment.xlsx?year=2020").status_code == 404  # before the rules
    assert client.get(f"/assessment.xlsx?year={year + 1}").status_code == 404
    assert client.get("/assessment?year=abc").status_code == 404
    assert client.get("/assessment?year=２０２６").status_code == 404  # full-width digits are not a year
    about = dict(load_workbook(io.BytesIO(download.data))["说明"].iter_rows(values_only=True))
    assert about["无法读取的单位（数据为“无”）"] == "2" and about["单位数"] == "4"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", about["各单位数据读取时间"])


def test_the_city_console_only_reads_and_has_the_unit_consoles_security(app: Flask, client: FlaskClient) -> None:
    posts = sorted(rule.rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ()))
    assert posts == ["/signin", "/signout"]  # no page of the city's changes anything at a unit
    page = client.get("/")
    assert page.headers["Content-Security-Policy"] == CSP and page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert client.get_cookie("syncd_console") is None  # the unit console's session on the same host stays apart
    cookie = client.get_cookie("syncd_city")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    forged = app.test_client().post("/signin", data={"token": "x"})  # no CSRF token: refused before any look-up
    assert forged.status_code == 400 and "表单已过期" in forged.text
    signout = client.post("/signout", data={"csrf_token": csrf_of(page.text)})  # the form in the page's header
    assert signout.status_code == 303
    assert client.get("/").status_code == 303  # signed out
    health = app.test_client().get("/healthz")
    assert health.status_code == 200 and health.json is not None
    assert (health.json["status"], health.json["units"]) == ("ok", 4)


def test_page_views_share_one_reading_and_an_old_one_is_served_while_a_new_one_is_read(city: City) -> None:
    config = load_city(city.config_path).model_copy(update={"refresh_seconds": 60})
    now = [1000.0]
    reader = CityReader(config, clock=lambda: now[0])
    start, end = date(today().year, 1, 1), today()
    first = reader.overview(start, end)
    now[0] += 59
    assert reader.overview(start, end) is first  # within refresh_seconds: the same reading
    assert reader.overview(date(start.year, 6, 1), end) is not first  # another period is read on its own
    now[0] += 2
    assert reader.overview(start, end) is first  # too old: served at once, and a new reading starts behind it
    renewed = poll(lambda: (lambda got: got if got is not first else None)(reader.overview(start, end)), 15,
                   "the reading renewed behind the page")
    now[0] += 61
    assert reader.overview(start, end, fresh=True) is not renewed  # the assessment's download never takes an old one
    assert renewed.read_at > first.read_at
    assert [s.name for s in renewed.standings] == ["C区", "D区", "B区", "A区"]


def test_with_refresh_seconds_zero_every_view_reads_the_units(city: City) -> None:
    reader = CityReader(load_city(city.config_path))  # city_of_four sets refresh_seconds = 0
    start, end = date(today().year, 1, 1), today()
    first = reader.overview(start, end)
    assert reader.overview(start, end).read_at > first.read_at


def test_a_city_configuration_without_a_tokens_file_does_not_serve(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from syncd.cli import main

    (tmp_path / "a.token").write_text("t\n")
    config = tmp_path / "city.toml"
    unit = '[[unit]]\nname = "A区"\nurl = "http://127.0.0.1:1"\ntoken_file = "a.token"\n'
    config.write_text(unit, encoding="utf-8")
    result = CliRunner().invoke(main, ["city", "--config", str(config)])
    assert result.exit_code == 2 and "tokens_file: not set" in result.output
    config.write_text('timezone = "Mars/Olympus"\n' + unit, encoding="utf-8")
    result = CliRunner().invoke(main, ["city", "--config", str(config)])
    assert result.exit_code == 2 and "  timezone" in result.output and "IANA time zone" in result.output
