"""The CLI's output layer: exit codes, error paragraphs and JSON, progress bars only on a terminal."""

from __future__ import annotations

import io
import json

import pytest
import typer
from rich.console import Console

from dynasync.cli.output import (
    EXIT_BUSY,
    EXIT_CONFIG,
    EXIT_RECORDS_FAILED,
    Output,
    error_payload,
    exit_code_for,
    reported,
)
from dynasync.cli.sync_cmd import _ProgressBars
from dynasync.errors import (
    AuthError,
    ConfigError,
    MappingError,
    RetriableError,
    StoreError,
    SyncBusyError,
    UdmUnavailableError,
)
from dynasync.mapping import MappingValidationError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), EXIT_CONFIG),
        (AuthError("x"), EXIT_CONFIG),
        (MappingError("x", location="m.yaml:3"), EXIT_CONFIG),
        (StoreError("x"), EXIT_RECORDS_FAILED),
        (RetriableError("x", retry_after=3), EXIT_BUSY),
        (SyncBusyError("x"), EXIT_BUSY),
        (UdmUnavailableError("x"), EXIT_CONFIG),
        (ValueError("x"), EXIT_RECORDS_FAILED),
    ],
)
def test_exit_codes(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_mapping_problems_in_json() -> None:
    error = MappingValidationError(
        [MappingError("bad column", location="m.yaml:4"), MappingError("bad type", location="m.yaml:9")]
    )
    payload = error_payload(error)
    assert payload["location"] == "m.yaml:4" and payload["exit_code"] == 2
    assert payload["problems"] == [
        {"location": "m.yaml:4", "message": "bad column"},
        {"location": "m.yaml:9", "message": "bad type"},
    ]
    json.dumps(payload)


def _fail(out: Output, error: BaseException, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(typer.Exit) as caught, reported(out):
        raise error
    captured = capsys.readouterr()
    return caught.value.exit_code, captured.out, captured.err


def test_error_paragraph_keeps_user_text_literally(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _fail(
        Output(), ConfigError("Table [bold]x[/bold] is odd.", remedy="Try [red]y[/red]."), capsys
    )
    assert code == 2 and out == ""
    assert err.strip() == "Error: Table [bold]x[/bold] is odd. Try [red]y[/red]."


def test_unexpected_errors_are_one_paragraph_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _fail(Output(), KeyError("boom"), capsys)
    assert code == 1
    assert "Unexpected internal error (KeyError: 'boom')" in err and "--debug" in err
    assert "Traceback" not in err


def test_debug_prints_the_traceback_then_the_paragraph(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _fail(Output(debug=True), AuthError("Refused.", remedy="Fix it."), capsys)
    assert code == 2
    assert err.index("Traceback (most recent call last)") < err.index("Error: Refused. Fix it.")


def test_json_error_goes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _fail(Output(json=True), AuthError("Refused.", remedy="Fix it."), capsys)
    assert code == 2 and err == ""
    assert json.loads(out) == {
        "error": "AuthError",
        "message": "Refused.",
        "remedy": "Fix it.",
        "exit_code": 2,
    }


def test_json_mode_sends_human_lines_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(json=True)
    out.say("for people")
    out.emit({"a": 1}, lambda: out.say("not printed"))
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"a": 1}
    assert "for people" in captured.err and "not printed" not in captured.err + captured.out


def test_progress_bars_only_on_a_terminal() -> None:
    assert not Output().interactive  # pytest captures output: not a terminal
    with _ProgressBars(Output()) as callback:
        assert callback is None
    with _ProgressBars(Output(json=True)) as callback:
        assert callback is None

    screen = io.StringIO()
    terminal = Output(_console=Console(file=screen, force_terminal=True, width=100))
    assert terminal.interactive
    with _ProgressBars(terminal) as callback:
        assert callback is not None
        callback("Account", 1200, None)
        callback("Account", 5000, 5000)
        callback("Contact", 10, None)
    text = screen.getvalue()
    assert "Account" in text and "5,000 records" in text and "Contact" in text


def test_spinner_only_on_a_terminal() -> None:
    from contextlib import nullcontext

    from rich.status import Status

    terminal = Output(_console=Console(file=io.StringIO(), force_terminal=True, width=100))
    assert isinstance(terminal.working("Replicating the schema..."), Status)
    assert isinstance(Output().working("x"), nullcontext)
    assert isinstance(Output(json=True, _console=terminal.console).working("x"), nullcontext)
