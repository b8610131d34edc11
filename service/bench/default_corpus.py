"""Regenerate the bundled default corpus (service/data/trending-papers.jsonl) from the seed page.

Not a measurement: it lives with the benchmarks because the embedding and map benchmarks run
on this corpus. ``paperscope bench make-default-corpus [PAGE]`` reads a papers-page text file
(default ../shared/seeds/trending-papers.txt beside the checkout), keeps every paper it parses
and writes one JSON line each (id, title, abstract) to --out (default: the bundled corpus in
this package), then prints how many it wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

from service.bench.common import SHARED
from service.ingest import BUNDLED_CORPUS
from service.ingest.pagetext import read_papers_page
from service.schemas import Paper

SEED_PAGE = SHARED / "seeds" / "trending-papers.txt"


def write_corpus(page: Path, out: Path = BUNDLED_CORPUS) -> int:
    """Papers written."""
    papers = [r for r in read_papers_page(page) if isinstance(r, Paper)]
    with out.open("w", encoding="utf-8") as handle:
        for paper in papers:
            record = {"id": paper.id, "title": paper.title, "abstract": paper.abstract}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(papers)} papers to {out}")
    return len(papers)
