"""Dependencies run one way: models and export never import training (training and the
exporter both build on models, and checkpoints live in edgerestore.models.checkpoint)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import edgerestore.models

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("edgerestore."))))
"""


def _modules() -> list[str]:
    models = [m.name for m in pkgutil.iter_modules(edgerestore.models.__path__, "edgerestore.models.")]
    return ["edgerestore.models", *models, "edgerestore.export", "edgerestore.cli.export"]


def test_models_and_export_do_not_import_training():
    names = _modules()
    assert {"edgerestore.models.ffdnet", "edgerestore.models.espcn", "edgerestore.models.checkpoint"} <= set(names)
    for name in names:
        proc = subprocess.run([sys.executable, "-c", SCRIPT, name], capture_output=True, text=True,
                              timeout=120, cwd=REPO)
        assert proc.returncode == 0, (name, proc.stderr)
        loaded = json.loads(proc.stdout.strip().splitlines()[-1])
        assert name in loaded
        assert not [m for m in loaded if m.startswith("edgerestore.training")], (name, loaded)
