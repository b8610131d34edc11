"""The README documents every setting and every command (datasette's test_docs idea)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli import app
from service.config import Settings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    assert f"PAPERSCOPE_{field.upper()}" in README


@pytest.mark.parametrize(
    "command",
    sorted(c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands),
)
def test_every_command_is_documented(command: str) -> None:
    assert f"paperscope {command}" in README
