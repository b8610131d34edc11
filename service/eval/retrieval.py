"""Retrieval quality on a BEIR-layout dataset: nDCG@10, Recall@100 and MRR@10 per search mode.

The dataset folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` or
``queries-<split>.jsonl`` (``_id``, ``text``) and ``qrels/<split>.tsv`` or ``qrels-<split>.tsv``
(query id, corpus id, graded relevance; one header line). The corpus is indexed in memory the way
a build indexes papers (same embedding text, same BM25 index, same fusion as the engine), so the
figures describe what ``paperscope search`` returns. Embeddings are cached on disk (a store keyed
by model revision and text hash), so a rerun or a tuning loop embeds nothing again.

Metrics follow trec_eval / pytrec_eval as BEIR reports them: nDCG with gain = relevance and
discount log2(rank + 1), the ideal ranking taken from the qrels; a query with no relevant
document in the qrels is skipped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.embed.backends import Embedder, embed_with_cache
from service.embed.passages import Windowing, embed_papers, text_hash
from service.errors import InvalidInput
from service.schemas import embedding_text
from service.search.fusion import FusionParams, Mode, hybrid, top_rows
from service.search.lexical import LexicalIndex, LexicalParams
from service.store import Store

Qrels = dict[str, dict[str, int]]
DEPTH = 100
"""Results kept per query: enough for Recall@100."""


@dataclass
class BeirDataset:
    ids: list[str]
    titles: list[str]
    abstracts: list[str]
    queries: dict[str, str]
    qrels: Qrels

    def subset(self, query_ids: Sequence[str]) -> BeirDataset:
        """The same corpus with only these queries (for cross-validated tuning)."""
        keep = set(query_ids)
        return BeirDataset(
            self.ids,
            self.titles,
            self.abstracts,
            {q: t for q, t in self.queries.items() if q in keep},
            {q: r for q, r in self.qrels.items() if q in keep},
        )


def _first(folder: Path, names: Sequence[str]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise InvalidInput(f"{folder}: none of {', '.join(names)} found (not a BEIR-layout dataset)")


def _jsonl(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidInput(f"{path}: not JSON Lines ({err})") from None


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    """Read a BEIR dataset folder; only queries that have qrels in ``split`` are kept."""
    if not folder.is_dir():
        raise InvalidInput(f"dataset folder {folder} not found")
    corpus = _jsonl(_first(folder, ["corpus.jsonl"]))
    qrels: Qrels = {}
    qrels_path = _first(folder, [f"qrels/{split}.tsv", f"qrels-{split}.tsv"])
    for number, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        graded = parts[-1].strip().lstrip("-").isdigit()
        if number == 1 and len(parts) >= 3 and not graded:
            continue  # the header line
        if len(parts) < 3 or not graded:
            raise InvalidInput(f"{qrels_path}:{number}: expected query-id, corpus-id, score")
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[-1])
    queries_path = _first(
        folder, [f"queries-{split}.jsonl", f"queries/{split}.jsonl", "queries.jsonl"]
    )
    queries = {str(q["_id"]): q["text"] for q in _jsonl(queries_path) if str(q["_id"]) in qrels}
    try:
        ids = [str(d["_id"]) for d in corpus]
        titles = [d.get("title") or "" for d in corpus]
        abstracts = [d["text"] for d in corpus]
    except KeyError as err:
        raise InvalidInput(f"{folder}/corpus.jsonl: a record lacks {err}") from None
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise InvalidInput(f"{queries_path}: no text for queries {missing[:5]}")
    if not queries:
        raise InvalidInput(f"{qrels_path}: no judged queries")
    return BeirDataset(ids, titles, abstracts, queries, qrels)


# -- metrics ---------------------------------------------------------------------------------


def ndcg_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Graded nDCG@k: gain = relevance, discount log2(rank + 1), ideal from the judgements."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted((r for r in relevant.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 100) -> float:
    wanted = {doc for doc, r in relevant.items() if r > 0}
    return len(wanted.intersection(ranking[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    for i, doc in enumerate(ranking[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def score_runs(runs: Mapping[str, Sequence[str]], qrels: Qrels) -> dict[str, float]:
    """Mean metrics over the judged queries (a query with no run scores 0)."""
    judged = [q for q, rels in qrels.items() if any(r > 0 for r in rels.values())]
    if not judged:
        raise InvalidInput("no query has a relevant document in the qrels")
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for query in judged:
        ranking, relevant = runs.get(query, []), qrels[query]
        totals["ndcg@10"] += ndcg_at(ranking, relevant, 10)
        totals["recall@100"] += recall_at(ranking, relevant, 100)
        totals["mrr@10"] += mrr_at(ranking, relevant, 10)
    return {name: round(value / len(judged), 4) for name, value in totals.items()}


# -- indexing and runs -----------------------------------------------------------------------


def embed_cached(cache: Path, embedder: Embedder, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Vectors for ``texts``, from the on-disk cache where already embedded."""
    with Store(cache) as store:
        vectors, _ = embed_with_cache(
            store, embedder, texts, [text_hash(t) for t in texts], progress=False
        )
    return vectors


@dataclass
class Indexed:
    """The dataset's corpus indexed both ways, and its queries embedded."""

    dataset: BeirDataset
    vectors: npt.NDArray[np.float32]
    lexical: LexicalIndex
    query_ids: list[str]
    query_vectors: npt.NDArray[np.float32]
    seconds: dict[str, float] = field(default_factory=dict)


