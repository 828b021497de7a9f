"""Packet-loss detection from block statistics and temporal consistency, no mask needed;
and :class:`DetectConfig`, the thresholds of every detector.

Detectors return a per-pixel boolean mask (``H x W``) and counts. Frames are uint8,
``H x W x 3`` BGR or ``H x W`` gray. Thresholds are on the 0-255 scale and live in
:class:`DetectConfig`; ``docs/repair.md`` says how they were chosen. The detectors of
stuck pixels are in :mod:`~edgerestore.repair.dead_pixels`, those of frozen and dropped
frames in :mod:`~edgerestore.repair.frame_timing`.

* :func:`block_candidates`: 16x16 macroblocks (on the codec's grid: from the top-left
  corner, or where :class:`~edgerestore.repair.grid.GridTracker` found it) whose rows
  or columns are constant - flat blocks and smeared copies of a neighbouring
  row/column, what a decoder shows for a lost slice. Clean video has such blocks too
  (sky, letterbox bars), so a candidate alone is not damage.
* :func:`detect_packet_loss`: candidates that are *new*: they differ from the same
  block in every temporal neighbour given (the repaired previous frame, the next
  frame), as a spike in time; then the rest of each lost slice (raster order). A flat
  region that stays (sky, black bars) is scene content. With fewer than two neighbours
  (first or last frame, a clip of one frame) a candidate must also break the image at
  its outer border (a jump across the block edge much larger than the image's own
  gradient there): with one neighbour, damage *in the neighbour* would otherwise make
  a clean block look new.

Why one module: the packet-loss decision is one chain - candidates, scores, hysteresis,
the growth of a slice, scene events, border tests - whose steps and constants were set
together against the same clean and damaged clips (docs/repair.md); the statistics it
uses are in :mod:`~edgerestore.repair.blocks`, the grid in :mod:`~edgerestore.repair.grid`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgerestore.repair.blocks import (  # noqa: F401  (block_smear_metrics, block_difference: public here too)
    as3, block_difference, block_flatness, block_smear_metrics, blocks_to_mask, global_shift, grow_raster, grow_runs,
    match_residual, per_block_mean, seams,
)
from edgerestore.repair.grid import from_grid, to_grid


def _cv2():
    from edgerestore._lazy import require

    return require("cv2", purpose="frame repair")


@dataclass(frozen=True, kw_only=True)
class DetectConfig:
    """Detection thresholds (0-255 scale).

    ``block``: macroblock size of the codec (16 for H.264/MPEG-2/4). ``threshold``: the
    score (see :func:`block_scores`; 1 = the default decision boundary) a detection needs:
    lower finds more damage and risks false repairs, higher the reverse; it scales the
    dead-pixel impulse test too. ``search_radius``: pixels of motion the temporal test
    looks through (block matching against the neighbour frames). ``smear_tol``: a
    block is a candidate when the mean absolute difference between its consecutive rows
    (or columns) is at most this (0 for an exact smear or flat block; a little slack
    survives a lossy re-encode). ``novelty_tol``: a candidate is damage when its mean
    absolute difference to the same block of each neighbour frame is above this.
    ``border_tol``: without neighbours, the jump across the block's outer edge must exceed
    the image's own gradient there by this much. ``dead_*``: stuck pixels (rules in
    :mod:`~edgerestore.repair.dead_pixels`). A frame is evidence when the pixel differs
    from its 3x3 median by more than ``dead_impulse`` and lies outside the range of all
    8 neighbours by more than ``dead_margin`` (``dead_lossy_margin`` for a smeared one);
    its value may wander by ``dead_value_tol`` and leave for ``dead_gap`` frames. Exact
    0/255 pixels must stay stuck ``dead_frames`` while the neighbourhood's median moves
    by ``dead_motion``, else ``dead_still_frames`` (``dead_weak_frames`` when an impulse
    in only half the frames); faint ones (outside by ``dead_faint_margin``)
    ``dead_still_frames``. Smeared ones (after a lossy re-encode): ``dead_lossy_frames``,
    a mean deviation of ``dead_lossy_impulse``, within ``dead_lossy_band`` of 0/255. A
    clip shorter than the longest of these is judged at its end on half its frames; an
    offline repairer holds the start of a clip back that long. ``frozen_tol``: mean
    absolute difference below which a frame repeats the previous one; ``frozen_step``:
    and no pixel of it may differ by more than this. ``gap_factor``: a
    timestamp step above this many frame periods means frames were dropped.
    """

    block: int = 16
    threshold: float = 1.0
    search_radius: int = 8
    smear_tol: float = 0.5
    novelty_tol: float = 6.0
    border_tol: float = 12.0
    dead_impulse: float = 20.0
    dead_margin: float = 10.0
    dead_value_tol: int = 12
    dead_gap: int = 2
    dead_frames: int = 16
    dead_still_frames: int = 20
    dead_weak_frames: int = 24
    dead_motion: int = 4
    dead_faint_margin: float = 3.0
    dead_lossy_frames: int = 16
    dead_lossy_impulse: float = 50.0
    dead_lossy_margin: float = 30.0
    dead_lossy_band: int = 40
    frozen_tol: float = 0.1
    frozen_step: int = 2
    gap_factor: float = 1.5

    def __post_init__(self):
        if not self.threshold > 0:
            from edgerestore.errors import InputError

            raise InputError(f"detection threshold must be > 0 (1.0 is the default), got {self.threshold!r}")


def block_candidates(img: np.ndarray, cfg: DetectConfig = DetectConfig()) -> np.ndarray:
    """Per-block bool map (``ceil(H/b) x ceil(W/b)``): flat blocks (rows and columns
    constant), and smeared blocks: columns constant and the block continues the pixel
    row above or below it without a seam (the row that was copied), or rows constant and
    it continues the column left or right of it; and any exact copy of texture
    (:func:`exact_texture`)."""
    mv, mh = block_smear_metrics(img, cfg.block)
    cv_, ch = mv <= cfg.smear_tol, mh <= cfg.smear_tol
    flat = cv_ & ch
    only_v, only_h = cv_ & ~ch, ch & ~cv_
    if not (only_v.any() or only_h.any()):
        return flat
    seam_v, seam_h = seams(img, cfg.block)
    above = np.zeros_like(seam_v)
    above[1:] = seam_v[:-1]
    left = np.zeros_like(seam_h)
    left[:, 1:] = seam_h[:, :-1]
    # an exact copy of texture is a smear wherever it came from (the row it copied may
    # have been concealed over afterwards); clean footage never has one (EXACT_TEXTURE_RATIO)
    return flat | (only_v & (above | seam_v)) | (only_h & (left | seam_h)) | exact_texture(mv, mh)


def _edge_jumps(img: np.ndarray, block: int, tol: float):
    """Per block and side (up, down, left, right): does the block's edge step into the
    neighbouring block by more than ``tol`` above the neighbour's own gradient there?"""
    x = as3(img)
    h, w = x.shape[:2]
    nby, nbx = -(-h // block), -(-w // block)
    up, down, left, right = (np.zeros((nby, nbx), bool) for _ in range(4))

    def m(a, b):  # mean absolute difference over channels, float
        return np.abs(a.astype(np.float32) - b).mean(axis=-1)

    if nby > 1:
        ys = np.arange(1, nby) * block                 # first row of the lower block
        below = np.minimum(ys + 1, h - 1)
        jump = per_block_mean(m(x[ys], x[ys - 1]), nbx, block)
        nat_above = per_block_mean(m(x[ys - 1], x[ys - 2]), nbx, block)
        nat_below = per_block_mean(m(x[ys], x[below]), nbx, block)
        up[1:] = jump - nat_above > tol                # lower block steps into the one above
        down[:-1] = jump - nat_below > tol             # upper block steps into the one below
    if nbx > 1:
        xs = np.arange(1, nbx) * block
        right_of = np.minimum(xs + 1, w - 1)
        jump = per_block_mean(m(x[:, xs], x[:, xs - 1]).T, nby, block)
        nat_left = per_block_mean(m(x[:, xs - 1], x[:, xs - 2]).T, nby, block)
        nat_right = per_block_mean(m(x[:, xs], x[:, right_of]).T, nby, block)
        left[:, 1:] = (jump - nat_left > tol).T
        right[:, :-1] = (jump - nat_right > tol).T
    return up, down, left, right


def _border_jump(img: np.ndarray, cand: np.ndarray, block: int, tol: float, share: float = 0.5,
                 smear_tol: float = 0.5) -> np.ndarray:
    """Rectangular runs of candidate blocks (joined by seamless edges) that break the
    image along at least ``share`` of their outer border that is not seamless (a step across the edge
    larger than ``tol`` above the image's own gradient on the other side). A lost run is foreign all round
    (a smear continues only the one row or column it copies); a flat region of the scene
    next to it (sky beside a grey block) steps only where it meets the block."""
    cv2 = _cv2()
    nby, nbx = cand.shape
    seam_v, seam_h = seams(img, block)
    grid = np.zeros((2 * nby - 1, 2 * nbx - 1), np.uint8)
    grid[::2, ::2] = cand
    # blocks of one run: joined by a seamless edge, or side by side across a smear (the
    # columns of a vertical smear differ from each other as the copied row does)
    mv, mh = block_smear_metrics(img, block)
    only_v = (mv <= smear_tol) & (mh > smear_tol)
    only_h = (mh <= smear_tol) & (mv > smear_tol)
    link_v = seam_v[:-1] | (only_h[:-1] & only_h[1:])
    link_h = seam_h[:, :-1] | (only_v[:, :-1] & only_v[:, 1:])
    grid[1::2, ::2] = cand[:-1] & cand[1:] & link_v
    grid[::2, 1::2] = cand[:, :-1] & cand[:, 1:] & link_h
    n, lab, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=4)
    # a lost run is a rectangle of blocks (a region of the scene with a hole in it is not)
    # (in the grid a full r x c run covers its bounding box except the (r-1)(c-1) cells
    # between four blocks)
    gw, gh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    rect = stats[:, cv2.CC_STAT_AREA] == gw * gh - ((gw - 1) // 2) * ((gh - 1) // 2)
    lab = lab[::2, ::2]
    up, down, left, right = _edge_jumps(img, block, tol)
    total = np.zeros(n, np.int64)
    jumps = np.zeros(n, np.int64)
    # (own block labels, neighbour labels, step into the neighbour, edge seamless)
    sides = (
        (lab[1:], lab[:-1], up[1:], seam_v[:-1]), (lab[:-1], lab[1:], down[:-1], seam_v[:-1]),
        (lab[:, 1:], lab[:, :-1], left[:, 1:], seam_h[:, :-1]),
        (lab[:, :-1], lab[:, 1:], right[:, :-1], seam_h[:, :-1]),
    )
    for own, other, jump, seamless in sides:
        # seamless outer edges (the row or column a smear copies) are neither for nor against
        outer = (own > 0) & (own != other) & ~seamless
        total += np.bincount(own[outer], minlength=n)
        jumps += np.bincount(own[outer & jump], minlength=n)
    keep = (total > 0) & (jumps >= share * total) & rect
    keep[0] = False
    return keep[lab] & cand


def _border_jump_sides(img: np.ndarray, cand: np.ndarray, block: int, tol: float) -> np.ndarray:
    """Candidate blocks with an edge towards a non-candidate block that jumps by more
    than ``tol`` above the image's own gradient there, and the blocks joined to them by
    seamless edges (the rest of the same lost run)."""
    x = as3(img).astype(np.float32)
    h, w = x.shape[:2]
    out = np.zeros_like(cand)
    for by, bx in zip(*np.nonzero(cand)):
        y0, x0 = by * block, bx * block
        y1, x1 = min(y0 + block, h), min(x0 + block, w)
        worst = 0.0
        sides = []
        if y0 >= 2 and not cand[by - 1, bx]:
            sides.append((x[y0, x0:x1], x[y0 - 1, x0:x1], x[y0 - 2, x0:x1]))
        if y1 + 1 < h and by + 1 < cand.shape[0] and not cand[by + 1, bx]:
            sides.append((x[y1 - 1, x0:x1], x[y1, x0:x1], x[y1 + 1, x0:x1]))
        if x0 >= 2 and not cand[by, bx - 1]:
            sides.append((x[y0:y1, x0], x[y0:y1, x0 - 1], x[y0:y1, x0 - 2]))
        if x1 + 1 < w and bx + 1 < cand.shape[1] and not cand[by, bx + 1]:
            sides.append((x[y0:y1, x1 - 1], x[y0:y1, x1], x[y0:y1, x1 + 1]))
        for inner, edge, outer in sides:
            jump = float(np.abs(inner - edge).mean())
            natural = float(np.abs(edge - outer).mean())
            worst = max(worst, jump - natural)
        out[by, bx] = worst > tol
    # a run of blocks is lost as a whole: grow the verdict across seamless inner edges
    # (a flat run is seamless inside, a smear along its direction), never across an
    # edge with a step, so a clean flat area next to a grey block stays out
    if out.any():
        out = grow_runs(out, cand, *seams(x, block))
    return out


@dataclass
class BlockDamage:
    """Result of :func:`detect_packet_loss`: ``blocks`` (per-block bool), ``mask``
    (per-pixel bool), ``flat`` and ``smear`` block counts, ``scores``: the score of each
    detected block (row-major order of ``blocks``)."""

    blocks: np.ndarray
    mask: np.ndarray
    flat: int
    smear: int
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def count(self) -> int:
        return int(self.blocks.sum())


EXACT_RATIO, NOT_EXACT_RATIO = 0.5, 3.0
"""The :func:`spike_ratio` that scores 1 (the default boundary) for a block that is an
exact copy (flat, or rows/columns identical: what decoders conceal with) and for one
that is only nearly so. On the real clips (and their H.264 re-encodes down to 60
kbit/s) no new candidate block was exact, and the nearly-constant ones reached a spike
ratio of 1.2 at most (docs/repair.md)."""


EXACT_TEXTURE_RATIO = 0.1
"""The :func:`spike_ratio` that scores 1 for an exact copy of *texture*: rows (or
columns) identical while the other direction varies (:func:`exact_texture`), the copy of
a textured row that a decoder's concealment makes. Clean footage never showed one that
was new (0 on every clean clip and re-encode of the benchmark, docs/repair.md), so a
faint spike suffices: content that moves past the block too fast for the block matching
leaves the ratio of a true loss well under :data:`EXACT_RATIO`."""

TEXTURE_STEP = 1.0
"""Mean absolute step (0-255) across an exact smear from which it counts as textured."""


def exact_texture(mv: np.ndarray, mh: np.ndarray) -> np.ndarray:
    """Per block, from :func:`block_smear_metrics`: rows identical while columns vary by
    at least :data:`TEXTURE_STEP` on average, or the reverse."""
    return ((mv == 0) & (mh >= TEXTURE_STEP)) | ((mh == 0) & (mv >= TEXTURE_STEP))


def spike_ratio(img: np.ndarray, prev: np.ndarray, nxt: np.ndarray, blocks: np.ndarray,
                cfg: DetectConfig = DetectConfig()) -> np.ndarray:
    """Per block marked in ``blocks`` (others 0): ``min(r_prev, r_next) / (r_apart + 4)``,
    ``r_*`` the motion-compensated residuals of :func:`match_residual` - the block against
    each neighbour, and the neighbours' blocks against each other (the smaller of both
    ways: at the frame's edge, content that leaves has a match one way only), searched
    around the frames' global motion (:func:`global_shift`, a pan). A lost block
    is unlike both neighbours while they are alike (a spike in time, as dirt detectors for
    film do); content that moves is matched at its shift, and content that changes (an
    occlusion) changes between the neighbours as well, or matches one of them."""
    b, radius = cfg.block, cfg.search_radius
    if not blocks.any():
        return np.zeros(blocks.shape, np.float32)
    to_prev, to_next = global_shift(img, prev), global_shift(img, nxt)
    apart_shift = (to_next[0] - to_prev[0], to_next[1] - to_prev[1])
    r_prev = match_residual(img, prev, blocks, b, radius, to_prev)
    r_next = match_residual(img, nxt, blocks, b, radius, to_next)
    apart = np.minimum(match_residual(prev, nxt, blocks, b, 2 * radius, apart_shift),
                       match_residual(nxt, prev, blocks, b, 2 * radius, (-apart_shift[0], -apart_shift[1])))
    return np.where(blocks, np.minimum(r_prev, r_next) / (apart + 4.0), 0.0).astype(np.float32)


def block_scores(img: np.ndarray, neighbours: list[np.ndarray], cfg: DetectConfig = DetectConfig(),
                 blocks: np.ndarray | None = None, min_novelty: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per block: ``(score, novelty)``, for the blocks marked in ``blocks`` (default all;
    others get 0 and inf). ``novelty`` is the smallest mean absolute difference (0-255)
    to the same block of each neighbour. The ``score`` is the evidence of a lost block,
    1 being the default decision boundary:

    * two neighbours (previous, next): the :func:`spike_ratio` over :data:`EXACT_RATIO`
      for an exact copy (flat, or rows or columns identical), over ``NOT_EXACT_RATIO``
      otherwise;
    * one neighbour: ``r / (2 * novelty_tol)`` for exact blocks (``r``: the
      :func:`match_residual` against it), 0 otherwise (the border test in
      :func:`detect_packet_loss` must also agree);
    * none: 1 for exact blocks, 0 otherwise (the border test decides).
    """
    mv, mh = block_smear_metrics(img, cfg.block)
    exact = np.minimum(mv, mh) == 0
    sel = np.ones(exact.shape, bool) if blocks is None else blocks
    if not neighbours:
        return (exact & sel).astype(np.float32), np.where(sel, np.inf, 0).astype(np.float32)
    novelty = np.minimum.reduce([block_difference(img, nb, cfg.block) for nb in neighbours])
    # the costly matching only where it may matter (default: half of novelty_tol)
    look = sel & (novelty > (0.5 * cfg.novelty_tol if min_novelty is None else min_novelty))
    if len(neighbours) >= 2:
        score = spike_ratio(img, neighbours[0], neighbours[1], look, cfg)
        score = score / np.where(exact_texture(mv, mh), EXACT_TEXTURE_RATIO,
                                 np.where(exact, EXACT_RATIO, NOT_EXACT_RATIO))
    else:
        r = match_residual(img, neighbours[0], look, cfg.block, cfg.search_radius)
        score = np.where(exact, r / (2.0 * cfg.novelty_tol), 0.0)
    score = np.where(look, score, 0.0)
    return score.astype(np.float32), np.where(sel, novelty, np.inf).astype(np.float32)


def scene_events(img: np.ndarray, neighbours: list[np.ndarray], found: np.ndarray,
                 cfg: DetectConfig = DetectConfig()) -> np.ndarray:
    """Runs of ``found`` blocks (4-connected) that are a change of the scene, not a loss:
    most blocks in the ring around the run change in time as well. A lost slice ends on
    the macroblock grid and the blocks around it are intact; a flash of light or an
    object that appears for one frame has an edge anywhere, and the blocks holding that
    edge change with it. With two neighbours a ring block changes when its
    :func:`spike_ratio` is at least ``EVENT_RING_RATIO``; with one, when its
    :func:`match_residual` against it is at least a fifth of the run's median residual
    and above ``novelty_tol``. Returns the blocks of such runs."""
    cv2 = _cv2()
    n, lab = cv2.connectedComponents(found.astype(np.uint8), connectivity=4)
    if n <= 1 or not neighbours:
        return np.zeros_like(found)
    k = np.ones((3, 3), np.uint8)
    rings = []
    for i in range(1, n):
        run = lab == i
        rings.append(cv2.dilate(run.astype(np.uint8), k).astype(bool) & ~found)
    every = np.logical_or.reduce(rings)
    if len(neighbours) >= 2:
        ratio = spike_ratio(img, neighbours[0], neighbours[1], every, cfg)
        changed = ratio >= EVENT_RING_RATIO
    else:
        r = match_residual(img, neighbours[0], every | found, cfg.block, cfg.search_radius)
    event = np.zeros_like(found)
    for i, ring in enumerate(rings, start=1):
        if len(neighbours) < 2:
            changed = r >= max(cfg.novelty_tol, 0.2 * float(np.median(r[lab == i])))
        if ring.any() and np.mean(changed[ring]) > 0.5:
            event |= lab == i
    return event


GROW_NOVELTY = 1.0
"""Blocks added to a lost slice by :func:`grow_raster` must differ from every neighbour
frame by more than this (0-255): a block equal to its neighbours needs no repair."""

NO_NEIGHBOUR_SHARE = 0.75
"""With no neighbour frame (a one-frame clip), the share of a run's non-seamless outer
border that must step for the run to count as lost (one side is not enough: a flat
wall or lamp next to sky steps on one side too)."""

EVENT_RING_RATIO = 0.7
"""Spike ratio above which a block around a detected run counts as changing with it."""


def _grow_slices(img: np.ndarray, damaged: np.ndarray, cand: np.ndarray, novelty: np.ndarray,
                 block: int) -> np.ndarray:
    """``damaged`` plus the rest of each lost slice: a decoder loses a run of macroblocks
    in raster order and conceals it as a whole, so candidate blocks that are exact copies
    (rows or columns identical) and follow or precede a lost block in raster order are
    lost too (:func:`grow_raster`). Seeds are what the evidence found; on clean footage
    there are none, so nothing grows. Blocks that did not change (novelty at most
    :data:`GROW_NOVELTY`) carry the run but are left out: there is nothing to repair."""
    mv, mh = block_smear_metrics(img, block)
    exact = cand & (np.minimum(mv, mh) == 0)
    return grow_raster(damaged, exact) & (damaged | (novelty > GROW_NOVELTY))


def detect_packet_loss(img: np.ndarray, neighbours: list[np.ndarray],
                       cfg: DetectConfig = DetectConfig(), *, candidates: np.ndarray | None = None,
                       previous_repaired: bool = False, phase: tuple[int, int] = (0, 0)) -> BlockDamage:
    """Lost or smeared macroblocks of ``img`` given its temporal ``neighbours`` (0 to 2
    frames of the same size: the repaired previous frame and/or the next frame): candidate
    blocks whose :func:`block_scores` score reaches ``cfg.threshold`` and whose novelty
    exceeds ``novelty_tol``. ``previous_repaired``: the one neighbour given is the
    repaired previous output (the last frame of a clip, or no look-ahead): it carries no
    damage of its own, so twice the threshold passes without the border test that guards
    against a damaged neighbour. ``phase``: where the macroblock grid starts, ``(y, x)``
    pixels (:class:`~edgerestore.repair.grid.GridTracker`; a cropped stream's grid is not
    at the corner): the frames are padded at the top and left to put it there, and the
    returned ``blocks`` (and ``candidates``, if given) are on that padded grid; ``mask``
    is the frame's own."""
    if phase[0] % cfg.block or phase[1] % cfg.block:
        pad = [to_grid(x, phase, cfg.block) for x in [img, *neighbours]]
        found = detect_packet_loss(pad[0], pad[1:], cfg, candidates=candidates,
                                   previous_repaired=previous_repaired)
        found.mask = from_grid(found.mask, phase, cfg.block)
        return found
    b = cfg.block
    cand = block_candidates(img, cfg) if candidates is None else candidates
    score = np.zeros(cand.shape, np.float32)
    if cand.any():
        # seeds first (a clear change); the weaker blocks that may join a seed's run only
        # when there is a seed - on clean footage most frames stop after the first pass
        tol = cfg.novelty_tol
        score, novelty = block_scores(img, neighbours, cfg, cand, min_novelty=tol)
        if len(neighbours) == 2 and (cand & (novelty > tol) & (score >= cfg.threshold)).any():
            rest = cand & (novelty > 0.5 * tol) & (novelty <= tol)
            if rest.any():
                weak_score, _ = block_scores(img, neighbours, cfg, rest, min_novelty=0.5 * tol)
                score = np.where(rest, weak_score, score)
        # a change of a few levels is codec flicker (a flat block's level drifting between
        # P frames at low bit rates), whatever its spike ratio: a seed needs novelty_tol
        new = cand & (novelty > tol)
        damaged = new & (score >= cfg.threshold)
        weak = cand & (score >= 0.5 * cfg.threshold) & (novelty > 0.5 * tol)
        if len(neighbours) == 2 and damaged.any() and (weak & ~damaged).any():
            # hysteresis: blocks of the same lost run (joined by seamless edges) need
            # only half the evidence - a smear can stay close to what it replaced
            damaged = grow_runs(damaged, weak, *seams(img, b))
        if neighbours and damaged.any():
            damaged = _grow_slices(img, damaged, cand, novelty, b)
        if neighbours and damaged.any() and not damaged.all():
            # (after the growth: the ring around a whole slice, not around its first block)
            damaged &= ~scene_events(img, neighbours, damaged, cfg)
        if len(neighbours) == 1 and damaged.all():
            pass  # the whole frame is flat/smeared and new: a lost frame (no border to test)
        elif not neighbours and damaged.any():
            # nothing but the image: a rectangle of blocks foreign along most of its border
            damaged &= _border_jump(img, new, b, cfg.border_tol, share=NO_NEIGHBOUR_SHARE,
                                    smear_tol=cfg.smear_tol)
        elif len(neighbours) < 2 and damaged.any():
            # with one neighbour, its own damage would look like novelty here; with none
            # there is no novelty: the block must also break the image at its border
            # two views of the same question, either suffices: a side towards scene content
            # steps, or the run steps along most of its outer border (when it is
            # surrounded by other flat blocks, e.g. a grey block in the sky)
            # (runs and their sides are those of all new candidates, scored or not)
            # (a repaired previous frame carries no damage: twice the score will do too)
            strong = score >= 2.0 * cfg.threshold if previous_repaired else np.zeros_like(damaged)
            damaged &= (strong | _border_jump_sides(img, new, b, cfg.border_tol)
                        | _border_jump(img, new, b, cfg.border_tol, smear_tol=cfg.smear_tol))
        if len(neighbours) == 1 and damaged.any():
            damaged = _grow_slices(img, damaged, cand, novelty, b)   # what the border tests cut
    else:
        damaged = cand
    flat_blocks = block_flatness(img, b) & damaged
    n = int(damaged.sum())
    nf = int(flat_blocks.sum())
    return BlockDamage(damaged, blocks_to_mask(damaged, img.shape[:2], b), nf, n - nf,
                       scores=score[damaged].astype(np.float32))
