"""Topics under bf16-level noise: the same corpus, vectors that differ only by rounding.

Two builds of one corpus can embed it with kernels that round differently (bf16 or int8 on
another CPU, Ray actors on another machine): their vectors agree to a cosine of about 0.99999.
``paperscope eval clustering --noise-stability`` refits every method on the vectors with such
noise added (each component scaled by ``1 + u``, ``u`` uniform in ±2⁻⁹, bf16's rounding step,
then renormalised; seeded) and reports the ARI between each method's topics with and without
it: 1.0 means the topics did not move.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.metrics import adjusted_rand_score

BF16_STEP = 2.0**-9
"""Half of bf16's unit in the last place, relative: the largest rounding error of a component."""


def bf16_noise(vectors: npt.NDArray[np.float32], seed: int) -> npt.NDArray[np.float32]:
    """``vectors`` with each component off by at most bf16's rounding, rows renormalised."""
    scale = np.random.default_rng(seed).uniform(-BF16_STEP, BF16_STEP, vectors.shape)
    noisy = vectors * (1.0 + scale)
    norms = np.linalg.norm(noisy, axis=1, keepdims=True)
    return np.asarray(noisy / np.maximum(norms, 1e-12), dtype=np.float32)


def agreement(topics: npt.NDArray[np.int64], again: npt.NDArray[np.int64]) -> float:
    """ARI between a method's topics of the vectors and of the noisy vectors."""
    return round(float(adjusted_rand_score(topics, again)), 4)
