"""The build: every stage in order, published atomically; incremental builds; the Ray engine."""
