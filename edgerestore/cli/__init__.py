"""The ``edgerestore`` command: one program, one subcommand per job.

Each subcommand lives in its own module of this package and exposes
``COMMAND = Command(name, help, add_arguments, run)``. To add one, write the module and
add its name to ``_COMMAND_MODULES``. Command modules must import nothing heavy at
module level (do it inside ``run``), so ``edgerestore --help`` stays fast.

Conventions: results (tables, JSON) go to stdout; logs and progress go to stderr (or the
``--log-file``). Exit status 0 on success, 1 for an error edgerestore explains
(:class:`~edgerestore.errors.EdgeRestoreError`), 2 for a usage error, 130 on Ctrl-C,
143 on SIGTERM (what ``timeout``, systemd and ``docker stop`` send), which is handled
as Ctrl-C is: the command ends cleanly (``run`` finalises its outputs and writes its
report).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from edgerestore import __version__
from edgerestore.errors import EdgeRestoreError

log = logging.getLogger("edgerestore")

_COMMAND_MODULES = ["run", "info", "models", "inspect", "annotate", "train", "export", "calibrate", "build_engine", "denoise", "upscale", "batch"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as a KeyboardInterrupt so that every command handles it as Ctrl-C;
    the exit status is 143 (128 + 15) instead of 130."""

    exit_status = 143


def raise_terminated(signum, frame) -> None:
    """The SIGTERM handler :func:`main` installs."""
    raise Terminated()


def interrupt_status(exc: BaseException) -> int:
    """Exit status for an interrupt: 143 after SIGTERM, 130 after Ctrl-C."""
    return getattr(exc, "exit_status", 130)


@dataclass(frozen=True)
class Command:
    """A subcommand: ``run(args) -> exit status``."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


def add_self_ensemble_argument(p: argparse.ArgumentParser) -> None:
    """``--self-ensemble [N]`` of the model commands (N copies; the flag alone means 8)."""

    def copies(text: str) -> int:
        if text.strip() in ("1", "2", "4", "8"):
            return int(text)
        raise argparse.ArgumentTypeError(
            f"expected 1 (off), 2, 4 or 8 copies, got {text!r} (give N, or put the flag after the input path)")

    p.add_argument("--self-ensemble", type=copies, nargs="?", const=8, default=1, metavar="N",
                   help="with a model: average it over N flipped/rotated copies of the image, 2, 4 "
                        "or 8 (the flag alone: 8). N times the time, a tenth of a dB or so (measured "
                        "gains: docs/model-contract.md). For offline quality, not for live video")


def commands() -> list[Command]:
    """Every subcommand's :class:`Command`, in the order ``edgerestore --help`` lists them."""
    return [importlib.import_module(f"edgerestore.cli.{m}").COMMAND for m in _COMMAND_MODULES]


def _add_common_options(parser: argparse.ArgumentParser, *, suppress_defaults: bool) -> None:
    # The same options are accepted before and after the subcommand; on the subparser the
    # defaults are suppressed so that `edgerestore -v info` is not undone by the subparser.
    d = argparse.SUPPRESS if suppress_defaults else None
    group = parser.add_argument_group("logging")
    group.add_argument("-v", "--verbose", action="count", default=d if suppress_defaults else 0,
                       help="more log output on stderr (-vv for debug)")
    group.add_argument("-q", "--quiet", action="count", default=d if suppress_defaults else 0,
                       help="only errors on stderr")
    group.add_argument("--log-file", metavar="PATH", default=d,
                       help="also write the full debug log to PATH")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgerestore",
        description="Restore camera and video frames in real time: denoising, "
        "super-resolution and frame repair, on NVIDIA GPUs and on any CPU.",
    )
    parser.add_argument("--version", action="version", version=f"edgerestore {__version__}")
    _add_common_options(parser, suppress_defaults=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for cmd in commands():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description or cmd.help)
        _add_common_options(p, suppress_defaults=True)
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def setup_logging(verbose: int = 0, quiet: int = 0, log_file: str | None = None) -> None:
    """Logs to stderr at a level set by -v/-q, and everything to ``log_file`` if given.
    Raises :class:`EdgeRestoreError` when ``log_file`` cannot be opened for appending."""
    level = logging.WARNING - 10 * verbose + 10 * quiet
    level = min(max(level, logging.DEBUG), logging.ERROR)
    root = logging.getLogger("edgerestore")
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(console)
    if log_file:
        try:
            fh = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            reason = "it is a folder" if isinstance(exc, IsADirectoryError) else (exc.strerror or str(exc))
            raise EdgeRestoreError(f"cannot write the log file {log_file}: {reason}; give --log-file "
                                   "a file in a writable folder") from None
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        root.addHandler(fh)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        setup_logging(args.verbose, args.quiet, args.log_file)
    except EdgeRestoreError as exc:
        print(f"edgerestore: error: {exc}", file=sys.stderr)
        return 1
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    # SIGTERM as Ctrl-C, unless the embedding program set its own handler.
    map_sigterm = threading_main() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    if map_sigterm:
        signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return int(args._run(args) or 0)
    except EdgeRestoreError as exc:
        if args.verbose:
            log.exception("%s failed", args.command)
        print(f"edgerestore {args.command}: error: {exc}", file=sys.stderr)
        if args.log_file:
            print(f"(full log in {args.log_file})", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"edgerestore {args.command}: {what}", file=sys.stderr)
        return interrupt_status(exc)
    except BrokenPipeError:  # e.g. `edgerestore models | head -1`
        return 0
    finally:
        if map_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def threading_main() -> bool:
    """True in the main thread (the only one that may set signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
