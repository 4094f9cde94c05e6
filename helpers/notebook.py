"""Read the solution notebook: the one source of truth for the learner's code.

The notebook marks its cells with tags (View > Cell Toolbar > Tags in Jupyter):

- ``setup``: imports, hyperparameters and cells that build objects the graded tests need
  (for example ``D, G = build_network(...)``); cheap, no data and no training.
- ``solution``: a cell whose learner code sits between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``.
- ``graded-test``: a cell that calls one ``tests.test_*`` function.

Cells without these tags (data download, training, plotting) are never run by the
release, grading or mutation tools. ``nbval-ignore-output`` and ``nbval-skip`` are
nbval's own tags and only matter to ``pytest --nbval``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solution" / "dlnd_face_generation.ipynb"

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
DEFINITION_TAGS = ("setup", "solution")
TEST_CALL = re.compile(r"tests\.(test_\w+)\(")


def read_notebook(path=NOTEBOOK):
    """Load a notebook as a plain dict, each cell's source joined into one string.

    Plain JSON rather than nbformat, so grading, mutation tests and benchmarks also run where
    only torch is installed (a GPU machine). The release tool writes notebooks with nbformat.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}.")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a Jupyter notebook ({err}).") from err
    for cell in cells:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return nb


def tags(cell):
    """The cell's tags as a tuple (empty when it has none)."""
    return tuple(cell.get("metadata", {}).get("tags", ()))


def code_cells(nb, *wanted):
    """Code cells carrying at least one of the `wanted` tags, in notebook order."""
    return [c for c in nb["cells"] if c["cell_type"] == "code" and set(tags(c)) & set(wanted)]


def strip_magics(source):
    """The cell as plain Python: IPython-only lines (``%magic``, ``!shell``) become blank lines,
    so line numbers in errors stay those of the cell."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def definition_source(nb):
    """Plain-Python source of the setup and solution cells, in notebook order."""
    return "\n\n".join(strip_magics(c["source"]) for c in code_cells(nb, *DEFINITION_TAGS))


def graded_tests(nb):
    """Names of the graded tests the notebook calls (``test_scale``, ...), in order."""
    names = []
    for cell in code_cells(nb, "graded-test"):
        names += [n for n in TEST_CALL.findall(cell["source"]) if n not in names]
    return names


def graded_test_calls(nb):
    """{test name: [argument names]} as the notebook's graded-test cells call them.

    For example {"test_optimizers": ["D", "G", "d_optimizer", "g_optimizer"], ...}.
    """
    import ast

    calls = {}
    for cell in code_cells(nb, "graded-test"):
        for node in ast.walk(ast.parse(strip_magics(cell["source"]))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "tests"):
                calls[node.func.attr] = [ast.unparse(arg) for arg in node.args]
    return calls


def load_solution(path=NOTEBOOK, source=None):
    """Execute the notebook's setup and solution cells and return their namespace.

    `source` replaces the definition source (the mutation suite passes an edited copy).
    The working directory must be the repository root so ``import problem_unittests``
    and ``import helpers`` resolve, as they do in Jupyter.
    """
    if source is None:
        source = definition_source(read_notebook(path))
    namespace = {"__name__": "__notebook__"}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace
