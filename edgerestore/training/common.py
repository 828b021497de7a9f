"""Training machinery shared by the recipes (denoise, super-resolution).

Checkpoint files (format, atomic save, load), the git commit stamped into them, the
EMA of the weights, the 1-or-2 thread tuner for shared CPUs, the training device and
precision (bf16 autocast), the learning-rate warm-up after a (re)start, a JSONL run log
and SIGINT/SIGTERM handling that lets a run save before it exits. Nothing here imports
torch at module level: the functions that need it take the module or require it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from edgerestore._cpu import cpu_flags as read_cpu_flags
from edgerestore._lazy import require
from edgerestore.errors import InputError

log = logging.getLogger("edgerestore.training")

CHECKPOINT_FORMAT = 1

PRECISIONS = ("fp32", "bf16")


def resolve_device(torch, name: str | None) -> str:
    """The torch device a run trains on: ``"auto"`` (or None) is ``"cuda"`` when torch
    sees a GPU, else ``"cpu"``; ``"cuda"``/``"cuda:N"`` without a usable GPU is an
    :class:`InputError` that says what to do."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: torch sees no CUDA GPU (torch {torch.__version__}; a CPU "
                             "build, or no driver). Install a CUDA build of torch, or use --device cpu")
        return name
    raise InputError(f"--device must be auto, cpu or cuda[:N], got {name!r}")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def autocast(torch, device: str, precision: str):
    """The context the forward pass runs in: nothing for ``fp32``; for ``bf16``, torch's
    autocast to bfloat16 (convolutions and matmuls in bf16, weights, Adam and the loss
    in float32). On a CPU with AVX512-BF16 it steps about 2x faster than fp32 (measured
    on the FFDNet recipe, 2 threads: 93 vs 192-221 ms per batch of 16 64x64 patches);
    without native bf16 it is emulated and slower. Validation and export stay fp32."""
    check_precision(precision)
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def precision_warning(torch, device: str, precision: str, cpu_flags: set[str] | None = None) -> str | None:
    """A warning when ``bf16`` would be emulated on this CPU: without AVX512-BF16, AMX (x86)
    or the BFloat16 extension (Arm) it steps slower than fp32. Measured: an AVX2-only AMD EPYC ran one 48-feature conv
    layer in 0.64 s against 0.045 s in fp32; an Intel Xeon with AVX512(-VNNI) but no
    AVX512-BF16 trained the 48-wide denoiser at 34 patches/s against 123 in fp32 (session
    7). oneDNN's ``_is_mkldnn_bf16_supported()`` says True on the latter (it can emulate
    bf16 with AVX512), so the CPU's own flags decide where they can be read.

    ``cpu_flags``: the CPU's feature flags (default: read from ``/proc/cpuinfo``)."""
    if precision != "bf16" or not device.startswith("cpu"):
        return None
    flags = read_cpu_flags() if cpu_flags is None else cpu_flags
    if flags:
        native = bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})  # bf16: Arm's BFloat16 extension
    else:  # not Linux: ask oneDNN
        try:
            native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return None
    if native:
        return None
    return ("this CPU has no native bfloat16 (no AVX512-BF16, AMX or Arm BF16): bf16 is emulated and slower "
            "than fp32 here (2-15x); pass --precision fp32 (a resumed run keeps its stored precision)")


def warmup_factor(step: int, start_step: int, warmup_steps: int) -> float:
    """Learning-rate multiplier ramping linearly from 1/warmup_steps to 1 over the first
    ``warmup_steps`` steps of a run (counted from ``start_step``, the step it started or
    resumed at); 1 when ``warmup_steps`` is 0. A restart from an annealed state straight
    at a 50x larger rate knocked the denoiser into the identity (session 2); Adam's
    moments adapt within a few hundred steps of a ramp."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step - start_step + 1) / warmup_steps)


def git_commit(cwd: str | Path | None = None) -> str:
    """The current git commit of the source tree (with '+dirty' if modified), or 'unknown'."""
    where = Path(cwd) if cwd else Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        return sha or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def atomic_torch_save(torch, obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`train` (``last.pt`` or ``best.pt``)."""
    torch = require("torch", purpose="loading a training checkpoint")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not an edgerestore training checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


