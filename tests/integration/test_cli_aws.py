"""Every command answers an unreachable or refusing AWS with one line and exit 1."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from ecswatch.cli import main
from ecswatch.daemon.reconcile.ecs import ECS_READ
from ecswatch.dev.emulator import ACCESS_DENIED
from tests.conftest import REGION, Stack


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", [["bootstrap"], ["report"], ["reconcile"]])
def test_an_unreachable_endpoint_is_one_line_and_exit_1(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No traceback: the line names the endpoint and what to check."""
    # reconcile's ECS reads retry a refused connection 10 times, 0.5 s to 10 s apart (~20 s in
    # all): the same attempts here, without the waits between them.
    monkeypatch.setattr(
        "ecswatch.commands.reconcile.ECS_READ", replace(ECS_READ, initial_wait=0.001, max_wait=0.01)
    )
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("ECSWATCH_AWS_REGION", REGION)
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0, err
    assert f"cannot reach AWS at {endpoint}" in err
    assert "aws.endpoint_url" in err


def test_access_denied_is_one_line_naming_the_call_and_what_to_check(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused permission says which call, AWS's code, and to check the IAM policy."""
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", stack.emulator.url)
    monkeypatch.setenv("ECSWATCH_AWS_REGION", REGION)
    stack.emulator.faults.dynamodb_error = ACCESS_DENIED
    assert main(["report"]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0, err
    assert "AccessDeniedException" in err
    assert "IAM policy" in err


def test_missing_credentials_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without any credentials, one line says where credentials come from."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    assert main(["report"]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0, err
    assert "no AWS credentials" in err
