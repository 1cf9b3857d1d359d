"""`syncd simulator` as its own process: serves the contract, keeps its directory across a restart."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from bench.apply_throughput import free_port
from connectors.zzd.simulator import SimAdmin
from syncd.cli import main
from tests.conftest import config_toml


@contextmanager
def simulator_process(tmp_path: Path, port: int, *flags: str,
                      syncd: tuple[str, ...] = (sys.executable, "-m", "syncd.cli"),
                      env: dict[str, str] | None = None) -> Iterator[SimAdmin]:
    """`syncd simulator` (this checkout's, or the `syncd` command given) serving on the port, in tmp_path."""
    process = subprocess.Popen([*syncd, "simulator", "--port", str(port),
                                "--state-file", str(tmp_path / "directory.json"), *flags], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    admin = SimAdmin(f"http://127.0.0.1:{port}", "demo-admin-token")
    try:
        for _ in range(200):
            try:
                admin.counters()
                break
            except OSError:
                time.sleep(0.05)
        yield admin
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_simulator_process_keeps_its_directory_across_a_restart(
        tmp_path: Path, export: Callable[..., tuple[Path, Path]]) -> None:
    export()
    port = free_port()
    (tmp_path / "secret").write_text("demo-secret-not-for-production\n")
    config = tmp_path / "syncd.toml"
    config.write_text(config_toml(f"http://127.0.0.1:{port}", "GO_" + "0" * 31 + "1", "demo-app-key", None,
                                  target={"app_secret_file": "secret"}, state={"url": "sqlite:///state.db"},
                                  safety={"structure_changes": "apply"}), encoding="utf-8")
    with simulator_process(tmp_path, port) as admin:
        first = CliRunner().invoke(main, ["--config", str(config), "sync"])
        assert first.exit_code == 0, first.output
        people = len(admin.directory()["employees"])
    assert people == 5
    with simulator_process(tmp_path, port, "--latency", "0.01") as admin:
        assert len(admin.directory()["employees"]) == people
        second = CliRunner().invoke(main, ["--config", str(config), "sync"])
        assert second.exit_code == 0, second.output
        assert admin.counters()["writes"] == 0
