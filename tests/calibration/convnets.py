"""Tiny real conv nets for the calibration tests, built with onnx.helper and NumPy.

:func:`conv_denoiser` is a three-layer Conv/ReLU net with a noise-level input, shaped
like the shipped FFDNet-style model (concat image + noise map -> conv + ReLU -> conv +
ReLU -> conv -> subtract from the image), with fixed-seed weights chosen so that it
really denoises a little: half of the first layer's channels are 3x3 high-pass
filters, the last layer adds them up, and the output is image minus that estimate of
the noise, scaled by the noise level. ONNX Runtime runs it for real.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.tiny_models import _io, _model


def conv_denoiser(features: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    f = features
    blur = np.full((3, 3), 1 / 9, np.float32)
    high = -blur.copy()
    high[1, 1] += 1.0  # image - blur(image)
    w1 = rng.normal(0, 0.05, (f, 2, 3, 3)).astype(np.float32)
    for k in range(f // 2):  # +/- high-pass pairs: relu(x) - relu(-x) = x
        sign = 1.0 if k % 2 == 0 else -1.0
        w1[k, 0] = sign * high
        w1[k, 1] = 0.0
    b1 = rng.normal(0, 0.01, f).astype(np.float32)
    w2 = (np.eye(f, dtype=np.float32)[:, :, None, None] * np.pad(np.ones((1, 1), np.float32), 1)
          + rng.normal(0, 0.01, (f, f, 3, 3)).astype(np.float32))
    b2 = np.zeros(f, np.float32)
    w3 = np.zeros((1, f, 3, 3), np.float32)
    for k in range(f // 2):
        w3[0, k, 1, 1] = 0.8 if k % 2 == 0 else -0.8
    w3 += rng.normal(0, 0.005, w3.shape).astype(np.float32)
    b3 = np.zeros(1, np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"), (w3, "w3"), (b3, "b3")]]
    nodes = [
        helper.make_node("Concat", ["image", "sigma_map"], ["x0"], axis=1, name="concat"),
        helper.make_node("Conv", ["x0", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["noise"], pads=[1, 1, 1, 1], name="conv3"),
        helper.make_node("Sub", ["image", "noise"], ["output"], name="sub"),
    ]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])
    return _model(nodes, [_io("image", 1), _io("sigma_map", 1)], [out], inits)


def reference(model, image: np.ndarray, sigma_map: np.ndarray) -> np.ndarray:
    """The ONNX reference evaluator's output (independent of ONNX Runtime)."""
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, {"image": image, "sigma_map": sigma_map})[0]
