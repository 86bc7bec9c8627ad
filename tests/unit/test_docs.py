"""The documentation tells the truth: its tables are the code's, the tests it names exist,
it cites nothing outside the repository, and the code stays in pieces a reader can hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import settings
from app.simulator import settings as simulator_settings

ROOT = Path(__file__).resolve().parents[2]
GENERATED = re.compile(r"<!-- generated: (?P<what>[^>]+) -->\n(?P<table>.*?)\n<!-- end -->", re.S)


def test_the_configuration_page_shows_the_settings_as_the_code_has_them() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    tables = {m["what"]: m["table"] for m in GENERATED.finditer(page)}
    expected = {
        "settings.table()": settings.table(),
        "simulator.settings.table()": simulator_settings.table(),
    }
    for what, table in expected.items():
        assert tables.get(what) == table, f"docs/configuration.md: paste {what} again:\n{table}"


def test_every_test_the_invariants_name_exists() -> None:
    page = (ROOT / "docs" / "invariants.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", page)
    assert len(named) > 20
    for path, test in named:
        source = ROOT / path
        assert source.exists(), path
        if test:
            assert re.search(rf"def {test}\(", source.read_text()), f"{path}::{test}"


def test_the_readme_is_a_front_door_whose_links_lead_somewhere() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 10 * 1024
    assert "<!-- ci: test command -->" in readme
    for link in re.findall(r"\]\((docs/[\w.-]+)\)", readme):
        assert (ROOT / link).exists(), link


@pytest.mark.parametrize("folder", ["app", "tests", "bench", "docs", "migrations"])
def test_nothing_cites_a_file_outside_the_repository(folder: str) -> None:
    outside = re.compile(r"\.\./shared|/work/|ice-api\.md|design\.md|\bthe brief\b")
    for path in [*(ROOT / folder).rglob("*.py"), *(ROOT / folder).rglob("*.md")]:
        if path == Path(__file__) or "results" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not outside.search(line), f"{path.relative_to(ROOT)}:{number}: {line.strip()}"


def test_no_module_of_app_is_longer_than_a_reader_can_hold() -> None:
    for path in (ROOT / "app").rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 460, f"{path.relative_to(ROOT)} has {lines} lines"
