"""Embedding: texts to vectors (torch, ONNX, OpenVINO), model preparation, long-abstract windows."""