class ThreadTuner:
    """``threads="auto"``: use 1 or 2 torch threads, whichever steps faster right now.

    On a CPU shared with other jobs, two threads of a niced process wait for each other
    whenever one of them is preempted, and one thread is often faster; on an idle
    machine two are. Every ``every_s`` seconds, ``probe`` steps run with the other count
    and the faster count (median step time) is kept. An int fixes the count; None leaves
    torch's default. (Thread counts change float summation order, so a run that must be
    bit-reproducible uses a fixed count.)
    """

    def __init__(self, torch, threads: int | str | None, every_s: float = 120.0, probe: int = 8,
                 choices: tuple[int, int] = (1, 2)) -> None:
        self.torch, self.auto = torch, threads == "auto"
        self.every_s, self.probe, self.choices = every_s, probe, choices
        self.times: list[float] = []
        self.probing_since: int | None = None
        self.baseline = 0.0
        self.last_probe = time.monotonic()
        if self.auto:
            self.current = choices[-1]
            torch.set_num_threads(self.current)
        elif threads:
            torch.set_num_threads(int(threads))

    def observe(self, step: int, dt: float, logj) -> None:
        if not self.auto:
            return
        self.times.append(dt)
        self.times = self.times[-self.probe:]
        if self.probing_since is None:
            if time.monotonic() - self.last_probe >= self.every_s and len(self.times) >= self.probe:
                self.baseline = sorted(self.times)[len(self.times) // 2]
                self.probing_since = step
                other = self.choices[0] if self.current == self.choices[-1] else self.choices[-1]
                self.torch.set_num_threads(other)
                self.times = []
        elif step - self.probing_since >= self.probe:
            probe = sorted(self.times[1:])[len(self.times[1:]) // 2]
            other = self.torch.get_num_threads()
            if probe < self.baseline:
                self.current = other
            self.torch.set_num_threads(self.current)
            logj("threads", baseline_s=self.baseline, probe_s=probe, probed=other, chosen=self.current)
            self.probing_since = None
            self.times = []
            self.last_probe = time.monotonic()


class Ema:
    def __init__(self, torch, model, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def load(self, shadow: dict[str, Any]) -> None:
        """Copy ``shadow`` (e.g. from a checkpoint, on the CPU) into the live EMA tensors
        (on the training device)."""
        for k, v in shadow.items():  # detached tensors: no autograd involved
            self.shadow[k].copy_(v)

    def update(self, torch, model, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for k, v in model.state_dict().items():
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1.0 - d)


class JsonlLog:
    """Append one JSON object per line to ``path`` (``kind``, UTC time, step, fields) and
    echo it to the ``edgerestore.training`` logger."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.step = 0

    def __call__(self, kind: str, **kw: Any) -> None:
        rec = {"kind": kind, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "step": self.step, **kw}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        log.log(logging.WARNING if kind == "warning" else logging.INFO, "%s", json.dumps(rec))


@contextmanager
def stop_on_signals(enabled: bool = True) -> Iterator[list[str]]:
    """While active, SIGINT/SIGTERM append their name to the yielded list instead of
    killing the process (the loop checks it and saves); handlers restored on exit."""
    reasons: list[str] = []
    old = {}
    if enabled:
        def _on_signal(signum, _frame):
            reasons.append(signal.Signals(signum).name)
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, _on_signal)
            except ValueError:  # not the main thread
                pass
    try:
        yield reasons
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def open_run_dir(out_dir: str | Path, resume: bool) -> tuple[Path, dict[str, Any] | None]:
    """Create the run folder and, with ``resume``, load its ``last.pt``.

    Refuses to resume a folder without ``last.pt`` and to start a new run over one that
    has it (a checkpoint is never overwritten by accident).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    if resume:
        if not last.exists():
            raise InputError(f"--resume given but there is no checkpoint {last}; "
                             "start without --resume or give the folder that holds last.pt")
        return out, load_checkpoint(last)
    if last.exists():
        raise InputError(f"{last} exists: pass --resume to continue that run, or choose "
                         "another --out folder (refusing to overwrite a checkpoint)")
    return out, None


@dataclass
class TrainingParts:
    """What a recipe trains: the model, Adam, the EMA of the weights, and a second
    instance of the architecture that validation loads the EMA weights into."""

    model: Any
    optimizer: Any
    ema: "Ema"
    eval_model: Any


def build_training_parts(torch, recipe, device: str = "cpu") -> TrainingParts:
    """Seed torch with ``recipe.seed`` and build the recipe's architecture
    (``recipe.arch``, ``recipe.model_config()``) on ``device`` for training, in a fixed
    order so that a run is reproducible from its seed."""
    from edgerestore.models import load_arch

    arch = load_arch(recipe.arch)
    torch.manual_seed(recipe.seed)
    model = arch.build(**recipe.model_config()).to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    ema = Ema(torch, model, recipe.ema_decay)
    return TrainingParts(model, optimizer, ema, arch.build(**recipe.model_config()).to(device))


def checkpoint_payload(kind: str, header: dict[str, Any], parts: TrainingParts, sampler) -> dict[str, Any]:
    """``header`` plus the tensors of a ``last`` checkpoint (weights, Adam, EMA, sampler
    RNG: enough to resume exactly) or of a ``best`` one (the EMA weights only)."""
    payload = dict(header)
    if kind == "last":
        payload.update(model=parts.model.state_dict(), optimizer=parts.optimizer.state_dict(),
                       ema=parts.ema.shadow, rng=sampler.state())
    else:
        payload.update(ema=parts.ema.shadow)
    return payload


@dataclass
class LoopState:
    """Counters of a training run, saved in every checkpoint."""

    step: int = 0
    patches_seen: int = 0
    train_seconds: float = 0.0
    best: float | None = None
    last_val: dict[str, float] = field(default_factory=dict)


def resume_state(ckpt: dict[str, Any] | None, *, model, optimizer, ema: "Ema", sampler,
                 batch: int, best_key: str) -> LoopState:
    """Load a checkpoint's weights, optimizer, EMA and sampler RNG into the live objects
    (in place) and return its loop counters; a fresh LoopState when ``ckpt`` is None.

    ``best_key`` names the checkpoint field holding the best validation figure
    (``best_psnr25`` for the denoiser, ``best_gain`` for SR).
    """
    st = LoopState()
    if ckpt is None:
        return st
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])  # moves its state to the parameters' device
    ema.load(ckpt["ema"])
    sampler.set_state(ckpt["rng"])
    st.step = int(ckpt["step"])
    st.best = ckpt.get(best_key)
    st.patches_seen = int(ckpt.get("patches_seen", st.step * batch))
    st.train_seconds = float(ckpt.get("train_seconds", 0.0))
    st.last_val = dict(ckpt.get("last_val") or {})
    return st


def run_loop(state: LoopState, *, train_step: Callable[[int], tuple[Any, float]],
             validate: Callable[[], dict[str, float]] | None, best_key: str,
             save: Callable[[str], None], log: JsonlLog, tuner: ThreadTuner, batch: int,
             minutes: float, max_steps: int | None, val_every: int, log_every: int,
             save_minutes: float, last_path: Path, handle_signals: bool = True,
             on_step: Callable[[int, float], None] | None = None) -> str:
    """The time-boxed, interruptible loop both recipes run; returns why it stopped.

    ``train_step(step)`` does one optimisation step (global step ``step`` before it)
    and returns ``(loss tensor, learning rate)``; ``after_step`` hooks (EMA) belong in
    it. Every ``log_every`` steps a ``train`` line (mean loss, lr, patches/s); every
    ``val_every`` steps ``validate()`` and, when ``metrics[best_key]`` improves,
    ``save("best")``; ``save("last")`` every ``save_minutes`` and at the end. Stops at
    the time budget, at ``max_steps``, or on SIGINT/SIGTERM.
    """
    t_start = time.monotonic()
    t_saved = t_start
    t_window, window_loss, window_n = time.monotonic(), 0.0, 0

    def logj(kind: str, **kw: Any) -> None:
        log.step = state.step
        log(kind, **kw)

    with stop_on_signals(handle_signals) as stop_reason:
        while True:
            if stop_reason:
                break
            if max_steps is not None and state.step >= max_steps:
                stop_reason.append("max_steps")
                break
            if time.monotonic() - t_start >= minutes * 60.0:
                stop_reason.append("time_budget")
                break
            t0 = time.monotonic()
            loss, lr = train_step(state.step)
            state.step += 1
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise RuntimeError(f"training diverged at step {state.step}: loss {lv}")
            state.patches_seen += batch
            dt = time.monotonic() - t0
            state.train_seconds += dt
            tuner.observe(state.step, dt, logj)
            window_loss += lv
            window_n += 1
            if on_step:
                on_step(state.step, lv)
            if state.step % log_every == 0:
                now = time.monotonic()
                logj("train", loss=window_loss / window_n, lr=lr,
                     patches_per_s=window_n * batch / max(1e-9, now - t_window),
                     patches_seen=state.patches_seen)
                t_window, window_loss, window_n = now, 0.0, 0
            if validate is not None and val_every and state.step % val_every == 0:
                state.last_val = validate()
                is_best = state.best is None or state.last_val[best_key] > state.best
                if is_best:
                    state.best = state.last_val[best_key]
                    save("best")
                logj("val", ema=True, best=is_best, **state.last_val)
            if time.monotonic() - t_saved >= save_minutes * 60.0:
                save("last")
                t_saved = time.monotonic()
                logj("save", path=str(last_path))
    save("last")
    reason = stop_reason[0] if stop_reason else "done"
    logj("stop", reason=reason, patches_seen=state.patches_seen, train_seconds=state.train_seconds)
    return reason
