"""The package's shape: the import graph of its modules has no cycle (lazy imports included), __all__ is explicit."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import kd_utils as kd

PACKAGE = Path(kd.__file__).resolve().parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in {"__init__", "__main__"})


def _internal_imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):  # imports inside functions count too: a lazy import is still a dependency
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found & set(MODULES)


def test_the_import_graph_of_kd_utils_has_no_cycle():
    graph = {module: _internal_imports(module) for module in MODULES}
    visiting, done = set(), set()

    def visit(module, path):
        if module in visiting:
            raise AssertionError(f"import cycle: {' -> '.join(path + [module])}")
        if module in done:
            return
        visiting.add(module)
        for dependency in sorted(graph[module]):
            visit(dependency, path + [module])
        visiting.discard(module)
        done.add(module)

    for module in MODULES:
        visit(module, [])


def test_all_is_an_explicit_list_of_public_names_that_exist():
    assert isinstance(kd.__all__, list) and len(kd.__all__) == len(set(kd.__all__))
    for name in kd.__all__:
        assert hasattr(kd, name), name
        assert not name.startswith("_")
    assert not [name for name in kd.__all__ if isinstance(getattr(kd, name), types.ModuleType)], "modules are not public API"
