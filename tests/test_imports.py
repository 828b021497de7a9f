"""Importing edgerestore must stay light: no heavy or optional package is imported eagerly.

Every submodule is imported in a fresh interpreter where torch, tensorrt and pycuda are
made unimportable (as on a CPU-only install without extras); afterwards none of the
heavy modules may be in sys.modules.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "tensorrt", "pycuda", "onnxruntime", "numba.cuda"]
BLOCKED = ["torch", "tensorrt", "pycuda"]

SCRIPT = r"""
import importlib, importlib.abc, json, pkgutil, sys

BLOCKED = set(json.loads(sys.argv[1]))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked for this test")
        return None

sys.meta_path.insert(0, Block())
import edgerestore
failed = {}
names = []
for mod in pkgutil.walk_packages(edgerestore.__path__, "edgerestore."):
    if mod.name == "edgerestore.__main__":
        continue
    names.append(mod.name)
    try:
        importlib.import_module(mod.name)
    except Exception as exc:
        failed[mod.name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"modules": names, "failed": failed, "loaded": sorted(sys.modules)}))
"""


def test_every_submodule_imports_without_extras_and_nothing_heavy_is_loaded():
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(BLOCKED)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["modules"]) >= 10
    assert result["failed"] == {}, result["failed"]
    loaded = set(result["loaded"])
    eager = [m for m in HEAVY if m in loaded]
    assert eager == [], f"imported at module import time: {eager}"


def test_cli_help_is_light():
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys; from edgerestore.cli import build_parser; build_parser(); "
         "print(' '.join(m for m in ('numba', 'onnx', 'cv2', 'onnxruntime', 'torch') if m in sys.modules))"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [], f"`edgerestore --help` imports {proc.stdout.split()}"
