"""The shipped model zoo, plus any folders a user adds.

Models are ONNX files that carry their own metadata (see :mod:`edgerestore.model_spec`).
The shipped ones live in this folder next to a model card ``<file stem>.md``. Users can
add folders of their own models with the environment variable ``EDGERESTORE_MODEL_PATH``
(folders separated by ``os.pathsep``); they are listed and resolved like shipped ones,
after them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from edgerestore.errors import ModelError
from edgerestore.model_spec import ModelSpec, read_spec

log = logging.getLogger(__name__)

ZOO_DIR = Path(__file__).resolve().parent
MODEL_PATH_ENV = "EDGERESTORE_MODEL_PATH"

# Default model per task (and per scale for super-resolution), by model name.
DEFAULTS = {
    ("denoise", 1): "dn-gray",
    ("super_resolution", 2): "sr-x2",
    ("super_resolution", 3): "sr-x3",
    ("super_resolution", 4): "sr-x4",
}


@dataclass(frozen=True)
class Problem:
    """A model file in the zoo that could not be read: path and the loader's message."""

    path: str
    message: str


def model_dirs() -> list[Path]:
    """The shipped zoo folder first, then the folders in $EDGERESTORE_MODEL_PATH."""
    dirs = [ZOO_DIR]
    for part in os.environ.get(MODEL_PATH_ENV, "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part).expanduser())
    return dirs


def scan() -> tuple[list[ModelSpec], list[Problem]]:
    """Read every ``*.onnx`` in the model folders: the valid specs and the problems."""
    specs, problems = [], []
    for folder in model_dirs():
        if not folder.is_dir():
            problems.append(Problem(str(folder), f"model folder from ${MODEL_PATH_ENV} does not exist"))
            continue
        for path in sorted(folder.glob("*.onnx")):
            try:
                specs.append(read_spec(path))
            except ModelError as exc:
                problems.append(Problem(str(path), str(exc)))
            except (RecursionError, MemoryError, OSError) as exc:  # one bad file never ends the listing
                problems.append(Problem(str(path), f"could not be read ({type(exc).__name__})"))
    return specs, problems


def list_models() -> list[ModelSpec]:
    """Valid models in the zoo (damaged files are logged and left out)."""
    specs, problems = scan()
    for p in problems:
        log.warning("skipping %s: %s", p.path, p.message)
    return specs


def looks_like_path(text: str) -> bool:
    """Whether a model argument is a path rather than a zoo name: it has a directory
    separator (``/``, or the platform's own) or ends in ``.onnx``. Decided on the text
    alone, so a file or folder named like a zoo model in the current folder
    (``./dn-gray``) never shadows the shipped model, and a zoo name never shadows a path."""
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return text.lower().endswith(".onnx") or any(s in text for s in seps) or text.startswith("~")


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A zoo model name (``dn-gray``), a file stem in a model folder, or a path -> the
    ONNX file's path.

    A path is a path when it looks like one (:func:`looks_like_path`; an ``os.PathLike``
    always is); anything else is looked up in the model folders only. Raises ModelError
    listing the known names when nothing matches.
    """
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, os.PathLike) or looks_like_path(text):
        path = Path(text).expanduser()
        if not path.exists():
            raise ModelError(f"{text}: model file not found")
        return path
    for folder in model_dirs():
        candidate = folder / f"{text}.onnx"
        if candidate.is_file():
            return candidate
    for spec in list_models():
        if spec.name == text:
            return Path(spec.path)
    names = sorted({s.name for s in list_models()})
    hint = (f" A file {text!r} exists here: to load it, write ./{text}."
            if Path(text).exists() else "")
    raise ModelError(
        f"no model named {text!r}; the zoo has: {', '.join(names) or '(no models)'}. "
        f"Pass a path to an .onnx file to use your own model.{hint}"
    )


def default_model(task: str, scale: int = 1) -> Path:
    """Path of the shipped default model for ``task`` (and ``scale``)."""
    name = DEFAULTS.get((task, scale))
    if name is None:
        known = ", ".join(f"{t} x{s}" for t, s in sorted(DEFAULTS))
        raise ModelError(f"no default model for {task} at scale {scale}; defaults exist for: {known}")
    return resolve(name)
