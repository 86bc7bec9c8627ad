"""``icehook ... --help``: every command shows its options' defaults and choices, and names
the environment variables it reads."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from app.cli.main import _parser, main
from app.settings import VARIABLES


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield (*path, name), command
                yield from commands(command, (*path, name))


ALL = list(commands(_parser()))


def test_every_command_is_walked() -> None:
    names = {" ".join(path) for path, _ in ALL}
    assert {"serve", "worker", "migrate", "simulator", "demo", "jobs list"} <= names
    assert "subscriptions create" in names


@pytest.mark.parametrize(("path", "parser"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_help_shows_each_default_and_the_environment(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    text = parser.format_help()
    assert "environment variables read (docs/configuration.md):" in text
    shown = "ICEHOOK_SIM_JOB_SECONDS" if path == ("simulator",) else "ICEHOOK_DATABASE_URL[_FILE]"
    assert shown in text
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, "", argparse.SUPPRESS):
            assert f"(default: {action.default})" in " ".join(text.split()), action.dest


def test_the_service_commands_list_every_service_variable() -> None:
    text = " ".join(dict(ALL)[("serve",)].format_help().split())
    for variable in VARIABLES:
        assert variable.name in text


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_the_traced_commands_name_the_tracing_variables(command: str) -> None:
    text = " ".join(dict(ALL)[(command,)].format_help().split())
    assert "OTEL_TRACES_EXPORTER" in text
    assert "OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT" in text


def test_the_simulator_shows_choices_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulator", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "one of original, error, ignored (default: original, or" in text
    assert "(default: 9000)" in text
