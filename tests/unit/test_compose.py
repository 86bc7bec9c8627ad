"""compose.yaml: valid by the Compose specification (the ``compose-spec`` parser; there is
no Docker engine here), and built from the same commands and settings icehook has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose

from app.cli.main import _parser
from app.settings import VARIABLES

ROOT = Path(__file__).resolve().parents[2]
ICEHOOK_SERVICES = ("migrate", "serve", "worker", "simulator")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    # YAML merge keys (<<) resolved first, as Compose does; then the specification's parser.
    raw = yaml.safe_load((ROOT / "compose.yaml").read_text())
    parsed: dict[str, Any] = PyCompose.from_json(json.dumps(raw)).to_dict()
    return dict(parsed["services"])


def test_it_holds_the_database_a_migration_the_api_a_worker_and_the_simulator(
    services: dict[str, Any],
) -> None:
    assert set(services) == {"postgres", *ICEHOOK_SERVICES}


@pytest.mark.parametrize("name", ICEHOOK_SERVICES)
def test_each_command_is_one_the_cli_accepts(services: dict[str, Any], name: str) -> None:
    command = services[name]["command"]
    args = _parser().parse_args(command)  # argparse exits on anything it does not know
    assert args.run.__name__ == f"_{name}"


def test_every_variable_is_a_setting(services: dict[str, Any]) -> None:
    known = {variable.name for variable in VARIABLES}
    for name in ICEHOOK_SERVICES:
        assert set(services[name]["environment"]) <= known, name


def test_serve_waits_for_the_migration_and_is_healthy_when_ready(
    services: dict[str, Any],
) -> None:
    serve = services["serve"]
    assert serve["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["depends_on"] == serve["depends_on"]
    assert any("/readyz" in part for part in serve["healthcheck"]["test"])
    assert any(":8001/readyz" in part for part in services["worker"]["healthcheck"]["test"])
    assert "ports" not in services["worker"], "a worker's health is for the network only"
    assert all(port.startswith("127.0.0.1:") for port in serve["ports"])  # nothing open
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_an_api_key_must_be_given(services: dict[str, Any]) -> None:
    assert services["serve"]["environment"]["ICEHOOK_API_KEYS"].startswith("${ICEHOOK_API_KEYS:?")


def test_the_readme_shows_it() -> None:
    assert "docker compose up" in (ROOT / "README.md").read_text()
