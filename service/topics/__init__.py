"""Topics and the map: UMAP + HDBSCAN, labels, groups, placement of new papers, stable ids."""
