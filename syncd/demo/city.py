"""The city part of `syncd demo`: a second small unit beside the demo bureau, and the city console over both.

The second unit is a district bureau of a dozen people with its own simulated directory and its own
`syncd run`; one of its people lacks a 职级, so its completeness is below the demo bureau's. Each
unit gets an auditor token, and the city console (`syncd.console.city`, as `syncd city` serves it)
reads both through their control APIs.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from datetime import date, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from types import TracebackType

import click
import requests

from connectors.zzd.simulator import SimTenant, SimulatorServer
from syncd import city as cities
from syncd.console.city import create_city_app
from syncd.console.web import new_secret_key
from syncd.demo.daemon import free_port, healthy, wait_until
from syncd.service.http import WsgiServer
from syncd.service.tokens import add_token

SECOND_UNIT = "郑州市二七区审计局（演示）"
SECOND_ROOT_CODE = "GO_" + "0" * 31 + "2"
SECOND_DEPARTMENTS = ("D0002", "D0003")  # under the root: the district bureau's two offices
SECOND_PEOPLE = 12


def _second_unit_export(demo_data: Traversable, directory: Path) -> None:
    """The district bureau's HR export: the demo's root and two offices, a dozen people, one without 职级."""
    departments = list(csv.reader(demo_data.joinpath("departments.csv").read_text(encoding="utf-8-sig").splitlines()))
    header, rows = departments[0], departments[1:]
    root = next(row for row in rows if not row[3])
    kept = [[root[0], SECOND_UNIT, "二七区审计局", "", root[4]], *(row for row in rows if row[0] in SECOND_DEPARTMENTS)]
    _write(directory / "departments.csv", header, kept)
    people = list(csv.reader(demo_data.joinpath("people.csv").read_text(encoding="utf-8-sig").splitlines()))
    header, rows = people[0], people[1:]
    column = {name: number for number, name in enumerate(header)}
    chosen = [row for row in rows if row[column["部门编号"]] in SECOND_DEPARTMENTS
              and row[column["人员状态"]] == "在职"][:SECOND_PEOPLE]
    chosen[-1][column["职级"]] = ""  # HR has not entered it: Article 9 counts this person incomplete
    _write(directory / "people.csv", header, chosen)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


class CityDemo:
    """The second unit's simulator and daemon, and the city console, running while the demo shows them."""

    def __init__(self, demo_data: Traversable, first_config: Path, first_api: str, tenant: SimTenant,
                 config_text: str, workdir: Path) -> None:
        self._demo_data = demo_data
        self._first_config = first_config
        self._first_api = first_api
        self._tenant = tenant
        self._config_text = config_text  # the demo bureau's configuration, to derive the district's from
        self._root = workdir / "city"
        self._stack = ExitStack()
        self.url = ""
        self.token = ""

    def __enter__(self) -> Callable[[], bool]:
        self._root.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self.show

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stack.close()

    def _start(self) -> None:
        district = self._root / "erqi"
        district.mkdir(exist_ok=True)
        _second_unit_export(self._demo_data, district)
        for name in ("app-secret", "webhook-secret"):
            (district / name).write_bytes((self._first_config.parent / name).read_bytes())
            (district / name).chmod(0o600)
        tenant = SimTenant(tenant_id=self._tenant.tenant_id, app_key=self._tenant.app_key,
                           app_secret=self._tenant.app_secret, root_code=SECOND_ROOT_CODE, root_name=SECOND_UNIT,
                           admin_token=self._tenant.admin_token, state_file=None)
        server = self._stack.enter_context(SimulatorServer(tenant))
        port = free_port()
        text = (self._config_text.replace('name = "郑州市审计局"', f'name = "{SECOND_UNIT}"')
                .replace(self._tenant.root_code, SECOND_ROOT_CODE)
                .replace('incremental_every = "2s"', 'incremental_every = "1h"'))
        text = _with_line(text, "base_url", f'"{server.base_url}"')
        text = _with_line(text, "listen", f'"127.0.0.1:{port}"')
        (district / "syncd.toml").write_text(text, encoding="utf-8")
        log = (district / "daemon.log").open("w", encoding="utf-8")
        self._stack.callback(log.close)
        daemon = subprocess.Popen([sys.executable, "-m", "syncd.cli", "run", "--config", str(district / "syncd.toml")],
                                  stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
        self._stack.callback(_stop, daemon)
        api = f"http://127.0.0.1:{port}"
        if wait_until(lambda: healthy(api)) is None:
            raise click.ClickException(f"the district's daemon did not come up; see {district / 'daemon.log'}")

        for name, tokens in (("demo", self._first_config.parent / "tokens.toml"), ("erqi", district / "tokens.toml")):
            (self._root / f"{name}.token").write_text(add_token(tokens, "city-bureau", "auditor") + "\n",
                                                      encoding="utf-8")
            (self._root / f"{name}.token").chmod(0o600)
        self.token = add_token(self._root / "city-tokens.toml", "city-admin", "auditor")
        listen = f"127.0.0.1:{free_port()}"
        (self._root / "city.toml").write_text(
            f'title = "郑州市审计局（市局）"\nlisten = "{listen}"\ntokens_file = "city-tokens.toml"\n'
            f'refresh_seconds = 5\n\n[[unit]]\nname = "郑州市审计局"\nurl = "{self._first_api}"\n'
            f'token_file = "demo.token"\n\n[[unit]]\nname = "{SECOND_UNIT}"\nurl = "{api}"\n'
            f'token_file = "erqi.token"\n', encoding="utf-8")
        self.config = cities.load_city(self._root / "city.toml")
        served = WsgiServer(create_city_app(self.config, new_secret_key()), "127.0.0.1", int(listen.split(":")[1]),
                            threads=2, ident="demo-city").start()
        self._stack.callback(served.stop)
        self.url = f"http://{listen}"

    def show(self) -> bool:
        """Sign in to the city console as the city admin does, and print its overview; whether it showed both."""
        session = requests.Session()
        form = session.get(f"{self.url}/signin", timeout=10).text
        csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        page = session.post(f"{self.url}/signin", data={"csrf_token": csrf, "token": self.token}, timeout=30)
        shown = page.status_code == 200 and "全市概览" in page.text and SECOND_UNIT in page.text
        today = datetime.now(self.config.zone).date()
        standings = cities.overview(self.config, date(today.year, 1, 1), today)
        click.secho(f"\n== The city bureau's view: `syncd city` over this bureau and {SECOND_UNIT}", bold=True)
        click.echo(f"  city console (市局控制台): {self.url}/ — signed in with the city token {self.token} "
                   f"{'and saw 全市概览' if shown else 'and did NOT see 全市概览'}")
        for line in cities.format_table(standings, self.config.zone).splitlines():
            click.echo(f"  {line}")
        click.echo(f"  (config: {self._root / 'city.toml'}; the 年度考核 workbook: {self.url}/assessment)")
        return shown and all(standing.error is None for standing in standings)


def _with_line(text: str, key: str, value: str) -> str:
    """`text` with the line `key = …` set to `value` (the first such line)."""
    lines = text.splitlines()
    number = next(n for n, line in enumerate(lines) if line.split("=", 1)[0].strip() == key)
    lines[number] = f"{key} = {value}"
    return "\n".join(lines) + "\n"


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then wait for the daemon to finish what was in flight."""
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(timeout=15)
    except subprocess.TimeoutExpired:
        daemon.kill()
