"""service.runtime: faiss's bundled OpenBLAS gets AVX-512 kernels where the CPU has them, and
work run in a spawned child gives what it gives in this process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.runtime import AVX512_FLAGS, KERNEL, cpu_flags, prefer_avx512_kernels, start_elsewhere
from service.topics.labels import count_terms


def test_avx512_cpus_get_the_skylakex_kernels() -> None:
    environ: dict[str, str] = {}
    assert prefer_avx512_kernels(environ, AVX512_FLAGS | {"sse2"}) == KERNEL
    assert environ == {"OPENBLAS_CORETYPE": KERNEL}


def test_a_cpu_missing_one_avx512_flag_keeps_openblas_choice() -> None:
    environ: dict[str, str] = {}
    assert prefer_avx512_kernels(environ, AVX512_FLAGS - {"avx512vl"}) is None
    assert environ == {}


def test_a_users_choice_stands() -> None:
    environ = {"OPENBLAS_CORETYPE": "HASWELL"}
    assert prefer_avx512_kernels(environ, AVX512_FLAGS) == "HASWELL"


def test_cpu_flags_read_the_first_flags_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f\nflags\t: other\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse2", "avx512f"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_faiss_loads_the_kernels_service_chose() -> None:
    """In a fresh process, importing service before faiss is enough (the real library asked)."""
    if not cpu_flags() >= AVX512_FLAGS:
        pytest.skip("this CPU lacks AVX-512: OpenBLAS keeps its own choice")
    code = (
        "import ctypes, pathlib, service, faiss\n"
        "libs = pathlib.Path(faiss.__file__).parent.parent / 'faiss_cpu.libs'\n"
        "found = sorted(libs.glob('libopenblas*.so*'))\n"
        "lib = ctypes.CDLL(str(found[0])) if found else None\n"
        "if lib is not None: lib.openblas_get_corename.restype = ctypes.c_char_p\n"
        "print(lib.openblas_get_corename().decode() if lib is not None else 'no-openblas')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    if out == "no-openblas":
        pytest.skip("this faiss build does not bundle OpenBLAS")
    assert out.lower() == KERNEL.lower()


TEXTS = [
    "offline reinforcement learning from logged data",
    "reinforcement learning for robot control",
    "graph neural networks for molecules",
    "molecular property prediction with graph neural networks",
]


def test_terms_counted_elsewhere_equal_terms_counted_here() -> None:
    here = count_terms(TEXTS, 0)
    there = start_elsewhere(count_terms, TEXTS, 0)()
    assert here is not None and there is not None
    assert list(there.vocabulary) == list(here.vocabulary)
    assert (there.per_paper != here.per_paper).nnz == 0


def test_a_childs_error_reaches_the_caller() -> None:
    wait = start_elsewhere(int, "not a number")
    with pytest.raises(ValueError, match="not a number"):
        wait()
