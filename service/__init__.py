"""paperscope: semantic search and topic maps for scientific paper abstracts.

A paper flows one way, and the folders follow it: ``ingest`` -> ``store`` -> ``embed`` ->
``search`` (index, BM25, like-this lists) -> ``topics`` (clusters, labels, map) -> ``pipeline``
(every stage, published through ``artifacts``) -> ``query`` (the engine over a published build)
-> ``api`` / ``cli``. Layers only point down; the core (everything but ``service.api``) never
imports the web layer (tests/test_layers.py keeps it so).
"""

from service.runtime import prefer_avx512_kernels

prefer_avx512_kernels()  # before anything loads faiss (and its OpenBLAS): see service/runtime.py

__version__ = "0.1.0"
