"""Embedding: texts to vectors (torch or ONNX), model preparation, long-abstract windows."""
