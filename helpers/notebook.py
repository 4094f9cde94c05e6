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

Running cells, for every tool: ``run_cells`` executes code cells in order, past errors, as a
learner who runs each cell does, and records each failure with its cell number and line;
``set_notebook_env`` sets the environment the notebook's hyperparameters cell reads.
"""

from __future__ import annotations

import json
import linecache
import os
import re
import traceback
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BEGIN",
    "CELL_FILE",
    "DEFINITION_TAGS",
    "END",
    "NOTEBOOK",
    "PART2_NOTEBOOK",
    "ROOT",
    "TEST_CALL",
    "CellError",
    "code_cells",
    "graded_test_calls",
    "graded_tests",
    "headings",
    "load_solution",
    "numbered_cells",
    "read_notebook",
    "run_cells",
    "section_names",
    "set_notebook_env",
    "strip_magics",
    "tags",
]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solution" / "dlnd_face_generation.ipynb"
# Part 2 (optional): the paper's 64x64 DCGAN, WGAN-GP and the latent space; tests part2_unittests.
PART2_NOTEBOOK = ROOT / "solution" / "part2_dcgan64_wgan.ipynb"

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
DEFINITION_TAGS = ("setup", "solution")
TEST_CALL = re.compile(r"tests\.(test_\w+)\(")


def read_notebook(path: str | Path = NOTEBOOK) -> dict[str, Any]:
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


def tags(cell: dict[str, Any]) -> tuple[str, ...]:
    """The cell's tags as a tuple (empty when it has none)."""
    return tuple(cell.get("metadata", {}).get("tags", ()))


def headings(markdown: str) -> list[str]:
    """The headings of a markdown cell's source, without their #s: ["5. The discriminator"]."""
    return [line.lstrip("#").strip() for line in markdown.splitlines() if re.match(r"#+\s", line)]


def section_names(nb: dict[str, Any]) -> set[str]:
    """Every name a notebook section goes by: each heading as written ("5. The discriminator")
    and without its number ("The discriminator"), as module docstrings cite them."""
    names = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for title in headings(cell["source"]):
                names |= {title, re.sub(r"^\d+\.\s+", "", title)}
    return names


def code_cells(nb: dict[str, Any], *wanted: str) -> list[dict[str, Any]]:
    """Code cells carrying at least one of the `wanted` tags, in notebook order."""
    return [c for c in nb["cells"] if c["cell_type"] == "code" and set(tags(c)) & set(wanted)]


