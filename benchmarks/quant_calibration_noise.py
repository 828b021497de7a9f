"""INT8 calibration on clipped versus unclipped noisy frames (the shipped denoiser).

    python benchmarks/quant_calibration_noise.py clipped
    python benchmarks/quant_calibration_noise.py unclipped

`edgerestore calibrate` records its calibration frames through the runtime's restorer,
which only accepts [0, 1] input: the noisy frames are clipped, as a camera delivers them.
The published denoising tables add noise without clipping, so 5 % of a noisy BSD68
image lies outside [0, 1] and INT8 calibrated on clipped frames saturates there. This
script builds the same samples as `calibrate` (32 Train400 frames, the first 24 used,
256x256 crops, sigma spread over the trained range, seed 0) with or without the clip,
feeds them straight to the quantizer (default settings: cpu target, entropy) and
prints PSNR at sigma 25 on BSD68 (unclipped and clipped noise) and Set12 (unclipped),
with the protocol of `bench_quantization.py`. The FP32 figures are in that benchmark's
results (`benchmarks/results/quantization.md`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_quantization as BQ  # noqa: E402


def main(mode: str) -> int:
    import onnx

    from edgerestore.calibration.frames import load_frames
    from edgerestore.calibration.quantize import Int8Settings, quantize_int8
    from edgerestore.calibration.samples import make_samples
    from edgerestore.model_spec import read_spec
    from edgerestore.zoo import resolve

    model = str(resolve("dn-gray"))
    spec = read_spec(model)
    frames = load_frames(str(BQ.DATA / "train" / "Train400"), 32)[:24]
    samples = make_samples(frames, spec, seed=0, crop=256, clip_noise=mode == "clipped")
    feeds = [{"image": s.degraded[None, None].astype(np.float32),
              "noise_level": np.full((1, 1, *s.degraded.shape), s.sigma / 255.0, np.float32)}
             for s in samples]
    lo = min(float(f["image"].min()) for f in feeds)
    hi = max(float(f["image"].max()) for f in feeds)
    q = quantize_int8(onnx.load(model), feeds, Int8Settings())
    out = REPO / "build" / f"dn-gray-int8-calib-{mode}.onnx"
    out.parent.mkdir(exist_ok=True)
    onnx.save(q, str(out))
    res = BQ.quality(str(out), BQ.test_images(False), 25.0, 2, ("image", "noise_level"))
    print(f"calibration on {mode} noise (input range {lo:.2f}..{hi:.2f}): "
          + ", ".join(f"{k} {v:.3f}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("clipped", "unclipped"):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
