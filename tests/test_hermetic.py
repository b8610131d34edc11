"""The tests are hermetic: ``PAPERSCOPE_*`` variables in the caller's environment change nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Settings
from tests.helpers import (
    PREFIX,
    TEST_KNOBS,
    make_settings,
    scrub_environment,
    settings_without_env,
    subprocess_env,
)

STRAY = {
    "PAPERSCOPE_BACKEND": "onnx-int8",
    "PAPERSCOPE_SEED": "7",
    "PAPERSCOPE_DATA_DIR": "/nowhere",
    "PAPERSCOPE_SEARCH_MODE": "lexical",
}


def _export(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in STRAY.items():
        monkeypatch.setenv(name, value)


def test_a_stray_setting_in_the_environment_does_not_reach_make_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _export(monkeypatch)
    assert Settings().backend == "onnx-int8"  # the variables are live: Settings() reads them
    settings = make_settings(tmp_path, port=9000)
    assert type(settings) is Settings
    assert settings.data_dir == tmp_path and settings.port == 9000
    assert (settings.backend, settings.seed, settings.search_mode) == ("auto", 42, "hybrid")
    assert settings_without_env() == settings_without_env(data_dir=Path("paperscope-data"))
    with pytest.raises(ValidationError, match="less than or equal to 65535"):
        make_settings(tmp_path, port=70000)  # still validated


def test_the_session_runs_without_paperscope_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not [k for k in os.environ if k.startswith(PREFIX) and k not in TEST_KNOBS]
    assert not [k for k in TEST_KNOBS if k.removeprefix(PREFIX).lower() in Settings.model_fields]
    _export(monkeypatch)
    assert scrub_environment() == sorted(STRAY)
    assert Settings().backend == "auto"


def test_subprocesses_get_exactly_the_settings_they_are_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _export(monkeypatch)
    env = subprocess_env(data_dir=tmp_path, workers=2)
    assert {k: v for k, v in env.items() if k.startswith(PREFIX)} == {
        "PAPERSCOPE_DATA_DIR": str(tmp_path),
        "PAPERSCOPE_WORKERS": "2",
    }
    assert env["PATH"] == os.environ["PATH"]
