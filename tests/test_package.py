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


def _package_imports():
    """Yield (module file, node, inside a function) for every `from .x import ...` in kd_utils."""
    import ast

    for path in sorted((Path(kd.__file__).parent).glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nested = {id(node) for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for node in ast.walk(function) if node is not function}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                yield path.name, node, id(node) in nested


def test_no_private_name_crosses_a_module_boundary_and_no_lazy_import_inside_the_package():
    private = [f"{name}: from .{node.module} import {alias.name}" for name, node, _ in _package_imports()
               for alias in node.names if alias.name.startswith("_")]
    lazy = [f"{name}: from .{node.module} import ... inside a function" for name, node, inside in _package_imports()
            if inside]
    assert private == [], "make the name public in its module, or keep its use inside that module"
    assert lazy == [], "import at the top of the module: no kd_utils module imports another in a cycle"


PUBLIC_NAMESPACES = {"plots", "stats", "losses", "deploy", "lm", "lm_train"}
NOTEBOOKS = sorted((PACKAGE.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _notebook_uses() -> dict[str, dict[str, set[str]]]:
    """Return, per notebook number, the kd.<name> and kd.<namespace>.<name> its code cells use."""
    import json
    import re

    uses = {}
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
        names = set(re.findall(r"(?<![\w.])kd\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?", code))
        uses[path.name[:2]] = {"top": {a for a, _ in names}, "nested": {f"{a}.{b}" for a, b in names if b}}
    return uses


def test_the_public_surface_is_at_most_80_names_and_nothing_public_hides_outside_all():
    assert len(kd.__all__) <= 80, f"{len(kd.__all__)} public names"
    public = {name for name, value in vars(kd).items() if not name.startswith("_")
              and not isinstance(value, types.ModuleType) and name not in {"annotations", "inspect"}}
    assert public == set(kd.__all__), f"public but not in __all__: {sorted(public - set(kd.__all__))}"


def test_notebooks_use_only_public_names_and_public_namespaces():
    for notebook, use in _notebook_uses().items():
        unknown = {name for name in use["top"] if name not in kd.__all__ and name not in PUBLIC_NAMESPACES}
        assert not unknown, f"notebook {notebook} reaches kd.{', kd.'.join(sorted(unknown))}: not public"
        for dotted in use["nested"]:
            namespace, name = dotted.split(".")
            if namespace in PUBLIC_NAMESPACES:
                assert not name.startswith("_") and hasattr(getattr(kd, namespace), name), f"{notebook}: kd.{dotted}"


def test_every_public_name_is_used_by_a_notebook_and_listed_under_the_first_that_uses_it():
    """__all__ is grouped by notebook, as d2l tags each helper with the chapter that first uses it."""
    source = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    listing = source[source.index("__all__ = ["):]
    group_of, group = {}, None
    for line in listing.splitlines():
        if line.strip().startswith("# "):
            group = line.strip()[2:4]
        for name in ast.literal_eval("[" + line.strip().rstrip(",") + "]") if line.strip().startswith('"') else []:
            group_of[name] = group
    uses = _notebook_uses()
    first = {}
    for notebook in sorted(uses):
        for name in uses[notebook]["top"]:
            first.setdefault(name, notebook)
    for name in kd.__all__:
        assert name in first, f"kd.{name} is public but no notebook uses it: move it out of __all__"
        assert group_of[name] == first[name], f"kd.{name} is listed under {group_of[name]} but first used in {first[name]}"
