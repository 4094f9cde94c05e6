"""helpers/ has no import circle: each module can be read (and imported) after the ones it uses."""

import ast
from pathlib import Path

HELPERS = Path(__file__).resolve().parents[1] / "helpers"


def helpers_imports(path):
    """Names of the helpers modules that `path` imports anywhere (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [f"helpers.{node.module or alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "helpers" and len(parts) > 1 and (HELPERS / f"{parts[1]}.py").is_file():
                found.add(parts[1])
    found.discard(path.stem)  # `from helpers.data import main` inside data.py is not a circle
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


def test_find_cycle_finds_a_circle_and_accepts_a_chain():
    assert find_cycle({"data": {"celeba"}, "celeba": {"data"}}) == ["celeba", "data", "celeba"]
    assert find_cycle({"data": {"celeba", "imagefile"}, "celeba": {"imagefile"}}) is None


def test_helpers_have_no_import_circle():
    graph = {path.stem: helpers_imports(path) for path in HELPERS.glob("*.py")}
    assert graph["celeba"] >= {"imagefile"}, "the import parser missed celeba's imports"
    cycle = find_cycle(graph)
    assert cycle is None, f"import circle in helpers/: {' -> '.join(cycle)}"


def test_data_celeba_and_fastdata_read_image_files_through_one_module():
    for name in ("data", "celeba", "fastdata"):
        assert "imagefile" in helpers_imports(HELPERS / f"{name}.py"), name
