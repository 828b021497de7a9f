"""What the CPU is and which vector extensions it has (``/proc/cpuinfo`` on Linux).

Used where the ISA changes a decision or a figure: INT8 quantization settings (VNNI),
the bf16 training warning (AVX512-BF16/AMX) and the machine line of benchmark reports.
"""

from __future__ import annotations

import platform


def _cpuinfo_first(keys: tuple[str, ...]) -> str | None:
    """The value of the first ``/proc/cpuinfo`` line whose key is in ``keys``, or None."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in keys:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """The first CPU's feature flags (``avx2``, ``avx512_vnni``, ... on x86; ``asimd``
    ... on ARM); empty where they cannot be read (not Linux)."""
    return set((_cpuinfo_first(("flags", "Features")) or "").split())


def cpu_model() -> str:
    """The CPU's model name, e.g. ``Intel(R) Xeon(R) Processor`` (the platform's
    processor or machine string where ``/proc/cpuinfo`` has none)."""
    return _cpuinfo_first(("model name",)) or platform.processor() or platform.machine()
