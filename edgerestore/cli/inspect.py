"""``edgerestore inspect MODEL``: validate a model file against the contract and describe it."""

from __future__ import annotations

import argparse
import json

from edgerestore.cli import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name or path to an .onnx file")
    p.add_argument("--json", action="store_true", help="print the model's spec as JSON")


def run(args: argparse.Namespace) -> int:
    from edgerestore.model_spec import read_spec
    from edgerestore.zoo import resolve

    spec = read_spec(resolve(args.model))
    d = spec.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"{spec.path}: valid edgerestore model")
    for key in ("name", "task", "scale", "color", "channels", "value_range", "inputs", "output",
                "noise_level_range", "size_multiple", "tile_size", "tile_overlap", "profile",
                "precision", "size_bytes", "description"):
        if d.get(key) is not None:
            print(f"  {key:<18} {d[key]}")
    for key, value in spec.provenance.items():
        print(f"  provenance.{key:<7} {value}")
    return 0


COMMAND = Command(
    name="inspect",
    help="check a model file against the metadata contract and show what it says",
    add_arguments=add_arguments,
    run=run,
)
