"""What machine a benchmark ran on, in one line for its report.

Timings from different sessions are only comparable with this next to them: the same
2-core slot has been an AVX2-only AMD EPYC (dn-gray: 1043 ms per 720p frame) and an
Intel Xeon with AVX512-VNNI (404 ms), and the ISA decides what INT8 and bf16 gain.
"""

from __future__ import annotations

import os

_ISA = (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"), ("avx512_vnni", "AVX512-VNNI"),
        ("avx_vnni", "AVX-VNNI"), ("avx512f", "AVX512"), ("avx2", "AVX2"), ("asimd", "NEON"))


def cpu_description() -> str:
    """E.g. ``Intel(R) Xeon(R) Processor, 2 CPUs, AVX512-VNNI AVX512 AVX2``: the CPU's
    model name, the CPUs this process may use, and the vector extensions that matter for
    the kernels."""
    from edgerestore.cpuinfo import cpu_flags, cpu_model

    flags = cpu_flags()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    isa = " ".join(label for flag, label in _ISA if flag in flags)
    return f"{cpu_model()}, {cpus} CPUs" + (f", {isa}" if isa else "")
