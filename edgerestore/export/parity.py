"""The export parity check: ONNX Runtime (CPU) against PyTorch on the same random inputs.

A model whose outputs differ by more than ``atol`` on any of several input sizes is
refused with :class:`~edgerestore.errors.ModelError` (the exporter then writes nothing).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import ModelError

DEFAULT_ATOL = 1e-4
"""Max |ORT - torch| allowed on outputs in [0, 1] (0.03 of a gray level): fp32 kernels of
both agree far more closely on these nets; the margin is for other CPUs' kernels."""

DEFAULT_PARITY_SIZES: tuple[tuple[int, int, int], ...] = ((1, 64, 64), (2, 48, 80), (1, 126, 94))
"""(batch, height, width) of the inputs compared: non-square and batch > 1 included."""

SR_PARITY_SIZES: tuple[tuple[int, int, int], ...] = ((1, 32, 32), (2, 27, 41), (1, 63, 47))
"""The same for super-resolution, whose inputs are low-resolution: odd sizes too (no
size multiple)."""


def parity_check(onnx_bytes: bytes, model, arch, config: Mapping[str, Any], *,
                 atol: float = DEFAULT_ATOL,
                 sizes: Sequence[tuple[int, int, int]] = DEFAULT_PARITY_SIZES) -> dict[str, float]:
    """Run ONNX Runtime (CPU) and PyTorch on the same random inputs; raise if they differ.

    ``arch``: the architecture module (its ``example_inputs`` and ``INPUT_NAMES``);
    ``config``: the model's ``build`` arguments. Returns ``{"NxHxW": max abs
    difference}``; raises :class:`ModelError` when any difference exceeds ``atol``.
    """
    torch = require("torch", purpose="the export parity check")
    ort = require("onnxruntime", purpose="the export parity check")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    model.eval()
    diffs: dict[str, float] = {}
    for i, (n, h, w) in enumerate(sizes):
        inputs = arch.example_inputs(config, h, w, batch=n, seed=1000 + i)
        with torch.no_grad():
            ref = model(*inputs).numpy()
        feed = {name: t.numpy() for name, t in zip(arch.INPUT_NAMES, inputs)}
        got = sess.run(None, feed)[0]
        if got.shape != ref.shape:
            raise ModelError(f"parity check: ONNX output shape {got.shape} != PyTorch {ref.shape} "
                             f"for input {n}x{h}x{w}")
        diff = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
        diffs[f"{n}x{h}x{w}"] = diff
        if not diff <= atol:
            raise ModelError(
                f"parity check failed: ONNX Runtime and PyTorch outputs differ by {diff:.3g} "
                f"(> atol {atol:g}) on a {n}x{h}x{w} input; the file was not written"
            )
    return diffs
