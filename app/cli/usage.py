"""How the command line presents itself: ``--version``, and ``--help`` with each option's
default and the environment variables each command reads."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from app.settings import VARIABLES
from app.simulator import SimulatorSettings
from app.simulator.settings import ACCESS_KEYS_VARIABLE, env_variable


def version() -> str:
    """The installed distribution's version (pyproject.toml), or "unknown" when icehook runs
    from a source tree that was never installed."""
    try:
        return metadata.version("icehook")
    except metadata.PackageNotFoundError:
        return "unknown"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` with each option's default (where it has one) and the epilog's lines kept."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        shown = action.help or ""
        if (
            action.option_strings
            # None, a flag's False, "" and 0 (== False) say nothing; such an option's help
            # says what its absence means (--simulator-port: a free port).
            and action.default not in (None, False, "", argparse.SUPPRESS)
            and "%(default)" not in shown
        ):
            shown += " (default: %(default)s)"
        return shown


class Parser(argparse.ArgumentParser):
    """Every command's parser (subcommands are made of the same class) formats its help so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def environment(names: Sequence[str]) -> str:
    """The epilog naming the environment variables a command reads."""
    listed = textwrap.fill(", ".join(names), width=88, initial_indent="  ", subsequent_indent="  ")
    return f"environment variables read (docs/configuration.md):\n{listed}"


def service_variables() -> list[str]:
    return [f"{v.name}[_FILE]" if v.secret else v.name for v in VARIABLES]


def simulator_variables() -> list[str]:
    return [
        "ICEHOOK_LOG_FORMAT",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET[_FILE]",
        f"{ACCESS_KEYS_VARIABLE}[_FILE]",
        *(env_variable(name) for name in SimulatorSettings.BEHAVIOUR),
    ]


def add_epilogs(parser: argparse.ArgumentParser, epilog: str) -> None:
    """Give every command below ``parser`` without an epilog of its own ``epilog``."""
    for action in parser._actions:  # argparse keeps its subcommands only there
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                if command.epilog is None:
                    command.epilog = epilog
                add_epilogs(command, epilog)
