"""helpers/ has no import circle, and its folders are its layers: each part imports only the parts
below it, so the folder tree is the architecture (README, Layout).

- the learner's runtime (``helpers/*.py``) and ``graded/`` never import ``instructor/``,
  ``sandboxed/`` or ``scale/``: the learner release ships without the first two;
- ``sandboxed/`` (the grader's code inside the sandbox) never imports ``instructor/``: the
  sandbox gets no copy of it.
"""

import ast
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parents[1] / "helpers"


def module_name(path):
    """'data', 'graded.failures', 'instructor' (a package's __init__) for a file in helpers/."""
    parts = list(path.relative_to(HELPERS).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules():
    return {module_name(p): p for p in HELPERS.rglob("*.py") if "__pycache__" not in p.parts}


def helpers_imports(path):
    """Names of the helpers modules that `path` imports anywhere (top level or inside functions),
    relative to helpers ('data', 'graded.failures')."""
    known = all_modules()
    package = module_name(path).rpartition(".")[0] if path.name != "__init__.py" else ""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = ".".join(["helpers", *filter(None, [package, node.module or ""])])
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] != "helpers":
                continue
            # the longest helpers module the name starts with: helpers.graded.failures.X -> that
            for end in range(len(parts), 1, -1):
                candidate = ".".join(parts[1:end])
                if candidate in known:
                    found.add(candidate)
                    break
    found.discard(module_name(path))  # `from helpers.data import main` inside data is no circle
    return found


def find_cycle(graph):
    """One import circle as a list of module names ['a', 'b', 'a'], or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, stack + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def layer(module):
    """The part of helpers/ a module belongs to: 'runtime' for the top-level modules."""
    head = module.split(".")[0]
    return head if head in ("graded", "sandboxed", "instructor", "scale") else "runtime"


# What each part may import, besides itself and the learner's runtime.
MAY_IMPORT = {
    "runtime": set(),
    "graded": set(),
    "scale": set(),
    "sandboxed": {"graded"},
    "instructor": {"graded", "sandboxed"},
}
# helpers/__main__.py names every command's module as a string and imports it on demand.


def test_find_cycle_finds_a_circle_and_accepts_a_chain():
    assert find_cycle({"data": {"celeba"}, "celeba": {"data"}}) == ["celeba", "data", "celeba"]
    assert find_cycle({"data": {"celeba", "imagefile"}, "celeba": {"imagefile"}}) is None


def test_imports_are_read_from_every_form_of_import():
    graph = {name: helpers_imports(path) for name, path in all_modules().items()}
    assert graph["celeba"] >= {"imagefile"}, "the import parser missed celeba's imports"
    assert "instructor.grade" in graph["instructor.classroom"], graph["instructor.classroom"]
    assert any(name.startswith("graded") for name in graph["instructor.grade"])


def test_helpers_have_no_import_circle():
    graph = {name: helpers_imports(path) for name, path in all_modules().items()}
    cycle = find_cycle(graph)
    assert cycle is None, f"import circle in helpers/: {' -> '.join(cycle)}"


@pytest.mark.parametrize("module", sorted(all_modules()))
def test_each_part_imports_only_the_parts_below_it(module):
    mine = layer(module)
    allowed = {mine, "runtime"} | MAY_IMPORT[mine]
    wrong = sorted(m for m in helpers_imports(all_modules()[module]) if layer(m) not in allowed)
    assert not wrong, f"helpers.{module} ({mine}) imports {wrong}: a layer above it"


def test_the_layer_rule_catches_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "helpers"
    (fake / "instructor").mkdir(parents=True)
    (fake / "instructor" / "grade.py").write_text("")
    (fake / "data.py").write_text("def f():\n    from helpers.instructor import grade\n")
    monkeypatch.setitem(globals(), "HELPERS", fake)  # the functions read the module's HELPERS
    assert helpers_imports(fake / "data.py") == {"instructor.grade"}
    assert layer("instructor.grade") not in {"runtime"} | MAY_IMPORT["runtime"]


def test_data_celeba_and_fastdata_read_image_files_through_one_module():
    for name in ("data", "celeba", "fastdata"):
        assert "imagefile" in helpers_imports(HELPERS / f"{name}.py"), name
