"""Helpers shared by the command tests."""

from __future__ import annotations

import pytest

from edgerestore.cli import main


def run_cli(capsys, *argv):
    """Run ``edgerestore ARGV`` in this process: ``(exit code, stdout, stderr)``."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    """An empty folder that ``$EDGERESTORE_MODEL_PATH`` points to (user models)."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("EDGERESTORE_MODEL_PATH", str(folder))
    return folder
