"""Calibration frames: read a folder of images or a video file, sampled evenly.

:func:`load_frames` returns frames as the runtime's stages see them: float32 in [0, 1],
``H x W`` (gray) or ``H x W x 3`` (BGR). Frames are taken at evenly spaced positions
through the folder (sorted by name) or the clip, so a long clip contributes its start,
middle and end rather than its first second.

Refusals, each naming the fix: a path that does not exist, a folder without images, a
file that is neither an image folder nor a video OpenCV can open, frames with an alpha
channel or another channel count than 1 or 3, a folder that mixes gray and colour
images, fewer usable frames than ``minimum``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edgerestore.errors import InputError
from edgerestore.imageio import IMAGE_EXTENSIONS, to_float

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg",
                            ".ts", ".wmv", ".flv"})


def even_indices(total: int, count: int) -> list[int]:
    """``count`` distinct indices spread evenly over ``range(total)`` (all if fewer)."""
    if total <= 0 or count <= 0:
        return []
    if count >= total:
        return list(range(total))
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, count)})


def to_unit_float(img: np.ndarray, *, where: str) -> np.ndarray:
    """A decoded OpenCV image -> float32 [0, 1], ``H x W`` or ``H x W x 3`` (BGR)."""
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] == 4:
        raise InputError(
            f"{where}: the image has an alpha channel (4 channels); calibration frames must "
            "be gray or BGR. Convert them first, e.g. with OpenCV: "
            "cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)"
        )
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise InputError(
            f"{where}: frames must have 1 (gray) or 3 (BGR) channels; this one has shape "
            f"{img.shape}"
        )
    if img.dtype in (np.uint8, np.uint16):
        out = to_float(img)
    elif img.dtype.kind == "f":
        out = np.clip(img.astype(np.float32), 0.0, 1.0)
    else:
        raise InputError(f"{where}: unsupported pixel type {img.dtype}; use 8- or 16-bit images")
    return np.ascontiguousarray(out)


FLAT_PEAK_TO_PEAK = 4 / 255  # a frame whose levels span less than this has no content
DARK_MEAN, BRIGHT_MEAN = 0.08, 0.92  # mean levels beyond which footage is far from training images


def check_frame_content(frames: list[np.ndarray], *, where: str) -> list[str]:
    """Refuse footage with nothing to calibrate on; return warnings about unusual footage.

    Raises :class:`InputError` when every frame is a single flat colour (levels within
    :data:`FLAT_PEAK_TO_PEAK`): calibration would see no edges or texture and the gate
    nothing to measure. Warns (returned, and logged) when the footage is, on average, far
    darker or brighter than ordinary images (mean level below :data:`DARK_MEAN` or above
    :data:`BRIGHT_MEAN`): the model itself was not trained on such frames.
    """
    spans = [float(np.ptp(f)) for f in frames]
    if frames and max(spans) < FLAT_PEAK_TO_PEAK:
        raise InputError(
            f"{where}: every frame is a single flat colour (levels span at most "
            f"{max(spans) * 255:.1f} of 255); calibration needs footage with content (edges, "
            "texture, flat areas): pass frames from the camera's real scenes")
    warnings = []
    mean = float(np.mean([f.mean() for f in frames])) if frames else 0.5
    if mean < DARK_MEAN or mean > BRIGHT_MEAN:
        kind = "dark" if mean < DARK_MEAN else "bright"
        warnings.append(
            f"{where}: the footage is very {kind} (mean level {mean * 255:.0f} of 255); the "
            f"model was trained on ordinary exposures, so it may restore such frames poorly at "
            "any precision. Calibration and the gate use this footage as given, so INT8 is "
            "judged against FP32 on it; calibrate on well-exposed footage too if the camera "
            "also delivers that")
        log.warning("%s", warnings[-1])
    return warnings


def _image_files(folder: Path) -> list[Path]:
    """The image files in ``folder``, sorted by name (plain string order)."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _read_folder(folder: Path, count: int) -> tuple[list[np.ndarray], int]:
    import cv2

    files = _image_files(folder)
    if not files:
        raise InputError(
            f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}); "
            "pass a folder of images or a video file to --frames"
        )
    frames = []
    for i in even_indices(len(files), count):
        img = cv2.imread(str(files[i]), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InputError(f"{files[i]}: OpenCV cannot decode this image; remove or replace it")
        frames.append(to_unit_float(img, where=str(files[i])))
    return frames, len(files)


def _open_video(path: Path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise InputError(
            f"{path}: OpenCV cannot open this file as a video; pass a folder of images "
            "or a video in a format OpenCV reads (mp4, avi, mkv)"
        )
    return cap


def _sample_pass(path: Path, total: int, count: int) -> tuple[list[np.ndarray], int | None]:
    """Decode once, keeping the frames at evenly spaced indices of ``total``.

    Returns the frames and, when the clip ended before the last wanted index (containers
    that over-report their frame count), the number of frames it really has.
    """
    wanted = set(even_indices(total, count))
    frames: list[np.ndarray] = []
    cap = _open_video(path)
    try:
        for index in range(max(wanted) + 1):
            if index in wanted:
                ok, img = cap.read()
                if ok:
                    frames.append(to_unit_float(img, where=f"{path} frame {index}"))
            else:
                ok = cap.grab()
            if not ok:
                return frames, index
    finally:
        cap.release()
    return frames, None


def _read_video(path: Path, count: int) -> tuple[list[np.ndarray], int]:
    import cv2

    cap = _open_video(path)
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if total <= 0:  # no frame count in the container: count by decoding
            total = 0
            while cap.grab():
                total += 1
    finally:
        cap.release()
    if total == 0:
        return [], 0
    frames, real_total = _sample_pass(path, total, count)
    if real_total is not None:  # e.g. an AVI whose header says twice its length
        log.info("%s: the container reports %d frames but holds %d; resampling", path, total,
                 real_total)
        total = real_total
        frames, _ = _sample_pass(path, total, count) if total else ([], None)
    return frames, total


def load_frames(source: str | os.PathLike, count: int, *, minimum: int = 1,
                allow_mixed: bool = False) -> list[np.ndarray]:
    """Up to ``count`` frames from a folder of images or a video, evenly sampled.

    Returns float32 [0, 1] frames, all gray (``H x W``) or all BGR (``H x W x 3``), or
    either with ``allow_mixed`` (for 1-channel models, which the runtime feeds gray and
    colour frames alike).
    Raises :class:`InputError` when fewer than ``minimum`` usable frames exist.
    """
    if count < 1:
        raise InputError(f"the number of calibration frames must be >= 1, got {count}")
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(f"{path}: calibration frames not found (expected a folder of images "
                         "or a video file)")
    if path.is_dir():
        frames, available = _read_folder(path, count)
    elif path.suffix.lower() in IMAGE_EXTENSIONS:
        raise InputError(
            f"{path}: a single image is not enough to calibrate; pass the folder that holds "
            "the calibration images (or a video file)"
        )
    else:
        frames, available = _read_video(path, count)
    kinds = {f.ndim for f in frames}
    if len(kinds) > 1 and not allow_mixed:
        raise InputError(
            f"{path}: the frames mix gray and colour images; calibrate on one kind, the kind "
            "the model will see at run time"
        )
    if len(frames) < minimum:
        raise InputError(
            f"{path}: too few calibration frames: {len(frames)} usable (of {available} found), "
            f"at least {minimum} needed. Add more images or use a longer clip"
        )
    if len(frames) < count:
        log.warning("%s: only %d frames available, %d asked for", path, len(frames), count)
    return frames
