"""Frame repair: find and repair damaged video frames without being told where.

Damage handled (see ``docs/repair.md``): packet-loss macroblocks (flat or smeared),
dead/stuck pixels, frozen frames, dropped frames (timestamp gaps), and any area a user
mask marks. Repair uses time first (motion-compensated copy from neighbour frames via
dense optical flow), then spatial inpainting; undamaged pixels are left exactly as they
came in.

::

    from edgerestore.repair import FrameRepairer

    rep = FrameRepairer()
    out = [r.image for r in rep.repair_clip(frames)]   # uint8 frames in, uint8 out
    print(rep.report())

A compressed file with damaged packets: ``repair_lossy_stream(path)`` (uses the
decoder; ``lossy_stream.py``). The streaming stage is ``repair`` (``edgerestore run in.mkv -o out.mkv --pipeline repair``).
"""

from edgerestore.repair.detect import DetectConfig
from edgerestore.repair.fill import FillConfig
from edgerestore.repair.lossy_stream import repair_lossy_stream
from edgerestore.repair.masks import MaskSource
from edgerestore.repair.repairer import FrameRepairer, RepairConfig, RepairedFrame
from edgerestore.repair.report import RepairCounts
from edgerestore.repair.synth import DamagedClip, DamageSpec, damage_clip, read_frames

__all__ = [
    "FrameRepairer", "RepairConfig", "RepairedFrame", "RepairCounts", "MaskSource", "DetectConfig", "FillConfig",
    "DamageSpec", "DamagedClip", "damage_clip", "read_frames", "repair_lossy_stream",
]
