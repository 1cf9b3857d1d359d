"""The offline bundle: built by bundle/build.sh, installed into a fresh directory with the network
unusable, run from the installed venv (away from any source tree: its code tables, demo data and
example come from the installed package), and installed again over itself (an upgrade) keeping the
configuration.

The dependency wheels come from the package index the first time only: build.sh keeps them in its
wheel cache (~/.cache/syncd/wheels), which `make bundle` shares.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

from syncd.demo.daemon import free_port
from syncd.version import __version__
from tests.conftest import DEPARTMENT_HEADER, DEPARTMENTS, PEOPLE, PEOPLE_HEADER, config_toml, write_csv
from tests.test_simulator_cli import simulator_process

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing answers there


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 300,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=cwd)


def away_from_the_source_tree() -> dict[str, str]:
    """An environment in which nothing points Python at this checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle built from this tree, unpacked: the directory holding install.sh."""
    out = tmp_path_factory.mktemp("dist")
    built = run(["bash", str(ROOT / "bundle" / "build.sh"), "--out", str(out)],
                env={**os.environ, "PYTHON": sys.executable}, timeout=600)
    assert built.returncode == 0, built.stderr
    tarball = Path(built.stdout.strip().splitlines()[-1])
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    name = f"syncd-{__version__}-py{sys.version_info[0]}{sys.version_info[1]}-{platform}"
    assert tarball == out / f"{name}.tar.gz"
    with tarfile.open(tarball) as archive:
        archive.extractall(out, filter="tar")
    return out / name


def offline() -> tuple[list[str], dict[str, str]]:
    """A command prefix and an environment under which any network use by pip fails.

    Where the kernel allows it the installer runs in a network namespace of its own (no interface
    but a downed loopback); in any case pip is told to use no index and pointed at nothing.
    """
    prefix = ["unshare", "--map-root-user", "--net"]
    if shutil.which("unshare") is None or run([*prefix, "true"]).returncode != 0:
        prefix = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_INDEX_URL=f"{UNREACHABLE}/simple", PIP_EXTRA_INDEX_URL="", PIP_FIND_LINKS="",
               http_proxy=UNREACHABLE, https_proxy=UNREACHABLE, HTTP_PROXY=UNREACHABLE, HTTPS_PROXY=UNREACHABLE,
               PYTHON=sys.executable)
    return prefix, env


def install(bundle: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    wrapper, env = offline()
    return run([*wrapper, "bash", str(bundle / "install.sh"), "--prefix", str(prefix)], env=env, cwd=prefix.parent)


def valid_offline_configuration(directory: Path) -> str:
    """A configuration that passes `check-config --offline`, with the HR export it names beside it."""
    write_csv(directory / "people.csv", PEOPLE_HEADER, PEOPLE)
    write_csv(directory / "departments.csv", DEPARTMENT_HEADER, DEPARTMENTS)
    (directory / "app-secret").write_text("s\n", encoding="utf-8")
    return config_toml("https://zzd-gateway.example.gov.cn", app_secret=None, unit={"name": "升级测试单位"},
                       target={"app_secret_file": "app-secret"}, state={"url": "sqlite:///state.db"})


def test_the_bundle_installs_offline_runs_and_upgrades_in_place_keeping_the_configuration(
        bundle: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "server"
    first = install(bundle, prefix)
    assert first.returncode == 0, first.stderr
    for step in ("syncd.toml", "app-secret", "check-config", "systemctl enable --now syncd"):
        assert step in first.stdout

    venv = prefix / "opt" / "syncd" / "venv"
    syncd = venv / "bin" / "syncd"
    config = prefix / "etc" / "syncd" / "syncd.toml"
    assert config.read_bytes() == (ROOT / "config" / "example.toml").read_bytes()
    assert stat.S_IMODE(config.stat().st_mode) == 0o644  # the service's dynamic user reads it
    for unit in (ROOT / "systemd").glob("*.service"):
        assert (prefix / "etc" / "systemd" / "system" / unit.name).read_bytes() == unit.read_bytes()
    assert (prefix / "usr" / "local" / "bin" / "syncd").resolve() == syncd.resolve()
    city_example = config.parent / "city.toml.example"  # for syncd-city.service, installed beside it
    assert city_example.read_bytes() == (ROOT / "config" / "city.example.toml").read_bytes()
    assert not (config.parent / "city.toml").exists()

    helped = run([str(syncd), "--help"])
    assert helped.returncode == 0 and "check-config" in helped.stdout
    installed = run([str(venv / "bin" / "python"), "-c", "from syncd.version import __version__; print(__version__)"])
    assert installed.stdout.strip() == __version__
    shown = run([str(syncd), "--version"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"syncd, version {__version__}"

    own = valid_offline_configuration(config.parent)
    config.write_text(own, encoding="utf-8")
    checked = run([str(syncd), "--config", str(config), "check-config", "--offline"])
    assert checked.returncode == 0, checked.stderr
    assert "升级测试单位" in checked.stdout

    again = install(bundle, prefix)  # the upgrade: the same bundle over the installed one
    assert again.returncode == 0, again.stderr
    assert f"(it was {__version__})" in again.stdout and "kept" in again.stdout
    assert config.read_text(encoding="utf-8") == own
    assert (config.parent / "syncd.toml.example").read_bytes() == (ROOT / "config" / "example.toml").read_bytes()
    checked = run([str(syncd), "--config", str(config), "check-config", "--offline"])
    assert checked.returncode == 0, checked.stderr


def test_the_bundle_carries_a_readme_the_ops_kit_and_install_help(bundle: Path) -> None:
    readme = (bundle / "README.md").read_text(encoding="utf-8")
    assert "./install.sh" in readme and "check-config" in readme
    for name in ("alerts.yml", "alerts_test.yml", "grafana-dashboard.json"):
        assert (bundle / "ops" / name).read_bytes() == (ROOT / "ops" / name).read_bytes()
    helped = run(["bash", str(bundle / "install.sh"), "--help"])
    assert helped.returncode == 0
    assert helped.stdout.startswith("Install or upgrade syncd from this bundle.")
    assert "--prefix DIR" in helped.stdout and "set -euo" not in helped.stdout and "#" not in helped.stdout


def test_a_damaged_bundle_is_refused_before_anything_is_installed(bundle: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "bundle"
    shutil.copytree(bundle, damaged)
    (damaged / "config" / "example.toml").write_text("# truncated on the USB stick\n", encoding="utf-8")
    result = install(damaged, tmp_path / "server")
    assert result.returncode == 2
    assert "damaged" in result.stderr
    assert not (tmp_path / "server" / "opt").exists()


def test_the_installed_bundle_runs_the_demo_and_a_real_sync_without_any_source_tree(
        bundle: Path, tmp_path: Path) -> None:
    copied = tmp_path / "usb-stick" / bundle.name  # the bundle alone, as it arrives on a server
    shutil.copytree(bundle, copied)
    prefix = tmp_path / "server"
    installed = install(copied, prefix)
    assert installed.returncode == 0, installed.stderr
    venv = prefix / "opt" / "syncd" / "venv"
    syncd = venv / "bin" / "syncd"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = away_from_the_source_tree()

    located = run([str(venv / "bin" / "python"), "-c", "import syncd; print(syncd.__file__)"], env=env, cwd=elsewhere)
    assert Path(located.stdout.strip()).is_relative_to(venv), located.stdout

    demo = run([str(syncd), "demo"], env=env, cwd=elsewhere, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Third sync made zero writes." in demo.stdout

    # A production-like configuration: no `source.code_tables`, so the packaged tables map 性别/政治面貌.
    unit = tmp_path / "unit"
    unit.mkdir()
    write_csv(unit / "people.csv", PEOPLE_HEADER, PEOPLE)
    write_csv(unit / "departments.csv", DEPARTMENT_HEADER, DEPARTMENTS)
    (unit / "app-secret").write_text("demo-secret-not-for-production\n", encoding="utf-8")
    port = free_port()
    config = unit / "syncd.toml"
    config.write_text(config_toml(f"http://127.0.0.1:{port}", "GO_" + "0" * 31 + "1", "demo-app-key", None,
                                  target={"app_secret_file": "app-secret"}, state={"url": "sqlite:///state.db"},
                                  safety={"structure_changes": "apply"}), encoding="utf-8")
    assert "code_tables" not in config.read_text(encoding="utf-8")
    with simulator_process(elsewhere, port, syncd=(str(syncd),), env=env) as admin:
        synced = run([str(syncd), "--config", str(config), "sync"], env=env, cwd=elsewhere)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        employees = admin.directory()["employees"]
    genders = {e["employeeCode"]: e.get("govEmpGenderCode") for e in employees}
    assert len(genders) == 5  # the retiree is not created
    assert sorted(genders.values()) == ["1", "1", "2", "2", "2"]  # 男/女 mapped by the packaged table
