"""Exceptions raised by edgerestore.

Every error a user can cause derives from :class:`EdgeRestoreError`; its message says
what was asked, what is wrong and how to fix it. The CLI prints the message (no
traceback unless ``-v``) and exits with status 1.
"""


class EdgeRestoreError(Exception):
    """Base class of all errors edgerestore raises on purpose."""


class MissingDependencyError(EdgeRestoreError, ImportError):
    """An optional package (torch, tensorrt, pycuda, ...) is needed but not installed."""


class ModelError(EdgeRestoreError):
    """A model file is missing, not ONNX, invalid, or breaks the metadata contract."""


class BackendError(EdgeRestoreError):
    """An inference backend was asked for that does not exist or cannot run here."""


class InputError(EdgeRestoreError, ValueError):
    """Bad user input: an image, frame, parameter or path that cannot be used."""
