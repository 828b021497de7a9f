"""Run any model that follows the contract on an image: pre/post-processing from metadata.

:class:`ModelRestorer` is what the CLI, the runtime's model stages and the benchmarks use
to run a model. It reads the model's :class:`~edgerestore.model_spec.ModelSpec` and does,
so that a user's own exported model runs without glue code:

* colour: a ``bgr``/``rgb`` model gets 3 channels in its order; a ``gray`` model run on a
  colour frame is applied to each channel of an orthonormal opponent transform (the
  decorrelated channels, rescaled to [0, 1], with the noise level scaled to match); a
  ``luma`` model (super-resolution) gets BT.601 Y and the chroma is resized bicubically;
* value range: [0, 1] mapped to the model's ``value_range`` and back;
* the noise-level map (``sigma / 255`` per pixel, full resolution) for denoisers that
  take one; when not given, it is estimated from the image: the per-pixel map of its
  noise level function (:func:`~edgerestore.kernels.noise.estimate_noise_level_function`,
  signal-dependent noise), one sigma when that function is flat;
* a damage mask for models that take one;
* padding to ``size_multiple`` (reflect) and cropping back;
* tiling for frames larger than ``tile_size``: each tile carries ``tile_overlap`` pixels
  of real context on every side, which are cut away afterwards, so there are no seams;
  a model whose graph fixes its input size (``spec.fixed_size``) is always tiled with
  tiles of exactly that size, smaller pieces padded up to it;
* optionally, geometric self-ensemble (``self_ensemble=2|4|8``): the model runs on
  flipped/rotated copies of the frame and the outputs, turned back, are averaged; N times
  the compute for a small gain (docs/model-contract.md). A quality mode for offline
  work, not for live streams. See :data:`SELF_ENSEMBLE_TRANSFORMS` and :func:`dihedral`.

Images in and out are float32 ``H x W`` or ``H x W x 3`` (BGR) on the [0, 1] scale; output
size is ``scale`` times the input size. The input may hold values past 0 and 1 (noise
on a float image: any finite values within ``kernels.checks.SCALE_LIMITS``): they reach
the model unclipped. The output is clipped to [0, 1], the range of the clean image it
estimates.

Why one module: the one-image call, the tiles and the batched call
(:meth:`ModelRestorer.restore_batch`, several frames in one inference) share the same
pre/post-processing steps; split apart, each would need the others' private steps.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from edgerestore.backends import RunnerOptions, open_runner
from edgerestore.errors import BackendError, InputError
from edgerestore.kernels.checks import check_image
from edgerestore.kernels.color import bgr_to_opponent, opponent_to_bgr
from edgerestore.model_spec import ModelSpec, read_spec

log = logging.getLogger(__name__)

# Opponent channels of a [0, 1] BGR image span these intervals (see kernels.color); they
# are mapped affinely onto [0, 1] before a gray model sees them.
_OPP_LO = np.array([0.0, -1 / np.sqrt(2), -2 / np.sqrt(6)])
_OPP_HI = np.array([np.sqrt(3), 1 / np.sqrt(2), 2 / np.sqrt(6)])
_OPP_GAIN = 1.0 / (_OPP_HI - _OPP_LO)  # noise sigma scales by this too

#: The transforms (:func:`dihedral` indices) each self-ensemble size averages. 2 and 4
#: use only the shape-preserving ones (a half turn, then the two flips), so every copy has
#: the input's H x W: an engine built for fixed shapes, and the tiling, see the same
#: shapes as without the ensemble (measured gains: docs/model-contract.md).
SELF_ENSEMBLE_TRANSFORMS = {1: (0,), 2: (0, 2), 4: (0, 2, 4, 6), 8: tuple(range(8))}
SELF_ENSEMBLE_SIZES = tuple(SELF_ENSEMBLE_TRANSFORMS)


def opponent_units(img: np.ndarray) -> np.ndarray:
    """A BGR float image -> its 3 opponent channels, each mapped onto [0, 1] (float32), the
    planes a gray model sees of a colour frame."""
    opp = bgr_to_opponent(img.astype(np.float64))
    return ((opp - _OPP_LO) * _OPP_GAIN).astype(np.float32)


def bgr_from_opponent_units(unit: np.ndarray) -> np.ndarray:
    """The inverse of :func:`opponent_units`: ``H x W x 3`` units -> BGR float32."""
    back = unit.astype(np.float64) / _OPP_GAIN + _OPP_LO
    return opponent_to_bgr(back).astype(np.float32)


def dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """Transform ``k`` (0-7) of the 8 flips/rotations (the dihedral group of the square),
    on the last two axes (H, W): ``k % 4`` quarter turns (counter-clockwise, as
    ``np.rot90``), then a left-right flip when ``k >= 4``. Returns a view; any dtype.
    Transforms 1, 3, 5 and 7 swap H and W."""
    a = np.rot90(a, k % 4, axes=(-2, -1))
    return a[..., ::-1] if k >= 4 else a


def dihedral_inverse(a: np.ndarray, k: int) -> np.ndarray:
    """Undo :func:`dihedral` ``k``: ``dihedral_inverse(dihedral(a, k), k)`` equals ``a``."""
    a = a[..., ::-1] if k >= 4 else a
    return np.rot90(a, -(k % 4), axes=(-2, -1))


class ModelRestorer:
    """A model opened on a backend, callable on images.

    >>> with ModelRestorer.open("dn-gray") as r:       # doctest: +SKIP
    ...     clean = r(noisy, sigma=25)                   # float32 [0, 1] in and out

    ``backend``: ``auto`` | ``ort-cpu`` | ``ort-cuda`` | ... (see edgerestore.backends).
    ``tile_size`` / ``tile_overlap`` override the model's suggestion (0 = no tiling).
    ``self_ensemble``: 1 (default), 2, 4 or 8 copies averaged (see
    :data:`SELF_ENSEMBLE_TRANSFORMS`).
    ``range_check``: None (the default) refuses input values on another scale than
    [0, 1] (outside ``kernels.checks.SCALE_LIMITS``) and takes noise past 0 and 1;
    True also refuses anything outside [0, 1] (for callers whose frames must be
    clipped: calibration's clipped protocol); False checks no values at all.
    """

    def __init__(self, spec: ModelSpec, runner, backend_reason: str, *,
                 tile_size: int | None = None, tile_overlap: int | None = None,
                 self_ensemble: int = 1, range_check: bool | None = None):
        self.spec = spec
        self.runner = runner
        self.backend_name = runner.name
        self.backend_reason = backend_reason
        self.tile_size = spec.tile_size if tile_size is None else int(tile_size)
        self.range_check = range_check
        self.tile_overlap = spec.tile_overlap if tile_overlap is None else int(tile_overlap)
        if spec.fixed_size is not None:
            if tile_size:
                log.warning("model %s takes only %dx%d inputs: tiles have that size, tile_size=%d "
                            "is ignored", spec.name, *spec.fixed_size, tile_size)
            self.tile_size = 0
        shortest = min(spec.fixed_size) if spec.fixed_size else self.tile_size
        if shortest and self.tile_overlap * 2 >= shortest:
            raise InputError(
                f"tile_overlap ({self.tile_overlap}) must be less than half of the tile size "
                f"({shortest}{', the size the model fixes' if spec.fixed_size else ''})"
            )
        if self_ensemble not in SELF_ENSEMBLE_SIZES:
            raise InputError(f"self_ensemble must be 1 (off), 2, 4 or 8 (copies turned and averaged), "
                             f"got {self_ensemble!r}")
        self.self_ensemble = int(self_ensemble)
        self._cancelled = False
        self._warned_sigma = False
        self._dynamic_batch: bool | None = None

    @classmethod
    def open(cls, model: str | os.PathLike, *, backend: str = "auto", threads: int | None = None,
             device_id: int = 0, tile_size: int | None = None,
             tile_overlap: int | None = None, self_ensemble: int = 1) -> "ModelRestorer":
        """Open a zoo model name or an ONNX path on a backend."""
        from edgerestore.zoo import resolve

        spec = read_spec(resolve(model))
        runner, reason = open_runner(
            spec.path, backend, RunnerOptions(threads=threads, device_id=device_id)
        )
        try:
            return cls(spec, runner, reason, tile_size=tile_size, tile_overlap=tile_overlap,
                       self_ensemble=self_ensemble)
        except BaseException:
            runner.deactivate()
            raise

    @property
    def backend_summary(self) -> str:
        """The backend choice in a few words (``auto picked ort-cpu; others unavailable
        here``); :attr:`backend_reason` has the long form, with why each other backend
        could not run and what to install (logged with -v and kept in reports)."""
        first, _, rest = self.backend_reason.partition(";")
        return first + ("; others unavailable here (details: -v or the report)" if rest else "")

    def close(self) -> None:
        self.runner.deactivate()

    def cancel(self) -> None:
        """Stop a call in progress from another thread (Ctrl-C): the backend's run in
        flight is terminated where the backend can (ONNX Runtime's ``RunOptions``), and
        every later model run of this restorer fails, so a tiled call ends at its next
        tile. The restorer cannot be used again; close it."""
        self._cancelled = True
        terminate = getattr(self.runner, "terminate", None)
        if terminate is not None:
            terminate()
        else:
            log.warning("backend %s cannot stop a run in flight; it ends when the run does",
                        self.backend_name)

    def __enter__(self) -> "ModelRestorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ public call
    def __call__(self, img: np.ndarray, *, sigma: Any = None, mask: np.ndarray | None = None) -> np.ndarray:
        """Restore one image (see the module docstring for conventions).

        sigma: noise level on the 0-255 scale, a number or an ``H x W`` map; estimated
            from the image when None and the model takes a noise level.
        mask: ``H x W`` (bool or 0/1), nonzero where the frame is damaged; required by
            models with a ``mask`` input.
        """
        if sigma is not None and not self.spec.input_for("noise_level") and not self._warned_sigma:
            self._warned_sigma = True
            log.warning("model %s has no noise-level input: the sigma given (%s) is not used",
                        self.spec.name, "a map" if np.ndim(sigma) else f"{float(sigma):g}")
        img = check_image(img, what=f"input to model {self.spec.name!r}",
                          range_check=self.range_check is not False, strict=self.range_check is True)
        h, w = img.shape[:2]
        sigma_map = self._sigma_map(img, sigma) if self.spec.input_for("noise_level") else None
        mask_plane = self._mask_plane(mask, (h, w)) if self.spec.input_for("mask") else None
        color = self.spec.color
        if color == "gray":
            if img.ndim == 2:
                out = self._run(img[None], sigma_map, mask_plane)[0]
            else:
                out = self._gray_model_on_colour(img, sigma_map, mask_plane)
        elif color == "luma":
            out = self._luma_model(img, sigma_map, mask_plane)
        else:  # bgr / rgb
            planes = np.stack([img] * 3) if img.ndim == 2 else img.transpose(2, 0, 1)
            if color == "rgb":
                planes = planes[::-1]
            res = self._run(np.ascontiguousarray(planes), sigma_map, mask_plane)
            if color == "rgb":
                res = res[::-1]
            out = res.mean(axis=0) if img.ndim == 2 else res.transpose(1, 2, 0)
        if not np.isfinite(out).all():
            raise BackendError(
                f"model {self.spec.name!r} on {self.backend_name} produced NaN/Inf values "
                "(a broken or badly quantized model?)"
            )
        return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)

    # ------------------------------------------------------------------ batches
    @property
    def dynamic_batch(self) -> bool:
        """Whether one inference may take several images: the graph's batch dimension is
        not fixed and the backend is ONNX Runtime (a TensorRT engine's profile fixes it)."""
        if self._dynamic_batch is None:
            from pathlib import Path

            from edgerestore.model_spec import graph_inputs, load_onnx

            dim = None
            if self.spec.path is not None:
                dim = graph_inputs(load_onnx(Path(self.spec.path)))[self.spec.image_input][0]
            self._dynamic_batch = not (isinstance(dim, int) and dim > 0) and self.backend_name.startswith("ort")
        return self._dynamic_batch

    def restore_batch(self, images: list[np.ndarray], *, sigma: Any = None) -> list[np.ndarray]:
        """Restore several images of one size, as ``[self(img, sigma=sigma) for img in
        images]`` but in one inference (batch dimension N) where the model allows it: a
        dynamic batch dimension, a ``gray`` (on gray or colour frames: 3 opponent planes
        each) or ``bgr``/``rgb`` model, no tiling needed for that size, no self-ensemble,
        no mask input. Otherwise, or for images of mixed sizes, one call per image. The
        results equal the one-image calls' (to float rounding of the engine)."""
        images = list(images)
        shapes = {im.shape for im in images}
        h, w = images[0].shape[:2] if images else (0, 0)
        tile = self._tile_shape()
        if (len(images) < 2 or len(shapes) != 1 or self.self_ensemble != 1 or self.spec.input_for("mask")
                or self.spec.color == "luma" or (tile and (h > tile[0] or w > tile[1])) or not self.dynamic_batch):
            return [self(im, sigma=sigma) for im in images]
        jobs = []  # per image: its planes (C x H x W each) and sigma maps, in the model's layout
        for img in images:
            img = check_image(img, what=f"input to model {self.spec.name!r}",
                              range_check=self.range_check is not False, strict=self.range_check is True)
            sigma_map = self._sigma_map(img, sigma) if self.spec.input_for("noise_level") else None
            if self.spec.color == "gray":
                if img.ndim == 2:
                    jobs.append([(img[None], sigma_map)])
                else:
                    unit = opponent_units(img)
                    jobs.append([(np.ascontiguousarray(unit[None, ..., k]),
                                  None if sigma_map is None else sigma_map * np.float32(_OPP_GAIN[k]))
                                 for k in range(3)])
            else:
                planes = np.stack([img] * 3) if img.ndim == 2 else img.transpose(2, 0, 1)
                if self.spec.color == "rgb":
                    planes = planes[::-1]
                jobs.append([(np.ascontiguousarray(planes), sigma_map)])
        feeds, crop = [], None
        for job in jobs:
            for planes, sigma_map in job:
                feed, crop = self._padded_feed(planes, sigma_map, None)
                feeds.append(feed)
        batch = {name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]}
        res = self._unpadded(self.runner.infer(batch), crop, n=len(feeds))
        outs, k = [], 0
        for img, job in zip(images, jobs):
            got, k = res[k:k + len(job)], k + len(job)
            if self.spec.color == "gray":
                out = got[0, 0] if img.ndim == 2 else bgr_from_opponent_units(np.stack([g[0] for g in got], -1))
            else:
                r = got[0][::-1] if self.spec.color == "rgb" else got[0]
                out = r.mean(axis=0) if img.ndim == 2 else r.transpose(1, 2, 0)
            if not np.isfinite(out).all():
                raise BackendError(f"model {self.spec.name!r} on {self.backend_name} produced NaN/Inf values "
                                   "(a broken or badly quantized model?)")
            outs.append(np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32))
        return outs

    # ------------------------------------------------------------------ inputs
    def _sigma_map(self, img: np.ndarray, sigma: Any) -> np.ndarray:
        h, w = img.shape[:2]
        if sigma is None:
            sigma = self._estimated_sigma(img)
        s = np.asarray(sigma, dtype=np.float32)
        if s.ndim == 0:
            s = np.full((h, w), float(s), dtype=np.float32)
        if s.shape != (h, w):
            raise InputError(f"sigma map has shape {s.shape}; the image is {h}x{w}")
        if not np.isfinite(s).all() or (s < 0).any():
            raise InputError("sigma must be finite and >= 0 on the 0-255 scale")
        lo, hi = self.spec.noise_level_range or (0.0, 255.0)
        if s.max() > hi or s.min() < lo:
            log.warning(
                "model %s was trained for sigma in [%g, %g] (0-255 scale); got up to %.3g, "
                "clipping the noise-level map", self.spec.name, lo, hi, float(s.max()))
            s = np.clip(s, lo, hi)
        return s / 255.0

    def _estimated_sigma(self, img: np.ndarray) -> Any:
        """The noise level of ``img`` when the caller gave none (0-255 scale): the
        per-pixel map of its noise level function (signal-dependent noise, as a camera
        sensor's), or one number when the function is flat (white noise)."""
        from edgerestore.kernels.noise import estimate_noise_level_function

        nlf = estimate_noise_level_function(img)
        if nlf.flat:
            sigma = float(nlf.sigma(0.0))
            log.info("model %s: estimated sigma %.2f (0-255 scale)", self.spec.name, sigma)
            return sigma
        log.info("model %s: estimated noise level sigma^2 = %.3g*I + %.3g (0-255 scale)",
                 self.spec.name, nlf.a, nlf.b)
        return nlf.sigma_map(img)

    @staticmethod
    def _mask_plane(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
        if mask is None:
            raise InputError("this model needs a damage mask (H x W, nonzero = damaged)")
        m = np.asarray(mask)
        if m.shape != shape:
            raise InputError(f"mask has shape {m.shape}; the image is {shape[0]}x{shape[1]}")
        return (m != 0).astype(np.float32)

    # ------------------------------------------------------------------ colour handling
    def _gray_model_on_colour(self, img, sigma_map, mask_plane):
        unit = opponent_units(img)
        out = np.empty_like(unit)
        for k in range(3):
            s = None if sigma_map is None else sigma_map * np.float32(_OPP_GAIN[k])
            out[..., k] = self._run(unit[None, ..., k], s, mask_plane)[0]
        return bgr_from_opponent_units(out)

    def _luma_model(self, img, sigma_map, mask_plane):
        import cv2

        if img.ndim == 2:
            return self._run(img[None], sigma_map, mask_plane)[0]
        ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)  # float32 in, BT.601, Y in [0, 1]
        y = self._run(np.ascontiguousarray(ycc[None, ..., 0]), sigma_map, mask_plane)[0]
        s = self.spec.scale
        h, w = img.shape[:2]
        chroma = ycc[..., 1:]
        if s != 1:
            chroma = cv2.resize(chroma, (w * s, h * s), interpolation=cv2.INTER_CUBIC)
        out = np.dstack([y, chroma]).astype(np.float32)
        return cv2.cvtColor(out, cv2.COLOR_YCrCb2BGR)

    # ------------------------------------------------------------------ tiling and running
    def _run(self, planes: np.ndarray, sigma_map, mask_plane) -> np.ndarray:
        """C x H x W in the model's channel layout, [0, 1] -> C x sH x sW, [0, 1]."""
        if self.self_ensemble == 1:
            return self._run_once(planes, sigma_map, mask_plane)
        acc = None
        for k in SELF_ENSEMBLE_TRANSFORMS[self.self_ensemble]:
            turned = [None if a is None else np.ascontiguousarray(dihedral(a, k))
                      for a in (planes, sigma_map, mask_plane)]
            out = dihedral_inverse(self._run_once(*turned), k)
            acc = out.astype(np.float64) if acc is None else acc + out
        return (acc / self.self_ensemble).astype(np.float32)

    def _tile_shape(self) -> tuple[int, int] | None:
        """``(H, W)`` of the tiles, None for whole frames."""
        if self.spec.fixed_size is not None:
            return self.spec.fixed_size
        return (self.tile_size, self.tile_size) if self.tile_size else None

    def _run_once(self, planes: np.ndarray, sigma_map, mask_plane) -> np.ndarray:
        _, h, w = planes.shape
        tile = self._tile_shape()
        if tile and (h > tile[0] or w > tile[1]):
            return self._run_tiled(planes, sigma_map, mask_plane)
        return self._run_padded(planes, sigma_map, mask_plane)

    def _run_padded(self, planes, sigma_map, mask_plane) -> np.ndarray:
        feed, crop = self._padded_feed(planes, sigma_map, mask_plane)
        return self._unpadded(self.runner.infer(feed), crop)[0]

    def _padded_feed(self, planes, sigma_map, mask_plane) -> tuple[dict[str, np.ndarray], tuple]:
        """The model's feed (batch of one) for ``planes`` padded to the size the model
        takes, and what :meth:`_unpadded` needs to cut the output back."""
        m = self.spec.size_multiple
        _, h, w = planes.shape
        if self.spec.fixed_size is not None:  # exactly the size the graph takes
            ph, pw = self.spec.fixed_size[0] - h, self.spec.fixed_size[1] - w
        else:
            ph, pw = (-h) % m, (-w) % m

        def pad(a):
            if not (ph or pw):
                return a
            mode = "reflect" if (h > ph and w > pw) else "edge"
            return np.pad(a, ((0, 0), (0, ph), (0, pw)), mode=mode)

        if self._cancelled:
            raise BackendError(f"model {self.spec.name!r}: cancelled")
        lo, hi = self.spec.value_range
        feed = {self.spec.image_input: pad(planes * (hi - lo) + lo)[None]}
        if sigma_map is not None:
            feed[self.spec.input_for("noise_level")] = pad(sigma_map[None])[None]
        if mask_plane is not None:
            feed[self.spec.input_for("mask")] = pad(mask_plane[None])[None]
        return feed, (planes.shape[0], h, w, ph, pw)

    def _unpadded(self, out: np.ndarray, crop: tuple, n: int = 1) -> np.ndarray:
        """``n x C x sH x sW`` model output of ``n`` feeds made by :meth:`_padded_feed`
        -> ``n x C x sh x sw`` on [0, 1], padding cut away."""
        c, h, w, ph, pw = crop
        s = self.spec.scale
        lo, hi = self.spec.value_range
        expected = (n, c, (h + ph) * s, (w + pw) * s)
        if out.shape != expected:
            raise BackendError(
                f"model {self.spec.name!r} returned shape {out.shape}; metadata (scale={s}, "
                f"color={self.spec.color}) implies {expected}"
            )
        out = out[:, :, : h * s, : w * s]
        return (out - lo) / (hi - lo)

    def _run_tiled(self, planes, sigma_map, mask_plane) -> np.ndarray:
        """Cut the frame into cores of ``tile - 2 * overlap`` pixels; run each core with
        ``overlap`` pixels of real context around it (less at the frame border) and keep
        only the core's output. Exact for models whose receptive radius is <= overlap."""
        c, h, w = planes.shape
        s = self.spec.scale
        ov = self.tile_overlap
        tile_h, tile_w = self._tile_shape()
        core_h, core_w = tile_h - 2 * ov, tile_w - 2 * ov
        out = np.empty((c, h * s, w * s), dtype=np.float32)
        for y0 in range(0, h, core_h):
            y1 = min(y0 + core_h, h)
            ya, yb = max(0, y0 - ov), min(h, y1 + ov)
            for x0 in range(0, w, core_w):
                x1 = min(x0 + core_w, w)
                xa, xb = max(0, x0 - ov), min(w, x1 + ov)
                ys, xs = slice(ya, yb), slice(xa, xb)
                res = self._run_padded(
                    planes[:, ys, xs],
                    None if sigma_map is None else sigma_map[ys, xs],
                    None if mask_plane is None else mask_plane[ys, xs],
                )
                out[:, y0 * s:y1 * s, x0 * s:x1 * s] = res[
                    :, (y0 - ya) * s:(y1 - ya) * s, (x0 - xa) * s:(x1 - xa) * s
                ]
        return out
