"""Image and file I/O shared by the library, the runtime and the CLI.

One place for:

* the **sample conversion rule** between stored integers and the float32 ``[0, 1]`` that
  every kernel, model and stage works on: ``float = int / full_scale`` going in,
  ``int = clip(rint(float * full_scale), 0, full_scale)`` coming out (round half to
  even, as OpenCV's ``saturate_cast``), with ``full_scale`` 255 for uint8 and 65535 for
  uint16 (:func:`to_float`, :func:`from_float`, :func:`to_uint8`);
* reading an image file as stored (:func:`read_image`), checking before any work that an
  output image can be written (:func:`check_image_output`), and writing atomically
  (:func:`write_image_atomic`, :func:`write_bytes_atomic`): a temporary file in the
  target's folder, fsync, ``os.replace``, so the target is either the old file or the
  complete new one. A new file gets the mode the umask gives (as ``open()`` would); a
  replaced file keeps its mode (and, where permitted, its owner);
* listing image files: :data:`IMAGE_EXTENSIONS`, :func:`natural_key`,
  :func:`list_images`.

Paths may hold any bytes the OS accepts: files are read and written by Python and
encoded/decoded by OpenCV in memory (``imdecode``/``imencode``), never by OpenCV's own
path handling.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from edgerestore.errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
"""Extensions (lower case) of the image files a folder source or mask folder reads."""

FULL_SCALE = {"uint8": 255.0, "uint16": 65535.0}
"""Integer sample types read and written, and their full-scale value."""

SIXTEEN_BIT_FORMATS = frozenset({".png", ".tif", ".tiff", ".pgm", ".ppm", ".pnm", ".jp2"})
"""Extensions (lower case) whose OpenCV writers keep 16-bit samples."""


# ------------------------------------------------------------------- sample conversion
def full_scale(dtype) -> float:
    """The full-scale value of an integer sample type (255 for uint8, 65535 for uint16)."""
    name = np.dtype(dtype).name
    if name not in FULL_SCALE:
        raise InputError(f"samples of type {name} are not supported; use uint8 or uint16")
    return FULL_SCALE[name]


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8/uint16 samples -> float32 in [0, 1]; float arrays pass through as float32.

    A division, not a multiplication by ``1 / full_scale``: the quotient is correctly
    rounded, so every level maps to the float32 nearest to ``level / full_scale``.
    """
    if img.dtype.kind == "f":
        return img.astype(np.float32, copy=False)
    return img.astype(np.float32) / np.float32(full_scale(img.dtype))


def from_float(img: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """float in [0, 1] -> ``dtype`` (uint8 or uint16): scaled, rounded half to even, clipped.

    Values outside [0, 1] are clipped; an array already of ``dtype`` passes through;
    integer samples of another depth are converted through :func:`to_float` (so uint16
    -> uint8 rounds ``level / 257``).
    """
    dtype = np.dtype(dtype)
    if img.dtype == dtype:
        return img
    if img.dtype.kind in "ui":  # samples of another depth (uint16 -> uint8): via [0, 1]
        img = to_float(img)
    scale = full_scale(dtype)
    return np.clip(np.rint(img * np.float32(scale)), 0, scale).astype(dtype)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """float frame in [0, 1] -> uint8 (:func:`from_float`); uint8 passes through."""
    return from_float(img, np.uint8)


# ------------------------------------------------------------------- listing files
def natural_key(name: str) -> list:
    """Sort key that orders ``frame2.png`` before ``frame10.png`` (case-insensitive)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path``'s extension is one of :data:`IMAGE_EXTENSIONS`."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder`` (hidden files left out), in natural order."""
    folder = Path(folder)
    return sorted((f for f in folder.iterdir()
                   if f.is_file() and not f.name.startswith(".") and is_image_file(f)),
                  key=lambda f: natural_key(f.name))


# ------------------------------------------------------------------- reading
def read_image(path: str | os.PathLike, *, what: str = "image") -> np.ndarray:
    """The image file at ``path`` as stored: uint8 or uint16, ``H x W`` or ``H x W x C``
    (BGR order, alpha kept as the last channel; ``H x W x 1`` becomes ``H x W``).

    Raises :class:`InputError` naming the file when it is missing, a folder, unreadable,
    not an image OpenCV decodes, or of another sample type.
    """
    import cv2

    path = Path(path)
    if not path.exists():
        raise InputError(f"cannot read {what} {path}: no such file")
    if path.is_dir():
        raise InputError(f"cannot read {what} {path}: it is a folder, not an image file")
    try:
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"cannot read {what} {path}: not an image OpenCV can decode "
                         "(PNG, JPEG, BMP, TIFF, WebP, PNM, ...)")
    if img.dtype.name not in FULL_SCALE:
        raise InputError(f"{path} holds {img.dtype} samples; 8- or 16-bit images are read "
                         "(convert float images with e.g. (img * 65535).astype(uint16))")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    return img


