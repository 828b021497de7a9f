"""Per-layer precision, chosen automatically: which layers to leave in float.

When the fully quantized model fails the gate, :func:`search_float_layers` looks for a
small set of weighted layers to keep in float (ONNX Runtime's ``nodes_to_exclude``)
that brings the worst gated drop under ``max_drop_db``:

1. **sensitivity**: each weighted layer is left in float alone and the gate measured
   (what keeping that one layer in float buys, in dB of the worst group);
2. **greedy**: layers are added to the float set in order of what they bought, the gate
   measured after each; a layer stays in the set only if the worst drop went down
   (keeping one more layer in float can make it worse: the errors of neighbouring
   layers partly cancel), until the gate passes.

Each step re-quantizes from the ranges computed once
(:class:`~edgerestore.calibration.quantize.Int8Quantizer`) and runs the gate frames, so
a step costs about a second on the shipped denoiser. The search is bounded by
``budget_s`` seconds; when the budget runs out it stops and says so, returning the best
set found.

:func:`refusal_advice` words what to try after a refusal: only options that can change
the result, the most likely first, never the one already in use.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from edgerestore.calibration.gate import GateReport

log = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 300.0


@dataclass
class FallbackResult:
    """What the search found: the model, its gate report, the layers left in float
    (graph order), every layer's measured gain (dB of worst drop recovered when left in
    float alone), how many gate runs it took, and whether the time budget stopped it."""

    model: object
    report: GateReport
    float_layers: list[str]
    sensitivity: dict[str, float] = field(default_factory=dict)
    evaluations: int = 0
    seconds: float = 0.0
    stopped_by_budget: bool = False
    speed_vs_fp32: float | None = None

    def to_dict(self) -> dict:
        return {"speed_vs_fp32": None if self.speed_vs_fp32 is None else round(self.speed_vs_fp32, 2),
                "float_layers": self.float_layers, "worst_drop_db": round(self.report.worst_drop_db, 4),
                "evaluations": self.evaluations, "seconds": round(self.seconds, 1),
                "stopped_by_budget": self.stopped_by_budget,
                "sensitivity_db": {k: round(v, 4) for k, v in self.sensitivity.items()}}


def search_float_layers(quantize: Callable[[Sequence[str]], object],
                        gate: Callable[[object], GateReport], layers: Sequence[str],
                        first: tuple[object, GateReport], *, budget_s: float = DEFAULT_BUDGET_S,
                        clock: Callable[[], float] = time.monotonic) -> FallbackResult:
    """Find a small set of ``layers`` to keep in float so that ``gate`` passes.

    quantize(exclude) -> model; gate(model) -> report; first: the fully quantized model
    and its (failed) report. Returns the passing model with the fewest layers in float
    found, or, when nothing passes or the budget ends, the best one tried (lowest worst
    drop), with ``report.passed`` False.
    """
    start = clock()
    best_model, best = first
    result = FallbackResult(best_model, best, [])

    def over_budget() -> bool:
        if clock() - start >= budget_s:
            result.stopped_by_budget = True
            log.warning("per-layer precision search stopped: its %g s budget is spent "
                        "(%d gate runs)", budget_s, result.evaluations)
            return True
        return False

    def measure(exclude: list[str]):
        model = quantize(exclude)
        report = gate(model)
        result.evaluations += 1
        log.info("  float %-40s worst drop %+.3f dB", ",".join(exclude) or "(none)",
                 report.worst_drop_db)
        return model, report

    def consider(model, report, exclude) -> None:
        nonlocal best_model, best
        better = (report.passed and (not best.passed or len(exclude) < len(result.float_layers))) \
            or (not best.passed and report.worst_drop_db < best.worst_drop_db)
        if better:
            best_model, best = model, report
            result.model, result.report, result.float_layers = model, report, list(exclude)

    # never all layers: that is the FP32 model, which ONNX Runtime's CPU provider runs faster
    for layer in (layers if len(layers) > 1 else []):  # 1. sensitivity, one layer at a time
        if over_budget():
            break
        model, report = measure([layer])
        result.sensitivity[layer] = first[1].worst_drop_db - report.worst_drop_db
        consider(model, report, [layer])
    if not best.passed and not result.stopped_by_budget and len(layers) > 2:  # 2. greedy
        order = sorted(result.sensitivity, key=result.sensitivity.get, reverse=True)
        kept: list[str] = [order[0]]
        current = first[1].worst_drop_db - result.sensitivity[order[0]]
        for layer in order[1:]:
            if len(kept) + 1 >= len(layers) or over_budget():
                break
            exclude = [n for n in layers if n in kept or n == layer]
            model, report = measure(exclude)
            consider(model, report, exclude)
            if report.passed:
                break
            # keep a layer in float only if it helped: errors of neighbouring layers partly
            # cancel, so leaving one more in float can make the model worse
            if report.worst_drop_db < current:
                kept.append(layer)
                current = report.worst_drop_db
    result.seconds = clock() - start
    return result


def speed_ratio(fp32_path: str, int8_path: str, feed: dict, *, threads: int | None,
                repeats: int = 5) -> float:
    """FP32 time / INT8 time on ``feed`` (one recorded calibration feed), ONNX Runtime's
    CPU provider, runs interleaved so that load from other processes hits both; median."""
    import statistics

    from edgerestore.backends import RunnerOptions, open_runner

    runners = [open_runner(p, "ort-cpu", RunnerOptions(threads=threads))[0]
               for p in (fp32_path, int8_path)]
    times: list[list[float]] = [[], []]
    for r in runners:
        r.activate()
    try:
        for r in runners:
            r.infer(feed)  # warm-up
        for _ in range(repeats):
            for k, r in enumerate(runners):
                t = time.perf_counter()
                r.infer(feed)
                times[k].append(time.perf_counter() - t)
    finally:
        for r in runners:
            r.deactivate()
    return statistics.median(times[0]) / statistics.median(times[1])


def refusal_advice(report: GateReport, *, method: str, target: str, fallback_used: bool,
                   fallback: FallbackResult | None, frames_used: int, count: int,
                   task: str) -> list[str]:
    """What to try after a refusal, most likely to help first; never what is in use.

    Ordered by what changed the result on the shipped models (docs/calibration.md,
    *Why INT8 failed on footage*): keeping layers in float first, then more time for that
    search, then the calibration method, then more frames; FP16 and a larger allowance
    last, since they give up speed or accuracy.
    """
    tips = []
    if not fallback_used:
        tips.append("drop --no-fallback: calibrate then keeps the most sensitive layers in "
                    "float until the gate passes")
    elif fallback is not None and fallback.stopped_by_budget:
        tips.append(f"raise --fallback-seconds (the layer search stopped after "
                    f"{fallback.seconds:.0f} s and {fallback.evaluations} gate runs)")
    if task == "super_resolution" and method != "minmax":
        tips.append("--method minmax (the most accurate measured on the super-resolution models)")
    elif task != "super_resolution" and method != "entropy":
        tips.append("--method entropy (the most accurate measured on the shipped denoisers)")
    if target == "tensorrt":
        tips.append("--target cpu if the model will run in ONNX Runtime on a CPU (asymmetric "
                    "U8 activations keep one more bit on ReLU outputs)")
    if frames_used >= count:
        tips.append(f"more frames: --count {count * 2}")
    if task == "denoise":
        tips.append("--gate-sigma S at your camera's noise level, if it is not "
                    + report.worst_group.removeprefix("sigma ") + " (the worst group)")
    tips.append("--precision fp16 (no accuracy loss; fast on GPUs, not on the CPU)")
    tips.append(f"--max-drop-db {max(report.worst_drop_db, 0) + 0.05:.2f} if a "
                f"{report.worst_drop_db:.2f} dB loss is acceptable")
    return tips
