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


KERNELS_SCRIPT = r"""
import json, sys, types
import edgerestore.kernels
light = "numba" not in sys.modules
import edgerestore.kernels.bm3d_filter, edgerestore.kernels.nonlocal_means
from edgerestore.kernels import BM3DProfile, bm3d, estimate_sigma, nlm
print(json.dumps({
    "light": light,
    "submodules_light": "numba" not in sys.modules,
    "nlm": nlm is edgerestore.kernels.nonlocal_means.nlm,
    "bm3d": bm3d is edgerestore.kernels.bm3d_filter.bm3d,
    "attr": edgerestore.kernels.nlm is nlm and edgerestore.kernels.bm3d is bm3d,
    "profile": BM3DProfile is edgerestore.kernels.bm3d_filter.BM3DProfile,
    "modules": [n for n in ("nlm", "bm3d", "estimate_sigma")
                if isinstance(getattr(edgerestore.kernels, n), types.ModuleType)],
}))
"""


def test_kernel_functions_are_lazy_and_not_shadowed_by_their_modules():
    """``import edgerestore.kernels`` (and its wrapper modules) imports no numba, and
    ``from edgerestore.kernels import nlm`` is the function, also after the module that
    defines it was imported (a module named like the function would shadow it)."""
    proc = subprocess.run([sys.executable, "-c", KERNELS_SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"light": True, "submodules_light": True, "nlm": True, "bm3d": True,
                      "attr": True, "profile": True, "modules": []}


def test_kernels_has_no_attribute_beyond_its_exports():
    import pytest

    import edgerestore.kernels

    with pytest.raises(AttributeError, match="no attribute 'denoise'"):
        edgerestore.kernels.denoise  # noqa: B018
