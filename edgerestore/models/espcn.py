"""ESPCN-class super-resolution on luma: the body runs at low resolution, a sub-pixel
convolution (pixel shuffle) makes the high-resolution output.

Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network", CVPR 2016, with three changes for a model
trained in CPU minutes rather than days on ImageNet:

* a deeper LR body (one 5x5 conv then ``depth`` 3x3 convs, ReLU) than ESPCN's 3 layers;
* a linear skip: a 5x5 conv from the LR input to the ``scale**2`` sub-pixel phases,
  initialised to the polyphase weights of bicubic interpolation (Keys, a = -0.5), so
  the untrained network *is* bicubic upscaling and the body learns the residual;
* one body shared by several scales, each with its own tail and skip (as MDSR): one
  training run trains x2, x3 and x4, and each scale exports to its own small ONNX file.

Graph of one exported scale ``s`` (dynamic H and W; input and output luma in [0, 1])::

    image   N x 1 x H x W
      -> conv5x5(1->F) + ReLU -> depth x [conv3x3(F->F) + ReLU]    (all at H x W)
      -> conv3x3(F -> s*s)  +  skip conv5x5(1 -> s*s)
      -> pixel_shuffle(s) = DepthToSpace             N x 1 x sH x sW
      -> clip(0, 1)                                   (export/eval mode only)

Operators: Conv, Relu, Add, Reshape/Transpose or DepthToSpace, Clip (opset 17; ONNX
Runtime and TensorRT both run them). Torch is imported inside :func:`build` only.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from edgerestore._lazy import require
from edgerestore.errors import InputError

ARCH = "edgerestore.models.espcn"
TASK = "super_resolution"

DEFAULT_CONFIG: dict[str, Any] = {"scales": [2, 3, 4], "features": 32, "depth": 6}
INPUT_NAMES = ("image",)
OUTPUT_NAME = "output"


def _torch():
    return require("torch", purpose="the ESPCN super-resolution architecture (training and export)")


def _keys(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    ax = np.abs(x)
    return np.where(ax <= 1, (a + 2) * ax**3 - (a + 3) * ax**2 + 1,
                    np.where(ax < 2, a * ax**3 - 5 * a * ax**2 + 8 * a * ax - 4 * a, 0.0))


def bicubic_phase_weights(scale: int) -> np.ndarray:
    """``scale**2 x 1 x 5 x 5`` conv weights whose pixel shuffle is bicubic upscaling.

    Output pixel ``I = i * s + p`` sits at LR coordinate ``i + (p + 0.5) / s - 0.5``
    (pixel centres aligned, as MATLAB's imresize); its weights on LR taps ``i - 2 .. i + 2``
    are Keys' cubic (a = -0.5) of the distances. Channel ``py * s + px`` of the conv is
    phase (py, px), which is what pixel_shuffle expects.
    """
    s = int(scale)
    taps = np.arange(-2, 3, dtype=np.float64)
    w1 = np.empty((s, 5))
    for p in range(s):
        d = (p + 0.5) / s - 0.5
        k = _keys(taps - d)
        w1[p] = k / k.sum()
    w = np.einsum("yi,xj->yxij", w1, w1).reshape(s * s, 1, 5, 5)
    return w.astype(np.float32)


def check_scale(config: Mapping[str, Any], scale: int | None) -> int:
    """The scale to export: ``scale`` if the config trained it (or the only one)."""
    scales = [int(s) for s in config["scales"]]
    if scale is None:
        if len(scales) == 1:
            return scales[0]
        raise InputError(f"this checkpoint has heads for scales {scales}: choose one with --scale")
    if int(scale) not in scales:
        raise InputError(f"this checkpoint has no x{scale} head; it was trained for scales {scales}")
    return int(scale)


def build(scales: Sequence[int] = (2, 3, 4), features: int = 32, depth: int = 6, *,
          scale: int | None = None, clip_output: bool = False):
    """A new ESPCN-class model (``torch.nn.Module``) with random body weights.

    ``scales``: the heads (tails + skips) the shared body feeds. With ``scale`` given
    the module has only that head and ``forward(image)``; without it, ``forward(image,
    scale)`` (training). ``clip_output`` clips to [0, 1] (off for training).
    """
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional
    scales = [int(s) for s in scales]
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    heads = scales if scale is None else [int(scale)]

    class ESPCN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = {"scales": list(scales), "features": int(features), "depth": int(depth)}
            self.clip_output = clip_output
            self.scale = None if scale is None else int(scale)
            layers: list[nn.Module] = [nn.Conv2d(1, features, 5, padding=2), nn.ReLU(inplace=True)]
            for _ in range(depth):
                layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True)]
            self.body = nn.Sequential(*layers)
            self.tails = nn.ModuleDict({str(s): nn.Conv2d(features, s * s, 3, padding=1) for s in heads})
            self.skips = nn.ModuleDict({str(s): nn.Conv2d(1, s * s, 5, padding=2) for s in heads})
            for m in self.body:
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)
            for s in heads:
                tail, skip = self.tails[str(s)], self.skips[str(s)]
                nn.init.normal_(tail.weight, std=1e-3)  # the untrained net is bicubic
                nn.init.zeros_(tail.bias)
                with torch.no_grad():
                    skip.weight.copy_(torch.from_numpy(bicubic_phase_weights(s)))
                    skip.bias.zero_()

        def upscale(self, image, s: int):
            key = str(s)
            out = F.pixel_shuffle(self.tails[key](self.body(image)) + self.skips[key](image), s)
            if self.clip_output:
                out = out.clamp(0.0, 1.0)
            return out

        def forward(self, image, scale: int | None = None):
            if self.scale is not None:
                return self.upscale(image, self.scale)
            return self.upscale(image, int(scale))

    return ESPCN()


def state_for_scale(state: Mapping[str, Any], scale: int) -> dict[str, Any]:
    """The weights of a multi-scale state dict that a ``build(..., scale=scale)`` model has."""
    keep = ("body.", f"tails.{scale}.", f"skips.{scale}.")
    return {k: v for k, v in state.items() if k.startswith(keep)}


def count_params(config: Mapping[str, Any], scale: int | None = None) -> int:
    """Weights and biases of the exported model for ``scale`` (all heads when None)."""
    f, d = int(config["features"]), int(config["depth"])
    n = (25 * f + f) + d * (9 * f * f + f)
    for s in ([scale] if scale else config["scales"]):
        s2 = int(s) ** 2
        n += (9 * f * s2 + s2) + (25 * s2 + s2)
    return n


def mflops_per_megapixel(config: Mapping[str, Any], scale: int) -> float:
    """FLOPs (2 x multiply-adds, convolutions only) per *output* pixel = MFLOPs per
    output megapixel: the body runs on 1/scale**2 of the output pixels."""
    f, d, s2 = int(config["features"]), int(config["depth"]), int(scale) ** 2
    macs_per_lr_pixel = 25 * f + d * 9 * f * f + 9 * f * s2 + 25 * s2
    return 2.0 * macs_per_lr_pixel / s2


def receptive_radius(config: Mapping[str, Any]) -> int:
    """LR pixels of context each output depends on (5x5, depth 3x3, the 3x3 tail)."""
    return 2 + int(config["depth"]) + 1


def example_inputs(config: Mapping[str, Any], height: int, width: int, batch: int = 1, seed: int = 0):
    """A random LR luma tensor ``batch x 1 x height x width`` (export and parity checks)."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 1, height, width, generator=g),)


def model_spec(config: Mapping[str, Any], *, scale: int, name: str, provenance: Mapping[str, Any],
               description: str = ""):
    """The :class:`~edgerestore.model_spec.ModelSpec` of the exported x``scale`` model."""
    from edgerestore.model_spec import ModelSpec

    overlap = int((receptive_radius(config) + 7) // 8 * 8)
    return ModelSpec(
        name=name,
        task=TASK,
        scale=int(scale),
        color="luma",
        value_range=(0.0, 1.0),
        inputs={INPUT_NAMES[0]: "image"},
        output=OUTPUT_NAME,
        size_multiple=1,
        tile_size=512,
        tile_overlap=overlap,
        profile={"min": (16, 16), "opt": (1080 // scale, 1920 // scale), "max": (2160 // scale, 3840 // scale)},
        precision="fp32",
        description=description or (
            f"ESPCN-class x{scale} super-resolution on BT.601 luma (chroma bicubic), "
            f"{config['features']} features, {int(config['depth']) + 2} conv layers at low resolution"
        ),
        provenance=dict(provenance),
    )
