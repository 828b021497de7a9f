"""Tiny real ONNX models for tests, built with onnx.helper (run for real by ONNX Runtime),
and tiny training inputs (a folder of small synthetic images, a denoiser recipe).

Each builder returns an ``onnx.ModelProto`` with dynamic N, H, W; ``save`` stamps a
ModelSpec and writes the file. Their outputs have closed forms, so tests compare the
runtime against a NumPy reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgerestore.model_spec import ModelSpec, write_spec

OPSET = 17


def _io(name: str, channels: int):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", channels, "H", "W"])


def _model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def affine_denoiser(channels: int = 1, with_noise_level: bool = True):
    """out = 0.5 * image + noise_level (noise_level broadcast over channels)."""
    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    nodes = [helper.make_node("Mul", ["image", "half"], ["scaled"])]
    inputs = [_io("image", channels)]
    if with_noise_level:
        nodes.append(helper.make_node("Add", ["scaled", "sigma_map"], ["output"]))
        inputs.append(_io("sigma_map", 1))
    else:
        nodes.append(helper.make_node("Identity", ["scaled"], ["output"]))
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", channels, "H", "W"])
    return _model(nodes, inputs, [out], [half])


def box_blur(channels: int = 1):
    """3x3 mean filter per channel, zero padding 1 (a real convolution)."""
    w = np.full((channels, 1, 3, 3), 1 / 9, dtype=np.float32)
    nodes = [helper.make_node("Conv", ["image", "w"], ["output"], pads=[1, 1, 1, 1], group=channels)]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", channels, "H", "W"])
    return _model(nodes, [_io("image", channels)], [out], [numpy_helper.from_array(w, "w")])


def shift_right(channels: int = 1):
    """out[y, x] = image[y, x + 1] (0 past the right edge): a convolution with no symmetry,
    so its flips/rotations all differ."""
    w = np.zeros((channels, 1, 3, 3), dtype=np.float32)
    w[:, 0, 1, 2] = 1.0
    nodes = [helper.make_node("Conv", ["image", "w"], ["output"], pads=[1, 1, 1, 1], group=channels)]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", channels, "H", "W"])
    return _model(nodes, [_io("image", channels)], [out], [numpy_helper.from_array(w, "w")])


def nearest_upscaler(channels: int = 1, scale: int = 2):
    """Nearest-neighbour upscaling by an integer factor (Resize)."""
    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], dtype=np.float32), "scales")
    nodes = [helper.make_node("Resize", ["image", "", "scales"], ["output"], mode="nearest")]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", channels, "H2", "W2"])
    return _model(nodes, [_io("image", channels)], [out], [scales])


def spec_for(model, **overrides) -> ModelSpec:
    """A valid spec for one of the models above (inputs/roles derived from the graph)."""
    names = [i.name for i in model.graph.input]
    roles = {n: ("noise_level" if n == "sigma_map" else "mask" if n == "mask" else "image") for n in names}
    channels = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    fields = dict(
        name="tiny",
        task="denoise",
        color="gray" if channels == 1 else "bgr",
        inputs=roles,
        noise_level_range=(0.0, 75.0) if "noise_level" in roles.values() else None,
        description="tiny test model",
        provenance={"made_by": "tests/tiny_models.py"},
    )
    fields.update(overrides)
    return ModelSpec(**fields)


def save(model, path: Path, spec: ModelSpec | None = None) -> Path:
    """Stamp ``spec`` (default: spec_for(model)) and write the model to ``path``."""
    write_spec(model, spec or spec_for(model))
    onnx.save(model, str(path))
    return path


def save_raw(model, path: Path, metadata: dict[str, str]) -> Path:
    """Write ``model`` with exactly ``metadata`` as metadata_props (no validation)."""
    del model.metadata_props[:]
    for k, v in metadata.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))
    return path


def write_training_images(folder: Path, n: int = 6, size: int = 40) -> Path:
    """``n`` smooth random ``size`` x ``size`` gray PNGs (``img_000.png`` ...) in a new
    ``folder``, for training runs of a few steps; returns ``folder``."""
    import cv2

    folder.mkdir()
    r = np.random.default_rng(7)
    for i in range(n):
        base = cv2.resize(r.integers(0, 256, (5, 5), dtype=np.uint8), (size, size),
                          interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"img_{i:03d}.png"), base)
    return folder


def tiny_recipe(**fields):
    """A denoiser :class:`~edgerestore.training.denoise.Recipe` small enough to train in
    seconds (8 features, 4 layers, 16x16 patches, batch 4, every 3rd image held out, no
    validation, a log line per step); ``fields`` override it."""
    from edgerestore.training.denoise import Recipe

    base = dict(features=8, depth=4, patch=16, batch=4, holdout_every=3, val_every=0, log_every=1)
    base.update(fields)
    return Recipe(**base)
