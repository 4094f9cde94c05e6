"""helpers/ has a typed public API: every module says what it exports (`__all__`), every public
function and method is annotated, and the package ships its `py.typed` marker.

Read from the source (ast), so the test needs neither torch nor an import of the kit. mypy
(`[tool.mypy]` in pyproject.toml, run by .ci/run) checks that the annotations are right; this test
checks that they are there.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "helpers"
# Every module, subpackages included. `__init__.py` and `__main__.py` are held to the same rule:
# the package's `__init__` exports KIT_DIR, and `__main__` holds the command table (COMMANDS,
# PROG, main) that `helpers/__init__.py` and the tests import.
MODULES = sorted(p for p in HELPERS.rglob("*.py") if "__pycache__" not in p.parts)
# Dunder methods whose parameters are part of what a caller writes: `Thing(...)`, `thing(...)`.
CALLED_DUNDERS = {"__init__", "__call__"}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _top_level(body: list[ast.stmt]):
    """The module-level statements, looking inside if/try/with/for blocks but not into functions
    or classes (a name bound there is not the module's)."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.For, ast.While, ast.With)):
            yield from _top_level(node.body + node.orelse if hasattr(node, "orelse") else node.body)
        elif isinstance(node, ast.Try):
            handlers = [s for h in node.handlers for s in h.body]
            yield from _top_level(node.body + handlers + node.orelse + node.finalbody)


def _bound_names(target: ast.expr):
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _bound_names(elt)
    elif isinstance(target, ast.Starred):
        yield from _bound_names(target.value)


def module_names(tree: ast.Module) -> set[str]:
    """The names a module binds at its top level."""
    names = set()
    for node in _top_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(_bound_names(target))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            names.update(_bound_names(node.target))
        elif isinstance(node, (ast.For, ast.With)):
            targets = [node.target] if isinstance(node, ast.For) else []
            targets += [item.optional_vars for item in getattr(node, "items", [])]
            for target in targets:
                if target is not None:
                    names.update(_bound_names(target))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
    return names


def declared_all(tree: ast.Module) -> list[str] | None:
    """The names in the module's `__all__` (a literal list or tuple of strings), or None."""
    found = None
    for node in _top_level(tree.body):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if not any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        assert isinstance(value, (ast.List, ast.Tuple)), "__all__ should be a literal list"
        names = [ast.literal_eval(elt) for elt in value.elts]
        found = (found or []) + names if isinstance(node, ast.AugAssign) else names
    return found


def _is_public(name: str) -> bool:
    return not name.startswith("_") or name in CALLED_DUNDERS


def _is_static(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in func.decorator_list)


def public_functions(tree: ast.Module):
    """(qualified name, node, is_method) for each public function and public class's method."""
    for node in _top_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_public(node.name):
            yield node.name, node, False
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_public(
                    item.name
                ):
                    yield f"{node.name}.{item.name}", item, not _is_static(item)


def missing_annotations(func: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> list:
    """The parameters (and 'return') of `func` that have no annotation; self/cls excepted."""
    args = func.args
    positional = args.posonlyargs + args.args
    if is_method and positional:
        positional = positional[1:]  # self or cls
    params = positional + args.kwonlyargs
    params += [a for a in (args.vararg, args.kwarg) if a is not None]
    missing = [a.arg for a in params if a.annotation is None]
    if func.returns is None:
        missing.append("return")
    return missing


def _is_public_module(path: Path) -> bool:
    parts = path.relative_to(HELPERS).with_suffix("").parts
    return all(not p.startswith("_") or p in ("__init__", "__main__") for p in parts)


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_module_declares_what_it_exports(path):
    tree = _tree(path)
    exported = declared_all(tree)
    assert exported is not None, f"{_rel(path)} has no __all__: list its public names"
    unknown = sorted(set(exported) - module_names(tree))
    assert not unknown, f"{_rel(path)}: __all__ names {unknown}, which the module does not define"
    twice = sorted({n for n in exported if exported.count(n) > 1})
    assert not twice, f"{_rel(path)}: __all__ lists {twice} more than once"


@pytest.mark.parametrize("path", [p for p in MODULES if _is_public_module(p)], ids=_rel)
def test_public_functions_are_annotated(path):
    gaps = [
        f"{name}({', '.join(missing)})"
        for name, func, is_method in public_functions(_tree(path))
        if (missing := missing_annotations(func, is_method))
    ]
    where = f"{_rel(path)}: public functions missing annotations (parameters, return)"
    assert not gaps, f"{where}: " + "; ".join(gaps)


def test_the_package_is_marked_as_typed():
    assert (HELPERS / "py.typed").is_file(), "helpers/py.typed is missing (PEP 561 marker)"


def test_pyproject_ships_the_typed_marker():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    if sys.version_info >= (3, 11):
        import tomllib

        package_data = tomllib.loads(text)["tool"]["setuptools"].get("package-data", {})
        shipped = package_data.get("helpers", [])
    else:  # no tomllib before 3.11: read the one line
        line = re.search(r"^package-data\s*=\s*\{[^}]*helpers\s*=\s*\[([^\]]*)\]", text, re.M)
        shipped = re.findall(r'"([^"]+)"', line.group(1)) if line else []
    assert "py.typed" in shipped, (
        "pyproject.toml should ship helpers/py.typed: "
        '[tool.setuptools] package-data = { helpers = ["py.typed"] }'
    )
