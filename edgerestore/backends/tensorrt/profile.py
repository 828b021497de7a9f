"""TensorRT optimisation profiles: the (min, opt, max) input shapes an engine accepts.

Shapes are ``(N, C, H, W)``; sizes in pixels.
"""

from __future__ import annotations

from edgerestore.errors import ModelError
from edgerestore.model_spec import ModelSpec

DEFAULT_PROFILE = {"min": (32, 32), "opt": (720, 1280), "max": (2160, 3840)}
"""Frame sizes ``(h, w)`` used when the model's metadata has no ``profile``."""

ROLE_CHANNELS = {"noise_level": 1, "mask": 1}
"""Channels of the model inputs other than the image, by role."""

Shape = tuple[int, int, int, int]


def round_up(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple``."""
    return -(-int(value) // multiple) * multiple


def profile_from_spec(spec: ModelSpec) -> dict[str, tuple[Shape, Shape, Shape]]:
    """Optimisation profile ``{input name: (min, opt, max)}`` from the model's metadata.

    Frame sizes come from the ``profile`` metadata (``{"min": [h, w], "opt": ...,
    "max": ...}``) or, without one, from the model's ``tile_size`` (the runtime never
    feeds more than a padded tile: min 32, opt = max = the tile) or
    :data:`DEFAULT_PROFILE`. Sizes are rounded up to ``size_multiple``; batch is 1
    (the runtime feeds one frame or tile at a time); channels follow the input's role.
    """
    m = spec.size_multiple
    if spec.profile is not None:
        sizes = {k: tuple(spec.profile[k]) for k in ("min", "opt", "max")}
    elif spec.tile_size:
        t = spec.tile_size
        sizes = {"min": (32, 32), "opt": (t, t), "max": (t, t)}
    else:
        sizes = dict(DEFAULT_PROFILE)
    sizes = {k: (round_up(h, m), round_up(w, m)) for k, (h, w) in sizes.items()}
    lo, opt, hi = sizes["min"], sizes["opt"], sizes["max"]
    if not (lo[0] <= opt[0] <= hi[0] and lo[1] <= opt[1] <= hi[1]):
        raise ModelError(f"model {spec.name!r}: metadata 'profile' must have min <= opt <= max "
                         f"in both dimensions, got {spec.profile}")
    out = {}
    for name, role in spec.inputs.items():
        c = spec.channels if role == "image" else ROLE_CHANNELS[role]
        out[name] = tuple((1, c, h, w) for h, w in (lo, opt, hi))
    return out


def shape_in_profile(shape: Shape, bounds: tuple[Shape, Shape, Shape]) -> bool:
    """True when every dimension of ``shape`` lies within ``bounds``' min and max."""
    lo, _, hi = bounds
    return len(shape) == 4 and all(a <= s <= b for s, a, b in zip(shape, lo, hi))
