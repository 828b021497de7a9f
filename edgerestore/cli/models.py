"""``edgerestore models``: the model zoo, one line per model."""

from __future__ import annotations

import argparse
import json
import sys

from edgerestore.cli import Command

NAME_CHARS = 40
DESCRIPTION_CHARS = 200  # a description is one line; the rest is cut with its length
FIELDS = ("name", "task", "scale", "path", "inputs", "precision", "size_bytes", "description")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print a JSON list of objects (name, task, scale, path, inputs, "
                        "precision, size_bytes, description, ...)")


def run(args: argparse.Namespace) -> int:
    from edgerestore.model_spec import printable
    from edgerestore.zoo import MODEL_PATH_ENV, scan

    specs, problems = scan()
    if args.json:
        # JSON escapes control characters itself; long texts are cut as in the table
        print(json.dumps([dict(s.to_dict(), description=printable(s.description, DESCRIPTION_CHARS))
                          for s in specs], indent=2))
    elif not specs:
        print("(no models found)")
    else:
        print(f"{'name':<18} {'task':<17} {'scale':>5} {'prec':<5} {'size':>8}  description")
        for s in specs:
            size = f"{s.size_bytes / 1e6:.2f}MB"
            print(f"{printable(s.name, NAME_CHARS):<18} {s.task:<17} {s.scale:>5} {s.precision:<5} "
                  f"{size:>8}  {printable(s.description, DESCRIPTION_CHARS)}")
    for p in problems:
        print(f"edgerestore models: error: damaged or invalid model file {printable(p.path, None)}: "
              f"{printable(p.message, 2 * DESCRIPTION_CHARS)}",
              file=sys.stderr)
    if problems:
        print(f"edgerestore models: {len(problems)} model file(s) could not be read; remove or "
              f"replace them (shipped models: reinstall edgerestore; your own: check "
              f"${MODEL_PATH_ENV})", file=sys.stderr)
        return 1
    return 0


COMMAND = Command(
    name="models",
    help="list the shipped model zoo and your own model folders, one line each",
    add_arguments=add_arguments,
    run=run,
)
