"""The exported backends' shared base: a transformer run by an inference runtime, with the
model's own tokenizer, batches by token length (or in a few fixed shapes), mean pooling and L2
normalisation as sentence-transformers does them."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
TokenArray = npt.NDArray[np.int64]
Hidden = npt.NDArray[np.float32]
"""Token embeddings of a batch: (texts, tokens, dim)."""
TokenIds = npt.NDArray[np.int32]
ModelInput = str | TokenIds

K = TypeVar("K")


TOKEN_BUDGET = 8192
"""Tokens per batch (padding included): short texts go in larger batches, long ones in smaller."""

FIXED_WIDTH_STEP = 16
"""Fixed-shape batches pad their texts to a multiple of this many tokens (2.5% more tokens on
arXiv windows, against 16 shapes to compile)."""


def fixed_width(length: int, limit: int) -> int:
    """The padded width of a fixed-shape batch whose longest text has ``length`` tokens."""
    return max(length, min(limit, -(-length // FIXED_WIDTH_STEP) * FIXED_WIDTH_STEP))


def fixed_rows(width: int, most: int) -> int:
    """Texts in a full fixed-shape batch of ``width``: the largest power of two within the token
    budget (so a chunk of :data:`CHUNK` texts of one width splits into full batches)."""
    fit = max(1, min(most, TOKEN_BUDGET // width))
    return 1 << (fit.bit_length() - 1)


class PooledTransformer:
    """A transformer exported from a sentence-transformers model, run by an inference runtime,
    with the model's own tokenizer, mean pooling and L2 normalisation (as sentence-transformers
    does them).

    Texts are tokenised first and batched by token length, so a batch pads to the length of its
    longest text and holds up to :data:`TOKEN_BUDGET` tokens: little compute goes into padding.
    Subclasses run one batch (:meth:`forward`)."""

    backend = "transformer"
    fixed_shapes = False
    """Whether the runtime is faster on batches of a few fixed shapes (:meth:`batches` with
    ``fixed``), worth it for long runs (:func:`encode_in_chunks`)."""
    compile_seconds = 0.0
    """Time spent compiling fixed shapes, all runs together."""
    pads_to_step = False
    """Whether every batch pads to a multiple of :data:`FIXED_WIDTH_STEP` tokens (as fixed
    shapes do), for a runtime that prepares its kernels again for each new input shape."""

    def __init__(
        self, tokenizer: Any, *, name: str, revision: str, backend: str, dim: int, batch_size: int
    ) -> None:
        self._tokenizer = tokenizer
        self._inputs: set[str] = set()
        """The graph's input names (set by the runtime's subclass)."""
        self.name, self.revision, self.backend, self.dim = name, revision, backend, dim
        self.batch_size = batch_size
        self.agreement: dict[str, float] | None = None
        """Cosine to the torch vectors, as measured when the model was prepared."""
        self._special_tokens: tuple[list[int], list[int], int] | None = None

    @property
    def cache_key(self) -> str:
        return f"{self.name}@{self.revision}"

    def forward(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        """Token embeddings (batch, tokens, dim) of one padded batch."""
        raise NotImplementedError

    def feeds(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
    ) -> dict[str, npt.NDArray[np.int64]]:
        """A batch's inputs, as many as the exported graph takes (token types: all zero)."""
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return {name: value for name, value in feeds.items() if name in self._inputs}

    def batches(self, lengths: Sequence[int], fixed: bool = False) -> list[list[int]]:
        """Text positions grouped into batches, longest texts first, each within the budget.

        ``fixed``: batches of texts whose :func:`fixed_width` is the same, :func:`fixed_rows`
        of them (the last of a width may have fewer)."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        if fixed:
            return self._fixed_batches(lengths, order)
        budget = max(TOKEN_BUDGET, max(lengths, default=1))
        batches: list[list[int]] = []
        for i in order:
            if (
                batches
                and len(batches[-1]) < self.batch_size * 4
                and ((len(batches[-1]) + 1) * lengths[batches[-1][0]] <= budget)
            ):
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _fixed_batches(self, lengths: Sequence[int], order: list[int]) -> list[list[int]]:
        batches: list[list[int]] = []
        width = rows = 0
        limit = self.max_length
        for i in order:
            own = fixed_width(lengths[i], limit)
            if batches and own == width and len(batches[-1]) < rows:
                batches[-1].append(i)
            else:
                width, rows = own, self.full_rows(own)
                batches.append([i])
        return batches

    def full_rows(self, width: int) -> int:
        """Texts in a full fixed-shape batch of ``width`` tokens (:func:`fixed_rows`)."""
        return fixed_rows(width, self.batch_size * 4)

    @property
    def max_length(self) -> int:
        """The most tokens the model reads, special tokens included."""
        prefix, suffix, room = self._specials()
        return len(prefix) + room + len(suffix)

    def token_ids(self, inputs: Sequence[ModelInput]) -> list[TokenArray]:
        """What the model reads for each input: texts are tokenised (in one batched call); token
        ids get the special tokens and the cut that tokenising their text would give."""
        texts = [i for i, item in enumerate(inputs) if isinstance(item, str)]
        encoded = self._tokenizer.encode_batch([inputs[i] for i in texts]) if texts else []
        tokenised = dict(zip(texts, (e.ids for e in encoded), strict=True))
        prefix, suffix, room = self._specials()
        return [
            np.asarray(tokenised[i], dtype=np.int64)
            if isinstance(item, str)
            else np.concatenate([prefix, item[:room], suffix], dtype=np.int64)
            for i, item in enumerate(inputs)
        ]

    def _specials(self) -> tuple[list[int], list[int], int]:
        """The tokens the tokenizer adds before and after a text, and how many of the text's own
        tokens it keeps."""
        if self._special_tokens is None:
            bare = self._tokenizer.encode("probe", add_special_tokens=False).ids
            full = self._tokenizer.encode("probe").ids
            at = next(i for i in range(len(full)) if full[i : i + len(bare)] == bare)
            prefix, suffix = full[:at], full[at + len(bare) :]
            limit = int((self._tokenizer.truncation or {}).get("max_length") or 1_000_000)
            self._special_tokens = (prefix, suffix, limit - len(prefix) - len(suffix))
        return self._special_tokens

    def padded(
        self, ids: list[TokenArray], fixed: bool = False
    ) -> Iterator[tuple[list[int], TokenArray, TokenArray]]:
        """``(positions, ids, mask)`` for each batch of :meth:`batches`."""
        lengths = [len(i) for i in ids]
        stepped = fixed or self.pads_to_step
        for batch in self.batches(lengths, fixed):
            longest = lengths[batch[0]]
            width = fixed_width(longest, self.max_length) if stepped else longest
            padded_ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                padded_ids[row, : lengths[i]] = ids[i]
                mask[row, : lengths[i]] = 1
            yield batch, padded_ids, mask

    def encode(self, texts: Sequence[ModelInput], progress: bool = False) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = self.token_ids(texts)
        with tqdm(total=len(ids), desc="texts", disable=not progress) as bar:

            def done(batch: list[int], hidden: Hidden, mask: TokenArray) -> None:
                out[batch] = mean_pool(hidden, mask)
                bar.update(len(batch))

            self.run(self.padded(ids), done)
        return out

    def encode_stream(
        self, chunks: Iterable[Sequence[ModelInput]], fixed: bool = False
    ) -> Generator[Vectors, None, None]:
        """Each chunk's vectors, in order, as :meth:`encode` gives them. The runtime works in a
        thread of its own and goes on to the next chunk without waiting while the caller stores
        the last one (chunk by chunk, tokenising, draining the queue and saving left the cores
        idle for about a tenth of a 75k-paper build). ``fixed``: in fixed-shape batches where
        the runtime has them (:attr:`fixed_shapes`); best with chunks sorted by length."""
        fixed = fixed and self.fixed_shapes
        finished: queue.Queue[tuple[int, Vectors] | BaseException | None] = queue.Queue()
        stop = threading.Event()
        lock = threading.Lock()
        left: dict[int, int] = {}
        outputs: dict[int, Vectors] = {}

        def batches() -> Iterator[tuple[tuple[int, list[int]], TokenArray, TokenArray]]:
            for number, chunk in enumerate(chunks):
                if stop.is_set():
                    return
                ids = self.token_ids(chunk)
                chunk_batches = list(self.padded(ids, fixed))
                outputs[number] = np.empty((len(ids), self.dim), dtype=np.float32)
                left[number] = len(chunk_batches)
                if not chunk_batches:
                    finished.put((number, outputs.pop(number)))
                for batch, padded_ids, mask in chunk_batches:
                    yield (number, batch), padded_ids, mask

        def done(key: tuple[int, list[int]], hidden: Hidden, mask: TokenArray) -> None:
            number, batch = key
            outputs[number][batch] = mean_pool(hidden, mask)
            with lock:
                left[number] -= 1
                if left[number] == 0:
                    finished.put((number, outputs.pop(number)))

        def work() -> None:
            try:
                self.run(batches(), done, fixed)
            except BaseException as error:  # noqa: BLE001 -- raised in the caller's thread
                finished.put(error)
            else:
                finished.put(None)

        worker = threading.Thread(target=work, name="embed-stream", daemon=True)
        worker.start()
        ready: dict[int, Vectors] = {}
        following = 0
        try:
            while (item := finished.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                ready[item[0]] = item[1]
                while following in ready:
                    yield ready.pop(following)
                    following += 1
        finally:
            stop.set()
            worker.join()

    def run(
        self,
        batches: Iterator[tuple[K, TokenArray, TokenArray]],
        done: Callable[[K, Hidden, TokenArray], None],
        fixed: bool = False,
    ) -> None:
        """Run every padded batch and hand its token embeddings to ``done`` with the batch's
        key; one at a time here, runtimes with parallel requests override it. ``fixed``: the
        batches come from ``batches(..., fixed=True)``."""
        for key, ids, mask in batches:
            done(key, self.forward(ids, mask), mask)


def mean_pool(hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]) -> Vectors:
    """Mean of the unpadded token embeddings, L2-normalised (as sentence-transformers does)."""
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
    normalised: Vectors = (pooled / norms).astype(np.float32)
    return normalised


def _tokenizer(weights: Path, max_tokens: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(weights / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()  # batches are padded to their own longest text
    return tokenizer
