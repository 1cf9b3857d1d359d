"""Configuration: one file, environment overrides, every problem named by its key; exit 2 on bad input."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import main
from syncd.config import ConfigError, load
from tests.conftest import config_toml

GOOD = config_toml(root="GO_0123abcd", app_secret="env:SYNCD_TEST_SECRET")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads_with_defaults_and_paths_relative_to_it(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_TEST_SECRET", "x")
    config = load(write(tmp_path, GOOD))
    assert config.target.rate_limit == 10
    assert config.safety.structure_changes == "hold"
    assert config.source.people == tmp_path / "people.csv"


def test_environment_overrides_any_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_TEST_SECRET", "x")
    config = load(write(tmp_path, GOOD), {"SYNCD_TARGET__RATE_LIMIT": "25", "SYNCD_SAFETY__STRUCTURE_CHANGES": "apply"})
    assert config.target.rate_limit == 25
    assert config.safety.structure_changes == "apply"


def test_two_secrets_are_refused_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s")
    text = GOOD.replace('app_secret = "env:SYNCD_TEST_SECRET"', 'app_secret = "hunter2"\napp_secret_file = "secret"')
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    assert [p.key for p in info.value.problems] == ["target.app_secret"]
    assert "hunter2" not in str(info.value)


def test_secret_is_read_from_file_each_time(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("one\n")
    config = load(write(tmp_path, GOOD.replace('app_secret = "env:SYNCD_TEST_SECRET"', 'app_secret_file = "secret"')))
    assert config.target.secret() == "one"
    secret.write_text("two\n")
    assert config.target.secret() == "two"


def test_every_problem_is_listed_with_its_key_value_and_expectation(tmp_path: Path) -> None:
    text = GOOD.replace("tenant_id = 196729", "tenant_id = -1\nrate_limt = 5").replace(
        'app_secret = "env:SYNCD_TEST_SECRET"', 'app_secret = "hunter2"\napp_secret_file = "nope"')
    text += '\n[safety]\nmax_deactivation_share = 1.5\n'
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    by_key = {p.key: p for p in info.value.problems}
    assert "target.tenant_id" in by_key and by_key["target.tenant_id"].value == -1
    assert "target.rate_limt" in by_key and "no such key" in by_key["target.rate_limt"].expected
    assert "safety.max_deactivation_share" in by_key
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("value", ["-1", "2.5", '"five"'])
def test_a_bad_shrink_count_fails_at_start_naming_the_key(tmp_path: Path, value: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_TEST_SECRET", "x")
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, GOOD + f"\n[safety]\nmax_shrink_count = {value}\n"))
    assert [p.key for p in info.value.problems] == ["safety.max_shrink_count"]


def test_the_shrink_count_defaults_to_five_and_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_TEST_SECRET", "x")
    assert load(write(tmp_path, GOOD)).safety.max_shrink_count == 5
    assert load(write(tmp_path, GOOD + "\n[safety]\nmax_shrink_count = 0\n")).safety.max_shrink_count == 0


def test_check_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("tenant_id = 196729", 'tenant_id = "many"'))
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 2
    assert "target.tenant_id" in result.output and "'many'" in result.output


def test_check_config_masks_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('app_secret = "env:SYNCD_TEST_SECRET"', "app_secret = 12345"))
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 2
    assert "target.app_secret" in result.output and "12345" not in result.output


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "absent.toml"), "check-config"])
    assert result.exit_code == 2
    assert "absent.toml" in result.output


def test_a_password_in_a_url_is_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_TEST_SECRET", "x")
    path = write(tmp_path, GOOD + '\n[state]\nurl = "mysql://syncd:Hunter2Secret@db/syncd"\n')
    result = CliRunner().invoke(main, ["--config", str(path), "check-config", "--offline"])
    assert result.exit_code == 2 and "state.url" in result.output
    assert "Hunter2Secret" not in result.output and "syncd:****@db" in result.output


def test_a_numeric_override_of_a_text_key_stays_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_TEST_SECRET", "x")
    config = load(write(tmp_path, GOOD), {"SYNCD_UNIT__ROOT_DEPARTMENT": "1001", "SYNCD_TARGET__APP_KEY": "42",
                                          "SYNCD_TARGET__TIMEOUT": "7.5"})
    assert (config.unit.root_department, config.target.app_key, config.target.timeout) == ("1001", "42", 7.5)


def test_the_documented_example_is_the_one_the_package_ships() -> None:
    # config/example.toml is where the README sends people; the installed copy comes from the package.
    documented = Path(__file__).resolve().parent.parent / "config" / "example.toml"
    assert files("syncd").joinpath("data", "example.toml").read_bytes() == documented.read_bytes()


def test_no_module_of_the_package_looks_for_data_outside_it() -> None:
    package = Path(__file__).resolve().parent.parent / "syncd"
    offenders = [str(path.relative_to(package)) for path in package.rglob("*.py")
                 if "parent.parent" in path.read_text(encoding="utf-8")]
    assert offenders == ["version.py"]  # only to read pyproject's version in a checkout never installed


def test_a_value_of_the_wrong_form_is_explained_in_words_not_as_a_regular_expression(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text(config_toml(schedule={"full_at": "2:30", "incremental_every": "5x"}, target={"tenant_id": "abc"},
                                safety={"structure_changes": "maybe"}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    said = {problem.key: str(problem) for problem in info.value.problems}
    assert said["schedule.full_at"] == "schedule.full_at: got '2:30'; expected a time of day as HH:MM, two digits " \
                                       "each, 24-hour (02:30)"
    assert "a duration" in said["schedule.incremental_every"]
    assert said["target.tenant_id"].endswith("expected a whole number")
    assert said["safety.structure_changes"].endswith("expected one of 'hold' or 'apply'")
    assert not any("pattern" in text or "Input should" in text for text in said.values())


def test_every_patterned_key_has_words_for_its_pattern() -> None:
    from syncd import config as module

    patterns = {getattr(meta, "pattern", None) for model in vars(module).values()
                if isinstance(model, type) and issubclass(model, module.BaseModel)
                for field in model.model_fields.values() for meta in field.metadata}
    assert patterns - {None} <= set(module._PATTERNS)
