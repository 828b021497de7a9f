"""``edgerestore run``: restore a video, camera, stream or folder of images.

With no argument it restores the shipped noisy sample clip with the default pipeline on
the CPU and writes ``sample_noisy_restored.mkv`` in the current folder.

Several inputs, or ``--streams FILE``, make one run of several streams in one process
(:func:`run_streams`, on :mod:`edgerestore.runtime.multistream`): one output per stream in
``-o OUTDIR``, a report block per stream.

Exit status: 0 done; 1 an explained error, an input that ended early, or a run that
produced no frame (with several streams: any stream that failed; the others' outputs are
complete); 130 Ctrl-C, 143 SIGTERM (outputs finalised, report written).

Why one module over 400 lines: the one-stream and the several-stream runs share the
options, their checks and their messages, and a command module may not import another
module of ``cli/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgerestore.cli import Command, interrupt_status

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SAMPLE_CLIP = ASSETS / "sample_noisy.mp4"

EPILOG = """\
examples:
  edgerestore run                                    # the shipped sample clip, default pipeline
  edgerestore run in.mp4 -o out.mkv                  # offline: every frame, in order (H.264, CRF 23)
  edgerestore run in.mp4 -o out.mkv --lossless       # FFV1, lossless
  edgerestore run in.mp4 -o out.mkv --pipeline denoise
  edgerestore run in.mp4 -o out.mkv --pipeline "nlm(sigma=15)|upscale(scale=2)"
  edgerestore run 0 --mode live --show               # camera 0, bounded latency, window
  edgerestore run rtsp://host/stream -o frames/      # stream in, folder of PNG images out
  edgerestore run frames/ -o out.mp4                 # folder of images in (natural order)
  edgerestore run in.mp4 -o out.mkv --report r.json  # JSON report
  edgerestore run --list                             # stages and named pipelines
  edgerestore run damaged.mkv -o fixed.mkv --pipeline repair --report r.json   # frame repair
  edgerestore run cam0.mp4 cam1.mp4 -o outdir/ --pipeline "model(name='dn-gray')"   # several streams, batched
  edgerestore run --streams streams.toml --report r.json   # per-stream sources, outputs, options
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("input", nargs="*", default=None,
                   help="video file, camera index (0) or device (/dev/video0), stream URL "
                        "(rtsp://, http://), folder of images, or 'synthetic'; default: the "
                        "shipped noisy sample clip. Several inputs: one run of several streams, "
                        "stages shared, outputs in the folder -o (see docs/runtime.md, 'Many streams')")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="video file (.mp4/.mkv/.mov: H.264, --lossless: FFV1 in .mkv, .avi: MJPEG), a folder for "
                        "images (ends with /), or '-' to discard; default: <input>_restored.mkv "
                        "in the current folder (none with --show)")
    p.add_argument("-p", "--pipeline", default=None, metavar="SPEC",
                   help="a named pipeline (default, denoise, ...) or stages joined by '|', e.g. "
                        "\"nlm(sigma=15)|upscale(scale=2)\"; see --list (default: 'default' "
                        "offline, 'live' in live mode: a faster NLM)")
    p.add_argument("--mode", choices=("offline", "live"), default=None,
                   help="offline: every frame, in order; live: bounded latency, the oldest waiting "
                        "frames are dropped when processing falls behind (default: live for "
                        "cameras and streams, offline otherwise)")
    p.add_argument("--show", action="store_true", help="show the restored frames in a window (q to stop)")
    p.add_argument("--report", metavar="PATH",
                   help="write the run report as JSON to PATH (checked before any work: not an input "
                        "or output, not a video/image name, in a writable folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="a folder output may hold frame images of an earlier run: replace them (the "
                        "earlier frames this run does not write are removed at the end); without it "
                        "such a folder is refused, so two runs never mix")
    p.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N input frames")
    p.add_argument("--source-fps", type=_positive_float, metavar="F",
                   help="release file/folder frames at F per second, like a camera (live mode "
                        "paces files at their own frame rate by default)")
    p.add_argument("--fps", type=_positive_float, metavar="F",
                   help="re-time the output video at F frames per second (default: every frame keeps "
                        "its input timestamp, so the output lasts as long as the input)")
    v = p.add_argument_group("video output (FFmpeg; see docs/runtime.md)")
    v.add_argument("--codec", type=str.lower, choices=VIDEO_CODECS, default=None,
                   help="video codec (default: h264; ffv1 with --lossless; .avi: MJPEG)")
    v.add_argument("--crf", type=int, metavar="Q",
                   help="quality target, lower = better and bigger (h264/h265: 0-51, default 23/28; "
                        "av1: 0-63, default 35)")
    v.add_argument("--lossless", action="store_true", help="lossless FFV1 (needs a .mkv or .avi output)")
    v.add_argument("--no-audio", action="store_true",
                   help="do not copy the input's audio and subtitle streams into the output video")
    v.add_argument("--follow-redirects", action="store_true",
                   help="let an http(s) stream redirect to another address (off by default)")
    v.add_argument("--rtsp-transport", choices=("tcp", "udp"), default=None,
                   help="RTSP transport (default: FFmpeg's, UDP then TCP)")
    p.add_argument("--backend", default=None, metavar="NAME",
                   help="backend for the stages that run a model and do not name one (model, upscale): "
                        "auto, ort-cpu, ort-cuda, ...")
    p.add_argument("--queue-size", type=_positive_int, metavar="N", help="frames waiting between stages (default 4 offline, 1 live)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.add_argument("--list", action="store_true", help="list the stages and named pipelines, then exit")
    m = p.add_argument_group("many streams (several inputs or --streams; see docs/runtime.md)")
    m.add_argument("--streams", metavar="TOML",
                   help="the streams to run, with per-stream source, output and options (a TOML file)")
    m.add_argument("--batch-wait-ms", type=_non_negative_float, metavar="MS",
                   help="the longest a model stage waits for the other streams' frames to fill a batch "
                        "(default 50 offline, 5 live)")
    g = p.add_argument_group("frame repair (--pipeline repair; see docs/repair.md)")
    g.add_argument("--mask", metavar="FILE_OR_FOLDER",
                   help="damage to repair that the detectors cannot see (blotches, occlusions): a "
                        "mask image for every frame, or a folder of one mask per frame; nonzero = repair")
    g.add_argument("--fill-dropped", action="store_true",
                   help="offline: make the frames missing at timestamp gaps by interpolation")
    g.add_argument("--repair-threshold", type=_positive_float, metavar="SCORE",
                   help="score a detection needs to be repaired (default 1.0: no false repairs on "
                        "our clean real clips; lower finds fainter damage, higher repairs only the surest)")


VIDEO_CODECS = ("h264", "h265", "av1", "ffv1")
CRF_LIMITS = {"h264": 51, "h265": 51, "av1": 63}


def _finite_float(text: str, *, minimum: float, inclusive: bool) -> float:
    """A finite number above ``minimum`` (or equal to it when ``inclusive``), else an
    argparse usage error (exit 2)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and (value >= minimum if inclusive else value > minimum)):
        raise argparse.ArgumentTypeError(
            f"must be a finite number {'>=' if inclusive else '>'} {minimum:g}, got {text}")
    return value


def _positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _finite_float(text, minimum=0.0, inclusive=False)


def _non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _finite_float(text, minimum=0.0, inclusive=True)


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a usage error, exit 2, otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _video_usage_error(args: argparse.Namespace) -> str | None:
    """--crf / --codec / --lossless that do not go together (checked before any work)."""
    codec = args.codec or ("ffv1" if args.lossless else "h264")
    if args.lossless and codec != "ffv1":
        return f"--lossless writes FFV1; it cannot be combined with --codec {codec}"
    if args.crf is not None:
        if codec not in CRF_LIMITS:
            return f"--crf does not apply to {codec} (lossless)"
        if not 0 <= args.crf <= CRF_LIMITS[codec]:
            return f"--crf for {codec} must be in 0..{CRF_LIMITS[codec]} (lower = better), got {args.crf}"
    return None


def _list() -> int:
    """Named pipelines and stages from the runtime's registries, with every parameter of
    each stage and its whole description."""
    import textwrap

    from edgerestore.runtime.catalog import NAMED_PIPELINES, STAGES, stage_parameters

    def wrapped(text: str, indent: str) -> str:
        return textwrap.fill(text, width=92, initial_indent=indent, subsequent_indent=indent,
                             break_long_words=False, break_on_hyphens=False)

    print("named pipelines:")
    for name, desc in sorted(NAMED_PIPELINES.describe()):
        print(f"  {name:<16} {NAMED_PIPELINES.get(name)}")
        print(wrapped(desc, " " * 6))
    print("stages:")
    for name, desc in sorted(STAGES.describe()):
        print(f"  {name}({', '.join(stage_parameters(name))})")
        print(wrapped(desc, " " * 6))
    return 0


def _default_output(src) -> Path:
    from edgerestore.runtime import sources

    if isinstance(src, sources.VideoFileSource):
        stem = src.path.stem
    elif isinstance(src, sources.ImageFolderSource):
        stem = src.folder.resolve().name or "frames"
    elif isinstance(src, sources.CameraSource):
        stem = "camera" + "".join(ch for ch in str(src.target) if ch.isalnum())[-8:]
    elif isinstance(src, sources.StreamSource):
        stem = "stream"
    else:
        stem = "synthetic"
    return Path.cwd() / f"{stem}_restored.mkv"


def run(args: argparse.Namespace) -> int:
    from edgerestore.errors import EdgeRestoreError, InputError
    from edgerestore.runtime import Pipeline, sinks, sources
    from edgerestore.runtime.report import check_report_path

    if args.list:
        return _list()
    usage = _video_usage_error(args)
    inputs = list(args.input or [])
    if usage is None and (args.streams or len(inputs) > 1):
        usage = _streams_usage_error(args, inputs)
        if usage is None:
            return run_streams(args, inputs, _stage_options(args))
    if usage is None and args.batch_wait_ms is not None:
        usage = "--batch-wait-ms applies to a run of several streams (several inputs or --streams)"
    if usage:
        print(f"edgerestore run: error: {usage}", file=sys.stderr)
        return 2

    target = inputs[0] if inputs else None
    if target is None:
        if not SAMPLE_CLIP.is_file():
            raise InputError(f"the shipped sample clip is missing ({SAMPLE_CLIP}); reinstall "
                             "edgerestore or give an input: edgerestore run in.mp4")
        target = str(SAMPLE_CLIP)
        print(f"edgerestore run: no input given; restoring the shipped sample clip {SAMPLE_CLIP.name}",
              file=sys.stderr)
    mode = args.mode or ("live" if sources.is_live(target) else "offline")
    realtime = mode == "live" or args.source_fps is not None
    src = sources.open_source(target, realtime=realtime, pace_fps=args.source_fps,
                              stream_options={"follow_redirects": args.follow_redirects,
                                              "rtsp_transport": args.rtsp_transport})

    outs: list = []
    out_path = None
    video = {"crf": args.crf, "lossless": args.lossless, "audio": not args.no_audio, "source": src}
    if args.output is not None:
        outs.append(sinks.open_sink(args.output, fps=args.fps, codec=args.codec, overwrite=args.overwrite,
                                    **video))
    elif not args.show:
        out_path = _default_output(src)
        outs.append(sinks.VideoFileSink(out_path, fps=args.fps, codec=args.codec, **video))
    if args.show:
        outs.append(sinks.WindowSink())
    earlier = {id(s): s.path.exists() for s in outs if s.path is not None}
    if args.report:
        check_report_path(args.report, inputs=src.input_paths(),
                          outputs=[s.path for s in outs if s.path is not None])

    pipe = Pipeline(args.pipeline, mode=mode, queue_size=args.queue_size, stage_options=_stage_options(args))
    _check_repair_options(pipe, args, mode)
    quiet = bool(getattr(args, "quiet", 0))
    status = 0
    report_error: EdgeRestoreError | None = None
    try:
        with pipe:
            try:
                report = pipe.run(src, outs, max_frames=args.max_frames,
                                  progress=False if quiet else args.progress)
            except KeyboardInterrupt as exc:
                report = pipe.report
                status = interrupt_status(exc)
                what = "terminated (SIGTERM)" if status == 143 else "interrupted"
                print(f"edgerestore run: {what}; the output holds the frames written so far",
                      file=sys.stderr)
    finally:
        report = pipe.report
        if report is not None and args.report:
            try:
                report.write_json(args.report)
            except EdgeRestoreError as exc:  # disk full, ...: a message, the run's own error first
                report_error = exc
                print(f"edgerestore run: error: {exc}", file=sys.stderr)
        started = report is not None and (report.frames_in or report.stages or report.status not in ("ok", "error"))
        if started and not quiet:  # an error before any work is said once, by main()
            print(report.summary(), file=sys.stderr)
            _print_repair(report)
    if report.status == "input_error":
        print(f"edgerestore run: error: the input ended early: {report.source_error}; "
              f"{report.frames_out} frames written", file=sys.stderr)
        status = 1
    if report.status == "no_frames":
        print(f"edgerestore run: error: {report.error}", file=sys.stderr)
        status = 1
    for s in outs:
        path = getattr(s, "path", None)
        if path is not None and s.frames_written:
            kind = "frames to folder" if isinstance(s, sinks.ImageFolderSink) else "frames to"
            print(f"wrote {s.frames_written} {kind} {Path(path).resolve()}")
        elif path is not None:
            left = (f"; the {'folder' if isinstance(s, sinks.ImageFolderSink) else 'file'} there is "
                    "from before this run and was left as it was") if earlier.get(id(s)) else ""
            print(f"edgerestore run: no frames were written to {path}{left}", file=sys.stderr)
    if report_error is not None and status == 0:
        status = 1
    return status


def _streams_usage_error(args: argparse.Namespace, inputs: list[str]) -> str | None:
    """Options that a run of several streams cannot take (checked before any work)."""
    if args.streams and inputs:
        return "give the streams either as inputs or in --streams FILE, not both"
    if args.show:
        return "--show shows one stream; a run of several streams writes to files (-o OUTDIR)"
    if args.mask or args.fill_dropped or args.repair_threshold is not None:
        return "frame repair keeps state per stream: run one stream per process for it"
    if not args.streams and args.output is None:
        return "several inputs need an output folder: -o OUTDIR/ (one output per stream, named after it)"
    if args.output is not None and args.output not in ("-", "null") and Path(args.output).is_file():
        return f"-o {args.output} is a file; several streams need an output folder (-o OUTDIR/)"
    return None


def _stage_options(args: argparse.Namespace) -> dict:
    """Options given to the stages at construction: ``--backend`` to those that run a model
    (model, upscale) and name none; ``--mask``/``--fill-dropped``/``--repair-threshold`` to
    the repair stage."""
    options: dict = {}
    if args.backend:
        options["backend"] = args.backend
    if args.mask:
        options["mask"] = args.mask
    if args.fill_dropped:
        options["fill_dropped"] = True
    if args.repair_threshold is not None:
        options["threshold"] = args.repair_threshold
    return options


def _check_repair_options(pipe, args, mode: str) -> None:
    """Refuse --mask / --fill-dropped / --repair-threshold without a stage that takes them,
    and --fill-dropped outside offline mode."""
    from edgerestore.errors import InputError
    from edgerestore.runtime.stages import FrameStage

    if not (args.mask or args.fill_dropped or args.repair_threshold is not None):
        return
    if not any(isinstance(st, FrameStage) and "mask" in st.parameters() for st in pipe.stages):
        raise InputError("--mask, --fill-dropped and --repair-threshold need a repair stage; add one: "
                         "--pipeline repair "
                         "(or a chain such as \"repair|nlm()\")")
    if args.fill_dropped and mode != "offline":
        raise InputError("--fill-dropped works in offline mode only (live mode keeps latency bounded)")


def _print_repair(report) -> None:
    from edgerestore.repair.stage import summary_line

    for st in report.stages:
        if st.get("repair"):
            print(f"  {st['name']}: {summary_line(st['repair'])}", file=sys.stderr)



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

COMMAND = Command(
    name="run",
    help="restore a video, camera, stream or folder of images (offline or live)",
    description="Run a restoration pipeline from a source (video file, camera, stream, folder "
                "of images) into outputs (video file, folder of images, window). Without an "
                "input, restores the shipped noisy sample clip into the current folder.",
    add_arguments=add_arguments,
    run=run,
)
