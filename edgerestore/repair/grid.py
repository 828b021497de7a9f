"""The macroblock grid of a stream, found from the damage itself (issue #26: a cropped or
padded stream's grid does not start at the top-left corner).

A decoder conceals a lost macroblock with exact values - flat, or a copy of the row above
(or column left of) it - and the concealment stops where the macroblock does. So the
runs of identical rows in a frame (at least one block tall) *end* on a grid line, and
the columns such a run covers start and stop on grid lines too; the same holds for runs
of identical columns. :class:`GridTracker` counts, per frame, where such runs that are
new (the pixel differs from the previous frame: static flat areas such as letterbox bars
or a logo say nothing) end, modulo the block size, and settles on a phase once one
clearly leads. Without evidence (clean footage) the grid stays at the top-left corner.

Phases are ``(y, x)`` in pixels, ``0 <= phase < block``: grid lines at rows ``y + k*block``
and columns ``x + k*block``. Frames are uint8 ``H x W x 3`` BGR or ``H x W`` gray.
:func:`to_grid` / :func:`from_grid` pad a frame so that its grid starts at the corner
and take a per-pixel map back.
"""

from __future__ import annotations

import numpy as np

GRID_MIN_VOTES = 4
"""Block edges that must point at a phase before it is taken."""

GRID_MIN_LINES = 3
"""Distinct grid lines (rows, or columns) the votes for a phase must come from: damage
falls anywhere on the grid, while the edges of one flat object of the scene (a wall
that lights up, a caption box that appears) are always the same few lines."""

GRID_LEAD = 2.0
"""How many times the votes of the next phase the chosen phase must have."""


def _cv2():
    from edgerestore._lazy import require

    return require("cv2", purpose="frame repair")


