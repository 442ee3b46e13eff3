"""The package's layers: each sub-package imports only from those below it, and no module
imports another that imports it back (in-function imports count too).

Bottom to top, in the order data flows: the shared error type, plumbing (infra), score
arithmetic (scoring), data, models, evaluation of a model (evaluate), one module per chapter
(studies), the project model (project), what a page shows (report), the benchmark (bench), and
executing the book (build)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bnnlib"
LAYERS = ["errors", "infra", "scoring", "data", "models", "evaluate", "studies", "project", "report", "bench", "build"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The bnnlib modules a file imports, wherever in the file (`from bnnlib.x import y` counts
    as bnnlib.x.y when that is a module, else bnnlib.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bnnlib")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bnnlib") and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
GRAPH = {name: imports_of(path) & set(MODULES) - {name} for name, path in MODULES.items()}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_lies_in_a_layer():
    assert [m for m in MODULES if m != "bnnlib" and layer_of(m) is None] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_from_its_layer_and_below(module):
    mine = layer_of(module)
    if mine is None:  # the package's face (bnnlib/__init__.py) imports nothing
        assert GRAPH[module] == set()
        return
    upward = sorted(m for m in GRAPH[module] if layer_of(m) is not None and layer_of(m) > mine)
    assert upward == [], f"{module} ({LAYERS[mine]}) imports from a higher layer: {upward}"


def test_no_import_cycle():
    """Depth-first search for a back edge; the message names one cycle."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state and (cycle := visit(module)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_contract_sees_a_violation(tmp_path):
    """The checks above are not vacuous: an upward import in a lower layer is found."""
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from bnnlib.build import runner\n    from bnnlib.infra.cache import Cache\n")
    found = imports_of(source)
    assert "bnnlib.build.runner" in found and "bnnlib.infra.cache" in found
    assert layer_of("bnnlib.build.runner") > layer_of("bnnlib.infra.cache")


def test_every_bnnlib_import_names_a_module_of_the_package():
    """An import of a module that is not in the package (a name left over from before a move)
    must fail here, not be found elsewhere on the path (an older install, an editable finder)."""
    missing = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "bnnlib":
                if node.module not in MODULES:
                    missing.append(f"{name}: from {node.module}")
                elif node.module == "bnnlib":
                    missing += [f"{name}: from bnnlib import {a.name}" for a in node.names
                                if f"bnnlib.{a.name}" not in MODULES and a.name != "__version__"]
            elif isinstance(node, ast.Import):
                missing += [f"{name}: import {a.name}" for a in node.names
                            if a.name.split(".")[0] == "bnnlib" and a.name not in MODULES]
    assert missing == []
