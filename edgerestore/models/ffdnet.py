"""FFDNet-style non-blind denoiser with a noise-level map input.

Zhang, Zuo and Zhang, "FFDNet: Toward a Fast and Flexible Solution for CNN based Image
Denoising", IEEE TIP 2018, with two changes that make it cheaper to train on little
compute: the body predicts the noise (residual learning, as DnCNN) instead of the clean
image, and there is no BatchNorm at all (nothing to fold at export).

Graph (all inside the exported ONNX, so the runtime feeds full-resolution tensors)::

    image        N x C x H x W  float32 in [0, 1]           (H, W even)
    noise_level  N x 1 x H x W  float32 sigma/255 per pixel
      -> pixel_unshuffle(image, 2)            N x 4C x H/2 x W/2
      -> avg_pool2d(noise_level, 2)           N x 1  x H/2 x W/2
      -> concat -> conv3x3 + ReLU -> (depth - 2) x [conv3x3 + ReLU] -> conv3x3 to 4C
      -> pixel_shuffle(., 2) = predicted noise  N x C x H x W
    output = clip(image - predicted noise, 0, 1)   (clip only in export/eval mode)

Only Conv, Relu, Concat, AveragePool, Reshape/Transpose (or SpaceToDepth/DepthToSpace),
Sub and Clip: opset 17 operators that both ONNX Runtime and TensorRT implement, with
dynamic H and W.
"""

from __future__ import annotations

from typing import Any, Mapping

from edgerestore._lazy import require

ARCH = "edgerestore.models.ffdnet"

DEFAULT_CONFIG: dict[str, Any] = {"channels": 1, "features": 64, "depth": 15}
SIZE_MULTIPLE = 2


def _torch():
    return require("torch", purpose="the FFDNet denoiser architecture (training and export)")


def build(channels: int = 1, features: int = 64, depth: int = 15, *, clip_output: bool = False):
    """A new FFDNet-style denoiser (``torch.nn.Module``) with random weights.

    ``channels``: image channels (1 gray, 3 colour); ``features``: width of the body;
    ``depth``: number of conv layers (>= 3). ``clip_output`` clips the output to [0, 1];
    it is off for training (the gradient must flow) and on for export.
    """
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional
    if depth < 3:
        raise ValueError(f"depth must be >= 3, got {depth}")

    class FFDNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = {"channels": int(channels), "features": int(features), "depth": int(depth)}
            self.clip_output = clip_output
            c4 = 4 * channels
            layers: list[nn.Module] = [nn.Conv2d(c4 + 1, features, 3, padding=1), nn.ReLU(inplace=True)]
            for _ in range(depth - 2):
                layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True)]
            layers.append(nn.Conv2d(features, c4, 3, padding=1))
            self.body = nn.Sequential(*layers)
            for m in self.body:
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)
            # the last layer starts near zero: the untrained net is the identity
            last = self.body[-1]
            nn.init.normal_(last.weight, std=1e-3)

        def forward(self, image, noise_level):
            x = F.pixel_unshuffle(image, 2)
            s = F.avg_pool2d(noise_level, 2)
            noise = F.pixel_shuffle(self.body(torch.cat([x, s], dim=1)), 2)
            out = image - noise
            if self.clip_output:
                out = out.clamp(0.0, 1.0)
            return out

    return FFDNet()


def count_params(config: Mapping[str, Any]) -> int:
    """Number of weights and biases of a model with this config (no torch needed)."""
    c, f, d = int(config["channels"]), int(config["features"]), int(config["depth"])
    n = (4 * c + 1) * f * 9 + f
    n += (d - 2) * (f * f * 9 + f)
    n += f * 4 * c * 9 + 4 * c
    return n


def mflops_per_megapixel(config: Mapping[str, Any]) -> float:
    """Multiply-adds x 2 per megapixel of input (convolutions only, the rest is noise)."""
    c, f, d = int(config["channels"]), int(config["features"]), int(config["depth"])
    macs_per_half_res_pixel = (4 * c + 1) * f * 9 + (d - 2) * f * f * 9 + f * 4 * c * 9
    # the body runs at half resolution: a quarter of the pixels
    return 2.0 * macs_per_half_res_pixel / 4.0  # FLOPs per input pixel == MFLOPs per MP


