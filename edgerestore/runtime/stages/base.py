"""The kinds of stage, as base classes; the runtime picks how to run a stage by its class.

* :class:`Stage`, the **array stage**: ``stage(img) -> img`` on one frame's pixels,
  float32 ``H x W`` (gray) or ``H x W x 3`` (BGR) in [0, 1]; it returns the same kind of
  array (its size may change, e.g. super-resolution). The runtime converts, times the
  call, checks the result and keeps the frame's index, timestamp and capture time.
* :class:`FrameStage`, the **frame stage**: sees whole :class:`Frame` objects in stream
  order and decides itself when frames come out: ``push_frame(frame) -> [frames]``,
  ``flush_frames() -> [frames]`` at the end of the stream. For stages that hold frames
  back (look-ahead) or add frames (interpolation): the repair stage.
* :class:`WindowStage`, the **window stage**: ``stage.process_window(window) -> img``
  for one frame with up to ``radius`` neighbours on each side (only past frames when
  ``lookahead = 0``); the runtime buffers, cuts windows at gaps, size changes and clip
  edges, and keeps frames in order (:mod:`edgerestore.runtime.stages.window`).

Every kind may define ``name`` (report and errors), ``open()`` (once, before any frame:
load models here so a missing file fails before any work), ``close()`` and ``describe()
-> dict`` (extra report fields). Plain callables ``fn(img) -> img`` become array stages
(:class:`FunctionStage`).

* :class:`BatchStage`, the **batch stage**: an array stage that can also take several
  frames (of different streams) in one call, ``process_batch(images) -> images``; the
  multi-stream runner (:mod:`edgerestore.runtime.multistream`) gathers the frames waiting
  from its streams into one call. In a one-stream run it is an array stage.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from edgerestore.errors import InputError
from edgerestore.runtime.errors import PipelineSpecError, StageError

if TYPE_CHECKING:
    from edgerestore.runtime.sources import Frame


class Stage:
    """An array stage: override ``__call__(img) -> img``; ``open``/``close``/``describe``
    are optional. Also the base class of every kind of stage."""

    name: str = "stage"

    def open(self) -> None:
        """Prepare (load models, compile kernels); runs once before any frame."""

    def close(self) -> None:
        """Release resources."""

    def describe(self) -> dict[str, Any]:
        """Extra fields for the report (e.g. backend and why it was chosen)."""
        return {}

    def __call__(self, img: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def parameters(cls) -> list[str]:
        """The keyword parameters of the constructor, for ``run --list`` and messages."""
        return keyword_parameters(cls)

    def __repr__(self) -> str:
        return f"<stage {self.name}>"


class FrameStage(Stage):
    """A frame stage: takes frames in stream order and returns the frames that are ready.

    ``push_frame(frame)``: ``frame.image`` is float32 in [0, 1]; return a list of frames
    (none while frames are held back, several when frames are added), each with a float
    image in [0, 1]. Keep ``index``, ``timestamp`` and ``t_capture`` of the frames you
    return (the report's latency is measured from ``t_capture``).
    ``flush_frames()``: called once at the end of the stream; return the frames still held.

    ``stage(img)`` (``Pipeline.process``, one image with no neighbours) pushes the image as
    a one-frame stream, flushes, and returns the last image out; override it when a single
    image needs other handling.
    """

    def push_frame(self, frame: "Frame") -> list["Frame"]:  # pragma: no cover - abstract
        raise NotImplementedError

    def flush_frames(self) -> list["Frame"]:
        return []

    def __call__(self, img: np.ndarray) -> np.ndarray:
        from edgerestore.runtime.sources import Frame

        outs = list(self.push_frame(Frame(img, 0, 0.0))) + list(self.flush_frames())
        if not outs:
            raise StageError(f"stage '{self.name}' returned no frame for a single image",
                             stage=self.name, frame_index=0)
        return outs[-1].image


class FunctionStage(Stage):
    """Wraps a plain function ``fn(img) -> img`` as an array stage (its ``name``, ``open``,
    ``close`` and ``describe`` are used when it has them)."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "name", None) or getattr(fn, "__name__", "function")

    def open(self) -> None:
        if hasattr(self.fn, "open"):
            self.fn.open()

    def close(self) -> None:
        if hasattr(self.fn, "close"):
            self.fn.close()

    def describe(self) -> dict[str, Any]:
        return self.fn.describe() if hasattr(self.fn, "describe") else {}

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return self.fn(img)


def as_stage(obj) -> Stage:
    """A :class:`Stage` from a stage, any callable, or a pipeline-string element."""
    if isinstance(obj, Stage):
        return obj
    if isinstance(obj, str):
        from edgerestore.runtime.spec import parse_pipeline

        stages = parse_pipeline(obj)
        if len(stages) != 1:
            raise PipelineSpecError(f"{obj!r} describes {len(stages)} stages, expected one")
        return stages[0]
    if callable(obj):
        return FunctionStage(obj)
    raise InputError(f"a stage must be callable (img -> img) or a Stage, got {type(obj).__name__}")


def keyword_parameters(factory: Callable[..., Any]) -> list[str]:
    """Names of the parameters ``factory`` takes by keyword (``**kwargs`` left out)."""
    return [p.name for p in inspect.signature(factory).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def format_args(**kwargs) -> str:
    """``k=v, ...`` of the arguments that are not None, for stage names such as
    ``nlm(sigma=15)``."""
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if v is not None)


class WindowStage(Stage):
    """A window stage: one output frame from the frame and its neighbours in time.

    Override ``process_window(window) -> img``; ``window`` is a
    :class:`~edgerestore.runtime.stages.window.Window` (float32 images, the position
    of the frame to produce, indices, timestamps and this stage's own earlier outputs).
    Class attributes: ``radius`` (frames wanted on each side) and ``lookahead`` (frames
    after the current one the stage waits for: ``radius`` by default; 0 for a causal,
    live stage that adds no latency). Windows never span a gap in the frame indices
    (frames dropped in live mode), a change of frame size, or the clip's edges: they
    are shorter there, down to the frame alone. ``reset()`` is called at each such cut.
    ``bridge`` (default 0): a causal stage that can carry its memory over a few dropped
    frames (a recursive filter whose motion check decides) sets the largest gap in the
    indices it still treats as neighbours. ``stage(img)`` on one image is a one-frame
    window.
    """

    radius: int = 1
    lookahead: int | None = None
    bridge: int = 0

    def process_window(self, window) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self) -> None:
        """The stream was cut (gap, size change): forget any memory of earlier frames."""

    def frames_ahead(self) -> int:
        """Frames after the current one the stage waits for (``lookahead``, else ``radius``)."""
        return self.radius if self.lookahead is None else min(self.lookahead, self.radius)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        from edgerestore.runtime.stages.window import Window

        return self.process_window(Window([img], 0, [0], [0.0], [None]))


class BatchStage(Stage):
    """A batch stage: an array stage that can also restore several frames in one call.

    Override ``process_batch(images) -> images``: a list of float32 images in [0, 1]
    from different streams, all of one size, in; the same number out, in the same order
    (one model inference with batch dimension N, for a model stage). ``batch_size``: the
    most frames the runtime gathers into one call. ``stage(img)`` is a batch of one.
    """

    batch_size: int = 8

    def process_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return self.process_batch([img])[0]
