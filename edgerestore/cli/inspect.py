"""``edgerestore inspect MODEL``: validate a model file against the contract and describe it."""

from __future__ import annotations

import argparse
import json

from edgerestore.cli import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name or path to an .onnx file")
    p.add_argument("--json", action="store_true", help="print the model's spec as JSON")


def run(args: argparse.Namespace) -> int:
    from edgerestore.model_spec import printable, read_spec
    from edgerestore.zoo import resolve

    spec = read_spec(resolve(args.model))
    d = spec.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"{printable(spec.path, None)}: valid edgerestore model")
    for key in ("name", "task", "scale", "color", "channels", "value_range", "inputs", "output",
                "noise_level_range", "fixed_size", "size_multiple", "tile_size", "tile_overlap", "profile",
                "precision", "size_bytes", "description"):
        if d.get(key) is not None:
            print(f"  {key:<18} {printable(str(d[key]))}")
    if spec.provenance:
        print("  provenance")
        for line in provenance_lines(spec.provenance, indent=4):
            print(line)
    return 0


def provenance_lines(value, indent: int) -> list[str]:
    """The provenance as an indented outline: one line per scalar or short list, nested
    objects one level deeper, every value made printable and cut (the full JSON is in
    ``--json``)."""
    from edgerestore.model_spec import printable

    lines = []
    pad = " " * indent
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f"{pad}{printable(str(key), 60)}:")
            lines.extend(provenance_lines(item, indent + 2))
        else:
            text = item if isinstance(item, str) else json.dumps(item)
            lines.append(f"{pad}{printable(str(key), 60)}: {printable(text, 160)}")
    return lines

COMMAND = Command(
    name="inspect",
    help="check a model file against the metadata contract and show what it says",
    add_arguments=add_arguments,
    run=run,
)