def example_inputs(config: Mapping[str, Any], height: int, width: int, batch: int = 1, seed: int = 0):
    """Random (image, noise_level) tensors of the given size for export and parity checks."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    c = int(config["channels"])
    image = torch.rand(batch, c, height, width, generator=g)
    noise_level = torch.rand(batch, 1, height, width, generator=g) * (75.0 / 255.0)
    return image, noise_level


INPUT_NAMES = ("image", "noise_level")
OUTPUT_NAME = "output"


def model_spec(config: Mapping[str, Any], *, name: str, provenance: Mapping[str, Any],
               description: str = "", noise_level_range: tuple[float, float] = (0.0, 75.0)):
    """The :class:`~edgerestore.model_spec.ModelSpec` of an exported model."""
    from edgerestore.model_spec import ModelSpec

    color = "gray" if int(config["channels"]) == 1 else "bgr"
    receptive = 2 * (1 + 2 * int(config["depth"]))  # full-res pixels: depth 3x3 convs at half res
    overlap = int(((receptive // 2) + 7) // 8 * 8)
    return ModelSpec(
        name=name,
        task="denoise",
        scale=1,
        color=color,
        value_range=(0.0, 1.0),
        inputs={"image": "image", "noise_level": "noise_level"},
        output=OUTPUT_NAME,
        noise_level_range=noise_level_range,
        size_multiple=SIZE_MULTIPLE,
        tile_size=512,
        tile_overlap=overlap,
        profile={"min": (32, 32), "opt": (720, 1280), "max": (2160, 3840)},
        precision="fp32",
        description=description or (
            f"FFDNet-style {color} denoiser with a noise-level map, sigma "
            f"{noise_level_range[0]:g}-{noise_level_range[1]:g}"
        ),
        provenance=dict(provenance),
    )


def grow(state: Mapping[str, Any], src: Mapping[str, Any], dst: Mapping[str, Any], *, seed: int = 0):
    """Weights of a wider and/or deeper model that computes what ``state`` computes.

    ``state``: a state dict of a model with config ``src``; ``dst``: the config to grow
    into (same ``channels``, ``features >= src features``, ``depth >= src depth``).
    Returns a new state dict (torch tensors) for ``build(**dst)``, used to continue
    training a small model at a larger size instead of starting from scratch.

    Wider (Net2WiderNet, Chen, Goodfellow and Shlens, ICLR 2016): each new hidden unit
    copies a random existing unit's incoming weights and bias; the outgoing weights of a
    unit and its copies are split between them by random fractions that sum to one, so
    the output is unchanged while the copies receive different gradients (equal fractions
    would keep them identical forever). Deeper (Net2DeeperNet): identity 3x3 convolutions
    (centre tap 1 on the diagonal, zero bias) are inserted after evenly spaced hidden
    layers; they follow a ReLU, so ReLU(identity(x)) = x.
    """
    torch = _torch()
    c_src, c_dst = int(src["channels"]), int(dst["channels"])
    f_src, f_dst = int(src["features"]), int(dst["features"])
    d_src, d_dst = int(src["depth"]), int(dst["depth"])
    if c_src != c_dst or f_dst < f_src or d_dst < d_src:
        raise ValueError(f"can only grow features and depth with the same channels: {dict(src)} -> {dict(dst)}")
    gen = torch.Generator().manual_seed(seed)
    convs = [(state[f"body.{2 * i}.weight"].detach().float().clone(),
              state[f"body.{2 * i}.bias"].detach().float().clone()) for i in range(d_src)]

    # widen: unit j of every hidden layer copies unit mapping[j] of the same layer
    if f_dst > f_src:
        mapping = torch.cat([torch.arange(f_src), torch.randint(0, f_src, (f_dst - f_src,), generator=gen)])
        counts = torch.bincount(mapping, minlength=f_src).float()
        widened = []
        for i, (w, b) in enumerate(convs):
            if i > 0:  # the input side comes from the widened previous layer: split the weights
                frac = (1.0 + 0.2 * (torch.rand(f_dst, generator=gen) - 0.5)) / counts[mapping]
                total = torch.zeros(f_src).index_add_(0, mapping, frac)
                frac = frac / total[mapping]  # the copies of a unit sum to exactly one
                w = w[:, mapping] * frac.view(1, -1, 1, 1)
            if i < d_src - 1:  # the output side is a hidden layer: copy rows
                w, b = w[mapping], b[mapping]
            widened.append((w, b))
        convs = widened

    # deepen: identity layers after evenly spaced hidden layers (not after the last conv)
    extra = d_dst - d_src
    if extra:
        eye = torch.zeros(f_dst, f_dst, 3, 3)
        eye[torch.arange(f_dst), torch.arange(f_dst), 1, 1] = 1.0
        hidden = d_src - 1  # convs followed by a ReLU
        slots = [max(0, int(round((k + 1) * hidden / (extra + 1))) - 1) for k in range(extra)]
        deeper = []
        for i, wb in enumerate(convs):
            deeper.append(wb)
            deeper += [(eye.clone(), torch.zeros(f_dst)) for _ in range(slots.count(i))]
        convs = deeper

    out = {}
    for i, (w, b) in enumerate(convs):
        out[f"body.{2 * i}.weight"], out[f"body.{2 * i}.bias"] = w.contiguous(), b.contiguous()
    return out
