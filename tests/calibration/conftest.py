"""Fixtures for the calibration tests: a tiny conv denoiser and small frame folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgerestore.calibration.samples import synthetic_frames
from tests import tiny_models as tm
from tests.calibration.convnets import conv_denoiser


@pytest.fixture(scope="session")
def conv_model_path(tmp_path_factory) -> Path:
    model = conv_denoiser()
    path = tmp_path_factory.mktemp("models") / "conv.onnx"
    return tm.save(model, path, tm.spec_for(model, name="tiny-conv", size_multiple=2))


def write_frames(folder: Path, frames) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.round(f * 255).astype(np.uint8))
    return folder


@pytest.fixture(scope="session")
def gray_frames_dir(tmp_path_factory) -> Path:
    frames = synthetic_frames(8, channels=1, size=(48, 64), seed=7)
    return write_frames(tmp_path_factory.mktemp("frames") / "gray", frames)


@pytest.fixture(scope="session")
def calibration_feeds(conv_model_path, gray_frames_dir):
    """Feeds recorded from the FP32 model through the restorer (as `calibrate` does)."""
    from edgerestore.backends import RunnerOptions, open_runner
    from edgerestore.calibration.frames import load_frames
    from edgerestore.calibration.samples import make_samples, record_feeds
    from edgerestore.model_spec import read_spec

    spec = read_spec(conv_model_path)
    samples = make_samples(load_frames(gray_frames_dir, 6), spec, seed=1)
    runner, reason = open_runner(str(conv_model_path), "ort-cpu", RunnerOptions(threads=1))
    with runner:
        return record_feeds(spec, runner, reason, samples)
