"""``edgerestore build-engine``: a TensorRT engine from an ONNX model (needs a GPU + tensorrt)."""

from __future__ import annotations

import argparse

from edgerestore.cli import Command

EPILOG = """\
examples:
  edgerestore build-engine dn-gray.onnx --precision fp16 -o dn-gray-fp16.engine
  edgerestore calibrate dn-gray --frames clip.mp4 --target tensorrt -o dn-gray-trt-int8.onnx
  edgerestore build-engine dn-gray-trt-int8.onnx --precision int8 -o dn-gray-int8.engine

The engine is also stored in the engine cache (see docs/calibration.md), so the tensorrt
backend finds it when it runs the same ONNX file on this GPU with this TensorRT.
INT8 engines are built from Q/DQ models made by `calibrate --target tensorrt`.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("model", help="zoo model name or path to an .onnx file")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8", "best"), default=None,
                   help="engine precision (default: what the model's metadata says it holds)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.engine", help="engine file to write")
    p.add_argument("--device", type=int, default=0, metavar="N", help="GPU index (default: 0)")
    p.add_argument("--workspace-mib", type=int, default=1024, metavar="MIB",
                   help="builder workspace limit in MiB (default: 1024)")
    p.add_argument("--cache-dir", metavar="DIR", help="engine cache folder (default: "
                   "$EDGERESTORE_CACHE_DIR/engines or ~/.cache/edgerestore/engines)")
    p.add_argument("--no-cache", action="store_true", help="always build; do not use the cache")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgerestore.backends.tensorrt import probe
    from edgerestore.backends.tensorrt.cache import write_atomic
    from edgerestore.backends.tensorrt.loader import EngineBytesFromOnnx
    from edgerestore.errors import BackendError, InputError
    from edgerestore.model_spec import read_spec
    from edgerestore.zoo import resolve

    out = Path(args.output).expanduser()
    if out.is_dir():
        raise InputError(f"-o {out} is a folder; give a file name such as model.engine")
    path = resolve(args.model)
    read_spec(path)  # a broken model fails before anything GPU-related
    why_not = probe()
    if why_not:
        raise BackendError(f"build-engine needs TensorRT and an NVIDIA GPU: {why_not}")
    loader = EngineBytesFromOnnx(path=str(path), precision=args.precision, device_id=args.device,
                                 cache_dir=args.cache_dir, use_cache=not args.no_cache,
                                 workspace_mib=args.workspace_mib)
    data = loader()
    try:
        write_atomic(out, data)
    except OSError as exc:
        raise InputError(f"-o {out}: cannot write the engine ({exc.strerror or exc})") from None
    print(f"wrote {out} ({len(data) / 2**20:.1f} MiB)")
    return 0


COMMAND = Command(
    name="build-engine",
    help="build a TensorRT engine from an ONNX model (needs an NVIDIA GPU and tensorrt)",
    add_arguments=add_arguments,
    run=run,
)
