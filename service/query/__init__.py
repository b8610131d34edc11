"""The read side: one published build answering queries (engine), live additions, hot swap."""
