"""Machine facts the benchmark prints beside its ratios (api/loadtest/measure.py)."""

from __future__ import annotations

from api.loadtest.measure import cpu_flags

CPUINFO = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512vl
processor\t: 1
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512vl
"""


def test_cpu_flags_names_the_vector_extensions_in_a_fixed_order() -> None:
    assert cpu_flags(CPUINFO) == "avx2 avx512f avx512bw avx512vl"


def test_a_cpu_without_any_says_so() -> None:
    assert cpu_flags("flags\t\t: fpu sse2\n") == "none"
    assert cpu_flags("model name\t: something\n") == "unknown"


def test_this_machines_flags_are_read_from_proc_cpuinfo() -> None:
    assert cpu_flags() not in ("", "unknown")  # the suite runs on Linux
