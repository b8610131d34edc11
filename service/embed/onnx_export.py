"""Export a sentence-transformers (BERT-style) model to ONNX, offline, and quantise it.

Done once at install time by ``paperscope models prepare`` from the local weights (no hub).
Only the transformer is exported; tokenisation, mean pooling and normalisation run in
:class:`service.embed.onnx_backend.OnnxEmbedder`, exactly as sentence-transformers does them. Uses
torch's TorchScript exporter (``dynamo=False``), which needs no extra packages.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PROBE_TEXTS = [
    "Diffusion models generate images by reversing a noising process.",
    "We study preference optimisation for aligning large language models with human feedback.",
    "Knowledge distillation transfers what a large teacher network knows to a small student. " * 8,
    "Protein structure prediction from amino-acid sequences.",
    "A short query",
]


def export_onnx(weights: Path, target: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    os.environ["HF_HUB_OFFLINE"] = "1"
    # Eager attention exports to plain MatMul/Softmax, which ONNX Runtime runs ~1.5x faster on CPU
    # than the decomposed scaled-dot-product attention (measured: 24 -> 31 seq/s at 256 tokens).
    # The transformer is loaded the way the torch backend loads it, from the local folder.
    loaded = SentenceTransformer(
        str(weights), device="cpu", model_kwargs={"attn_implementation": "eager"}
    )
    model: Any = loaded[0].auto_model
    model.eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    example = torch.ones(2, 16, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    tmp = target.with_suffix(".tmp")
    log.info("exporting %s to ONNX", weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHidden(model),
            (example, example, torch.zeros_like(example)),
            str(tmp),
            dynamo=False,
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
        )
    tmp.replace(target)


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the weights (activations quantised at run time).

    Per-channel QInt8 keeps vectors much closer to fp32 than per-tensor, and runs on the
    VNNI int8 kernels (measured: 66 seq/s vs 31 for fp32 at 256 tokens, batch 8, 2 cores).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_suffix(".tmp")
    logging.getLogger("root").setLevel(logging.ERROR)  # "consider pre-processing" advice
    quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    tmp.replace(target)


def quantize_static_int8(
    source: Path, target: Path, weights: Path, texts: list[str], max_tokens: int
) -> None:
    """Static int8 quantisation for OpenVINO (NNCF, transformer preset): weights and activations
    in int8, activation ranges calibrated on real abstracts, so no range is computed at run time
    (measured here: about 3.6x torch fp32 on 2 cores, cosine to fp32 about 0.997).

    Writes ``target`` (OpenVINO IR: ``.xml`` plus ``.bin``) through a temporary name."""
    import nncf
    import openvino

    from service.embed.pooled import _tokenizer

    tokenizer = _tokenizer(weights, max_tokens)
    samples = []
    for encoding in tokenizer.encode_batch(texts):
        ids = np.asarray([encoding.ids], dtype=np.int64)
        samples.append(
            {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids),
            }
        )
    logging.getLogger("nncf").setLevel(logging.WARNING)
    model = openvino.Core().read_model(str(source))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(samples),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(samples),
    )
    tmp = target.with_name(f".tmp-{target.name}")
    openvino.save_model(quantized, str(tmp))
    tmp.with_suffix(".bin").replace(target.with_suffix(".bin"))
    tmp.replace(target)


def measure_agreement(weights: Path, candidate: Any) -> dict[str, float]:
    """Cosine between torch's vectors and ``candidate``'s (an embedder) for a few probe texts
    (mean and worst)."""
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(weights), device="cpu").encode(
        PROBE_TEXTS, normalize_embeddings=True, convert_to_numpy=True
    )
    cosines = np.sum(reference * candidate.encode(PROBE_TEXTS), axis=1)
    return {
        "mean_cosine": round(float(cosines.mean()), 6),
        "min_cosine": round(float(cosines.min()), 6),
    }
