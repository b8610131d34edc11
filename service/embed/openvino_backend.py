"""The ``openvino`` / ``openvino-int8`` backends: OpenVINO over the exported transformer, in
bf16 where the CPU has it natively or as a static int8 model; infer requests lent per thread."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.embed.pooled import (
    Hidden,
    K,
    PooledTransformer,
    TokenArray,
    _tokenizer,
)
from service.embed.speed import cpu_flags, isa_allows

log = logging.getLogger(__name__)


SERVING_CONFIG: dict[str, Any] = {
    "PERFORMANCE_HINT": "LATENCY",
    "INFERENCE_NUM_THREADS": 1,
    "ENABLE_CPU_PINNING": False,
}
"""A server's copies of the model: each runs a query on one thread, in the thread that asks.
With the build's one-stream-per-core setting, a lone query was handed to the runtime's stream
thread and spent about half its time waiting for it (13.8 ms for 5.9 ms of CPU here); pinned,
two copies shared one core."""

MOST_SERVING_COPIES = 8
"""Copies of the model a server compiles at most (one per core up to this)."""


class RequestPool:
    """Infer requests lent to one thread at a time.

    An OpenVINO infer request holds its own input and output tensors and runs one inference at
    a time ("Infer Request is busy" otherwise), so a server's threads each borrow one. One per
    stream of the runtime, or per copy of the model (one per core): a thread that finds none
    free waits for the next, as it would for a core."""

    def __init__(self, requests: Iterable[Any]) -> None:
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for request in requests:
            self._free.put(request)

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
    two are kept.

    Other batches pad to a multiple of 16 tokens too: a query whose token count differs from the
    last one's took 7.4-8.3 ms of CPU here, one of the same count 5.0-5.2 ms (the runtime
    prepares its kernels again for each new shape), and 16 tokens cost about what 8 do."""

    pads_to_step = True

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
        copies: Sequence[Any] = (),
    ) -> None:
        """``model`` and ``config``: the model ``compiled`` was compiled from, and how, to
        compile it again for fixed shapes (without them, every batch runs on ``compiled``).
        ``copies``: more compilations of it, each lending one infer request (a server's)."""
        self._compiled = compiled
        if copies:
            requests = [c.create_infer_request() for c in (compiled, *copies)]
        else:
            streams = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
            requests = [compiled.create_infer_request() for _ in range(streams)]
        self._parallel = len(requests)
        self._requests = RequestPool(requests)
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
        serving: bool = False,
    ) -> OpenVinoEmbedder:
        """``precision``: the inference precision hint (``bf16``, ``f32``); None = the model's.
        ``serving``: for a server's queries (:data:`SERVING_CONFIG`, one copy per core)."""
        import openvino

        cores = threads or max(1, os.cpu_count() or 1)
        # a build's: one stream per core, each batch on its own core: 1.3-1.8x the throughput
        # of one batch over all cores here (small GEMMs do not scale across cores)
        built = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_NUM_THREADS": cores}
        config: dict[str, Any] = SERVING_CONFIG.copy() if serving else built
        if precision is not None:
            config["INFERENCE_PRECISION_HINT"] = precision
        core = openvino.Core()
        model = core.read_model(str(model_file))
        lanes = min(cores, MOST_SERVING_COPIES) if serving else 1
        compiled = [core.compile_model(model, "CPU", config) for _ in range(lanes)]
        return cls(
            compiled[0],
            _tokenizer(weights, max_tokens),
            name=name or weights.name,
            revision=revision,
            backend=backend,
            batch_size=batch_size,
            model=model,
            config=config,
            copies=compiled[1:],
        )

    def forward(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        with self._requests.borrow() as request:
            result = request.infer(self.feeds(ids, mask))
            # a copy: the output tensor is the request's, reused by the next thread to borrow it
            return np.array(result[0], dtype=np.float32)

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
    hint roughly doubles fp32 speed, and ``ONEDNN_MAX_CPU_ISA`` does not hide it (OpenVINO
    then fails to compile bf16 kernels); elsewhere bf16 would be emulated slowly."""
    flags = cpu_flags()
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and isa_allows("AVX512_CORE_BF16")


def openvino_precision() -> str:
    """The precision the ``openvino`` backend computes in: bf16 where the CPU has it natively."""
    return "bf16" if cpu_has_bf16() else "f32"
