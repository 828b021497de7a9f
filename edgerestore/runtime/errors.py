"""Errors of the streaming runtime (all derive from :class:`EdgeRestoreError`)."""

from __future__ import annotations

from edgerestore.errors import EdgeRestoreError, InputError


class SourceError(InputError):
    """A source cannot be opened or read (missing file, unknown codec, no camera, ...)."""


class DecodeError(SourceError):
    """Decoding stopped mid-stream: a corrupt or truncated file, or a lost camera/stream.

    ``frame_index`` is the index of the first frame that could not be read (so frames
    ``0 .. frame_index - 1`` were read); ``expected`` is the frame count the container
    announced, or None.
    """

    def __init__(self, message: str, *, frame_index: int, expected: int | None = None):
        super().__init__(message)
        self.frame_index = frame_index
        self.expected = expected


class SourceLost(DecodeError):
    """A live camera or stream was lost and could not be reopened in time."""


class SinkError(EdgeRestoreError):
    """An output cannot be written (path not writable, codec unavailable, no display)."""


class StageError(EdgeRestoreError):
    """A stage failed or produced an invalid frame (NaN/Inf, wrong dtype or shape)."""

    def __init__(self, message: str, *, stage: str, frame_index: int | None = None):
        super().__init__(message)
        self.stage = stage
        self.frame_index = frame_index


class PipelineSpecError(EdgeRestoreError, ValueError):
    """A pipeline description such as ``"nlm(sigma=15)|upscale(scale=2)"`` is invalid."""


class StopRun(Exception):
    """Raised by a sink or stage to end the run cleanly (e.g. 'q' pressed in the window).

    Not an error: frames already written are kept and the outputs are finalised.
    """
