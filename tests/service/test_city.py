"""`syncd city report`: two real units' apps over HTTP, one unit down, one refusing the token, worst first."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, Response
from openpyxl import load_workbook
from werkzeug.serving import make_server

from syncd.city import CityReader, Reading, format_table, load_city, overview
from syncd.config import ConfigError
from syncd.console.city import create_city_app
from syncd.service.http import WsgiServer
from syncd.service.tokens import add_token
from tests.console.conftest import csrf_of
from tests.console.harness import city_of_four
from tests.ldap.slapd import make_tls_material
from tests.service.daemon_harness import bureau_on, free_port, people_with, poll


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
    assert re.split(r"  +", lines[0])[:3] == ["单位", "状态", "最近成功同步"]
    assert re.split(r"  +", lines[1])[:2] == ["C区", "无法连接"]
    assert re.split(r"  +", lines[2])[:2] == ["D区", "令牌被拒绝（HTTP 401）"]
    assert len({_columns_before(line, "  ", 1) for line in lines}) == 1  # the second column starts in one place
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


# -- `syncd city` served, over three real unit daemons ---------------------------------------------


def test_syncd_city_serves_three_real_units_with_the_stopped_one_first_and_only_reads(tmp_path: Path) -> None:
    """Three `syncd run` processes (one stopped), one `syncd city` process: what the city admin sees."""
    with ExitStack() as stack:
        units = []
        for name, people in (("金水区", None), ("二七区", people_with("A000003", 职级="")), ("中原区", None)):
            root = tmp_path / name
            root.mkdir()
            bureau = stack.enter_context(bureau_on(root, f"sqlite:///{root / 'state.db'}"))
            bureau.write_export(people)
            daemon = bureau.start(schedule={"incremental_every": "1h"})
            daemon.wait_for("cycle.finished", timeout=30)
            (tmp_path / f"{name}.token").write_text(add_token(root / "tokens.toml", "city-bureau", "auditor") + "\n")
            units.append((name, bureau, daemon))
        stopped = units[2][2]
        stopped.send(signal.SIGTERM)
        assert stopped.wait_exit(30) == 0
        token = add_token(tmp_path / "city-tokens.toml", "city-admin", "auditor")
        port = free_port()
        (tmp_path / "city.toml").write_text(f'listen = "127.0.0.1:{port}"\ntokens_file = "city-tokens.toml"\n'
                                            'timeout = 5\n' + "".join(
            f'[[unit]]\nname = "{name}"\nurl = "{daemon.api}"\ntoken_file = "{name}.token"\n'
            for name, _, daemon in units), encoding="utf-8")
        log_path = tmp_path / "city.log"
        with log_path.open("wb") as log:
            city = subprocess.Popen([sys.executable, "-m", "syncd.cli", "city", "--config",
                                     str(tmp_path / "city.toml")], stdout=log, stderr=log, cwd=tmp_path)
        stack.callback(lambda: city.poll() is None and city.kill())
        base = f"http://127.0.0.1:{port}"
        poll(lambda: _answers(f"{base}/healthz"), 15, "syncd city serving")
        journals_before = [len(bureau.journal()) for _, bureau, _ in units[:2]]

        browser = requests.Session()
        form = browser.get(f"{base}/signin", timeout=10)
        signed_in = browser.post(f"{base}/signin", data={"csrf_token": csrf_of(form.text), "token": token},
                                 timeout=30)
        assert signed_in.status_code == 200 and signed_in.url == f"{base}/"
        page = signed_in.text
        names = re.findall(r'<tr id="unit-\d+"[^>]*>\s*<td><a href="[^"]+">([^<]+)</a>', page)
        assert names == ["中原区", "二七区", "金水区"]  # stopped first; then the one with an incomplete record
        stopped_row = page[page.index('id="unit-3"'):].split("</tr>")[0]
        assert "无法连接" in stopped_row
        live_row = page[page.index('id="unit-1"'):].split("</tr>")[0]
        assert "正常" in live_row and "100.0%" in live_row
        assert re.search(r'<td class="nowrap">\d{4}-\d{2}-\d{2} \d{2}:\d{2}</td>', live_row)  # its last success
        incomplete_row = page[page.index('id="unit-2"'):].split("</tr>")[0]
        assert "80.0%" in incomplete_row  # 4 of 5 in post have all 11 fields

        detail = browser.get(f"{base}/unit/1", timeout=30).text
        assert "金水区" in detail and "成功" in detail[detail.index('id="runs"'):]
        workbook = browser.get(f"{base}/assessment.xlsx", timeout=30)
        rows = list(load_workbook(io.BytesIO(workbook.content)).active.iter_rows(values_only=True))
        assert [r[0] for r in rows[1:]] == ["中原区", "二七区", "金水区"] and rows[1][1] == "无法连接"

        too_large = requests.post(f"{base}/signin", data={"token": "x" * 70_000}, timeout=10)
        assert too_large.status_code == 413 and too_large.headers["Content-Type"].startswith("text/html")
        assert "Content-Security-Policy" in too_large.headers and "413" in too_large.text
        assert [len(bureau.journal()) for _, bureau, _ in units[:2]] == journals_before  # it only read
        city.send_signal(signal.SIGTERM)
        assert city.wait(timeout=15) == 0
    events = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    logged = {event["event"] for event in events}
    assert {"city.started", "city.unit_unreachable", "console.signed_in", "city.stopped"} <= logged
    assert token not in log_path.read_text(encoding="utf-8")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_example_city_configuration_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "city.example.toml"
    (tmp_path / "city").mkdir()
    for name in ("jinshui", "erqi"):
        (tmp_path / "city" / f"{name}.token").write_text("token\n", encoding="utf-8")
    (tmp_path / "city.toml").write_bytes(example.read_bytes())
    config = load_city(tmp_path / "city.toml")
    assert [unit.name for unit in config.units] == ["金水区审计局", "二七区审计局"]
    assert config.tokens_file == tmp_path / "city-tokens.toml" and config.listen == "127.0.0.1:8490"


def _columns_before(line: str, separator: str, field: int) -> int:
    """Terminal columns before the `field`-th field of a line (a CJK character takes two)."""
    head = line[:[m.end() for m in re.finditer(rf"{separator}+", line)][field - 1]]
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in head)


# -- units that answer what syncd never would ------------------------------------------------------


class _Trickler:
    """A unit that sends its headers and then one byte a second, for ever: every socket timeout resets."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        self.connections += 1
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
            while not self.stop.wait(0.5):
                try:
                    connection.sendall(b" ")
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def rogue(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    """city.toml over units answering what syncd never would, one good unit, and one counting its readers."""
    app = Flask("rogue")
    counted = {"compliance": 0}
    good = {"unit": "好单位", "changes": 3, "on_time": 3, "on_time_share": 1.0, "pending": 0, "overdue": 0,
            "median_workdays": 1, "max_workdays": 1, "completeness_share": 1.0, "in_post": 3,
            "open_problems": {"1": 0, "2": 0}, "held": 0}

    @app.get("/<kind>/healthz")
    def healthz(kind: str) -> Any:
        if kind == "old-time":
            return {"status": "ok", "last_success": "0001-01-01T00:00:00+14:00"}
        return {"status": "ok"}

    @app.get("/<kind>/api/v1/compliance")
    def figures(kind: str) -> Any:
        if kind == "counted":
            counted["compliance"] += 1
            time.sleep(0.3)
        answers: dict[str, Any] = {
            "strings": {**good, "overdue": "1); DROP TABLE", "open_problems": {"2": "many"}},
            "huge": {**good, "padding": "x" * (9 * 1024 * 1024)},
            "list": [good], "missing": {k: v for k, v in good.items() if k != "overdue"},
            "nan": {**good, "on_time_share": float("nan")}, "share": {**good, "completeness_share": 97.5}}
        if kind == "deep":
            return Response("[" * 100000 + "]" * 100000, content_type="application/json")
        return answers.get(kind, good)

    @app.get("/<kind>/api/v1/status")
    def status(kind: str) -> Any:
        return {"runs": [{"started_at": 5, "trigger": ["x"], "outcome": {"a": 1}, "counts": "many"}, "run"],
                "held": [{"started_at": None, "changes": "3"}], "overdue": [{"kind": ["join"], "due": 7}, 3],
                "escalations": [{"level": [2], "kind": {}, "opened_at": 12}, {"level": 2, "title": "<b>x</b>"}]}

    server = WsgiServer(app, "127.0.0.1", 0, ident="rogue-units", max_body=1024).start()
    trickler = _Trickler()
    try:
        (tmp_path / "t.token").write_text("token\n")
        base = f"http://127.0.0.1:{server.port}"
        units = {"好单位": f"{base}/good", "字符串": f"{base}/strings", "超大": f"{base}/huge", "列表": f"{base}/list",
                 "缺项": f"{base}/missing", "非数": f"{base}/nan", "百分比": f"{base}/share", "深嵌套": f"{base}/deep",
                 "古时间": f"{base}/old-time", "计数": f"{base}/counted", "慢吞吞": f"http://127.0.0.1:{trickler.port}"}
        head = 'timeout = 1\nrefresh_seconds = 60\ntokens_file = "tokens.toml"\n'
        (tmp_path / "city.toml").write_text(head + "".join(
            f'[[unit]]\nname = "{name}"\nurl = "{url}"\ntoken_file = "t.token"\n' for name, url in units.items()),
            encoding="utf-8")
        yield tmp_path / "city.toml", counted
    finally:
        trickler.close()
        server.stop()


def test_units_answering_what_syncd_never_would_are_listed_as_such_and_the_overview_goes_on(
        rogue: tuple[Path, dict[str, int]]) -> None:
    config = load_city(rogue[0])
    standings = {s.name: s for s in overview(config, date(2026, 1, 1), date(2026, 12, 31))}
    assert standings["慢吞吞"].error == "slow"
    bad = ("字符串", "超大", "列表", "缺项", "非数", "百分比", "深嵌套")
    assert {name: standings[name].error for name in bad} == dict.fromkeys(bad, "bad_answer")
    assert standings["好单位"].error is None and standings["好单位"].figures is not None
    assert standings["古时间"].error is None  # an odd time is shown as 无, not a failure of the page
    table = format_table(list(standings.values()))
    assert table.count("应答无法识别") == len(bad) and "应答超时" in table


def test_the_city_pages_stand_whatever_a_unit_answers(rogue: tuple[Path, dict[str, int]]) -> None:
    config = load_city(rogue[0])
    token = add_token(rogue[0].parent / "tokens.toml", "city-admin", "auditor")
    client = create_city_app(config, b"r" * 32).test_client()
    form = client.get("/signin")
    assert client.post("/signin", data={"csrf_token": csrf_of(form.text), "token": token}).status_code == 303
    assert client.get("/").status_code == 200
    numbers = {unit.name: number for number, unit in enumerate(config.units, 1)}
    page = client.get(f"/unit/{numbers['好单位']}")  # its status answer is all the wrong shapes
    assert page.status_code == 200 and "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
    assert client.get(f"/unit/{numbers['深嵌套']}").status_code == 200
    assert client.get(f"/unit/{numbers['古时间']}").status_code == 200
    assert client.get("/assessment.xlsx").status_code == 200


def test_page_views_arriving_together_share_one_reading_of_the_units(rogue: tuple[Path, dict[str, int]]) -> None:
    path, counted = rogue
    reader = CityReader(load_city(path))
    readings: list[Reading] = []
    views = [threading.Thread(target=lambda: readings.append(reader.overview(date(2026, 1, 1), date(2026, 6, 30))))
             for _ in range(4)]
    for view in views:
        view.start()
    for view in views:
        view.join(30)
    assert len(readings) == 4 and all(reading is readings[0] for reading in readings)
    assert counted["compliance"] == 1  # the counting unit was asked once, for four views


def test_syncd_city_stops_on_sigterm_while_a_unit_is_still_trickling_its_answer(tmp_path: Path) -> None:
    trickler = _Trickler()
    try:
        (tmp_path / "t.token").write_text("token\n")
        add_token(tmp_path / "tokens.toml", "city-admin", "auditor")
        port = free_port()
        (tmp_path / "city.toml").write_text(
            f'listen = "127.0.0.1:{port}"\ntokens_file = "tokens.toml"\ntimeout = 5\n'
            f'[[unit]]\nname = "慢吞吞"\nurl = "http://127.0.0.1:{trickler.port}"\ntoken_file = "t.token"\n',
            encoding="utf-8")
        city = subprocess.Popen([sys.executable, "-m", "syncd.cli", "city", "--config", str(tmp_path / "city.toml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
        try:
            poll(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 15, "syncd city serving")
            poll(lambda: trickler.connections > 0, 15, "the city reading the trickling unit")
            city.send_signal(signal.SIGTERM)
            # Within systemd's TimeoutStopSec (15 s), though the unit's reading has 18 s left.
            assert city.wait(timeout=15) == 0
        finally:
            if city.poll() is None:
                city.kill()
        assert '"event": "city.stopped"' in (city.stderr.read().decode() if city.stderr else "")
    finally:
        trickler.close()


def test_a_unit_behind_tls_with_a_private_ca_is_read_with_its_ca_file_and_untrusted_without(tmp_path: Path) -> None:
    tls = make_tls_material(tmp_path / "tls")
    unit = Flask("tls-unit")
    figures = {"unit": "区审计局", "changes": 0, "on_time": 0, "on_time_share": None, "pending": 0, "overdue": 0,
               "median_workdays": None, "max_workdays": None, "completeness_share": 1.0, "in_post": 2,
               "open_problems": {}, "held": 0}
    unit.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
    unit.add_url_rule("/api/v1/compliance", "compliance", lambda: figures)
    server = make_server("127.0.0.1", 0, unit, threaded=True,
                         ssl_context=(str(tls.cert_file), str(tls.key_file)))  # the unit's TLS proxy, as it were
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "t.token").write_text("token\n")
        url = f"https://127.0.0.1:{server.server_port}"
        (tmp_path / "city.toml").write_text(
            f'[[unit]]\nname = "有证书"\nurl = "{url}"\ntoken_file = "t.token"\nca_file = "tls/ca.pem"\n'
            f'[[unit]]\nname = "无证书"\nurl = "{url}"\ntoken_file = "t.token"\n'
            f'[[unit]]\nname = "别的证书"\nurl = "{url}"\ntoken_file = "t.token"\nca_file = "tls/other-ca.pem"\n',
            encoding="utf-8")
        standings = {s.name: s for s in overview(load_city(tmp_path / "city.toml"), date(2026, 1, 1),
                                                 date(2026, 12, 31))}
    finally:
        server.shutdown()
    assert standings["有证书"].error is None and standings["有证书"].figures == figures
    assert standings["无证书"].error == "untrusted" and standings["别的证书"].error == "untrusted"
    (tmp_path / "city.toml").write_text(
        f'[[unit]]\nname = "A"\nurl = "{url}"\ntoken_file = "t.token"\nca_file = "t.token"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_city(tmp_path / "city.toml")
    assert "unit.0.ca_file" in str(refused.value)