def _full_runs(same: np.ndarray, length: int, axis: int) -> np.ndarray | None:
    """``same`` (uint8, nonzero where true): along ``axis``, entry ``i`` holds "line i
    equals line i+1". True at ``i`` when lines ``i-length+2 .. i+1`` are identical (an
    erosion whose anchor is the kernel's end); None when nowhere (the common case)."""
    cv2 = _cv2()
    k = length - 1                                     # pairs in a run of `length` lines
    if same.shape[axis] < k:
        return None
    kernel, anchor = (np.ones((k, 1), np.uint8), (0, k - 1)) if axis == 0 else (np.ones((1, k), np.uint8), (k - 1, 0))
    full = cv2.erode(same, kernel, anchor=anchor, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return full.astype(bool) if cv2.countNonZero(full) else None


def _run_ends(full: np.ndarray, same: np.ndarray, axis: int) -> np.ndarray:
    """Where a run of :func:`_full_runs` along ``axis`` stops (line ``i+2`` differs from
    line ``i+1``); runs that reach the frame's last line are left out."""
    ends = full.copy()
    if axis == 0:
        ends[:-1] &= same[1:] == 0
        ends[-1] = False
    else:
        ends[:, :-1] &= same[:, 1:] == 0
        ends[:, -1] = False
    return ends


def _long_segments(marks: np.ndarray, length: int, axis: int = 1) -> np.ndarray:
    """``marks`` (bool) keeping only the runs of True along ``axis`` that are at least
    ``length`` long (a lost macroblock is a whole block wide): an opening, its erosion
    looking ahead (window j .. j+length-1) and its dilation back."""
    cv2 = _cv2()
    k = np.ones((1, length) if axis == 1 else (length, 1), np.uint8)
    back = (length - 1, 0) if axis == 1 else (0, length - 1)
    full = cv2.erode(marks.astype(np.uint8), k, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.dilate(full, k, anchor=back, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def _segment_edges(marks: np.ndarray) -> np.ndarray:
    """Along each row of ``marks`` (N x M bool), the positions of the grid lines that
    its runs of True imply: each run's first index and one past its last, except at
    either end of the row (the frame's edge is no grid line)."""
    rows = np.flatnonzero(marks.any(axis=1))
    if not rows.size:
        return np.zeros(0, np.int64)
    m = marks[rows].astype(np.int8)
    d = np.diff(m, axis=1, prepend=0, append=0)        # +1 at a start, -1 one past an end
    starts = np.nonzero(d == 1)[1]
    ends = np.nonzero(d == -1)[1]
    return np.concatenate([starts[starts > 0], ends[ends < marks.shape[1]]])


NEW_STEP = 8
"""A pixel is new when its gray level differs from the previous frame by more than
this (0-255): the concealment replaced something else."""


def gray(img: np.ndarray) -> np.ndarray:
    """The gray level of a uint8 BGR frame (the frame itself when gray): a concealment
    is exact in every channel, so it is exact in gray too, and one channel costs a third."""
    return img if img.ndim == 2 else _cv2().cvtColor(img, _cv2().COLOR_BGR2GRAY)


def grid_votes(g: np.ndarray, prev: np.ndarray | None, block: int = 16,
               prior: tuple[np.ndarray, np.ndarray] | None = None,
               lines: tuple[set, set] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Votes for the grid phase of a frame from its gray levels ``g`` (``H x W`` uint8, see
    :func:`gray`) and those of the frame before, ``prev``: ``(vy, vx)``, each ``block``
    floats, in block edges. A run of identical rows counts when it is at least ``block``
    rows tall and ``block`` pixels wide (the 4x4 and 8x8 flat areas of a codec's own
    transform say nothing of its 16x16 grid) and its last row is new against ``prev``
    (:data:`NEW_STEP`; ``prev`` None: nothing counts). Its end is one vote for ``vy``
    per ``block`` columns; its sides (where the columns identical all the way up the
    block start and stop) are a vote each for ``vx``, counted only on the most voted row
    phase so far (``prior`` votes plus this frame's ends: the end line alone is broken
    wherever a pixel of the smear happens to equal the old one). Runs of identical
    columns the same way round. ``lines``: sets to which the rows and the columns of the
    grid lines voted for are added (pixels)."""
    vy = np.zeros(block, np.float64)
    vx = np.zeros(block, np.float64)
    seen = lines
    if prev is None or prev.shape != g.shape or min(g.shape) < block + 2:
        return vy, vx
    cv2 = _cv2()
    new = None
    for axis in (0, 1):
        # runs of identical rows (axis 0: their ends vote for the row phase, their sides
        # for the column phase) or of identical columns (axis 1: the other way round)
        d = cv2.absdiff(g[1:], g[:-1]) if axis == 0 else cv2.absdiff(g[:, 1:], g[:, :-1])
        same = cv2.compare(d, 0, cv2.CMP_EQ)          # 255 where the lines are equal
        full = _full_runs(same, block, axis)
        if full is None:                               # the common case: nothing to count
            continue
        if new is None:
            new = cv2.absdiff(g, prev) > NEW_STEP
        ends = _run_ends(full, same, axis)             # line i: line i+1 is the run's last
        if not ends.any():
            continue
        ends = _long_segments(ends, block, 1 - axis)
        # the end line must be new, mostly (a pixel of a concealment may equal the old one)
        per_line = np.count_nonzero(ends, axis=1 - axis)
        lines = np.flatnonzero(per_line)
        if not lines.size:
            continue
        last = (new[lines + 1] if axis == 0 else new[:, lines + 1].T).astype(np.float32)
        mostly = cv2.blur(last, (block, 1)) > 0.5
        if axis == 0:
            ends[lines] &= mostly
        else:
            ends[:, lines] &= mostly.T
        per_line = np.count_nonzero(ends, axis=1 - axis)
        along = np.bincount((np.arange(per_line.size) + 2) % block, weights=per_line,
                            minlength=block) / block   # the grid line after the run
        prior_along = (prior[axis] if prior is not None else 0) + along
        # the block rows (on the most voted phase) where a run ended: where the columns
        # identical all the way up the block start and stop are the run's sides (the end
        # line alone is broken wherever a pixel of the smear happens to equal the old one)
        lines = np.flatnonzero(per_line)
        lines = lines[(lines + 2) % block == int(np.argmax(prior_along))]
        edges = np.zeros(0, np.int64)
        if lines.size:
            band = full[lines] if axis == 0 else full[:, lines].T
            edges = _segment_edges(_long_segments(band, block))
        (vy, vx)[axis][:] += along
        (vx, vy)[axis][:] += np.bincount(edges % block, minlength=block)
        if seen is not None:
            seen[axis].update((np.flatnonzero(per_line) + 2).tolist())
            seen[1 - axis].update(edges.tolist())
    return vy, vx


class GridTracker:
    """The grid phase of a stream from the damage seen so far: call :meth:`update` with
    each input frame in order; :attr:`phase` is ``(y, x)`` (``(0, 0)`` until a phase has
    at least :data:`GRID_MIN_VOTES` votes from :data:`GRID_MIN_LINES` distinct grid lines
    and :data:`GRID_LEAD` times the votes of any other)."""

    def __init__(self, block: int = 16):
        self.block = block
        self.votes_y = np.zeros(block, np.float64)
        self.votes_x = np.zeros(block, np.float64)
        self.phase: tuple[int, int] = (0, 0)
        self.lines: tuple[set, set] = (set(), set())   # rows, columns of the grid lines voted for
        self._prev: np.ndarray | None = None

    def update(self, img: np.ndarray) -> tuple[int, int]:
        """Add the evidence of ``img`` (uint8 BGR or gray, the next input frame: against
        the frame before it); returns the phase."""
        g = gray(img)
        vy, vx = grid_votes(g, self._prev, self.block, (self.votes_y, self.votes_x), self.lines)
        self._prev = g
        self.votes_y += vy
        self.votes_x += vx
        self.phase = (_settled(self.votes_y, self.lines[0]), _settled(self.votes_x, self.lines[1]))
        return self.phase


def _settled(votes: np.ndarray, lines: set) -> int:
    """The phase with the most votes, when it has enough of them (:data:`GRID_MIN_VOTES`),
    leads the next one (:data:`GRID_LEAD`) and they come from grid lines at
    :data:`GRID_MIN_LINES` places at least; else 0 (the corner)."""
    order = np.argsort(votes)[::-1]
    best, second = votes[order[0]], votes[order[1]]
    places = sum(1 for p in lines if p % votes.size == order[0])
    ok = best >= GRID_MIN_VOTES and best >= GRID_LEAD * second and places >= GRID_MIN_LINES
    return int(order[0]) if ok else 0


def to_grid(img: np.ndarray, phase: tuple[int, int], block: int = 16) -> np.ndarray:
    """``img`` padded at the top and left (edge pixels repeated) so that the grid with
    ``phase`` starts at its top-left corner (``img`` itself for phase ``(0, 0)``)."""
    top, left = (-phase[0]) % block, (-phase[1]) % block
    if not (top or left):
        return img
    return _cv2().copyMakeBorder(img, top, 0, left, 0, _cv2().BORDER_REPLICATE)


def from_grid(a: np.ndarray, phase: tuple[int, int], block: int = 16) -> np.ndarray:
    """The part of a per-pixel map of :func:`to_grid`'s frame that covers the original."""
    top, left = (-phase[0]) % block, (-phase[1]) % block
    return np.ascontiguousarray(a[top:, left:]) if (top or left) else a
