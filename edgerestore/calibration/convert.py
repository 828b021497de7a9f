"""``edgerestore calibrate``: FP32 model -> INT8 or FP16 model, behind the accuracy gate.

Steps of :func:`calibrate`, cheapest checks first so a bad request fails in
milliseconds:

1. read the model (zoo name or path) and refuse one that is already quantized; check
   the output path can be written;
2. load the frames (a folder of images or a video, evenly sampled) and split them into
   calibration frames and held-apart gate frames;
3. degrade them as the model's task implies and run the FP32 model through
   :class:`~edgerestore.restorer.ModelRestorer` on ONNX Runtime's CPU provider with a
   :class:`~edgerestore.calibration.samples.RecordingRunner`, which records the exact
   feeds (so calibration inputs are pre-processed exactly as the runtime does);
4. quantize with ONNX Runtime's quantizer (or convert to FP16), stamp the model's own
   spec with ``precision`` and the calibration's provenance;
5. write it to a temporary file next to the output, run the gate on it and either move
   it into place (``os.replace``) or delete it and raise
   :class:`~edgerestore.calibration.gate.GateError`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from edgerestore._lazy import require
from edgerestore.backends.onnx_graph import is_quantized, summarize
from edgerestore.calibration.gate import DEFAULT_MAX_DROP_DB, GateReport, enforce, evaluate
from edgerestore.calibration.quantize import Int8Settings, Target
from edgerestore.errors import InputError, ModelError
from edgerestore.model_spec import ModelSpec

log = logging.getLogger(__name__)

PRECISIONS = ("int8", "fp16")
MIN_CALIBRATION_FRAMES = 2
MIN_GATE_FRAMES = 2
SYNTHETIC_GATE_FRAMES = 8
# Noise levels the gate measures denoisers at by default: the standard operating points
# of the denoising literature (and of our benchmarks), where the trained range has them.
DEFAULT_GATE_SIGMAS = (15.0, 25.0, 50.0)


@dataclass(frozen=True, kw_only=True)
class CalibrationJob:
    """One conversion request (the CLI's options, validated in ``__post_init__``).

    model: zoo name or .onnx path of an FP32 model; output: where the result goes.
    precision: ``int8`` or ``fp16``. frames: folder of images or video (required for
    int8; for fp16 the gate falls back to synthetic frames when absent). count: frames
    to take; holdout: fraction kept apart for the gate (at least 2 frames). crop: edge
    of the random window cut from each frame (0 = whole frames). sigmas: noise levels
    for denoisers (default: spread over the trained range); gate_sigmas: the gate's
    (default: ``sigmas`` if given, else 15, 25 and 50 where the trained range has them),
    e.g. the noise level of the camera the model will serve.
    crops: ``mixed`` (default: textured and flat windows in turn) or ``any`` (random).
    noise: ``clipped`` (default) or ``unclipped``: whether the noisy calibration frames
    of a denoiser are clipped to [0, 1] (what the runtime feeds) or keep unclipped float
    noise (the published tables' convention; INT8 then keeps headroom for values outside
    [0, 1]); the gate always measures clipped frames.
    int8: quantizer settings.
    fallback: int8, when the gate fails, search for layers to keep in float
    (:mod:`~edgerestore.calibration.fallback`) for at most ``fallback_seconds``;
    False refuses at once.
    keep_io_types: FP16 models keep float32 inputs/outputs.
    """

    model: str
    output: str
    precision: str = "int8"
    frames: str | None = None
    count: int = 32
    holdout: float = 0.25
    crop: int = 192
    sigmas: tuple[float, ...] | None = None
    gate_sigmas: tuple[float, ...] | None = None
    noise: str = "clipped"
    max_drop_db: float = DEFAULT_MAX_DROP_DB
    int8: Int8Settings = field(default_factory=Int8Settings)
    keep_io_types: bool = True
    threads: int | None = None
    seed: int = 0
    fallback: bool = True
    crops: str = "mixed"
    fallback_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.crops not in ("mixed", "any"):
            raise InputError(f"crops must be 'mixed' or 'any', got {self.crops!r}")
        if self.noise not in ("clipped", "unclipped"):
            raise InputError(f"noise must be 'clipped' or 'unclipped', got {self.noise!r}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.precision == "int8" and not self.frames:
            raise InputError("INT8 calibration needs frames: pass --frames DIR_OR_VIDEO (a folder "
                             "of images or a video like the footage the model will restore)")
        if self.count < MIN_CALIBRATION_FRAMES + MIN_GATE_FRAMES:
            raise InputError(f"--count must be at least {MIN_CALIBRATION_FRAMES + MIN_GATE_FRAMES} "
                             f"({MIN_CALIBRATION_FRAMES} to calibrate, {MIN_GATE_FRAMES} for the "
                             f"gate), got {self.count}")
        if not 0.0 < self.holdout < 1.0:
            raise InputError(f"holdout must be a fraction in (0, 1), got {self.holdout}")
        if self.crop and self.crop < 16:
            raise InputError(f"crop must be 0 (whole frames) or at least 16 pixels, got {self.crop}")
        if not self.fallback_seconds >= 0:
            raise InputError(f"--fallback-seconds must be >= 0, got {self.fallback_seconds}")
        if not self.max_drop_db >= 0:
            raise InputError(f"--max-drop-db must be >= 0, got {self.max_drop_db}")
        for given in (self.sigmas, self.gate_sigmas):
            if given is not None and (not given or any(not 0 < s <= 255 for s in given)):
                raise InputError(f"noise levels must be in (0, 255], got {given}")


@dataclass(frozen=True)
class CalibrationResult:
    output: str
    spec: ModelSpec
    report: GateReport
    qdq: dict | None
    fallback: dict | None = None


def check_output_path(output: str | os.PathLike, source: str | os.PathLike) -> Path:
    """Refuse an output that cannot be written, before any expensive work."""
    out = Path(output).expanduser()
    if out.suffix.lower() != ".onnx":
        raise InputError(f"-o {out}: the output must be an .onnx file")
    if out.is_dir():
        raise InputError(f"-o {out} is a folder; give a file name ending in .onnx")
    if out.exists() and out.resolve() == Path(source).resolve():
        raise InputError(f"-o {out} is the input model; write the converted model to a new file")
    folder = out.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{out.name}.{os.getpid()}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"-o {out}: cannot write to {folder} ({exc.strerror or exc}); choose "
                         "a writable folder") from None
    return out


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_gate_sigmas(spec: ModelSpec) -> list[float] | None:
    """:data:`DEFAULT_GATE_SIGMAS` inside the model's trained range (None: use the spread).

    Not the whole trained range: near sigma 0 the FP32 output is almost the clean image
    (45+ dB) and INT8's own rounding (about 42 dB against FP32) dominates, so an average
    drop over a range reaching 0 measures that floor rather than denoising quality.
    """
    if spec.task != "denoise":
        return None
    lo, hi = spec.noise_level_range or (0.0, 255.0)
    inside = [s for s in DEFAULT_GATE_SIGMAS if lo <= s <= hi]
    return inside or None


def split_frames(frames: list, holdout: float) -> tuple[list, list]:
    """Evenly spaced frames for the gate, the rest for calibration (both span the source)."""
    from edgerestore.calibration.frames import even_indices

    n_gate = max(MIN_GATE_FRAMES, int(round(len(frames) * holdout)))
    n_gate = min(n_gate, len(frames) - MIN_CALIBRATION_FRAMES)
    gate_idx = set(even_indices(len(frames), n_gate))
    calib = [f for i, f in enumerate(frames) if i not in gate_idx]
    gate = [f for i, f in enumerate(frames) if i in gate_idx]
    return calib, gate


def _open_restorer(spec: ModelSpec, path: str, threads: int | None):
    """A :class:`~edgerestore.restorer.ModelRestorer` on ``ort-cpu``, where calibration measures."""
    from edgerestore.backends import RunnerOptions, open_runner
    from edgerestore.restorer import ModelRestorer

    runner, reason = open_runner(path, "ort-cpu", RunnerOptions(threads=threads))
    return ModelRestorer(spec, runner, reason)


def _fp32_reference(spec: ModelSpec, path: str, job: CalibrationJob, calib_samples: list,
                    gate_samples: list) -> tuple[list[dict], list]:
    """On one FP32 session: the feeds of the calibration samples (INT8 only; FP16 needs
    none) and the FP32 outputs of the gate samples."""
    from edgerestore.backends import RunnerOptions, open_runner
    from edgerestore.calibration.samples import record_feeds, run_restorer
    from edgerestore.restorer import ModelRestorer

    runner, reason = open_runner(path, "ort-cpu", RunnerOptions(threads=job.threads))
    with runner:
        feeds = []
        if job.precision == "int8":
            feeds = record_feeds(spec, runner, reason, calib_samples,
                                 range_check=job.noise == "clipped")
        return feeds, run_restorer(ModelRestorer(spec, runner, reason), gate_samples)


def _write_model(model, path: Path) -> None:
    data = model.SerializeToString()
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def calibrate(job: CalibrationJob) -> CalibrationResult:
    """Run a :class:`CalibrationJob` (see the module docstring); return what was written."""
    onnx = require("onnx", purpose="calibration")
    ort = require("onnxruntime", purpose="calibration")
    from edgerestore.calibration.frames import check_frame_content, load_frames
    from edgerestore.calibration.samples import (
        check_frames_for_model,
        make_samples,
        mix_gray,
        run_restorer,
        synthetic_frames,
    )
    from edgerestore.model_spec import read_spec, write_spec
    from edgerestore.zoo import resolve

    started = time.perf_counter()
    src_path = resolve(job.model)
    spec = read_spec(src_path)
    model = onnx.load(str(src_path))
    if spec.precision != "fp32" or is_quantized(model):
        held = spec.precision if spec.precision != "fp32" else "quantized"
        raise ModelError(f"{src_path}: the model is already {held}; calibrate the original FP32 model")
    out = check_output_path(job.output, src_path)
    if job.precision == "int8":
        from edgerestore.calibration.quantize import Method, default_method, resolve_keep_float

        job = replace(job, int8=default_method(job.int8, spec.task))
        qat = spec.provenance.get("qat") or {}
        if job.int8.method is Method.QAT and "keep_float" in qat:
            # what the fine-tuning kept in float, no more: an image path it learned in
            # INT8 must stay INT8 (taking it out after QAT loses ~1 dB at x2)
            job = replace(job, int8=replace(job.int8, image_path_float=False,
                                            keep_float=tuple(job.int8.keep_float) + tuple(qat["keep_float"])))
        resolve_keep_float(model, job.int8.keep_float)  # a bad node name fails now

    # frames -> calibration and gate samples
    if job.frames:
        frames = load_frames(job.frames, job.count,
                             minimum=MIN_CALIBRATION_FRAMES + MIN_GATE_FRAMES,
                             allow_mixed=spec.channels == 1)
        check_frames_for_model(frames, spec, where=str(job.frames))
        check_frame_content(frames, where=str(job.frames))
        calib_frames, gate_frames = split_frames(frames, job.holdout)
        frames_note = f"{Path(job.frames).name} ({len(calib_frames)} calibration + {len(gate_frames)} gate frames)"
    else:  # fp16 without frames: synthetic gate frames
        calib_frames = []
        gate_frames = synthetic_frames(SYNTHETIC_GATE_FRAMES, channels=spec.channels, seed=job.seed)
        frames_note = f"{len(gate_frames)} synthetic gate frames (no --frames given)"
        log.warning("no --frames given: the FP16 gate runs on %d synthetic frames", len(gate_frames))
    sig = list(job.sigmas) if job.sigmas else None
    calib_samples = make_samples(mix_gray(calib_frames, spec), spec, crop=job.crop, seed=job.seed, sigmas=sig,
                                 clip_noise=job.noise == "clipped", crops=job.crops) if calib_frames else []
    gate_sig = list(job.gate_sigmas) if job.gate_sigmas else sig or default_gate_sigmas(spec)
    gate_samples = make_samples(gate_frames, spec, crop=job.crop, seed=job.seed + 1, sigmas=gate_sig)

    # FP32 reference: record the feeds of the calibration samples, keep the gate outputs
    feeds, fp32_out = _fp32_reference(spec, str(src_path), job, calib_samples, gate_samples)
    log.info("recorded %d calibration feeds from %d frames", len(feeds), len(calib_samples))

    # convert
    qdq = None
    fallback = None
    provenance = dict(spec.provenance)
    lo_hi = spec.noise_level_range
    suffix = "fp16"
    if job.precision == "int8":
        suffix = "trt-int8" if job.int8.target is Target.TENSORRT else "int8"
    provenance["calibration"] = {
        "precision": job.precision,
        "source_model": spec.name,
        "source_sha256": _sha256(src_path),
        "frames": frames_note,
        "crop": job.crop,
        "noise_levels": list(job.sigmas) if job.sigmas else (
            f"spread over {lo_hi[0]:g}-{lo_hi[1]:g}" if lo_hi else None),
        "gate_noise_levels": gate_sig or "as noise_levels",
        "calibration_noise": job.noise if spec.task == "denoise" else None,
        "settings": (job.int8.describe() if job.precision == "int8" else
                     {"converter": "onnxruntime.transformers.float16",
                      "keep_io_types": job.keep_io_types}),
        "onnxruntime": ort.__version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    new_spec = replace(
        spec, name=f"{spec.name}-{suffix}", precision=job.precision, provenance=provenance,
        description=(spec.description + f" [{suffix.upper()}]").strip(), path=None, size_bytes=None,
    )
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    labels = [f"sigma {s.sigma:g}" if s.sigma is not None else f"frame {i}"
              for i, s in enumerate(gate_samples)]

    def gate(candidate) -> GateReport:
        write_spec(candidate, new_spec)
        _write_model(candidate, tmp)
        gate_spec = read_spec(tmp)  # the written file must satisfy the contract
        with _open_restorer(gate_spec, str(tmp), job.threads) as conv:
            conv_out = run_restorer(conv, gate_samples)
        return evaluate([s.clean for s in gate_samples], fp32_out, conv_out,
                        precision=job.precision, max_drop_db=job.max_drop_db, labels=labels)

    try:
        if job.precision == "int8":
            from edgerestore.calibration.quantize import Int8Quantizer, stored_qat_ranges

            learned = stored_qat_ranges(spec.provenance, spec.name, job.int8)
            with Int8Quantizer(model, feeds, job.int8, ranges=learned) as quantizer:
                converted = quantizer.quantize()
                report = gate(converted)
                log.info("%s", report.format())
                if not report.passed and job.fallback:
                    fallback = _search(quantizer, gate, converted, report, job)
                    converted, report = fallback.model, fallback.report
                    if report.passed:  # what keeping layers in float costs
                        from edgerestore.calibration.fallback import speed_ratio

                        report = gate(converted)  # the chosen model in the temporary file
                        fallback.speed_vs_fp32 = speed_ratio(str(src_path), str(tmp), feeds[0],
                                                             threads=job.threads)
            s = summarize(converted)
            qdq = {"quantize_nodes": s.quantize, "dequantize_nodes": s.dequantize,
                   "int8_layers": len(s.quantized_weighted), "float_layers": s.float_weighted}
            provenance["calibration"]["qdq"] = qdq
        else:
            from edgerestore.calibration.fp16 import convert_fp16

            converted = convert_fp16(model, keep_io_types=True)
            report = gate(converted)
        log.info("%s", report.format())
        if not report.passed:
            _refuse(report, job, spec, fallback, len(calib_frames) + len(gate_frames), out)
        provenance["calibration"]["gate"] = report.to_dict()
        if fallback is not None:
            provenance["calibration"]["fallback"] = fallback.to_dict()
        provenance["calibration"]["seconds"] = round(time.perf_counter() - started, 1)
        final_spec = replace(new_spec, provenance=provenance)
        if job.precision == "fp16" and not job.keep_io_types:
            from edgerestore.calibration.fp16 import convert_fp16

            # same arithmetic (the input Cast rounds exactly as float16 inputs would)
            converted = convert_fp16(model, keep_io_types=False)
        write_spec(converted, final_spec)
        _write_model(converted, tmp)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return CalibrationResult(str(out), replace(final_spec, path=str(out)), report, qdq,
                             fallback.to_dict() if fallback is not None else None)


def _search(quantizer, gate, converted, report, job: CalibrationJob):
    from edgerestore.calibration.fallback import search_float_layers

    log.info("gate failed (worst %+.3f dB at %s); searching for layers to keep in float "
             "(at most %g s)", report.worst_drop_db, report.worst_group, job.fallback_seconds)
    groups = quantizer.layer_groups()

    def quantize(layers):  # a layer is kept in float with its activation (see layer_groups)
        return quantizer.quantize([n for layer in layers for n in groups[layer]])

    return search_float_layers(quantize, gate, list(groups), (converted, report),
                               budget_s=job.fallback_seconds)


def _refuse(report: GateReport, job: CalibrationJob, spec: ModelSpec, fallback, frames_used: int,
            out: Path) -> None:
    from edgerestore.calibration.fallback import refusal_advice

    if job.precision == "fp16":
        enforce(report, output=str(out), advice=[
            f"--max-drop-db {report.worst_drop_db + 0.05:.2f} if the loss is acceptable"])
    note = ""
    if fallback is not None:
        note = (f"With {len(fallback.float_layers)} layer(s) in float "
                f"({', '.join(fallback.float_layers) or 'none'}) the best worst drop was "
                f"{report.worst_drop_db:.3f} dB after {fallback.evaluations} gate runs"
                + (" (stopped: time budget spent)." if fallback.stopped_by_budget else "."))
    advice = refusal_advice(report, method=job.int8.method.value, target=job.int8.target.value,
                            fallback_used=job.fallback, fallback=fallback,
                            frames_used=frames_used, count=job.count, task=spec.task)
    enforce(report, output=str(out), advice=advice, note=note)


def describe_result(result: CalibrationResult) -> str:
    lines = [result.report.format(), f"wrote {result.output} ({result.spec.name}, "
             f"precision {result.spec.precision})"]
    if result.fallback:
        fb = result.fallback
        lines.append(f"  per-layer precision: {len(fb['float_layers'])} layer(s) kept in float "
                     f"({', '.join(fb['float_layers']) or 'none'}) after {fb['evaluations']} "
                     f"gate runs in {fb['seconds']:.0f} s"
                     + (f"; {fb['speed_vs_fp32']:.2f}x FP32's speed on a calibration crop"
                        if fb.get("speed_vs_fp32") else "")
                     + (" (stopped: time budget spent)" if fb["stopped_by_budget"] else ""))
    if result.qdq:
        lines.append(f"  {result.qdq['quantize_nodes']} QuantizeLinear / "
                     f"{result.qdq['dequantize_nodes']} DequantizeLinear nodes, "
                     f"{result.qdq['int8_layers']} weighted layers in INT8"
                     + (f", in float: {', '.join(result.qdq['float_layers'])}"
                        if result.qdq["float_layers"] else ""))
    return "\n".join(lines)


__all__: Sequence[str] = ("CalibrationJob", "CalibrationResult", "calibrate", "check_output_path")
