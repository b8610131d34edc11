"""The docs document every setting and every command, and point at things that exist
(datasette's test_docs idea)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.models import CommandInfo

from service.cli import app
from service.config import Settings

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
MAX_README_LINES = 200

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
"""A markdown link or image: ``[text](target)`` or ``![alt](target "title")``."""
SOURCE_PATH = re.compile(r"(?<![\w./-])((?:service|tests)/[\w./-]*?\.py)\b")
"""A path to a Python file of the package or the tests, e.g. ``service/search/index.py``."""


def read(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def command_name(command: CommandInfo) -> str:
    if command.name:
        return command.name
    assert command.callback is not None
    return command.callback.__name__.replace("_", "-")


def cli_commands(root: typer.Typer = app) -> list[str]:
    """``paperscope COMMAND`` for every command and ``paperscope GROUP COMMAND`` for every
    command of every group (``paperscope models prepare``)."""
    names = [f"paperscope {command_name(c)}" for c in root.registered_commands]
    for group in root.registered_groups:
        assert group.name is not None and group.typer_instance is not None
        names += [
            f"paperscope {group.name} {command_name(c)}"
            for c in group.typer_instance.registered_commands
        ]
    return sorted(names)


def relative_links(page: Path) -> list[str]:
    """Link targets of a page that point into the repository (not URLs, not same-page anchors)."""
    targets = (match.group(1) for match in LINK.finditer(read(page)))
    return [t for t in targets if not re.match(r"^([a-z][a-z0-9+.-]*:|#)", t, re.IGNORECASE)]


def source_paths(page: Path) -> list[str]:
    return sorted(set(SOURCE_PATH.findall(read(page))))


def test_the_docs_are_there() -> None:
    names = {page.name for page in PAGES}
    assert {"README.md", "settings.md", "cli.md", "api.md", "architecture.md"} <= names


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    assert f"`PAPERSCOPE_{field.upper()}`" in read(DOCS / "settings.md")


def test_the_cli_walk_finds_groups() -> None:
    commands = cli_commands()
    assert "paperscope build" in commands
    assert "paperscope models prepare" in commands
    assert "paperscope eval retrieval" in commands


@pytest.mark.parametrize("command", cli_commands())
def test_every_command_is_documented(command: str) -> None:
    assert f"`{command}`" in read(DOCS / "cli.md")


def test_readme_is_short() -> None:
    lines = len(read(README).splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_readme_starts_with_the_two_commands() -> None:
    code_lines: list[str] = []
    fenced = False
    for line in read(README).splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced:
            code_lines.append(line.strip())
    first_serve = next(line for line in code_lines if "serve" in line)
    first_test = next(line for line in code_lines if "test" in line)
    assert (first_serve, first_test) == ("scripts/serve", "scripts/test")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_point_at_files(page: Path) -> None:
    missing = [
        target
        for target in relative_links(page)
        if not (page.parent / target.split("#")[0]).exists()
    ]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_named_source_files_exist(page: Path) -> None:
    missing = [path for path in source_paths(page) if not (ROOT / path).is_file()]
    assert missing == []


def test_the_link_and_path_patterns_match() -> None:
    text = "see [API](api.md#errors), ![map](map.png), <https://x.org> and [x](https://x.org)"
    assert [m.group(1) for m in LINK.finditer(text)] == [
        "api.md#errors",
        "map.png",
        "https://x.org",
    ]
    assert SOURCE_PATH.findall("`service/search/index.py`, tests/api/test_api.py.") == [
        "service/search/index.py",
        "tests/api/test_api.py",
    ]
    assert SOURCE_PATH.findall("a/service/x.py web/service/y.py service/data/x.jsonl") == []
