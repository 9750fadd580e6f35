"""Configuration: file, environment overrides, and one clear line for every mistake."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from ecswatch.cli import EXIT_CONFIG, EXIT_OK, main
from ecswatch.config import ConfigError, load_config

QUEUE = "http://localhost:4566/000000000000/ecswatch-events"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ecswatch.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_contract() -> None:
    config = load_config(None, {"ECSWATCH_SQS_QUEUE_URL": QUEUE})
    assert config.sqs.wait_time_seconds == 20
    assert config.sqs.max_messages == 10
    assert config.sqs.visibility_timeout == 60
    assert config.dynamodb.task_table == "ECSTaskState"
    assert config.dynamodb.container_instance_table == "ECSCtrInstanceState"
    assert config.dynamodb.stopped_task_ttl_days == 7
    assert config.workers.count == 4
    assert config.workers.shutdown_timeout == 25
    assert (config.metrics.host, config.metrics.port) == ("0.0.0.0", 9108)
    assert config.log.level == "INFO"
    assert config.events.redact_environment is True
    assert config.readiness_window_seconds == 50


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, f'[sqs]\nqueue_url = "{QUEUE}"\nmax_messages = 5\n[workers]\ncount = 2\n'
    )
    config = load_config(
        path,
        {
            "ECSWATCH_WORKERS_COUNT": "8",
            "ECSWATCH_EVENTS_REDACT_ENVIRONMENT": "false",
            "ECSWATCH_WORKERS_SHUTDOWN_TIMEOUT": "12.5",
        },
    )
    assert config.sqs.max_messages == 5
    assert config.workers.count == 8
    assert config.workers.shutdown_timeout == 12.5
    assert config.events.redact_environment is False


def test_config_path_comes_from_ecswatch_config(tmp_path: Path) -> None:
    path = write(tmp_path, f'[sqs]\nqueue_url = "{QUEUE}"\n')
    assert load_config(None, {"ECSWATCH_CONFIG": str(path)}).sqs.queue_url == QUEUE


@pytest.mark.parametrize(
    ("text", "env", "named"),
    [
        ("[sqs]\nqueue_urll = 'x'\n", {}, "sqs.queue_urll: unknown key"),
        ("[sqs]\nwait_time_seconds = 'long'\n", {}, "sqs.wait_time_seconds: must be an integer"),
        ("[sqs]\nwait_time_seconds = 21\n", {}, "sqs.wait_time_seconds: must be between 0 and 20"),
        ("[workers]\ncount = true\n", {}, "workers.count: must be an integer"),
        ("[log]\nformat = 'xml'\n", {}, "log.format: must be one of"),
        ("[nope]\na = 1\n", {}, "nope: unknown section"),
        ("", {"ECSWATCH_WORKERS_COUNT": "many"}, "ECSWATCH_WORKERS_COUNT: must be an integer"),
        ("", {"ECSWATCH_SQS_QUEUEURL": "x"}, "ECSWATCH_SQS_QUEUEURL: unknown setting"),
        ("", {"ECSWATCH_EVENTS_REDACT_ENVIRONMENT": "maybe"}, "must be true or false"),
        ("[aws]\nendpoint_url = 'localhost:4566'\n", {}, "aws.endpoint_url: must be an http"),
        ("not toml [", {}, "invalid TOML"),
    ],
)
def test_each_mistake_names_its_key(
    tmp_path: Path, text: str, env: dict[str, str], named: str
) -> None:
    path = write(tmp_path, f"[metrics]\nport = 9108\n{text}" if text.startswith("[") else text)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, {"ECSWATCH_SQS_QUEUE_URL": QUEUE, **env})
    assert named in str(excinfo.value)


def test_missing_queue_url_is_an_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"sqs\.queue_url: required"):
        load_config(None, {})
    assert load_config(None, {}, require_queue=False).sqs.queue_url == ""


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "[sqs]\nmax_messages = 0\n[workers]\ncount = 0\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, {})
    assert len(excinfo.value.problems) == 3  # two ranges and the missing queue URL


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "absent.toml", {"ECSWATCH_SQS_QUEUE_URL": QUEUE})


def test_check_config_prints_effective_toml_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECSWATCH_SQS_QUEUE_URL", QUEUE)
    monkeypatch.setenv("ECSWATCH_WORKERS_COUNT", "3")
    assert main(["check-config"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f'queue_url = "{QUEUE}"' in out
    assert "count = 3" in out
    assert tomllib.loads(out)["workers"]["count"] == 3


def test_check_config_with_a_bad_key_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, f'[sqs]\nqueue_url = "{QUEUE}"\nvisibility = 3\n')
    assert main(["check-config", "--config", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "sqs.visibility: unknown key" in err
    assert "Traceback" not in err


def test_config_error_is_one_json_log_line_when_logs_are_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log pipeline reading JSON lines gets the configuration error as one of them."""
    monkeypatch.setenv("ECSWATCH_LOG_FORMAT", "json")
    path = write(tmp_path, f'[sqs]\nqueue_url = "{QUEUE}"\nvisibility = 3\n')
    assert main(["check-config", "--config", str(path)]) == EXIT_CONFIG
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["event"] == "configuration_error"
    assert entry["level"] == "error"
    assert "sqs.visibility: unknown key" in entry["error"]


def test_config_error_follows_the_log_format_of_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """[log] format = "console" in the file keeps the error a plain line, even off a terminal."""
    path = write(tmp_path, '[log]\nformat = "console"\n[workers]\ncount = "lots"\n')
    assert main(["check-config", "--config", str(path)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("ecswatch: configuration error: ")
    assert "workers.count: must be an integer" in err
    assert err.count("\n") == 1
