"""Labelled corpora for ``paperscope eval clustering``, cut from the 74k arXiv cs file.

``paperscope bench clustering-corpora [SOURCE] [OUT_DIR]`` writes three corpora, each labelled
by ``primary_category`` (the full file is the fourth):

- ``early.jsonl.gz``: listed 2025-04 .. 2025-06 (about 14.8k papers);
- ``late.jsonl.gz``: listed 2026-04 .. 2026-05 (about 13.8k, disjoint in time from early);
- ``minor.jsonl.gz``: every paper whose primary category is not cs.CV, cs.CL or cs.AI (about 7k
  papers over ~80 smaller fields: information theory, graphics, robotics, ...).

Deterministic: same source, same files. Quality is judged on corpora the tuning never saw.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from service.errors import InvalidInput

BIG = {"cs.CV", "cs.CL", "cs.AI"}
CORPORA: dict[str, Callable[[dict[str, Any]], bool]] = {
    "early": lambda r: "2025-04" <= str(r.get("listing_date", ""))[:7] <= "2025-06",
    "late": lambda r: "2026-04" <= str(r.get("listing_date", ""))[:7] <= "2026-05",
    "minor": lambda r: bool(r.get("primary_category")) and r["primary_category"] not in BIG,
}


def cut(source: Path, out: Path) -> dict[str, int]:
    """Write the corpora into ``out``; returns each one's number of papers."""
    if not source.is_file():
        raise InvalidInput(f"no corpus file at {source}")
    out.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(CORPORA, 0)
    opener: Any = gzip.open if source.suffix == ".gz" else open
    with ExitStack() as stack:
        files = {
            name: stack.enter_context(gzip.open(out / f"{name}.jsonl.gz", "wt", encoding="utf-8"))
            for name in CORPORA
        }
        lines = stack.enter_context(opener(source, "rt", encoding="utf-8"))
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            for name, keep in CORPORA.items():
                if keep(record):
                    files[name].write(line if line.endswith("\n") else line + "\n")
                    counts[name] += 1
    return counts
