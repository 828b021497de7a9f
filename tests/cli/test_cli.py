"""The `edgerestore` command: help, info, models, inspect, and their errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgerestore.cli import commands, main
from tests import tiny_models as tm
from tests.cli.conftest import run_cli


def test_help_lists_every_subcommand_with_its_purpose(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    listed = commands()
    assert {c.name for c in listed} >= {"info", "models", "inspect"}
    for cmd in listed:
        assert cmd.name in out
        assert cmd.help.split()[0] in out


def test_console_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "edgerestore", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("edgerestore ")


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["frobnicate"])
    assert exit_.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_no_subcommand_prints_help_and_fails(capsys):
    code, out, err = run_cli(capsys)
    assert code == 2 and "usage: edgerestore" in err and out == ""


def test_info_json_reports_cpu_providers_and_fixes(capsys):
    code, out, err = run_cli(capsys, "info", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["cpu"]["cores_usable"] >= 1
    names = {p["name"]: p for p in info["pieces"]}
    assert {"onnxruntime", "numba-cuda", "tensorrt", "pycuda", "nvidia-gpu"} <= set(names)
    assert "CPUExecutionProvider" in names["onnxruntime"]["detail"]
    for piece in names.values():
        if not piece["available"] and piece["name"] != "nvidia-gpu":
            assert piece["fix"], piece  # every missing piece says what to install
    assert info["auto_backend"].startswith("auto picked")


def test_info_text_goes_to_stdout_and_logs_to_stderr(capsys, tmp_path):
    log_file = tmp_path / "log.txt"
    code, out, err = run_cli(capsys, "-vv", "info", "--log-file", str(log_file))
    assert code == 0 and "backends:" in out and "ort-cpu" in out
    assert "backend:" in err  # the INFO log line about the auto choice, on stderr
    assert "auto picked" in log_file.read_text()


def test_models_json_lists_user_models_with_required_fields(capsys, model_dir):
    tm.save(tm.affine_denoiser(), model_dir / "tiny.onnx",
            tm.spec_for(tm.affine_denoiser(), name="tiny-user"))
    code, out, err = run_cli(capsys, "models", "--json")
    assert code == 0, err
    entries = {m["name"]: m for m in json.loads(out)}
    m = entries["tiny-user"]
    for key in ("name", "task", "scale", "path", "inputs", "precision", "size_bytes", "description"):
        assert key in m
    assert m["task"] == "denoise" and m["size_bytes"] > 0
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "tiny-user" in out


def test_models_with_a_damaged_file_fails_and_names_it(capsys, model_dir):
    tm.save(tm.affine_denoiser(), model_dir / "good.onnx")
    (model_dir / "broken.onnx").write_bytes(b"\x08\x07 not really a model")
    code, out, err = run_cli(capsys, "models", "--json")
    assert code == 1
    assert "broken.onnx" in err and "damaged or invalid" in err
    assert any(m["name"] == "tiny" for m in json.loads(out))  # the good one still listed


def test_inspect_valid_and_invalid_models(capsys, tmp_path):
    good = tm.save(tm.affine_denoiser(), tmp_path / "good.onnx")
    code, out, _ = run_cli(capsys, "inspect", str(good), "--json")
    assert code == 0 and json.loads(out)["inputs"] == {"image": "image", "sigma_map": "noise_level"}
    bad = tm.save_raw(tm.affine_denoiser(), tmp_path / "bad.onnx", {"edgerestore_format": "1"})
    code, out, err = run_cli(capsys, "inspect", str(bad))
    assert code == 1 and "required metadata missing" in err and out == ""
    code, _, err = run_cli(capsys, "inspect", "no-such-model")
    assert code == 1 and "no model named 'no-such-model'" in err


def _imports(path):
    """``(module, name)`` of every ``from module import name`` in a source file (any depth)."""
    import ast

    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None


def test_command_modules_use_the_library_not_each_other():
    """A command module imports the shared CLI helpers of ``edgerestore.cli`` and the
    library, never another command module, and no private name of another module."""
    from pathlib import Path

    import edgerestore.cli

    folder = Path(edgerestore.cli.__file__).parent
    command_modules = {f"edgerestore.cli.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}
    assert "edgerestore.cli.upscale" in command_modules  # the scan sees the files
    problems = []
    for path in sorted(folder.glob("*.py")):
        for module, name in _imports(path):
            if module in command_modules or (module == "edgerestore.cli" and
                                             f"edgerestore.cli.{name}" in command_modules):
                problems.append(f"{path.name} imports command module {module}.{name or ''}")
            if name and name.startswith("_") and module.startswith("edgerestore") and name != "__version__":
                problems.append(f"{path.name} imports private {module}.{name}")
            if module.startswith("edgerestore") and any(p.startswith("_") for p in module.split(".")[1:]):
                problems.append(f"{path.name} imports private module {module}")
    assert problems == []
