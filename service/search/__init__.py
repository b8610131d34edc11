"""Finding papers: the FAISS index, BM25, hybrid fusion, like-this lists and duplicates."""