def index_dataset(
    dataset: BeirDataset,
    embedder: Embedder,
    cache: Path,
    lexical: LexicalParams,
    windowing: Windowing,
) -> Indexed:
    """Embed (as a build does, windows included) and BM25-index the corpus; embed the queries."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    papers = list(zip(dataset.titles, dataset.abstracts, strict=True))
    with Store(cache) as store:
        hashes = [text_hash(embedding_text(title, abstract)) for title, abstract in papers]
        vectors, _ = embed_papers(store, embedder, papers, hashes, windowing, progress=False)
    query_ids = list(dataset.queries)
    query_vectors = embed_cached(cache, embedder, [dataset.queries[q] for q in query_ids])
    seconds["embed"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    index = LexicalIndex.build(papers, lexical)
    seconds["bm25_index"] = round(time.perf_counter() - start, 2)
    return Indexed(dataset, vectors, index, query_ids, query_vectors, seconds)


def run_mode(indexed: Indexed, mode: Mode, fusion: FusionParams) -> dict[str, list[str]]:
    """The top :data:`DEPTH` corpus ids per query, searched as the engine searches."""
    ids = indexed.dataset.ids
    dense_all = indexed.query_vectors @ indexed.vectors.T
    runs: dict[str, list[str]] = {}
    for i, query in enumerate(indexed.query_ids):
        text = indexed.dataset.queries[query]
        if mode == "dense":
            rows = top_rows(dense_all[i], DEPTH)
        elif mode == "lexical":
            rows = [r for r, _ in indexed.lexical.search(text, DEPTH)]
        else:
            dense_rows = top_rows(dense_all[i], fusion.depth)
            fused = hybrid(
                dense_rows,
                indexed.query_vectors[i],
                indexed.vectors.__getitem__,
                indexed.lexical.scores(text),
                fusion,
            )
            rows = [s.row for s in fused[:DEPTH]]
        runs[query] = [ids[r] for r in rows]
    return runs


@dataclass
class EvalReport:
    dataset: str
    split: str
    queries: int
    documents: int
    model: str
    backend: str
    settings: dict[str, object]
    results: dict[str, dict[str, float]]
    seconds: dict[str, float]

    def table(self) -> str:
        """The results as a markdown table."""
        lines = ["| mode | nDCG@10 | Recall@100 | MRR@10 |", "|---|---:|---:|---:|"]
        for mode, m in self.results.items():
            lines.append(
                f"| {mode} | {m['ndcg@10']:.4f} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} |"
            )
        return "\n".join(lines)


def evaluate(
    folder: Path,
    split: str,
    modes: Sequence[Mode],
    embedder: Embedder,
    cache: Path,
    lexical: LexicalParams,
    fusion: FusionParams,
    windowing: Windowing,
    tune_weights: Sequence[float] = (),
) -> EvalReport:
    """Index the dataset's corpus, run every query in each mode and score the runs.

    With ``tune_weights``, also the hybrid figures of :func:`two_fold` over those dense weights.
    """
    start = time.perf_counter()
    dataset = load_beir(folder, split)
    indexed = index_dataset(dataset, embedder, cache, lexical, windowing)
    results: dict[str, dict[str, float]] = {}
    seconds = dict(indexed.seconds)
    for mode in modes:
        began = time.perf_counter()
        results[mode] = score_runs(run_mode(indexed, mode, fusion), dataset.qrels)
        seconds[f"search_{mode}"] = round(time.perf_counter() - began, 2)
    if tune_weights:
        began = time.perf_counter()
        grid = [dataclasses.replace(fusion, dense_weight=w) for w in tune_weights]
        metrics, chosen = two_fold(indexed, grid)
        results["hybrid, weight tuned 2-fold (" + ", ".join(map(str, chosen)) + ")"] = metrics
        seconds["two_fold"] = round(time.perf_counter() - began, 2)
    seconds["total"] = round(time.perf_counter() - start, 2)
    return EvalReport(
        dataset=str(folder),
        split=split,
        queries=len(dataset.queries),
        documents=len(dataset.ids),
        model=embedder.name,
        backend=embedder.backend,
        settings={
            "lexical": lexical.__dict__,
            "fusion": fusion.__dict__,
            "windows": {"tokens": windowing.tokens, "stride": windowing.stride},
        },
        results=results,
        seconds=seconds,
    )


def two_fold(
    indexed: Indexed, grid: Sequence[FusionParams]
) -> tuple[dict[str, float], list[float]]:
    """Hybrid metrics with the fusion weight tuned on half the queries and measured on the
    other half (both ways round, averaged): what tuning on these queries is worth on unseen
    ones. Returns the metrics and the dense weight each half chose."""
    ordered = sorted(indexed.query_ids)
    halves = [ordered[0::2], ordered[1::2]]
    held_out: list[dict[str, float]] = []
    chosen = []
    for tune, test in (halves, halves[::-1]):
        tuned = _subset(indexed, tune)
        best = max(
            grid,
            key=lambda p: score_runs(run_mode(tuned, "hybrid", p), tuned.dataset.qrels)["ndcg@10"],
        )
        chosen.append(best.dense_weight)
        unseen = _subset(indexed, test)
        held_out.append(score_runs(run_mode(unseen, "hybrid", best), unseen.dataset.qrels))
    metrics = {name: round((held_out[0][name] + held_out[1][name]) / 2, 4) for name in held_out[0]}
    return metrics, chosen


def _subset(indexed: Indexed, query_ids: Sequence[str]) -> Indexed:
    position = {query: i for i, query in enumerate(indexed.query_ids)}
    keep = [position[q] for q in query_ids]
    return Indexed(
        indexed.dataset.subset(query_ids),
        indexed.vectors,
        indexed.lexical,
        list(query_ids),
        indexed.query_vectors[keep],
    )
