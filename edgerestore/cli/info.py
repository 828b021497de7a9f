"""``edgerestore info``: what this machine offers and what to install for the rest."""

from __future__ import annotations

import argparse
import json

from edgerestore.cli import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    from edgerestore.sysinfo import collect

    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    cpu = info["cpu"]
    print(f"edgerestore {info['edgerestore']}  (Python {info['python']}, {info['platform']})")
    print(f"CPU: {cpu['cores_usable']} usable of {cpu['cores_total']} cores ({cpu['processor']})")
    print("core packages: " + ", ".join(f"{k} {v or 'MISSING'}" for k, v in info["core_packages"].items()))
    print()
    for piece in info["pieces"]:
        mark = "yes" if piece["available"] else "no "
        version = f" {piece['version']}" if piece["version"] else ""
        print(f"  [{mark}] {piece['name']}{version}: {piece['detail']}")
        if not piece["available"] and piece["fix"]:
            print(f"          to get it: {piece['fix']}")
    print()
    print("backends:")
    for b in info["backends"]:
        state = "available" if b["available"] else f"not available: {b['why_not']}"
        print(f"  {b['name']:<9} {b['summary']} ({state})")
    print(f"  auto    -> {info['auto_backend']}")
    print()
    print("video codecs (FFmpeg via PyAV; `run --codec`; a hardware encoder is used when it opens):")
    codecs = dict(info["video_codecs"])
    decoders = codecs.pop("decode", {})
    for codec, encoders in codecs.items():
        print(f"  encode {codec:<6} " + ", ".join(_state(name, state) for name, state in encoders.items()))
    if decoders:
        print("  decode        " + ", ".join(_state(name, state) for name, state in decoders.items()))
    return 0


def _state(name: str, state: str) -> str:
    """``name yes`` or ``name no (why)``."""
    return f"{name} yes" if state == "yes" else f"{name} no ({_short(state)})"


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


COMMAND = Command(
    name="info",
    help="show what this machine offers (CPU, ONNX Runtime providers, CUDA, TensorRT, video codecs) and what to install",
    add_arguments=add_arguments,
    run=run,
)
