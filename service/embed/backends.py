"""Embedding: texts -> L2-normalised float32 vectors, with a cache keyed by content hash.

The :class:`Embedder` protocol is what the rest of the service needs. The backends:

- ``torch``: sentence-transformers itself (any model, CPU or GPU).
- ``onnx`` / ``onnx-int8``: ONNX Runtime over the transformer exported at install time
  (``paperscope models prepare``); fp32 gives torch's vectors at about torch's speed on CPU,
  dynamic int8 about 1.8x (cosine ~0.995).
- ``openvino`` / ``openvino-int8``: OpenVINO over the same export, computing in bf16 where the
  CPU has it natively (torch's vectors, cosine >= 0.9999) or with a static int8 model calibrated
  on real abstracts at prepare time (cosine ~0.997); both about 3x torch on 2 cores here.

The exported backends share :class:`PooledTransformer`: the model's own tokenizer, batches by
token length (OpenVINO: long runs in a few fixed shapes, :class:`OpenVinoEmbedder`), mean
pooling and normalisation as sentence-transformers does them. Vectors at
least :data:`IDENTICAL_COSINE` from torch's (measured at prepare time) share torch's cache key
and build identity; the others get their own. ``auto`` (the default) is chosen by
:func:`choose_backend`. Vectors for papers are looked up in the store's cache first, and only
new or changed papers are sent to the model, chunk by chunk, so an interrupted build keeps its
work.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from service.config import Settings
from service.embed.models import ResolvedModel, onnx_agreement, resolve_model
from service.errors import InvalidInput
from service.store import Store

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
TokenArray = npt.NDArray[np.int64]
Hidden = npt.NDArray[np.float32]
"""Token embeddings of a batch: (texts, tokens, dim)."""
TokenIds = npt.NDArray[np.int32]
ModelInput = str | TokenIds
"""A text, or the ids of its tokens without the special tokens (what tokenising it gives)."""
K = TypeVar("K")

CHUNK = 1024
"""Papers embedded (and saved to the cache) per step."""


class Embedder(Protocol):
    name: str
    revision: str
    dim: int
    backend: str

    def encode(self, texts: Sequence[str], progress: bool = False) -> Vectors: ...

    @property
    def cache_key(self) -> str: ...


ChunkEncoder = Callable[[Sequence[str], Sequence[str]], Iterator[tuple[list[str], Vectors]]]
"""Embeds ``(texts, hashes)`` and yields ``(hashes, vectors)`` chunk by chunk, in any order.

