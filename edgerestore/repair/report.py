"""What a :class:`~edgerestore.repair.repairer.FrameRepairer` found and did: the counts
behind its report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgerestore.repair.detect import BlockDamage

REPORT_LIST_LIMIT = 1000
"""At most this many frame numbers / gaps are listed in a report (the counts stay exact)."""


@dataclass
class RepairCounts:
    """Counts per damage kind and per repair kind since the repairer's last reset.

    Pixel counts are pixels (not pixels x channels); ``dead_positions`` is the union of
    the dead-pixel masks (``H x W`` bool); ``frozen_frames`` lists the input indices of
    frozen frames; ``gaps`` one dict per timestamp gap (``before_frame``, ``missing``,
    ``timestamp``). ``packet_loss_scores`` (one per detected block) and
    ``dead_pixel_scores`` (one per dead pixel and frame) are the detections' scores
    (1 = the default decision boundary; see ``DetectConfig.threshold``).
    """

    frames: int = 0
    frames_repaired: int = 0
    packet_loss_frames: int = 0
    packet_loss_blocks: int = 0
    flat_blocks: int = 0
    smeared_blocks: int = 0
    packet_loss_pixels: int = 0
    dead_positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool),
                                       compare=False)  # an array has no single truth value
    dead_pixel_frames: int = 0
    dead_pixels: int = 0
    frozen_frames: list[int] = field(default_factory=list)
    frozen_filled: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    dropped_filled: int = 0
    masked_frames: int = 0
    masked_pixels: int = 0
    temporal_pixels: int = 0
    spatial_pixels: int = 0
    unrepaired_pixels: int = 0
    whole_frames_damaged: int = 0
    packet_loss_scores: list[float] = field(default_factory=list)
    dead_pixel_scores: list[float] = field(default_factory=list)

    def add_packet_loss(self, found: BlockDamage) -> None:
        """One frame with packet-loss blocks."""
        self.packet_loss_frames += 1
        self.packet_loss_blocks += found.count
        self.flat_blocks += found.flat
        self.smeared_blocks += found.smear
        self.packet_loss_pixels += int(found.mask.sum())
        self.packet_loss_scores.extend(float(x) for x in found.scores)

    def add_dead_pixels(self, dead: np.ndarray, scores: np.ndarray | None = None) -> None:
        """One frame with dead pixels (``H x W`` bool) and their scores (1-D)."""
        if scores is not None:
            self.dead_pixel_scores.extend(float(x) for x in scores)
        self.dead_pixel_frames += 1
        self.dead_pixels += int(dead.sum())
        if self.dead_positions.shape != dead.shape:
            self.dead_positions = np.zeros(dead.shape, bool)
        self.dead_positions |= dead

    def add_user_mask(self, mask: np.ndarray) -> None:
        """One frame with pixels the user's mask marks."""
        self.masked_frames += 1
        self.masked_pixels += int(mask.sum())

    def add_repair(self, temporal: int, spatial: int, unrepaired: int) -> None:
        """One repaired frame: pixels filled from neighbour frames, inpainted, left as they were."""
        self.frames_repaired += 1
        self.temporal_pixels += temporal
        self.spatial_pixels += spatial
        self.unrepaired_pixels += unrepaired

    def report(self) -> dict[str, Any]:
        """The counts as the repairer's JSON-ready report (keys as documented in docs/repair.md)."""
        return {
            "frames": self.frames,
            "frames_repaired": self.frames_repaired,
            "packet_loss": {"frames": self.packet_loss_frames, "blocks": self.packet_loss_blocks,
                            "flat_blocks": self.flat_blocks, "smeared_blocks": self.smeared_blocks,
                            "pixels": self.packet_loss_pixels,
                            "scores": score_summary(self.packet_loss_scores)},
            "dead_pixels": {"positions": int(self.dead_positions.sum()), "frames": self.dead_pixel_frames,
                            "pixels": self.dead_pixels, "scores": score_summary(self.dead_pixel_scores)},
            "frozen_frames": {"count": len(self.frozen_frames), "filled": self.frozen_filled,
                              "frames": self.frozen_frames[:REPORT_LIST_LIMIT]},
            "dropped_frames": {"count": sum(g["missing"] for g in self.gaps), "gaps": len(self.gaps),
                               "filled": self.dropped_filled, "at": self.gaps[:REPORT_LIST_LIMIT]},
            "masked": {"frames": self.masked_frames, "pixels": self.masked_pixels},
            "repair": {"temporal_pixels": self.temporal_pixels, "spatial_pixels": self.spatial_pixels,
                       "unrepaired_pixels": self.unrepaired_pixels,
                       "whole_frames_damaged": self.whole_frames_damaged},
        }


SCORE_QUANTILES = (0.1, 0.5, 0.9)


def score_summary(scores: list[float]) -> dict[str, Any]:
    """The distribution of detection scores for a report: ``count``, ``min``, ``p10``,
    ``median``, ``p90``, ``max`` (rounded to 3 decimals; only ``count`` when empty), and
    ``near_threshold``: how many are below 1.5 (within 50 % of the default boundary:
    the detections a higher threshold would drop first)."""
    if not scores:
        return {"count": 0}
    a = np.asarray(scores, np.float64)
    q = np.quantile(a, SCORE_QUANTILES)
    return {"count": int(a.size), "min": round(float(a.min()), 3), "p10": round(float(q[0]), 3),
            "median": round(float(q[1]), 3), "p90": round(float(q[2]), 3), "max": round(float(a.max()), 3),
            "near_threshold": int((a < 1.5).sum())}