def image_header_size(path) -> tuple[int, int] | None:
    """``(width, height)`` of an image file read from its header alone, without decoding
    the pixels (Pillow's lazy ``Image.open``); None when it cannot be told (a format
    Pillow does not know, a damaged header): the caller then decodes
    and checks the decoded size."""
    try:
        from PIL import Image
    except ImportError:
        return None
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's decompression-bomb warning: we check here
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as im:
                    return tuple(int(v) for v in im.size)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except Exception:  # unknown or damaged: read_image says what is wrong
        return None


# ------------------------------------------------------------------- writing
def check_image_output(path: str | os.PathLike, *, sixteen_bit: bool = False) -> None:
    """Fail early, before any work, when an image cannot be written to ``path``: a folder
    in its place, a missing or unwritable folder, an extension OpenCV cannot encode, or
    16-bit samples for a format that only holds 8."""
    import cv2

    out = Path(path)
    if out.is_dir():
        raise InputError(f"output {out} is a folder; give a file name such as {out / 'restored.png'}")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {out}: folder {folder} does not exist (create it first)")
    ext = out.suffix.lower()
    if not ext or not cv2.haveImageWriter("x" + ext):
        raise InputError(f"cannot write {out}: OpenCV has no writer for the extension "
                         f"{ext or '(none)'!r}; use .png, .tif, .jpg or .bmp")
    if sixteen_bit and ext not in SIXTEEN_BIT_FORMATS:
        raise InputError(f"the input is 16-bit but {ext} cannot store 16-bit samples; "
                         f"write {', '.join(sorted(SIXTEEN_BIT_FORMATS))} instead")
    try:  # the only reliable test of write permission is to write
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{out.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc} in folder {folder}") from exc


def encode_image(img: np.ndarray, ext: str) -> bytes:
    """``img`` encoded in the format that ``ext`` (``".png"``, ...) names."""
    import cv2

    ok, buf = cv2.imencode(ext, img)
    if not ok:
        raise InputError(f"OpenCV could not encode a {img.dtype} image with "
                         f"{1 if img.ndim == 2 else img.shape[2]} channel(s) as {ext}")
    return buf.tobytes()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and
    ``os.replace``. A new file gets ``0o666 & ~umask``; a replaced file keeps its mode
    and, where the process may set it, its owner and group. On any error the temporary
    file is removed and ``path`` is left as it was."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        old = os.stat(path)
    except OSError:
        old = None
    # The process id in the name lets a later run tell a leftover of a killed process
    # (runtime.sinks.clean_stale_partials) from a file being written right now.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.partial-{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if old is not None:
            os.chmod(tmp, old.st_mode & 0o7777)
            try:
                os.chown(tmp, old.st_uid, old.st_gid)
            except OSError:
                pass  # not permitted for other owners: the mode is kept at least
        else:
            os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_image_atomic(path: str | os.PathLike, img: np.ndarray) -> None:
    """Encode ``img`` for ``path``'s extension and write it with :func:`write_bytes_atomic`."""
    path = Path(path)
    write_bytes_atomic(path, encode_image(img, path.suffix))


# ------------------------------------------------------------------- 0-255 estimates
def round_to_uint8(values: np.ndarray) -> np.ndarray:
    """Float estimates on the 0-255 scale (interpolated or averaged pixel values) -> uint8
    by the package's one rule (as :func:`from_float`): rounded half to even
    (``np.rint``), clipped to [0, 255]."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
