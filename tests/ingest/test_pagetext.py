from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import IngestError
from service.ingest import read_records
from service.ingest.common import stable_id
from service.ingest.pagetext import parse_papers_page
from service.schemas import Paper, Rejected
from tests.helpers import FIXTURES


def test_reads_fixture_page_skipping_header_and_rejecting_stray_line() -> None:
    fmt, records = read_records(FIXTURES / "papers-page.txt")
    records_list = list(records)
    papers = [r for r in records_list if isinstance(r, Paper)]
    rejected = [r for r in records_list if isinstance(r, Rejected)]
    assert fmt == "papers-page"
    assert len(papers) == 4
    assert papers[0].title == "Diffusion Sampling with Momentum for Mitigating Divergence Artifacts"
    assert papers[0].abstract.startswith("Despite the remarkable success of diffusion models")
    assert all(p.id == stable_id(p.title) for p in papers)
    assert len(rejected) == 1
    assert "title without an abstract" in rejected[0].reason


def test_header_words_never_become_papers() -> None:
    papers = [r for r in read_records(FIXTURES / "papers-page.txt")[1] if isinstance(r, Paper)]
    assert not any("Subscribe" in p.title or "inbox" in p.title for p in papers)


def test_bundled_corpus_has_115_papers_with_unique_ids() -> None:
    bundled = Path(__file__).parents[2] / "service" / "data" / "trending-papers.jsonl"
    papers = [r for r in read_records(bundled)[1] if isinstance(r, Paper)]
    assert len(papers) == 115
    assert len({p.id for p in papers}) == 115


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"\xff\xfe\x00bad bytes \xc3\x28", "not UTF-8")],
)
def test_unreadable_files_fail_clearly(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "page.txt"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=message):
        list(read_records(path)[1])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="not found"):
        list(read_records(tmp_path / "nope.txt")[1])


def test_unknown_extension_asks_for_format(tmp_path: Path) -> None:
    path = tmp_path / "papers.docx"
    path.write_text("x")
    with pytest.raises(IngestError, match="--format"):
        read_records(path)


words = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd")), min_size=1)


@given(
    st.lists(
        st.tuples(
            st.lists(words, min_size=1, max_size=12),
            st.lists(words, min_size=40, max_size=80),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_page_round_trip(pairs: list[tuple[list[str], list[str]]]) -> None:
    """Any page rendered from title/abstract pairs parses back to the same pairs (in Unicode
    NFC, as every ingest stores text: U+2126 OHM SIGN comes back as U+03A9 OMEGA)."""
    text = "Trending\n\nMar 14\n\n" + "\n\n".join(
        f"{' '.join(title)}\n\n{' '.join(abstract)}" for title, abstract in pairs
    )
    papers = list(parse_papers_page(text))
    assert [(p.title, p.abstract) for p in papers if isinstance(p, Paper)] == [
        (unicodedata.normalize("NFC", " ".join(t)), unicodedata.normalize("NFC", " ".join(a)))
        for t, a in pairs
    ]


ascii_titles = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1),
    min_size=1,
    max_size=15,
)


@given(ascii_titles)
def test_stable_id_ignores_case_and_spacing(title_words: list[str]) -> None:
    title = " ".join(title_words)
    respaced = "  " + "\n  ".join(title_words).upper() + " "
    assert stable_id(title) == stable_id(respaced)
    assert re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{8}", stable_id(title))
    assert stable_id(title) != stable_id(title + " part two")
