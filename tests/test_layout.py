"""The package's layout rules, checked on the source (docs/architecture.md explains them).

* Dependencies run one way: the graph of imports between the package's parts
  (``edgerestore.runtime``, ``edgerestore.repair``, ...) has no cycle, counting imports
  inside functions too, and the named edges that once went the wrong way stay absent.
* No module imports a private name (``_x``) of another part of the package, and
  benchmarks and tools import public names only.
* No module is over about 400 lines unless its docstring says why (a paragraph that
  starts with ``Why one module``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "edgerestore"
MAX_LINES = 420  # "about 400"
LONG_MODULE_REASON = "Why one module"

# Edges that must never exist (importer part -> imported part).
FORBIDDEN = [
    ("edgerestore.runtime", "edgerestore.repair"),
    ("edgerestore.models", "edgerestore.training"),
    ("edgerestore.kernels", "edgerestore.runtime"),
    ("edgerestore.backends", "edgerestore.runtime"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_package(name: str) -> bool:
    return (REPO.joinpath(*name.split(".")) / "__init__.py").exists()


def _resolve(importer: str, node: ast.ImportFrom) -> str | None:
    """Absolute module named by a ``from ... import`` (relative imports resolved)."""
    if node.level == 0:
        return node.module
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path):
    """``(module, name)`` pairs imported by the file; ``name`` None for ``import module``."""
    me = _module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(me, node)
            if module:
                for alias in node.names:
                    yield module, alias.name


def _part(module: str) -> str:
    """``edgerestore.runtime.sources.files`` -> ``edgerestore.runtime``."""
    return ".".join(module.split(".")[:2])


def _sources(*folders: str):
    for folder in folders:
        yield from sorted((REPO / folder).rglob("*.py"))


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in _sources("edgerestore"):
        me = _part(_module_name(path))
        for module, name in _imports(path):
            if not module.startswith("edgerestore"):
                continue
            target = module
            if module == "edgerestore" and name and ((PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").exists()):
                target = f"edgerestore.{name}"
            target = _part(target)
            if target not in (me, "edgerestore"):
                graph[me].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_dependencies_between_parts_run_one_way():
    graph = _package_graph()
    cycle = _cycle(graph)
    assert cycle is None, "import cycle between parts: " + " -> ".join(cycle)
    wrong = [f"{a} imports {b}" for a, b in FORBIDDEN if b in graph.get(a, ())]
    assert not wrong, wrong


def test_cycle_finder_can_fail():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _private_imports(path: Path, *, outside_package: bool) -> list[str]:
    """Private names or modules imported from another part of the package.

    A private module (``kernels._nlm_cpu``) may be imported within the package that
    holds it, and a private name only by its own module. Benchmarks and tools
    (``outside_package``) may use no private name or module at all.
    """
    me = None if outside_package else _module_name(path)
    bad = []
    for module, name in _imports(path):
        if not module.startswith("edgerestore"):
            continue
        dotted = module.split(".") + ([name] if name else [])
        for i, segment in enumerate(dotted):
            if segment.startswith("_") and not segment.startswith("__"):
                owner = ".".join(dotted[:i])  # the package or module the private name lives in
                if me is None or not (me == owner or me.startswith(owner + ".")):
                    bad.append(f"{path.relative_to(REPO)}: {'.'.join(dotted)}")
                break
    return bad


def test_no_private_name_crosses_a_package_boundary():
    bad = []
    for path in _sources("edgerestore"):
        bad += _private_imports(path, outside_package=False)
    for path in _sources("benchmarks", "tools"):
        bad += _private_imports(path, outside_package=True)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", list(_sources("edgerestore")), ids=lambda p: str(p.relative_to(REPO)))
def test_long_modules_say_why(path):
    lines = len(path.read_text().splitlines())
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert LONG_MODULE_REASON in doc, (
        f"{path.relative_to(REPO)} has {lines} lines (> {MAX_LINES}): split it by job, or say in its "
        f"docstring, in a paragraph starting '{LONG_MODULE_REASON}', why it stays one module")
