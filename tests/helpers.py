"""Helpers shared by test files (fixtures live in conftest.py; no test file imports another).

Settings here never come from the caller's environment: ``make_settings`` reads only its
arguments, and ``tests/conftest.py`` removes every ``PAPERSCOPE_*`` variable for the session
(``scrub_environment``) so that code building ``Settings()`` itself is hermetic too.
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from service.artifacts import current_build_dir
from service.config import Settings
from service.embed.backends import Embedder, Vectors
from service.topics.labels import clean_for_labels

FIXTURES = Path(__file__).parent / "fixtures"

PREFIX = "PAPERSCOPE_"
TEST_KNOBS = frozenset({"PAPERSCOPE_FUZZ_EXAMPLES"})
"""``PAPERSCOPE_*`` variables that tune the tests themselves (none is a setting): kept."""


def scrub_environment() -> list[str]:
    """Remove every ``PAPERSCOPE_*`` setting from ``os.environ``; returns the names removed."""
    removed = sorted(k for k in os.environ if k.startswith(PREFIX) and k not in TEST_KNOBS)
    for name in removed:
        del os.environ[name]
    return removed


class _ArgumentsOnly(Settings):
    """Settings validated from the arguments and the defaults alone: no environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_without_env(**values: object) -> Settings:
    """A plain ``Settings`` (it pickles to Ray workers) from ``values`` and the defaults only."""
    checked = _ArgumentsOnly(**values)  # type: ignore[arg-type]
    return Settings.model_construct(checked.model_fields_set, **dict(checked))


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: its own data folder, nothing from the caller's environment."""
    return settings_without_env(data_dir=data_dir, **overrides)


def subprocess_env(**settings: object) -> dict[str, str]:
    """The environment for a paperscope subprocess: this one without any ``PAPERSCOPE_*``
    variable, plus exactly the settings given (``data_dir=...`` -> ``PAPERSCOPE_DATA_DIR``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    for name, value in settings.items():
        assert name in Settings.model_fields, f"no setting named {name}"
        env[PREFIX + name.upper()] = str(value)
    return env


SCRIPT = shutil.which("paperscope", path=str(Path(sys.executable).parent)) or "paperscope"
"""The installed console script, next to this interpreter."""


def run(*args: str | Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``paperscope ARGS`` as a user runs it, on ``data_dir``."""
    return subprocess.run(
        [SCRIPT, *map(str, args)],
        capture_output=True,
        text=True,
        env=subprocess_env(data_dir=data_dir),
        timeout=300,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert text in result.stderr, result.stderr


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """Every API error, whatever raised it, has the same envelope."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def built_corpus(data_dir: Path) -> tuple[np.ndarray, list[str]]:
    """The current build's vectors and its papers' label texts, in row order."""
    build = current_build_dir(make_settings(data_dir).builds_dir)
    assert build is not None
    db = sqlite3.connect(build / "papers.sqlite")
    rows = db.execute("SELECT title, abstract FROM papers ORDER BY row").fetchall()
    db.close()
    texts = [clean_for_labels(f"{title}. {abstract}") for title, abstract in rows]
    return np.load(build / "embeddings.npy"), texts


# -- the package's import graph (tests/test_layers.py) ----------------------------------------

PACKAGE = Path(__file__).parents[1] / "service"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module this file imports (absolute names), at any depth in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in imports_of(path) if m in modules and m != name}
        for name, path in modules.items()
    }


# -- a small dated set for trending topics (tests/query/test_explore.py, tests/api/test_api.py) --

TREND_DATES: dict[str, list[str]] = {
    "new": ["2025-05-15", "2025-06-01"],
    "growing": ["2025-01-10", "2025-05-02", "2025-06-05", "2025-06-20"],
    "shrinking": ["2025-01-15", "2025-02-01", "2025-03-01", "2025-04-30"],
}
"""Dates given to papers of three topics; nothing else is dated. The corpus spans 2025-01 to
2025-06 (6 months). With months=3 the window is 2025-04..06 and the 3 months before it are
earlier: new 2 recent / 0 earlier, growing 3 / 1 (rates 1 and 1/3: growth 3), shrinking 1 / 3
(rates 1/3 and 1: growth 1/3)."""


@contextmanager
def tmpfs(mount: Path, size: str = "30m") -> Iterator[Path]:
    """A small tmpfs at ``mount``, for full-disk tests (needs root and mount: skipped with the
    reason where the machine cannot), unmounted on leaving."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root?'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def integrity(db: Path) -> str:
    """SQLite's ``integrity_check`` of a database file: "ok" when sound."""
    connection = sqlite3.connect(db)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


def start_server(log: Path, **settings: object) -> tuple[subprocess.Popen[bytes], str]:
    """A real ``python -m service serve`` on a free port with exactly these settings, its
    output in ``log``; returns the process and its base URL (not waited for)."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            env=subprocess_env(**settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


class CountingEmbedder:
    """Delegates to the real model and counts the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.revision, self.dim = inner.name, inner.revision, inner.dim
        self.backend = inner.backend
        self.seen: list[str] = []

    @property
    def cache_key(self) -> str:
        return self.inner.cache_key

    def encode(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        self.seen.extend(texts)
        return self.inner.encode(texts, progress)
