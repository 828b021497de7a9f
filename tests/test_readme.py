"""The README's two commands are the ones users and CI run."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks[:2] for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_readme_starts_with_the_main_job_and_the_tests():
    commands = _readme_commands()
    assert any("edgerestore" in c and "pip install" in c for c in commands[:1]), commands
    assert any("pytest" in c for c in commands), commands


def test_ci_runs_the_readme_test_command_word_for_word():
    test_cmd = next(c for c in _readme_commands() if "pytest" in c)
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_cmd in [line.strip() for line in ci]