How the texts that miss the cache get embedded: :func:`encode_in_chunks` here, or on a Ray
cluster (:mod:`service.pipeline.ray_engine`). Each chunk is saved as it arrives."""


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder (offline) or a hub name."""

    backend = "sentence-transformers/torch"

    def __init__(
        self,
        model: ResolvedModel,
        device: str | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        max_tokens: int | None = None,
    ):
        """``max_tokens``: read at most this many tokens (below the model's own limit, the
        vectors differ, so the revision names it)."""
        if model.local:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
        log.info("loading embedding model %s from %s", model.name, model.location)
        self._model = SentenceTransformer(model.location, device=device)
        self.name = model.name
        self.revision = model.revision
        limit = int(self._model.max_seq_length or 0)
        if max_tokens is not None and 0 < max_tokens < limit:
            self._model.max_seq_length = max_tokens
            self.revision = f"{model.revision}@{max_tokens}tok"
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"model {model.name} does not report its embedding dimension")
        self.dim = int(dim)
        self.batch_size = batch_size

    @property
    def cache_key(self) -> str:
        return f"{self.name}@{self.revision}"

    def encode(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


IDENTICAL_COSINE = 0.9999
"""Vectors of a backend at least this close to torch's (measured when the model was prepared)
share torch's cache and build identity; others get their own."""

TOKEN_BUDGET = 8192
"""Tokens per batch (padding included): short texts go in larger batches, long ones in smaller."""

FIXED_WIDTH_STEP = 16
"""Fixed-shape batches pad their texts to a multiple of this many tokens (2.5% more tokens on
arXiv windows, against 16 shapes to compile)."""
FIXED_SHAPES_FROM = 20_000
"""Texts in one run from which fixed shapes pay: compiling the shapes of a run of arXiv windows
took 6.8 s (16 shapes, ``paperscope bench embed-path``), about what 10% of 10,000 windows'
embedding saves (see :class:`OpenVinoEmbedder`)."""


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
        for batch in self.batches(lengths, fixed):
            longest = lengths[batch[0]]
            width = fixed_width(longest, self.max_length) if fixed else longest
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


class OnnxEmbedder(PooledTransformer):
    """ONNX Runtime over the exported transformer (fp32, or int8 quantised dynamically)."""

    def __init__(
        self,
        session: Any,
        tokenizer: Any,
        *,
        name: str,
        revision: str,
        backend: str,
        batch_size: int = 32,
    ) -> None:
        self._session = session
        dim = int(session.get_outputs()[0].shape[-1])
        super().__init__(
            tokenizer, name=name, revision=revision, backend=backend, dim=dim, batch_size=batch_size
        )
        self._inputs = {i.name for i in session.get_inputs()}

    @classmethod
    def from_files(
        cls,
        weights: Path,
        onnx_file: Path,
        max_tokens: int,
        *,
        name: str = "",
        revision: str = "",
        backend: str = "onnx",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> OnnxEmbedder:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        return cls(
            session,
            _tokenizer(weights, max_tokens),
            name=name or weights.name,
            revision=revision,
            backend=backend,
            batch_size=batch_size,
        )

    def forward(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        hidden = self._session.run(None, self.feeds(ids, mask))
        return np.asarray(hidden[0], dtype=np.float32)


class RequestPool:
    """Infer requests lent to one thread at a time.

    An OpenVINO infer request holds its own input and output tensors and runs one inference at
    a time ("Infer Request is busy" otherwise), so a server's threads each borrow one. As many
    as the runtime has streams (one per core): a thread that finds none free waits for the
    next, as it would for a core."""

    def __init__(self, create: Callable[[], Any], size: int) -> None:
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(max(1, size)):
            self._free.put(create())

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Any]:
        request = self._free.get()
        try:
            yield request
        finally:
            self._free.put(request)


class OpenVinoEmbedder(PooledTransformer):
    """OpenVINO over the exported transformer: fp32 weights computed in bf16 where the CPU has
    bf16 instructions (``openvino``), or the statically quantised int8 model (``openvino-int8``,
    calibrated on real abstracts when the model was prepared).

    Long runs use fixed shapes: the model compiled for one (texts, tokens) shape fuses the
    attention and the element-wise operations that it cannot fuse over dynamic shapes, about
    13% more tokens a second here (3,000 arXiv papers' windows: 34,200 against 30,200). Each
    shape is compiled when its first full batch comes (about half a second); texts sorted by
    length ask for each shape once, and as a compiled shape holds about 200 MB, only the last
    two are kept."""

    def __init__(
        self,
        compiled: Any,
        tokenizer: Any,
        *,
        name: str,
        revision: str,
        backend: str,
        batch_size: int = 32,
        model: Any = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        """``model`` and ``config``: the model ``compiled`` was compiled from, and how, to
        compile it again for fixed shapes (without them, every batch runs on ``compiled``)."""
        self._compiled = compiled
        self._parallel = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._requests = RequestPool(compiled.create_infer_request, self._parallel)
        self._model, self._config = model, config or {}
        dim = int(compiled.outputs[0].get_partial_shape()[-1].get_length())
        super().__init__(
            tokenizer, name=name, revision=revision, backend=backend, dim=dim, batch_size=batch_size
        )
        self._inputs = {port.get_any_name() for port in compiled.inputs}
        self.fixed_shapes = model is not None

    @classmethod
    def from_files(
        cls,
        weights: Path,
        model_file: Path,
        max_tokens: int,
        *,
        precision: str | None = None,
        name: str = "",
        revision: str = "",
        backend: str = "openvino",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> OpenVinoEmbedder:
        """``precision``: the inference precision hint (``bf16``, ``f32``); None = the model's."""
        import openvino

        config: dict[str, Any] = {
            # one stream per core, each batch on its own core: 1.3-1.8x the throughput of one
            # batch over all cores here (small GEMMs do not scale across cores)
            "PERFORMANCE_HINT": "THROUGHPUT",
            "INFERENCE_NUM_THREADS": threads or max(1, os.cpu_count() or 1),
        }
        if precision is not None:
            config["INFERENCE_PRECISION_HINT"] = precision
        core = openvino.Core()
        model = core.read_model(str(model_file))
        return cls(
            core.compile_model(model, "CPU", config),
            _tokenizer(weights, max_tokens),
            name=name or weights.name,
            revision=revision,
            backend=backend,
            batch_size=batch_size,
            model=model,
            config=config,
        )

    def forward(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        with self._requests.borrow() as request:
            result = request.infer(self.feeds(ids, mask))
            # a copy: the output tensor is the request's, reused by the next thread to borrow it
            return np.array(result[self._compiled.outputs[0]], dtype=np.float32)

    def run(
        self,
        batches: Iterator[tuple[K, TokenArray, TokenArray]],
        done: Callable[[K, Hidden, TokenArray], None],
        fixed: bool = False,
    ) -> None:
        """As many batches in flight as the runtime has streams (one per core); with ``fixed``,
        full fixed-shape batches on the model compiled for their shape."""
        first = list(itertools.islice(batches, 2))
        if self._parallel == 1 or len(first) < 2:  # a query: no queue to set up
            super().run(itertools.chain(first, batches), done)
            return
        import openvino

        errors: list[Exception] = []

        def finished(request: Any, userdata: tuple[K, TokenArray]) -> None:
            try:
                hidden = np.asarray(request.get_output_tensor(0).data, dtype=np.float32)
                done(userdata[0], hidden, userdata[1])
            except Exception as error:  # noqa: BLE001 -- raised below, not lost in its thread
                errors.append(error)

        def queue_for(compiled: Any) -> Any:
            queue = openvino.AsyncInferQueue(compiled, self._parallel)
            queue.set_callback(finished)
            return queue

        dynamic = queue_for(self._compiled)
        shape: tuple[int, int] | None = None
        static = retired = None
        for key, ids, mask in itertools.chain(first, batches):
            queue = dynamic
            rows, width = ids.shape
            if fixed and self._model is not None and rows == self.full_rows(width):
                if ids.shape != shape:
                    # the shape before the last one is done by now; its memory can go (the
                    # last one's batches still run while the new shape compiles)
                    if retired is not None:
                        retired.wait_all()
                    shape, retired = ids.shape, static
                    static = queue_for(self._compile(shape))
                queue = static
            queue.start_async(self.feeds(ids, mask), (key, mask))
        for running in (dynamic, retired, static):
            if running is not None:
                running.wait_all()
        if errors:
            raise errors[0]

    def _compile(self, shape: tuple[int, int]) -> Any:
        import openvino

        start = time.perf_counter()
        model = self._model.clone()
        model.reshape({port.get_any_name(): list(shape) for port in model.inputs})
        compiled = openvino.Core().compile_model(model, "CPU", self._config)
        self.compile_seconds += time.perf_counter() - start
        log.debug("compiled the model for batches of %d x %d tokens", *shape)
        return compiled


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where OpenVINO's bf16
    hint roughly doubles fp32 speed; elsewhere it would emulate it slowly."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _gpu_present() -> bool:
    return Path("/proc/driver/nvidia").exists()


OPENVINO_INT8 = "model-int8-static.xml"
"""The statically quantised int8 model, prepared by ``paperscope models prepare``."""


def choose_backend(requested: str, resolved: ResolvedModel) -> str:
    """``auto`` on a CPU with a prepared export: OpenVINO in bf16 where the CPU computes bf16
    natively (torch's vectors, cosine >= 0.9999, at about 3x torch's speed), else OpenVINO's
    static int8 model (cosine about 0.997, as fast), else ONNX Runtime fp32. Torch with a GPU, or
    for a model without a prepared export."""
    if requested != "auto":
        return requested
    if resolved.onnx_dir is None or _gpu_present():
        return "torch"
    if cpu_has_bf16():
        return "openvino"
    if (resolved.onnx_dir / OPENVINO_INT8).is_file():
        return "openvino-int8"
    return "onnx"


def load_embedder(settings: Settings, threads: int | None = None) -> Embedder:
    """The configured model; ``threads`` caps its CPU threads (default: every core)."""
    resolved = resolve_model(settings.model, settings.models_dir)
    backend = choose_backend(settings.backend, resolved)
    if backend == "torch":
        return SentenceTransformerEmbedder(
            resolved, settings.device, settings.embed_batch_size, threads, settings.embed_max_tokens
        )
    prepared = resolved.onnx_dir
    files = {
        "onnx": "model.onnx",
        "onnx-int8": "model-int8.onnx",
        "openvino": "model.onnx",
        "openvino-int8": OPENVINO_INT8,
    }
    if prepared is None or not (prepared / files[backend]).is_file():
        raise InvalidInput(
            f"backend {backend!r} needs the prepared export of {resolved.name} "
            f"({files[backend]}); run: paperscope models prepare (or set PAPERSCOPE_BACKEND=torch)"
        )
    agreement = onnx_agreement(prepared, backend) or {}
    identical = agreement.get("min_cosine", 0.0) >= IDENTICAL_COSINE
    revision = resolved.revision if identical else f"{resolved.revision}+{backend}"
    log.info("embedding backend %s (agreement with torch: %s)", backend, agreement or "unknown")
    weights, max_tokens = (
        Path(resolved.location),
        min(_max_tokens(Path(resolved.location)), settings.embed_max_tokens),
    )
    if max_tokens < _max_tokens(weights):
        revision = f"{revision}@{max_tokens}tok"
    embedder: OnnxEmbedder | OpenVinoEmbedder
    if backend.startswith("onnx"):
        embedder = OnnxEmbedder.from_files(
            weights,
            prepared / files[backend],
            max_tokens,
            name=resolved.name,
            revision=revision,
            backend=f"onnxruntime/{'fp32' if backend == 'onnx' else 'int8'}",
            batch_size=settings.embed_batch_size,
            threads=threads,
        )
    else:
        precision = None if backend == "openvino-int8" else openvino_precision()
        embedder = OpenVinoEmbedder.from_files(
            weights,
            prepared / files[backend],
            max_tokens,
            precision=precision,
            name=resolved.name,
            revision=revision,
            backend=f"openvino/{precision or 'int8-static'}",
            batch_size=settings.embed_batch_size,
            threads=threads,
        )
    embedder.agreement = agreement or None
    return embedder


def openvino_precision() -> str:
    """The precision the ``openvino`` backend computes in: bf16 where the CPU has it natively."""
    return "bf16" if cpu_has_bf16() else "f32"


def _max_tokens(weights: Path) -> int:
    """The model's own window (sentence-transformers' max_seq_length), 256 for MiniLM."""
    import json

    config = weights / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", 256))
    return 256


def encode_in_chunks(
    embedder: Embedder,
    texts: Sequence[str],
    hashes: Sequence[str],
    inputs: Sequence[ModelInput] | None = None,
) -> Iterator[tuple[list[str], Vectors]]:
    """The local engine: ``CHUNK`` texts at a time with the embedder in this process, streamed
    where the embedder can (:meth:`PooledTransformer.encode_stream`). ``inputs``: what the model
    reads for each text, where the caller has its token ids already."""
    starts = range(0, len(texts), CHUNK)
    if not isinstance(embedder, PooledTransformer):
        for start in starts:
            yield list(hashes[start : start + CHUNK]), embedder.encode(texts[start : start + CHUNK])
        return
    read = list(texts if inputs is None else inputs)
    hashes = list(hashes)
    fixed = embedder.fixed_shapes and len(read) >= FIXED_SHAPES_FROM
    if fixed:  # longest first (ids by their tokens, texts by their characters): few shapes each
        order = sorted(range(len(read)), key=lambda i: len(read[i]), reverse=True)
        read, hashes = [read[i] for i in order], [hashes[i] for i in order]
    stream = embedder.encode_stream((read[start : start + CHUNK] for start in starts), fixed)
    for start, vectors in zip(starts, stream, strict=True):
        yield hashes[start : start + CHUNK], vectors


def embed_with_cache(
    store: Store,
    embedder: Embedder,
    texts: Sequence[str],
    hashes: Sequence[str],
    progress: bool = True,
    encode: ChunkEncoder | None = None,
    inputs: Sequence[ModelInput] | None = None,
) -> tuple[Vectors, int]:
    """Vectors for ``texts`` in order, embedding only those whose hash is not cached.

    ``encode`` embeds the missing texts (default: :func:`encode_in_chunks` with ``embedder``,
    reading ``inputs`` where given: the texts' token ids); it must give the vectors
    ``embedder`` would. Returns the matrix and how many texts were embedded now.
    """
    key = embedder.cache_key
    cached = store.cached_embeddings(key, hashes)
    missing = [i for i, h in enumerate(hashes) if h not in cached]
    missing_hashes = list(dict.fromkeys(hashes[i] for i in missing))
    first_of = {h: i for i in reversed(missing) for h in [hashes[i]]}
    log.info("embedding: %d cached, %d to embed", len(hashes) - len(missing), len(missing_hashes))
    with tqdm(
        total=len(missing_hashes), desc="embedding", unit="paper", disable=not progress
    ) as bar:
        missing_texts = [texts[first_of[h]] for h in missing_hashes]
        if encode is None:
            read = None if inputs is None else [inputs[first_of[h]] for h in missing_hashes]
            chunks = encode_in_chunks(embedder, missing_texts, missing_hashes, read)
        else:
            chunks = encode(missing_texts, missing_hashes)
        for chunk, vectors in chunks:
            store.save_embeddings(key, chunk, vectors)
            cached.update(zip(chunk, vectors, strict=True))
            bar.update(len(chunk))
    matrix = np.empty((len(hashes), embedder.dim), dtype=np.float32)
    for row, text_hash in enumerate(hashes):
        matrix[row] = cached[text_hash]
    return matrix, len(missing_hashes)
