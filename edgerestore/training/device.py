"""Where and in what precision a run trains: the torch device, and bf16 autocast.

Nothing here imports torch at module level: the functions take the module.
"""

from __future__ import annotations

from contextlib import nullcontext

from edgerestore.cpuinfo import cpu_flags as read_cpu_flags
from edgerestore.errors import InputError

PRECISIONS = ("fp32", "bf16")
"""Training precisions: fp32, or bf16 autocast (see :func:`autocast`)."""


def resolve_device(torch, name: str | None) -> str:
    """The torch device a run trains on: ``"auto"`` (or None) is ``"cuda"`` when torch
    sees a GPU, else ``"cpu"``; ``"cuda"``/``"cuda:N"`` without a usable GPU is an
    :class:`InputError` that says what to do."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: torch sees no CUDA GPU (torch {torch.__version__}; a CPU "
                             "build, or no driver). Install a CUDA build of torch, or use --device cpu")
        return name
    raise InputError(f"--device must be auto, cpu or cuda[:N], got {name!r}")


def check_precision(precision: str) -> None:
    """Raise :class:`InputError` unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def autocast(torch, device: str, precision: str):
    """The context the forward pass runs in: nothing for ``fp32``; for ``bf16``, torch's
    autocast to bfloat16 (convolutions and matmuls in bf16, weights, Adam and the loss
    in float32). Faster than fp32 only where the hardware has native bf16 (a GPU, or a
    CPU with AVX512-BF16, AMX or Arm's BF16; see :func:`precision_warning`); measured
    step times are in ``training/README.md``. Validation and export stay fp32."""
    check_precision(precision)
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def precision_warning(torch, device: str, precision: str, cpu_flags: set[str] | None = None) -> str | None:
    """A warning when ``bf16`` would be emulated on this CPU: without AVX512-BF16, AMX (x86)
    or the BFloat16 extension (Arm) it steps slower than fp32 (2-15x; measurements in
    ``training/README.md``). oneDNN's ``_is_mkldnn_bf16_supported()`` says True on any
    AVX512 CPU (it can emulate bf16 there), so the CPU's own flags decide where they can
    be read.

    ``cpu_flags``: the CPU's feature flags (default: read from ``/proc/cpuinfo``)."""
    if precision != "bf16" or not device.startswith("cpu"):
        return None
    flags = read_cpu_flags() if cpu_flags is None else cpu_flags
    if flags:
        native = bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})  # bf16: Arm's BFloat16 extension
    else:  # not Linux: ask oneDNN
        try:
            native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return None
    if native:
        return None
    return ("this CPU has no native bfloat16 (no AVX512-BF16, AMX or Arm BF16): bf16 is emulated and slower "
            "than fp32 here (2-15x); pass --precision fp32 (a resumed run keeps its stored precision)")