def strip_magics(source: str) -> str:
    """The cell as plain Python: IPython-only lines (``%magic``, ``!shell``) become blank lines,
    so line numbers in errors stay those of the cell."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")
    )


def graded_tests(nb: dict[str, Any]) -> list[str]:
    """Names of the graded tests the notebook calls (``test_scale``, ...), in order."""
    names: list[str] = []
    for cell in code_cells(nb, "graded-test"):
        names += [n for n in TEST_CALL.findall(cell["source"]) if n not in names]
    return names


def graded_test_calls(nb: dict[str, Any]) -> dict[str, list[str]]:
    """{test name: [argument names]} as the notebook's graded-test cells call them.

    For example {"test_optimizers": ["D", "G", "d_optimizer", "g_optimizer"], ...}.
    """
    import ast

    calls: dict[str, list[str]] = {}
    for cell in code_cells(nb, "graded-test"):
        for node in ast.walk(ast.parse(strip_magics(cell["source"]))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "tests"
            ):
                calls[node.func.attr] = [ast.unparse(arg) for arg in node.args]
    return calls


def numbered_cells(nb: dict[str, Any], *wanted: str) -> list[tuple[int, str]]:
    """[(number, source)] of the code cells carrying one of the `wanted` tags (all code cells
    when none is given). A cell's number is its position in the notebook, from 1, markdown
    cells included: the number ``run_cells`` reports."""
    return [
        (number, cell["source"])
        for number, cell in enumerate(nb["cells"], 1)
        if cell["cell_type"] == "code" and (not wanted or set(tags(cell)) & set(wanted))
    ]


@dataclass
class CellError:
    """A cell that raised, as ``run_cells`` records it."""

    cell: int  # the cell's number (see numbered_cells)
    error: str  # the exception's class name: "NameError"
    message: str  # str() of the exception, in full
    line: int | None  # the line of the cell that was running (None when not known)
    origin: tuple[int, int] | None  # (cell, line) deepest in another cell, when it came from there
    exception: BaseException

    def __str__(self) -> str:
        at = f", line {self.line}" if self.line else ""
        came = f" (from cell {self.origin[0]}, line {self.origin[1]})" if self.origin else ""
        return f"cell {self.cell}{at}{came}: {self.error}: {self.message}".rstrip(": ")


CELL_FILE = re.compile(r"<cell (\d+)>")


def _cell_error(number: int, err: BaseException) -> CellError:
    frames = [
        (int(m.group(1)), line)
        for frame, line in traceback.walk_tb(err.__traceback__)
        if (m := CELL_FILE.fullmatch(frame.f_code.co_filename))
    ]
    if isinstance(err, SyntaxError) and err.filename == f"<cell {number}>":
        line, origin = err.lineno, None
    else:
        line = next((ln for n, ln in frames if n == number), None)  # the statement the cell ran
        origin = frames[-1] if frames and frames[-1][0] != number else None
    message = "exit() or sys.exit() was called" if isinstance(err, SystemExit) else str(err)
    return CellError(number, type(err).__name__, message, line, origin, err)


def run_cells(
    cells: Iterable[tuple[int, str]],
    namespace: dict[str, Any] | None = None,
    on_cell: Callable[[int], None] | None = None,
) -> list[CellError]:
    """Execute `cells`, (number, source) pairs, in order in one `namespace`, past failures.

    As in Jupyter, a cell that raises leaves the names it did not reach undefined and the next
    cell runs. IPython-only lines are blanked (strip_magics), each cell is compiled as
    ``<cell N>`` with its source registered in linecache, so tracebacks show the learner's own
    lines. SystemExit fails its cell only; KeyboardInterrupt stops everything. `on_cell(number)`
    is called before each cell. Output is not captured (use contextlib.redirect_stdout).
    Returns the failures, in order. `namespace` defaults to a fresh one named ``__notebook__``.
    """
    namespace = {"__name__": "__notebook__"} if namespace is None else namespace
    errors = []
    for number, source in cells:
        if on_cell:
            on_cell(number)
        filename = f"<cell {number}>"
        source = strip_magics(source)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            exec(compile(source, filename, "exec"), namespace)
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # SystemExit too: a learner's exit() fails its cell only
            errors.append(_cell_error(number, err))
    return errors


def set_notebook_env(
    out_dir: str | Path,
    quick: bool,
    headless: bool = False,
    environ: MutableMapping[str, str] | None = None,
) -> MutableMapping[str, str]:
    """Set what the notebook's hyperparameters cell reads: ``DCGAN_OUT=out_dir`` (absolute) and
    ``DCGAN_QUICK=1`` or unset. `headless` also sets ``MPLBACKEND=Agg`` (figures only saved).

    `environ` defaults to ``os.environ``, which kernels and child processes inherit; returns it.
    """
    environ = os.environ if environ is None else environ
    environ["DCGAN_OUT"] = str(Path(out_dir).resolve())
    if quick:
        environ["DCGAN_QUICK"] = "1"
    else:
        environ.pop("DCGAN_QUICK", None)
    if headless:
        environ["MPLBACKEND"] = "Agg"
    return environ


def load_solution(path: str | Path = NOTEBOOK) -> dict[str, Any]:
    """Run the notebook's setup and solution cells (run_cells) and return their namespace.

    Raises RuntimeError naming the cell when one fails. The working directory must be the
    repository root so ``import problem_unittests`` and ``import helpers`` resolve, as they do
    in Jupyter.
    """
    namespace: dict[str, Any] = {"__name__": "__notebook__"}
    errors = run_cells(numbered_cells(read_notebook(path), *DEFINITION_TAGS), namespace)
    if errors:
        raise RuntimeError(f"{path}: {errors[0]}") from errors[0].exception
    return namespace
