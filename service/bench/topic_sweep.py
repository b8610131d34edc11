"""The topic-parameter sweep behind the small-corpus defaults (README, "Topic parameters").

``paperscope bench topic-sweep [--labels] [--data-dir DIR]`` refits topics on the current
build's embeddings in DIR (PAPERSCOPE_DATA_DIR, default paperscope-data) for every combination
of cluster selection (leaf, eom), (min_cluster_size, min_samples) in (4, 2), (5, 2), (5, 3),
(6, 3), and UMAP n_neighbors 8, 11, 15 (5 UMAP dimensions, the configured seed), and prints one
line each: topics found, papers left unclustered, size of the largest topic. --labels also
prints every topic's id, size and label under its line.
"""

from __future__ import annotations

import numpy as np

from service.artifacts import BuildFolder, require_build
from service.config import Settings
from service.schemas import TopicParams, embedding_text
from service.topics.cluster import fit_topics
from service.topics.labels import clean_for_labels

SELECTIONS = ("leaf", "eom")
SIZES = ((4, 2), (5, 2), (5, 3), (6, 3))
NEIGHBOURS = (8, 11, 15)


def sweep(settings: Settings, labels: bool) -> None:
    build = BuildFolder(require_build(settings))
    vectors = np.array(build.embeddings())
    snapshot = build.papers()  # the build's own rows, in the order of its embeddings
    try:
        titles, abstracts = snapshot.summaries().titles, snapshot.abstracts()
    finally:
        snapshot.close()
    texts = [
        clean_for_labels(embedding_text(title, abstract))
        for title, abstract in zip(titles, abstracts, strict=True)
    ]
    print("selection  min_cluster_size  min_samples  n_neighbors  topics  unclustered  largest")
    for selection in SELECTIONS:
        for size, samples in SIZES:
            for neighbours in NEIGHBOURS:
                params = TopicParams(
                    umap_components=5,
                    umap_neighbors=neighbours,
                    min_cluster_size=size,
                    min_samples=samples,
                    cluster_selection=selection,
                    seed=settings.seed,
                )
                model = fit_topics(vectors, texts, params, settings.label_terms)
                sizes = [t.size for t in model.topics if t.id >= 0]
                noise = int((model.assignments == -1).sum())
                print(
                    f"{selection:9}  {size:16}  {samples:11}  {neighbours:11}  {len(sizes):6}  "
                    f"{noise:11}  {max(sizes, default=0):7}",
                    flush=True,
                )
                if labels:
                    for topic in model.topics:
                        print(f"    {topic.id:>3} {topic.size:>4}  {topic.label}")
