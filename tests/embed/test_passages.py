"""Long abstracts split into token windows and mean-pooled into one vector per paper."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.embed.backends import Embedder
from service.embed.passages import Windowing, embed_papers, load_windowing, split, split_all
from service.errors import InvalidInput
from service.store import Store
from tests.helpers import make_settings, settings_without_env

TITLE = "Window pooling for long abstracts"
LONG = " ".join(f"sentence {i} describes result number {i} of the study." for i in range(60))


WINDOWING = load_windowing(settings_without_env())


@pytest.fixture(scope="module")
def windowing() -> Windowing:
    return WINDOWING


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


def test_windows_carry_the_token_ids_of_their_text(windowing: Windowing) -> None:
    """A window's ids are its slice of the paper's tokens, and read exactly as its text: the
    model is fed them without tokenising every window a second time."""
    assert windowing.ids_as_text
    abstract = " ".join(
        f"Step {i}: message-passing GNNs (e.g., GCN-{i}) reach state-of-the-art F1 on "
        f"10^{i}-node graphs, outperforming hyperparameter-tuned baselines."
        for i in range(40)
    )
    windows = split_all([(TITLE, abstract)], windowing)[0]
    assert len(windows) > 2
    tokenizer = windowing.tokenizer
    read: list[int] = []
    head = len(tokenizer.encode(f"{TITLE}. ", add_special_tokens=False).ids)
    for window in windows:
        assert window.ids is not None
        assert window.ids.tolist() == tokenizer.encode(window.text, add_special_tokens=False).ids
        assert window.tokens == len(window.ids) + 2 <= windowing.tokens
        read.extend(window.ids[head:].tolist())
    assert read == tokenizer.encode(abstract, add_special_tokens=False).ids


def test_windows_end_where_words_start(windowing: Windowing) -> None:
    """A cut never falls inside a word the next window could hold whole."""
    abstract = " ".join(["electroencephalography hyperparameterisation"] * 120)
    for window in split(TITLE, abstract, windowing):
        body = window.removeprefix(f"{TITLE}. ")
        assert body.startswith("electroencephalography")
        assert body.endswith(("electroencephalography", "hyperparameterisation"))


def test_a_word_longer_than_a_window_is_cut_and_tokenised_anew(windowing: Windowing) -> None:
    """A 'word' of hundreds of tokens (a sequence, a hash) is cut where the window is full; the
    window starting inside it has no ids of its own and is tokenised from its text."""
    small = replace(windowing, tokens=32, stride=32)  # 23 abstract tokens a window
    sequence = "acgtt" * 19  # 95 characters: the tokenizer's limit for a word is 100
    assert len(small.tokenizer.encode(sequence, add_special_tokens=False).ids) > 23
    windows = split_all([(TITLE, f"The sequence {sequence} binds.")], small)[0]
    assert len(windows) > 1
    assert windows[0].ids is not None
    assert any(window.ids is None for window in windows[1:])
    assert all(window.tokens <= small.tokens for window in windows)


words = st.sampled_from(
    [
        "graph",
        "neural",
        "networks",
        "GNN",
        "e.g.,",
        "(GCN)",
        "state-of-the-art",
        "10^6",
        "—",
        "electroencephalography",
        "über",
        "naïve",
        "x",
        "$\\alpha$",
        "https://example.org/a_b",
    ]
)


@given(st.lists(words, min_size=1, max_size=400), st.sampled_from([32, 64, 256]))
def test_windows_tile_the_abstract_and_read_as_their_text(parts: list[str], tokens: int) -> None:
    """Whatever the text, the windows cover each token once, in order, each at most the
    window's size, and each window's ids are what its text tokenises to."""
    windowing = replace(WINDOWING, tokens=tokens, stride=tokens)
    abstract = " ".join(parts)
    windows = split_all([(TITLE, abstract)], windowing)[0]
    tokenizer = windowing.tokenizer
    head = len(tokenizer.encode(f"{TITLE}. ", add_special_tokens=False).ids)
    body = tokenizer.encode(abstract, add_special_tokens=False).ids
    assert sum(window.tokens - head - 2 for window in windows) == len(body)
    for window in windows:
        assert window.tokens <= tokens
        if window.ids is not None:
            expected = tokenizer.encode(window.text, add_special_tokens=False).ids
            assert window.ids.tolist() == expected
