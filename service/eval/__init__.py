"""Quality measurements: retrieval on BEIR datasets, clustering against known labels."""
