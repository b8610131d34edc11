"""Long abstracts split into token windows and mean-pooled into one vector per paper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.embed.backends import Embedder
from service.embed.passages import Windowing, embed_papers, load_windowing, split
from service.errors import InvalidInput
from service.store import Store
from tests.helpers import make_settings, settings_without_env

TITLE = "Window pooling for long abstracts"
LONG = " ".join(f"sentence {i} describes result number {i} of the study." for i in range(60))


@pytest.fixture(scope="module")
def windowing() -> Windowing:
    return load_windowing(settings_without_env())


def test_long_abstract_is_split_into_overlapping_titled_windows() -> None:
    windowing = load_windowing(settings_without_env(embed_window_stride=128))
    windows = split(TITLE, LONG, windowing)
    assert len(windows) > 2
    tokenizer = windowing.tokenizer
    for window in windows:
        assert window.startswith(f"{TITLE}. ")
        assert len(tokenizer.encode(window).ids) <= windowing.tokens
    assert windows[0].removeprefix(f"{TITLE}. ").startswith("sentence 0 ")
    assert windows[-1].endswith("of the study.")
    # consecutive windows overlap by the stride: the second starts inside the first
    second_start = windows[1].removeprefix(f"{TITLE}. ")[:30]
    assert second_start in windows[0]


def test_default_windows_tile_the_abstract_without_overlap(windowing: Windowing) -> None:
    """By default each token of the abstract is read once: the windows cost about what one
    pass over the whole text costs, not twice that."""
    windows = split(TITLE, LONG, windowing)
    assert len(windows) > 1
    bodies = [w.removeprefix(f"{TITLE}. ") for w in windows]
    tokenizer = windowing.tokenizer
    body_tokens = sum(len(tokenizer.encode(b, add_special_tokens=False).ids) for b in bodies)
    assert body_tokens == len(tokenizer.encode(LONG, add_special_tokens=False).ids)
    assert bodies[1][:30] not in bodies[0]


def test_short_abstract_is_one_window(windowing: Windowing) -> None:
    assert split(TITLE, "A short abstract.", windowing) == [f"{TITLE}. A short abstract."]
    assert split(TITLE, LONG, Windowing(0, 0)) == [f"{TITLE}. {LONG}"]


def test_pooled_vectors_are_normalised_and_cached(
    tmp_path: Path, embedder: Embedder, windowing: Windowing
) -> None:
    papers = [(TITLE, LONG), ("Protein folding", "Attention over residues.")]
    with Store(tmp_path / "p.sqlite") as store:
        vectors, embedded = embed_papers(
            store, embedder, papers, ["h1", "h2"], windowing, progress=False
        )
        assert embedded == len(split(TITLE, LONG, windowing)) + 1
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
        again, embedded_again = embed_papers(
            store, embedder, papers, ["h1", "h2"], windowing, progress=False
        )
    assert embedded_again == 0
    np.testing.assert_array_equal(vectors, again)
    whole = embedder.encode([f"{TITLE}. {LONG}"])[0]
    assert 0.8 < float(vectors[0] @ whole) < 0.9999  # pooled windows, not the truncated text
    short = embedder.encode(["Protein folding. Attention over residues."])[0]
    assert float(vectors[1] @ short) == pytest.approx(1.0, abs=1e-5)


def test_window_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        make_settings(tmp_path, embed_window_tokens=8)
    with pytest.raises(ValueError, match="must not exceed"):
        make_settings(tmp_path, embed_window_tokens=64, embed_window_stride=128)
    missing = make_settings(tmp_path, model=str(tmp_path))  # a folder without tokenizer.json
    with pytest.raises(InvalidInput, match=r"tokenizer\.json"):
        load_windowing(missing)
