"""Where to seek in a video for its picture number ``k``, from its packets alone.

A decode from the beginning numbers pictures 0, 1, 2, ... in presentation order. Picture
``k`` is therefore the ``k``-th smallest presentation time among the non-empty packets
(AVI drop frames have none), with a repeated time shifted by one frame step as
:meth:`~edgerestore.runtime.video.VideoReader.frames` shifts it. Decoding from the
keyframe at or before that time and dropping the pictures shown before it gives the same
pictures with the same timestamps (used by ``VideoFileSource(start_frame=k)``).
"""

from __future__ import annotations

from typing import Iterable

PAST_THE_END = "past the end"
"""What :func:`plan_seek` returns when the video has no picture ``start``."""


def plan_seek(packets: Iterable[tuple[int | None, bool]], start: int, step: int
              ) -> tuple[int, int] | str | None:
    """``(keyframe_pts, target_pts)`` for picture ``start`` (stream time base), from the
    ``(pts, is_keyframe)`` of the non-empty packets in decode order; ``step``: one frame
    period in the time base (the shift of a repeated time).

    :data:`PAST_THE_END` when there are at most ``start`` pictures; None when the mapping
    cannot be trusted and the caller must decode from the beginning: a packet without
    pts, a packet shown before the first keyframe (open-GOP leading pictures, which a
    decode from the beginning may drop), no keyframe, or a repeated time at or before
    the keyframe (its shift carries on after it, and only a full decode has it)."""
    pts: list[int] = []
    keyframes: list[int] = []
    for p, key in packets:
        if p is None:
            return None
        pts.append(p)
        if key:
            keyframes.append(p)
    if start >= len(pts):
        return PAST_THE_END
    if not keyframes or min(pts) < keyframes[0]:
        return None
    times = sorted(pts)
    first_shifted = None
    for k in range(1, len(times)):
        if times[k] <= times[k - 1]:
            times[k] = times[k - 1] + max(step, 1)
            first_shifted = k if first_shifted is None else first_shifted
    target = times[start]
    keyframe = max(k for k in keyframes if k <= target)
    if first_shifted is not None and times[first_shifted] <= keyframe:
        return None
    return keyframe, target
