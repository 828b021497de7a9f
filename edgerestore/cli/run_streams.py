"""``edgerestore run`` with several streams: ``run cam0.mp4 cam1.mp4 -o outdir/`` or
``run --streams streams.toml``. Not a command of its own: ``cli/run.py`` hands over to
:func:`run_streams` after its usage checks.

Exit status: 0 every stream ok; 1 a stream failed or ended early (the others' outputs are
complete), or an explained error before any work; 130 Ctrl-C, 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgerestore.cli import interrupt_status


def run_streams(args: argparse.Namespace, inputs: list[str], stage_options: dict) -> int:
    """Run the streams of ``inputs`` (or of ``args.streams``) with ``run``'s options;
    ``stage_options``: what the stages get at construction (``--backend``)."""
    from edgerestore.errors import EdgeRestoreError, InputError
    from edgerestore.runtime import sinks, sources
    from edgerestore.runtime.multistream import MultiStreamRunner, stream_output_names
    from edgerestore.runtime.report import check_report_path
    from edgerestore.runtime.streams_file import StreamEntry, read_streams_file

    pipeline, file_mode, out_dir, wait_ms = args.pipeline, None, args.output, args.batch_wait_ms
    if args.streams:
        spec = read_streams_file(args.streams)
        entries = spec.streams
        pipeline = pipeline or spec.pipeline
        file_mode = spec.mode
        out_dir = out_dir or spec.output_dir
        wait_ms = spec.batch_wait_ms if wait_ms is None else wait_ms
    else:
        entries = [StreamEntry(t) for t in inputs]
    targets = [e.source for e in entries]
    mode = args.mode or file_mode or ("live" if any(sources.is_live(t) for t in targets) else "offline")
    if out_dir is None and any(e.output is None for e in entries):
        raise InputError("streams without an output need an output folder: -o OUTDIR/ "
                         "(or output_dir = \"...\" in the streams file)")
    discard = out_dir in ("-", "null")
    if out_dir is not None and not discard:
        folder = Path(out_dir)
        if folder.is_file():
            raise InputError(f"the output folder {folder} is a file; give a folder for the streams' outputs")
        folder.mkdir(parents=True, exist_ok=True)
    names = stream_output_names(targets)

    srcs, outs = [], []
    for k, e in enumerate(entries):
        o = e.options
        realtime = mode == "live" or (o.get("source_fps") or args.source_fps) is not None
        stream_options = {"follow_redirects": args.follow_redirects,
                          "rtsp_transport": o.get("rtsp_transport", args.rtsp_transport)}
        srcs.append(sources.open_source(e.source, realtime=realtime, pace_fps=o.get("source_fps", args.source_fps),
                                        stream_options=stream_options))
        target = e.output or ("-" if discard else str(Path(out_dir) / names[k]))
        video = {"crf": o.get("crf", args.crf), "lossless": o.get("lossless", args.lossless),
                 "audio": not args.no_audio, "source": srcs[-1]}
        outs.append(sinks.open_sink(target, fps=args.fps, codec=o.get("codec", args.codec),
                                    overwrite=args.overwrite, **video))
    paths = [s.path for s in outs if s.path is not None]
    if len({str(Path(p).resolve()) for p in paths}) != len(paths):
        raise InputError("two streams would write the same output; give each its own output")
    earlier = {id(s): s.path.exists() for s in outs if s.path is not None}
    if args.report:
        check_report_path(args.report, inputs=[p for s in srcs for p in s.input_paths()], outputs=paths)

    limits = [e.options.get("max_frames", args.max_frames) for e in entries]
    runner = MultiStreamRunner(pipeline, mode=mode, queue_size=args.queue_size, stage_options=stage_options,
                               batch_wait_s=None if wait_ms is None else wait_ms / 1000.0)
    status = 0
    quiet = bool(getattr(args, "quiet", 0))
    report_error = None
    try:
        with runner:
            try:
                runner.run(srcs, outs, max_frames=[None if m is None else int(m) for m in limits])
            except KeyboardInterrupt as exc:
                status = interrupt_status(exc)
                what = "terminated (SIGTERM)" if status == 143 else "interrupted"
                print(f"edgerestore run: {what}; the outputs hold the frames written so far", file=sys.stderr)
    finally:
        report = runner.report
        if report is not None and args.report:
            try:
                report.write_json(args.report)
            except EdgeRestoreError as exc:
                report_error = exc
                print(f"edgerestore run: error: {exc}", file=sys.stderr)
        if report is not None and report.totals and not quiet:
            print(report.summary(), file=sys.stderr)
    if status == 0 and report.status != "ok":
        failed = [f"stream {k} ({r.source}): {r.status}" for k, r in enumerate(report.streams)
                  if r.status in ("error", "input_error", "no_frames")]
        print(f"edgerestore run: error: {len(failed)} of {len(report.streams)} streams failed: "
              + "; ".join(failed), file=sys.stderr)
        status = 1
    for s in outs:
        if s.path is not None and s.frames_written:
            print(f"wrote {s.frames_written} frames to {Path(s.path).resolve()}")
        elif s.path is not None:
            left = "; the file there is from before this run and was left as it was" if earlier.get(id(s)) else ""
            print(f"edgerestore run: no frames were written to {s.path}{left}", file=sys.stderr)
    if report_error is not None and status == 0:
        status = 1
    return status
