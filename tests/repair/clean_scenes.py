"""Synthetic *clean* clips that are hard for a damage detector: large flat areas (sky,
walls), fast pans, flashing lights, text overlays, letterbox bars, one colour, a burned-in
logo. Written for the false-repair tests, apart from the detectors (no block grid, no
thresholds of theirs). Frames are uint8 BGR ``h x w x 3``; every function is seeded."""

from __future__ import annotations

import cv2
import numpy as np


def _world(h: int, w: int, seed: int) -> np.ndarray:
    """A wide scene: a smooth sky gradient over the top half, a flat wall block, and a
    textured ground; larger than a frame so a camera can pan across it."""
    rng = np.random.default_rng(seed)
    world = np.zeros((h, w, 3), np.float32)
    sky = np.linspace(235, 180, h // 2, dtype=np.float32)
    world[: h // 2] = np.stack([sky, sky - 20, sky - 60], axis=-1)[:, None, :]
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (h - h // 2, w, 3)).astype(np.float32), (0, 0), 1.5)
    world[h // 2:] = 60 + 0.6 * tex
    world[h // 4: h // 2, w // 5 + 5: w // 5 + 5 + w // 6] = (90, 110, 150)   # a flat wall
    return world


def pan(n: int = 24, h: int = 144, w: int = 240, speed: float = 9.0, seed: int = 1) -> list[np.ndarray]:
    """A fast horizontal pan (``speed`` pixels per frame, sub-pixel) across the world."""
    world = _world(h, w + int(speed * n) + 8, seed)
    out = []
    for i in range(n):
        m = np.float32([[1, 0, -speed * i], [0, 1, 0]])
        out.append(np.clip(cv2.warpAffine(world, m, (w, h)) + 0.5, 0, 255).astype(np.uint8))
    return out


def flashing(n: int = 24, h: int = 144, w: int = 240, seed: int = 2) -> list[np.ndarray]:
    """A still scene with a round lamp and a flat wall that light up every third frame
    for one frame (a flashing light, an emergency beacon)."""
    base = _world(h, w, seed)
    out = []
    for i in range(n):
        f = base.copy()
        if i % 3 == 1:
            cv2.circle(f, (w // 3, h // 3), 27, (255, 255, 255), -1)
            f[h // 4: h // 2, w // 5 + 5: w // 5 + 5 + w // 6] += 60
        out.append(np.clip(f + 0.5, 0, 255).astype(np.uint8))
    return out


def text_overlay(n: int = 24, h: int = 144, w: int = 240, seed: int = 3) -> list[np.ndarray]:
    """A slow pan with a changing white timestamp burned in and a black caption box
    that appears for a few frames."""
    frames = pan(n, h, w, speed=1.3, seed=seed)
    for i, f in enumerate(frames):
        cv2.putText(f, f"2026-12-07 19:{i:02d}:{(7 * i) % 60:02d}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, (255, 255, 255), 1, cv2.LINE_AA)
        if 8 <= i < 12:
            cv2.rectangle(f, (30, h - 40), (w - 30, h - 12), (0, 0, 0), -1)
            cv2.putText(f, "SPEED 88", (40, h - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    return frames


def letterbox(n: int = 24, h: int = 144, w: int = 240, bar: int = 24, seed: int = 4) -> list[np.ndarray]:
    """A pan with constant black bars at the top and bottom (rows ``bar`` not on any grid)."""
    frames = pan(n, h, w, speed=3.7, seed=seed)
    for f in frames:
        f[:bar] = 0
        f[h - bar - 3:] = 0
    return frames


def one_colour(n: int = 12, h: int = 96, w: int = 128, colour=(128, 128, 128)) -> list[np.ndarray]:
    """Every frame one colour (a lens cap, a grey test card)."""
    return [np.full((h, w, 3), colour, np.uint8) for _ in range(n)]


def burned_logo(n: int = 24, h: int = 144, w: int = 240, seed: int = 5) -> list[np.ndarray]:
    """A pan with the same opaque flat logo (grey plate, white border) burned into every
    frame, aligned with nothing."""
    frames = pan(n, h, w, speed=5.3, seed=seed)
    for f in frames:
        f[9:41, 181:229] = 128
        cv2.rectangle(f, (181, 9), (228, 40), (255, 255, 255), 1)
    return frames


SCENES = {"pan": pan, "flashing": flashing, "text_overlay": text_overlay, "letterbox": letterbox,
          "one_colour": one_colour, "burned_logo": burned_logo}
