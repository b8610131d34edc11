"""Embedding: texts to vectors (torch or ONNX backends), model preparation, long-abstract windows."""
