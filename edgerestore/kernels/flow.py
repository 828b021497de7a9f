"""Dense optical flow between frames for the temporal filter: OpenCV's DIS
(``cv2.DISOpticalFlow``), computed on a denoised *guide* rather than the noisy frame.

Conventions: :func:`dis_flow` ``(a, b)`` returns the flow ``F`` (float32 ``H x W x 2``,
dx and dy in pixels) with ``a(x) ~ b(x + F(x))``: warping ``b`` by ``F``
(:func:`edgerestore.kernels.temporal.warp`) brings it onto ``a``. Guides are uint8 gray
``H x W``. The preset was chosen by measurement (``docs/temporal.md``).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
           "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
"""Names of DIS presets accepted by :func:`dis_flow`."""

_LOCAL = threading.local()  # one DIS object per thread and preset (they keep state)


def flow_guide(img: np.ndarray, sigma: float) -> np.ndarray:
    """The frame flow is computed on: luminance (mean of the channels) of ``img``
    (float32 in [0, 1]), Gaussian-smoothed by a width that grows with the noise level
    ``sigma`` (0-255 scale), as uint8."""
    if img.ndim == 3:  # the channel mean (cv2.transform: a twentieth of numpy's mean over an axis)
        gray = cv2.transform(np.asarray(img, np.float32), np.full((1, img.shape[2]), 1.0 / img.shape[2], np.float32))
    else:
        gray = img
    s = 0.5 + sigma / 25.0
    smooth = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), s)
    return np.clip(np.rint(smooth * 255.0), 0, 255).astype(np.uint8)


def dis_flow(a: np.ndarray, b: np.ndarray, preset: str = "fast", scale: float = 1.0) -> np.ndarray:
    """DIS optical flow from guide ``a`` to guide ``b`` (uint8 gray, same size):
    ``a(x) ~ b(x + F(x))``. ``preset``: one of :data:`PRESETS`. ``scale`` < 1 computes
    the flow on guides resized by it (``INTER_AREA``) and resizes the flow back (about
    ``1 / scale**2`` times cheaper; smooth guides lose little)."""
    if scale != 1.0:
        h, w = a.shape[:2]
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        small = dis_flow(cv2.resize(a, size, interpolation=cv2.INTER_AREA),
                         cv2.resize(b, size, interpolation=cv2.INTER_AREA), preset)
        flow = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= w / size[0]
        flow[..., 1] *= h / size[1]
        return flow
    if preset not in PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; one of {', '.join(PRESETS)}")
    cache = getattr(_LOCAL, "dis", None)
    if cache is None:
        cache = _LOCAL.dis = {}
    dis = cache.get(preset)
    if dis is None:
        dis = cache[preset] = cv2.DISOpticalFlow_create(PRESETS[preset])
    return dis.calc(a, b, None)
