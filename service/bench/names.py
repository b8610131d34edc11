"""The names this code gives a build's topics and groups, beside those the build was made with.

``paperscope bench names DATA_DIR`` reads the published build (nothing is written), counts the
terms of its papers and names its groups, then its topics, with the build's own steps
(:func:`service.topics.cluster.name_groups`, :func:`service.topics.cluster.name_topics`: groups
against each other, each topic against its siblings and never like a group), on the same
clusters and groups. It prints each name that changed and, per level and for both sets of names,
the duplicates, near-duplicates, one-word names, names that are not noun phrases, numbered names
(:mod:`service.topics.naming`) and how much of its papers a name speaks for (the median share of
a topic's or group's papers that use its name, :func:`used_by`). So a change to naming is judged
on a real build in a minute or two, not after a full rebuild. Set ``PAPERSCOPE_BACKEND`` and the
embedding settings as the build was made (names are ranked with the build's embedder). A build
that carried topics over from an earlier one moved some papers after naming (an outlier keeps
its previous topic when nearly as close, :mod:`service.topics.lineage`), so its names are not
reproduced exactly even by the code that made it: compare such a build's names from two versions
of the code, not against its stored ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.artifacts import BuildFolder, TopicsFile, current_build_dir
from service.config import BUILDS, Settings
from service.embed.backends import load_embedder
from service.schemas import embedding_text
from service.topics.cluster import name_groups, name_topics
from service.topics.labels import (
    PhraseEncoder,
    TermCounts,
    clean_for_labels,
    count_terms,
    singular,
)
from service.topics.model import Topic, TopicGroup
from service.topics.naming import duplicate_counts, is_noun_phrase


def renamed(
    stored: TopicsFile,
    terms: TermCounts | None,
    assignments: npt.NDArray[np.int32],
    vectors: npt.NDArray[np.float32],
    encode: PhraseEncoder | None,
    label_terms: int,
) -> tuple[dict[int, str], dict[int, str]]:
    """(group id -> name, topic id -> name) as this code names the stored clusters and groups:
    the build's own naming steps, the groups first, the topics largest first as a fit lists
    them."""
    groups = [TopicGroup(g.id, g.label, g.keywords, g.children) for g in stored.groups]
    topics = sorted(
        (Topic(t.id, t.label, t.keywords, t.members) for t in stored.topics if t.id >= 0),
        key=lambda t: -t.size,
    )
    if groups:
        name_groups(groups, vectors, terms, assignments, label_terms, encode)
    name_topics(topics, groups, vectors, terms, assignments, label_terms, encode)
    return {g.id: g.name for g in groups}, {t.id: t.name for t in topics}


def report(names: list[str]) -> str:
    """Counts of one level's names (see the module docstring)."""
    exact, near, single = duplicate_counts(names)
    not_nouns = sum(not is_noun_phrase(name) for name in names)
    numbered = sum(name.startswith("topic ") or name.startswith("group ") for name in names)
    return (
        f"{len(names)} names: {exact} duplicate, {near} near-duplicate, {single} one-word, "
        f"{not_nouns} not noun phrases, {numbered} numbered"
    )


def used_by(name: str, texts: Sequence[str]) -> float:
    """The share of ``texts`` (lower case) that use ``name``, a word's plural or possessive
    counting as it."""
    words = [re.escape(word) for word in singular(name).split()]
    pattern = re.compile(r"\b" + r"[\s-]+".join(w + "(?:s|es|['\u2019]s)?" for w in words) + r"\b")
    return sum(bool(pattern.search(text)) for text in texts) / max(len(texts), 1)


def speaks_for(
    names: Mapping[int, str], rows: Mapping[int, Sequence[int]], texts: list[str]
) -> str:
    """The median share of each class's papers that use its name."""
    shares = [used_by(names[c], [texts[r] for r in rows[c]]) for c in names if rows.get(c)]
    return f"median {float(np.median(shares)):.2f} of its papers use its name" if shares else ""


def measure(data_dir: Path, settings: Settings) -> None:
    build_dir = current_build_dir(data_dir / BUILDS)
    if build_dir is None:
        raise FileNotFoundError(f"no published build in {data_dir}")
    build = BuildFolder(build_dir)
    papers = build.papers()
    texts = [
        clean_for_labels(embedding_text(title or "", abstract or ""))
        for title, abstract in zip(papers.summaries().titles, papers.abstracts(), strict=True)
    ]
    papers.close()
    stored = build.topics()
    vectors = np.asarray(build.embeddings(), dtype=np.float32)
    embedder = load_embedder(settings)
    terms = count_terms(texts, build.manifest().topics.seed)  # the build's vocabulary sample
    groups, topics = renamed(
        stored, terms, build.assignments(), vectors, embedder.encode, settings.label_terms
    )
    print(f"build {build.name}: {len(texts)} papers")
    lower = [text.lower() for text in texts]
    members = {t.id: list(t.members) for t in stored.topics if t.id >= 0}
    grouped = {g.id: [r for c in g.children for r in members.get(c, [])] for g in stored.groups}
    levels = (
        ("groups", {g.id: g.name or g.label for g in stored.groups}, groups, grouped),
        ("topics", {t.id: t.name or t.label for t in stored.topics if t.id >= 0}, topics, members),
    )
    for level, before, after, rows in levels:
        for key in sorted(before):
            if before[key] != after.get(key):
                print(f"{level[:-1]} {key}: {before[key]!r} -> {after.get(key)!r}")
        for when, names in (("as built", before), ("this code", after)):
            print(f"{level}, {when}: {report(list(names.values()))}")
            print(f"  {speaks_for(names, rows, lower)}")
