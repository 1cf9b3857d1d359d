"""The systemd units in systemd/ pass `systemd-analyze verify` and keep their sandbox."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
INSTALLED_SYNCD = "/opt/syncd/venv/bin/syncd"
# (unit file, the name to verify it as): a template is verified through one of its instances.
CASES = [("syncd.service", "syncd.service"), ("syncd@.service", "syncd@district.service"),
         ("syncd-city.service", "syncd-city.service")]
# The overall exposure `systemd-analyze security` computes, ×10 (0 is the most locked down); the
# units score 1.6, so this catches a sandbox line dropped by mistake.
MAX_EXPOSURE = 20


def systemd_analyze() -> str:
    """The systemd-analyze binary; tests/services.sh installs it."""
    path = shutil.which("systemd-analyze")
    assert path is not None, "systemd-analyze not found: run `bash tests/services.sh` (Debian package systemd)"
    return path


def syncd_executable() -> Path:
    """The syncd script of the running environment, a real executable to stand in for the installed one."""
    found = shutil.which("syncd")
    path = Path(found) if found else Path(sys.executable).parent / "syncd"
    assert path.is_file(), f"no syncd script beside {sys.executable}: pip install -e ."
    return path


def copy_unit(name: str, directory: Path) -> Path:
    """The unit copied to `directory`, identical but for ExecStart pointing at an executable that exists.

    `systemd-analyze verify` rejects a unit whose ExecStart binary is missing, and
    /opt/syncd/venv is not installed here.
    """
    text = (UNITS / name).read_text(encoding="utf-8")
    assert text.count(f"ExecStart={INSTALLED_SYNCD} ") == 1
    copy = directory / name
    copy.write_text(text.replace(f"ExecStart={INSTALLED_SYNCD} ", f"ExecStart={syncd_executable()} "),
                    encoding="utf-8")
    return copy


def directives(name: str) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file by key, in order."""
    found: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize(("unit", "verify_as"), CASES)
def test_unit_passes_systemd_analyze_verify(tmp_path: Path, unit: str, verify_as: str) -> None:
    copy_unit(unit, tmp_path)

    result = subprocess.run([systemd_analyze(), "verify", "--man=no", str(tmp_path / verify_as)],
                            capture_output=True, text=True, timeout=60, check=False)

    # verify also loads the units ours depend on (network-online.target, multi-user.target) and
    # can print about the container around it (no D-Bus, no running systemd, other broken units);
    # only what names our units is about them. It exits 0 even after "Unknown key" and other
    # parse warnings, so the output has to be read as well.
    about_ours = [line for line in (result.stdout + result.stderr).splitlines()
                  if str(tmp_path) in line or re.search(r"\bsyncd(@\w*|-city)?\.service\b", line)]
    assert result.returncode == 0, result.stdout + result.stderr
    assert about_ours == []


@pytest.mark.parametrize(("unit", "verify_as"), CASES)
def test_unit_sandbox_exposure_stays_low(tmp_path: Path, unit: str, verify_as: str) -> None:
    copy_unit(unit, tmp_path)

    result = subprocess.run([systemd_analyze(), "security", "--offline=true", f"--threshold={MAX_EXPOSURE}",
                             "--no-pager", str(tmp_path / verify_as)],
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_verify_reports_a_broken_unit(tmp_path: Path) -> None:
    """The check above would catch a mistake: a mistyped value makes verify name the unit."""
    copy = copy_unit("syncd.service", tmp_path)
    copy.write_text(copy.read_text(encoding="utf-8").replace("ProtectSystem=strict", "ProtectSystem=strikt"),
                    encoding="utf-8")

    result = subprocess.run([systemd_analyze(), "verify", "--man=no", str(copy)],
                            capture_output=True, text=True, timeout=60, check=False)

    assert str(copy) in result.stdout + result.stderr


@pytest.mark.parametrize("unit", ["syncd.service", "syncd@.service"])
def test_unit_keeps_notify_watchdog_credential_and_sandbox(unit: str) -> None:
    found = directives(unit)

    assert found["Type"] == ["notify"]
    assert found["NotifyAccess"] == ["main"]
    assert found["WatchdogSec"]
    assert found["Restart"] == ["on-failure"]
    assert found["RestartPreventExitStatus"] == ["2"]  # a bad configuration is not retried every 10 s
    assert found["SupplementaryGroups"] == ["syncd"]  # the group of the secret files (install.sh, token add)
    assert found["TimeoutStopSec"] == ["15"]
    assert found["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert found.get("DynamicUser") == ["yes"] or found.get("User")
    assert found["LoadCredential"][0].startswith("app-secret:/etc/syncd/")
    assert found["ProtectSystem"] == ["strict"]
    assert found["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    assert found["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert found["CapabilityBoundingSet"] == [""]
    assert found["NoNewPrivileges"] == ["yes"]
    assert found["WantedBy"] == ["multi-user.target"]


def test_template_gives_each_instance_its_own_configuration_state_and_secret() -> None:
    found = directives("syncd@.service")

    assert found["ExecStart"] == ["/opt/syncd/venv/bin/syncd --config /etc/syncd/%i.toml run"]
    assert found["Environment"] == ["SYNCD_CONFIG=/etc/syncd/%i.toml"]
    assert found["StateDirectory"] == ["syncd/%i"]
    assert found["LoadCredential"] == ["app-secret:/etc/syncd/%i.app-secret"]


def test_single_unit_and_template_differ_only_in_the_instance() -> None:
    single, template = directives("syncd.service"), directives("syncd@.service")
    per_instance = {"Description", "Environment", "ExecStart", "StateDirectory", "LoadCredential"}

    assert {key: value for key, value in single.items() if key not in per_instance} == \
        {key: value for key, value in template.items() if key not in per_instance}


def test_city_unit_serves_the_city_console_with_the_daemons_sandbox() -> None:
    city, daemon = directives("syncd-city.service"), directives("syncd.service")

    assert city["ExecStart"] == ["/opt/syncd/venv/bin/syncd --config /etc/syncd/city.toml city"]
    assert city["RestartPreventExitStatus"] == ["2"] and city["SupplementaryGroups"] == ["syncd"]
    assert "StateDirectory" not in city and "LoadCredential" not in city  # it keeps nothing and holds no app secret
    sandbox = {"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "NoNewPrivileges",
               "CapabilityBoundingSet", "RestrictAddressFamilies", "SystemCallFilter", "MemoryDenyWriteExecute"}
    assert {key: city[key] for key in sandbox} == {key: daemon[key] for key in sandbox}
