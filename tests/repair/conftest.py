"""Fixtures for the repair tests: small real frames (a crop of the dash-cam clip) and a
synthetic textured scene that really moves (sub-pixel translation per frame)."""

from __future__ import annotations

import numpy as np
import pytest

CROP = (208, 400, 320, 640)  # y0, y1, x0, x1: road, lane marks, a car; 192 x 320 pixels


@pytest.fixture(scope="module")
def dashcam(shared_data):
    """12 frames of the dash-cam clip (from frame 40), cropped to 192x320 BGR."""
    from edgerestore.repair import read_frames

    path = shared_data / "video" / "dashcam_solidWhiteRight.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return read_frames(path, count=12, start=40, crop=CROP)


def moving_scene(n: int = 6, h: int = 96, w: int = 128, seed: int = 3) -> list[np.ndarray]:
    """A smooth random texture translated by (1.7, 0.8) pixels per frame, BGR uint8."""
    import cv2

    rng = np.random.default_rng(seed)
    big = rng.uniform(0, 255, (h + 64, w + 64, 3)).astype(np.float32)
    big = cv2.GaussianBlur(big, (0, 0), 2.0)
    big = (big - big.min()) / (big.max() - big.min()) * 220 + 20
    frames = []
    for i in range(n):
        m = np.float32([[1, 0, -(16 + 1.7 * i)], [0, 1, -(16 + 0.8 * i)]])
        f = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR)
        frames.append(np.clip(f + 0.5, 0, 255).astype(np.uint8))
    return frames


@pytest.fixture
def scene():
    return moving_scene()
