"""`edgerestore models` and `inspect` on hostile metadata: one bad file is skipped with a
message, names and descriptions are printed safe (no escape sequences) and cut."""

from __future__ import annotations

import json


from tests import tiny_models as tm
from tests.cli.conftest import run_cli


def test_deeply_nested_provenance_is_skipped_with_a_message_not_a_recursion_error(capsys, model_dir):
    tm.save(tm.affine_denoiser(), model_dir / "good.onnx", tm.spec_for(tm.affine_denoiser(), name="good"))
    model = tm.affine_denoiser()
    tm.save(model, model_dir / "nested.onnx")
    meta = {p.key: p.value for p in model.metadata_props}
    meta["provenance"] = "{\"a\": " + "[" * 100_000 + "]" * 100_000 + "}"
    tm.save_raw(model, model_dir / "nested.onnx", meta)
    code, out, err = run_cli(capsys, "models")
    assert code == 1 and "good" in out  # the listing goes on
    assert "nested.onnx" in err and "nested too deeply" in err and "Traceback" not in err
    assert len(err) < 2000  # the 200 000 characters are not echoed


def test_escape_sequences_are_neutralised_and_long_descriptions_cut(capsys, model_dir):
    evil_name = "\x1b[2J\x1b]0;pwned\x07evil"
    long_text = "x" * 5_000_000  # stands for the 50 MB description; same code path
    tm.save(tm.affine_denoiser(), model_dir / "evil.onnx",
            tm.spec_for(tm.affine_denoiser(), name=evil_name, description="\x1b[31mred\x1b[0m " + long_text))
    code, out, err = run_cli(capsys, "models")
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "?[2J?]0;pwned?evil" in out and "?[31mred?[0m" in out
    evil_line = next(line for line in out.splitlines() if "pwned" in line)
    assert len(evil_line) < 400 and "(5000013 characters)" in evil_line
    code, out, _ = run_cli(capsys, "models", "--json")
    entry = next(m for m in json.loads(out) if m["path"].endswith("evil.onnx"))
    assert len(entry["description"]) < 300 and "\x1b" not in entry["description"]
    code, out, _ = run_cli(capsys, "inspect", model_dir / "evil.onnx")
    assert code == 0 and "\x1b" not in out and len(out) < 3000


def test_inspect_prints_the_provenance_as_an_outline(capsys, tmp_path):
    path = tm.save(tm.affine_denoiser(), tmp_path / "m.onnx", tm.spec_for(
        tm.affine_denoiser(), provenance={"recipe": {"epochs": 3, "lr": 0.001}, "data": "x" * 1000}))
    code, out, _ = run_cli(capsys, "inspect", path)
    assert code == 0
    lines = out.splitlines()
    i = lines.index("  provenance")
    assert lines[i + 1:i + 5] == ["    data: " + "x" * 160 + "... (1000 characters)", "    recipe:",
                                  "      epochs: 3", "      lr: 0.001"]
