"""The accuracy gate: a converted model is only written if it stays close to FP32.

On held-apart frames (never used for calibration) the FP32 model and the converted
(INT8 or FP16) model restore the same degraded inputs. The gate reports

* PSNR of each against the clean frames, and the **drop** (FP32 minus converted, dB);
* PSNR of the converted output against the FP32 output (how faithfully it imitates it)
  and the largest absolute difference;

and refuses, raising :class:`GateError`, when the drop exceeds ``max_drop_db`` (default
0.3 dB) in any group: frames are grouped by their label's condition (``sigma 25``: one
group per noise level for denoisers, else one group), and the gate judges the **worst**
group, not the mean, so a loss at one noise level cannot hide behind the others. PSNR is computed per frame on [0, 1] images and averaged, as in the denoising
literature (:func:`edgerestore.metrics.psnr`, reference first); a perfect match is
reported as 100 dB.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from edgerestore.errors import EdgeRestoreError
from edgerestore.metrics import psnr

DEFAULT_MAX_DROP_DB = 0.3


class GateError(EdgeRestoreError):
    """The converted model lost more accuracy than allowed; nothing was written."""

    def __init__(self, message: str, report: "GateReport"):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class GateReport:
    """What the gate measured (see the module docstring)."""

    precision: str
    frames: int
    psnr_fp32: float
    psnr_converted: float
    psnr_vs_fp32: float
    max_abs_diff: float
    max_drop_db: float
    per_frame: tuple[dict, ...] = field(default=())

    @property
    def drop_db(self) -> float:
        """Mean drop over all gate frames (dB)."""
        return self.psnr_fp32 - self.psnr_converted

    @property
    def group_drops(self) -> dict[str, float]:
        """Drop (dB) per group (e.g. ``sigma 15``), from the per-frame figures."""
        groups: dict[str, list[float]] = {}
        for f in self.per_frame:
            groups.setdefault(group_of(f["label"]), []).append(f["psnr_fp32"] - f["psnr_converted"])
        return {k: float(np.mean(v)) for k, v in groups.items()} or {"all": self.drop_db}

    @property
    def worst_group(self) -> str:
        drops = self.group_drops
        return max(drops, key=drops.get)

    @property
    def worst_drop_db(self) -> float:
        """The drop of the worst group (dB): what the gate judges."""
        return self.group_drops[self.worst_group]

    @property
    def passed(self) -> bool:
        return self.worst_drop_db <= self.max_drop_db

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(drop_db=round(self.drop_db, 4), passed=self.passed,
                 worst_drop_db=round(self.worst_drop_db, 4), worst_group=self.worst_group,
                 group_drops={k: round(v, 4) for k, v in self.group_drops.items()})
        d["per_frame"] = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in f.items()}
                          for f in self.per_frame]
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}

    def format(self) -> str:
        verdict = "PASS" if self.passed else "REFUSED"
        return "\n".join([
            f"accuracy gate ({self.precision}, {self.frames} held-apart frames): {verdict}",
            f"  PSNR vs clean     fp32 {self.psnr_fp32:.3f} dB   {self.precision} "
            f"{self.psnr_converted:.3f} dB   mean drop {self.drop_db:+.3f} dB",
            "  drop per group    " + "   ".join(f"{k} {v:+.3f}" for k, v in self.group_drops.items())
            + f"   worst {self.worst_drop_db:+.3f} dB (allowed {self.max_drop_db:g} dB)",
            f"  {self.precision} vs fp32 output  PSNR {self.psnr_vs_fp32:.2f} dB   "
            f"max |diff| {self.max_abs_diff:.4g}",
            *(f"    {f['label']:<12} fp32 {f['psnr_fp32']:.2f} dB  {self.precision} "
              f"{f['psnr_converted']:.2f} dB  drop {f['psnr_fp32'] - f['psnr_converted']:+.3f}"
              for f in self.per_frame),
        ])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def evaluate(clean: Sequence[np.ndarray], fp32: Sequence[np.ndarray],
             converted: Sequence[np.ndarray], *, precision: str,
             max_drop_db: float = DEFAULT_MAX_DROP_DB,
             labels: Sequence[str] | None = None) -> GateReport:
    """Compare outputs frame by frame and return the report (does not raise).

    labels: one per frame (e.g. ``"sigma 25"``) for the per-frame breakdown.
    """
    if not (len(clean) == len(fp32) == len(converted)) or not clean:
        raise ValueError("the gate needs the same, non-zero number of clean, FP32 and converted frames")
    labels = list(labels) if labels is not None else [f"frame {i}" for i in range(len(clean))]
    per_frame = tuple(
        {"label": lab, "psnr_fp32": psnr(c, f), "psnr_converted": psnr(c, q)}
        for lab, c, f, q in sorted(zip(labels, clean, fp32, converted), key=lambda t: _label_key(t[0]))
    )
    return GateReport(
        per_frame=per_frame,
        precision=precision,
        frames=len(clean),
        psnr_fp32=float(np.mean([psnr(c, f) for f, c in zip(fp32, clean)])),
        psnr_converted=float(np.mean([psnr(c, q) for q, c in zip(converted, clean)])),
        psnr_vs_fp32=float(np.mean([psnr(f, q) for q, f in zip(converted, fp32)])),
        max_abs_diff=float(max(np.max(np.abs(q.astype(np.float64) - f)) for q, f in zip(converted, fp32))),
        max_drop_db=float(max_drop_db),
    )


def group_of(label: str) -> str:
    """The group a gate frame's label belongs to: ``sigma 25`` for noise levels, else ``all``."""
    return label if label.startswith("sigma ") else "all"


def _label_key(label: str):
    head, _, tail = label.rpartition(" ")
    try:
        return (head, float(tail))
    except ValueError:
        return (label, 0.0)


def enforce(report: GateReport, *, output: str, advice: Sequence[str] = (),
            note: str = "") -> None:
    """Raise :class:`GateError` when the report fails; the message lists ``advice`` (what
    to try, most likely first) and ``note`` (e.g. what the layer search did)."""
    if report.passed:
        return
    tried = f" {note.strip()}" if note else ""
    tips = "; ".join(advice) if advice else "raise --max-drop-db if the loss is acceptable"
    raise GateError(
        f"accuracy gate refused the {report.precision} model: PSNR drops by "
        f"{report.worst_drop_db:.3f} dB at {report.worst_group} (mean {report.drop_db:.3f} dB; "
        f"FP32 {report.psnr_fp32:.3f} dB, {report.precision} {report.psnr_converted:.3f} dB), "
        f"more than the allowed {report.max_drop_db:g} dB; {output} was not written.{tried} "
        f"Try, most likely first: {tips}",
        report,
    )
