"""``edgerestore batch``: restore a whole archive of videos, on this machine or on Ray.

Exit status: 0 every video restored (or already done), 1 some failed (the report and
stderr name them and their errors), 2 a usage error, 130/143 interrupted (what finished
is in the manifest; a rerun resumes).
"""

from __future__ import annotations

import argparse
import sys

from edgerestore.cli import Command

EPILOG = """\
examples:
  edgerestore batch archive/ -o restored/ --pipeline denoise           # a local pool of processes
  edgerestore batch 'archive/**/*.mp4' -o restored/ --report job.json  # a glob (quoted)
  edgerestore batch archive/ -o restored/ --on ray                     # a Ray on this machine
  edgerestore batch /mnt/nfs/archive -o /mnt/nfs/out --on ray://head:10001 --workers 32
  edgerestore batch archive/ -o restored/ --chunk-frames 600           # long videos in parallel chunks
A rerun skips what the manifest in OUTDIR records as done. See docs/batch.md.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("inputs", metavar="ARCHIVE_DIR_OR_GLOB",
                   help="a folder of videos (searched recursively) or a glob ('a/**/*.mp4', quoted)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="output folder: one .mkv per input, subfolders mirrored; holds the manifest")
    p.add_argument("-p", "--pipeline", default="default", metavar="SPEC",
                   help="a named pipeline or stages joined by '|' (as for `edgerestore run`)")
    p.add_argument("--on", metavar="ray|ADDRESS", default=None,
                   help="run on Ray: 'ray' for a Ray on this machine, or a cluster address "
                        "(ray://head:10001); needs the ray extra. Default: a local pool of processes")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="worker processes (local) or tasks in flight (Ray); default: the CPUs")
    p.add_argument("--tries", type=_positive_int, default=3, metavar="N",
                   help="attempts per unit before it is reported failed (default 3)")
    p.add_argument("--chunk-frames", type=_positive_int, metavar="N",
                   help="split videos longer than N frames into chunks restored in parallel and "
                        "joined (same result as one run)")
    p.add_argument("--codec", type=str.lower, choices=("h264", "h265", "av1", "ffv1"), default=None,
                   help="output codec (default h264; ffv1 with --lossless)")
    p.add_argument("--crf", type=int, metavar="Q", help="quality target of the output codec")
    p.add_argument("--lossless", action="store_true", help="lossless FFV1 outputs")
    p.add_argument("--report", metavar="PATH", help="write the job report as JSON to PATH")


def run(args: argparse.Namespace) -> int:
    from edgerestore.batch import BatchOptions, run_batch

    options = BatchOptions(pipeline=args.pipeline, on=args.on, workers=args.workers, tries=args.tries,
                           chunk_frames=args.chunk_frames, codec=args.codec, crf=args.crf,
                           lossless=args.lossless, progress=not getattr(args, "quiet", 0))
    report = run_batch(args.inputs, args.output, options)
    if args.report:
        report.write_json(args.report)
    failed = [f for f in report.files if f["status"] == "failed"]
    for note in report.notes:
        print(f"edgerestore batch: note: {note}", file=sys.stderr)
    for f in failed:
        print(f"edgerestore batch: failed: {f['input']}: {f['error']}", file=sys.stderr)
    done = sum(f["status"] == "done" for f in report.files)
    skipped = sum(f["status"] == "skipped" for f in report.files)
    print(f"edgerestore batch: {done} restored, {skipped} already done, {len(failed)} failed; "
          f"{report.frames} frames in {report.seconds:.1f} s on {report.executor}", file=sys.stderr)
    return 1 if failed else 0


COMMAND = Command("batch", "restore a whole archive of videos (local processes or Ray), resumable", add_arguments,
                  run, description=__doc__.split("\n\n")[0])
