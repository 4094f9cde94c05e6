"""What the grader runs (instructor tool): the submission read, its definition cells picked, and
the kit's graded tests.

- From the submission, only its definition cells: code cells tagged ``setup`` or ``solution``.
  When a submission has lost its tags (some editors drop cell metadata), the cells are chosen by
  what they do: import cells, and cells that define or assign the names the graded tests need
  (the original course's notebooks have no tags and call ``tests.test_discriminator(...)`` in
  the cell that defines the class: such calls are dropped, the definitions kept). In both cases
  a cell that defines a name the chosen cells use is added too, but never a cell that loads
  data, trains or plots (one that calls ``train(...)``, ``get_dataloader(...)``,
  ``helpers.plotting``, ``plt``, the graded tests, ...).
- Which graded tests, and with which arguments, comes from the kit's own solution notebook
  (its ``graded-test`` cells), and the tests are the kit's own tests module (TESTS_MODULES):
  nothing in the submission can change them.

Everything here reads code without running it: the trusted side never runs the learner's code.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import symtable
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.notebook import (
    DEFINITION_TAGS,
    NOTEBOOK,
    PART2_NOTEBOOK,
    graded_test_calls,
    read_notebook,
    strip_magics,
    tags,
)
from helpers.sandboxed.job import Cell, GradedTest

__all__ = [
    "ANALYSIS_SECONDS",
    "MAX_CELL",
    "MAX_CODE",
    "MAX_NOTEBOOK",
    "TESTS_MODULES",
    "WORK_CALLS",
    "WORK_PREFIXES",
    "Kit",
    "analyse_cell",
    "definition_cells",
    "graded_test_aliases",
    "kit_notebook_for",
    "kit_tests",
    "leave_out_skipped_reads",
    "original_format",
    "original_train_note",
    "read_kit",
    "read_submission",
]

# Each kit notebook and the graded tests' module it imports as ``tests``: test_* functions, and
# VERDICTS = {name: (observe, judge)} for those the grader judges in its own process
# (helpers.graded.verdicts).
TESTS_MODULES = {NOTEBOOK: "problem_unittests", PART2_NOTEBOOK: "part2_unittests"}
# A cell that calls one of these at its top level loads data, trains or plots: never graded.
WORK_CALLS = {
    "train",
    "get_dataloader",
    "find_data_dir",
    "prepare_celeba",
    "ImageFolder",
    "DataLoader",
    "iter",
    "next",
    "save",
    "savefig",
    "show",
    "imshow",
    "plot",
    "subplots",
    "figure",
    "show_batch",
    "view_samples",
    "view_progress",
    "plot_losses",
}
WORK_PREFIXES = (
    "tests.",
    "plt.",
    "matplotlib.",
    "helpers.plotting.",
    "helpers.data.",
    "helpers.celeba.",
    "helpers.faces.",
    "helpers.fastdata.",
    "helpers.metrics.",
)
# What reading a hostile cell may raise in the grader (null bytes, the parser's stack overflowing).
UNPARSABLE = (SyntaxError, ValueError, MemoryError, RecursionError)
MAX_NOTEBOOK = 50 * 1024 * 1024  # larger is outputs, not code
# Code the grader reads (parses, analyses) per submission: the solution's longest cell is about
# 4 KB and all its code about 17 KB. Reading costs time and memory in proportion (a 10 MB cell
# took minutes and gigabytes; 128 KB of small defs takes about 3 s), so more is refused before
# any of it is parsed, and the reading stops at a time budget.
MAX_CELL = 128 * 1024  # characters of one code cell
MAX_CODE = 512 * 1024  # characters of all code cells together
ANALYSIS_SECONDS = 30.0  # the time budget for reading one submission's cells
# Functions whose signature the grader checks before their test runs: one clear message beats
# the TypeError the call would raise. The original course's train(D, G, n_epochs, print_every=50)
# passes: test_train runs it with the globals it reads (original_train_note).
SIGNATURE_CHECKED = ("train",)


# ---------------------------------------------------------------- the submission


def read_submission(submission: Path | str) -> dict[str, Any]:
    """The submission as a notebook dict; ValueError or FileNotFoundError with a clear one-line
    reason when it is not a notebook the grader can read: not a file, over MAX_NOTEBOOK, not
    UTF-8 JSON, nested too deep, not nbformat 4, or a cell whose type, source, metadata or tags
    are not what nbformat says (cells a list of objects, sources text, tags a list of strings),
    or code over MAX_CELL or MAX_CODE characters."""
    path = Path(submission)
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}.")
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK:
            raise ValueError(
                f"{path} is {size / 1e6:.0f} MB; the grader reads notebooks up to "
                f"{MAX_NOTEBOOK / 1e6:.0f} MB. Clear its outputs (Cell > All Output > Clear) and "
                "save it."
            )
        data = path.read_bytes()
    except OSError as err:
        raise ValueError(f"{path} cannot be read ({type(err).__name__}).") from None
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(
            f"{path} is not a Jupyter notebook: it is not valid JSON ({err})."
        ) from None
    except RecursionError:
        raise ValueError(
            f"{path} is not a Jupyter notebook: its JSON is nested too deep to read."
        ) from None
    if not isinstance(nb, dict):
        raise ValueError(f"{path} is not a Jupyter notebook: its JSON is not an object.")
    if nb.get("nbformat") != 4:
        shown = nb.get("nbformat")
        raise ValueError(
            f"{path} is a version "
            f"{shown if isinstance(shown, int) and not isinstance(shown, bool) else '(none)'} "
            "notebook; the grader reads version 4 (open and save it in Jupyter 4 or later, or "
            "run `jupyter nbconvert --to notebook --nbformat 4`)."
        )
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise ValueError(
            f"{path} is not a Jupyter notebook: 'cells' should be a list, got "
            f"{type(cells).__name__}."
        )
    code = 0
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise ValueError(f"{path}: cell {number} is not a notebook cell (no cell_type).")
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(part, str) for part in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise ValueError(
                f"{path}: the source of cell {number} is not text (got {type(source).__name__})."
            )
        metadata = cell.get("metadata", {})
        if not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("tags", []), list)
            and all(isinstance(tag, str) for tag in metadata.get("tags", []))
        ):
            raise ValueError(
                f"{path}: the metadata of cell {number} is malformed (tags should be a list of "
                "strings)."
            )
        if cell["cell_type"] == "code":
            if len(source) > MAX_CELL:
                raise ValueError(
                    f"{path}: code cell {number} is {len(source)} characters long; the grader "
                    f"reads code cells of up to {MAX_CELL} characters."
                )
            code += len(source)
            if code > MAX_CODE:
                raise ValueError(
                    f"{path}: its code cells hold more than the {MAX_CODE} characters of code "
                    "the grader reads."
                )
        cell["source"] = source
    return nb


def _import_statements(nb: dict[str, Any], word: str) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of `nb`'s code cells whose source mentions `word` (the cheap test
    first: a cell is parsed only when it can hold such an import)."""
    for cell in nb["cells"]:
        source = cell.get("source", "")
        if cell.get("cell_type") != "code" or word not in source:
            continue
        try:
            tree = ast.parse(strip_magics(source))
        except UNPARSABLE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node


def _tests_modules_imported(nb: dict[str, Any]) -> dict[str, set[str]]:
    """{tests module: the names code cells of `nb` import it as}, for the kit's tests modules."""
    imported: dict[str, set[str]] = {}
    for node in _import_statements(nb, "_unittests"):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in TESTS_MODULES.values():
                    imported.setdefault(alias.name, set()).add(alias.asname or alias.name)
    return imported


def kit_notebook_for(nb: dict[str, Any]) -> Path:
    """The kit notebook whose graded tests grade submission `nb`: part 2's when one of its code
    cells imports part 2's tests module (part 2's setup cell does), else part 1's."""
    if TESTS_MODULES[PART2_NOTEBOOK] in _tests_modules_imported(nb):
        return PART2_NOTEBOOK
    return NOTEBOOK


def graded_test_aliases(nb: dict[str, Any]) -> set[str]:
    """Names the notebook imports the kit's tests modules as (``tests`` in the kit and the
    original course)."""
    return {"tests"}.union(*_tests_modules_imported(nb).values())


# ---------------------------------------------------------------- the kit


@dataclass
class Kit:
    """What the kit's solution notebook says about grading: its tests, in order, and the
    modules the learner side's fork server imports once (the tests module, those the setup
    cells import)."""

    notebook: Path
    tests: list[GradedTest]
    preload: list[str]


def read_kit(kit_notebook: Path | str = NOTEBOOK) -> Kit:
    """Read the kit's trusted notebook once: its graded tests and what to preload."""
    nb = read_notebook(kit_notebook)
    module = TESTS_MODULES.get(Path(kit_notebook).resolve(), TESTS_MODULES[NOTEBOOK])
    return Kit(Path(kit_notebook), _graded_tests(nb, module), _preload(nb, module))


def kit_tests(kit_notebook: Path | str = NOTEBOOK) -> list[GradedTest]:
    """The graded tests, in order, from the kit's trusted notebook."""
    return read_kit(kit_notebook).tests


def _graded_tests(nb: dict[str, Any], module: str) -> list[GradedTest]:
    """The graded tests of kit notebook `nb` (its ``graded-test`` cells), from tests `module`."""
    signatures = {}
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code" and "solution" in tags(cell):
            for node in ast.parse(strip_magics(cell["source"])).body:
                if isinstance(node, ast.FunctionDef) and node.name in SIGNATURE_CHECKED:
                    signatures[node.name] = f"{node.name}({ast.unparse(node.args)})"
    found = []
    for name, args in graded_test_calls(nb).items():
        needs: list[str] = []
        for arg in args:
            needs += [
                n.id
                for n in ast.walk(ast.parse(arg, mode="eval"))
                if isinstance(n, ast.Name) and n.id not in needs
            ]
        signature = signatures.get(args[0], "") if len(args) == 1 else ""
        found.append(GradedTest(name, args, module, needs, signature))
    return found


def _preload(nb: dict[str, Any], module: str) -> list[str]:
    """Modules the fork server imports once: the tests module, the test process's own, and those
    the setup cells of kit notebook `nb` import."""
    modules = [module, "helpers.sandboxed.tests_process"]
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code" and "setup" in tags(cell):
            try:
                tree = ast.parse(strip_magics(cell["source"]))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules += [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.append(node.module)
    return list(dict.fromkeys(modules))


# ---------------------------------------------------------------- the definition cells


def _callee(node: ast.Call) -> str:
    """Dotted name of a call's function ('helpers.plotting.show_batch'), or '' when it has none."""
    parts, func = [], node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _global_reads(table: symtable.SymbolTable) -> set[str]:
    names = set()
    for sym in table.get_symbols():
        if sym.is_referenced() and (table.get_type() == "module" or sym.is_global()):
            names.add(sym.get_name())
    for child in table.get_children():
        names |= _global_reads(child)
    return names


def _without_test_calls(source: str, tree: ast.Module, aliases: set[str]) -> tuple[str, int]:
    """`source` with each top-level statement that calls ``<alias>.*`` (a graded test) replaced by
    ``pass`` (an assignment's value by ``None``) and blank lines, so every other line keeps its
    number; and how many were dropped."""
    lines = source.encode("utf-8").split(b"\n")
    dropped = 0
    for stmt in reversed(tree.body):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        calls = [_callee(n) for n in _top_level_nodes(stmt) if isinstance(n, ast.Call)]
        if not any(c.split(".")[0] in aliases and "." in c for c in calls):
            continue
        span: ast.stmt | ast.expr = stmt
        filler = b"pass"
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Call):
            span, filler = stmt.value, b"None"  # `result = tests.test_x(X)` keeps `result` bound
        # ast offsets are UTF-8 bytes
        first, last = span.lineno - 1, (span.end_lineno or span.lineno) - 1
        head, tail = lines[first][: span.col_offset], lines[last][span.end_col_offset :]
        # What followed it on its last line moves up beside the filler; blank lines keep the count.
        lines[first : last + 1] = [head + filler + tail] + [b""] * (last - first)
        dropped += 1
    return b"\n".join(lines).decode("utf-8"), dropped


def _top_level_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """`node` and the nodes below it, not entering function, class or lambda bodies."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            yield from _top_level_nodes(child)


def analyse_cell(cell: Cell, aliases: Iterable[str] = ("tests",)) -> dict[str, Any]:
    """What a cell does, read without running it: dict with ``binds`` and ``reads`` (sets of names),
    ``imports_only``, ``work`` (it loads data, trains or plots at its top level) and ``run`` (the
    source to execute: its graded-test calls dropped; `aliases` are the tests module's names)."""
    source = strip_magics(cell.source)
    try:
        tree = ast.parse(source)
        run, dropped = _without_test_calls(source, tree, set(aliases))
        if dropped:
            tree = ast.parse(run)
        table = symtable.symtable(run, f"<cell {cell.number}>", "exec")
    except UNPARSABLE:
        # Unreadable: guess the names from `def`, `class` and `name = ...` lines, so a test can
        # still blame this cell for a name it was meant to define.
        binds = set()
        for match in re.finditer(
            r"^(?:async\s+def|def|class)\s+(\w+)|^(\w+(?:\s*,\s*\w+)*)\s*=(?!=)",
            source,
            re.MULTILINE,
        ):
            binds |= {n.strip() for n in (match.group(1) or match.group(2)).split(",")}
        return {"binds": binds, "reads": set(), "imports_only": False, "work": False, "run": source}
    binds = {
        s.get_name()
        for s in table.get_symbols()
        if s.is_assigned() or s.is_imported() or s.is_namespace()
    }
    calls = [_callee(n) for n in _top_level_nodes(tree) if isinstance(n, ast.Call)]
    work = any(
        c.split(".")[-1] in WORK_CALLS or (c + ".").startswith(WORK_PREFIXES) for c in calls if c
    )
    body = [s for s in tree.body if not isinstance(s, ast.Pass)]
    return {
        "binds": binds,
        "reads": _global_reads(table),
        "imports_only": bool(body)
        and all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in body),
        "work": work,
        "run": run,
    }


def definition_cells(nb: dict[str, Any], needs: Iterable[str]) -> tuple[list[Cell], bool]:
    """The submission's cells to run before the tests, in notebook order; whether tags chose them.

    `nb` is a notebook from read_submission; `needs` are the names the graded tests take.
    Returns (list of Cell, used_tags). See the module docstring for the rules. Raises ValueError
    when reading the cells takes over ANALYSIS_SECONDS.
    """
    code = [(i + 1, c) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"]
    cells = [Cell(number, c.get("source", "")) for number, c in code]
    tagged = {number for number, c in code if set(tags(c)) & set(DEFINITION_TAGS)}
    aliases = graded_test_aliases(nb)
    info: dict[int, dict[str, Any]] = {}
    started = time.monotonic()
    for c in cells:
        if time.monotonic() - started > ANALYSIS_SECONDS:
            raise ValueError(
                f"Reading the notebook's code cells took over {ANALYSIS_SECONDS:g} s (stopped "
                f"at cell {c.number}); the grader refuses it. Remove the code no test needs."
            )
        info[c.number] = analyse_cell(c, aliases)
    for c in cells:
        c.run, c.binds = info[c.number]["run"], sorted(info[c.number]["binds"])
    if tagged:
        chosen = set(tagged)
    else:
        chosen = {
            n
            for n, i in info.items()
            if i["imports_only"] or (i["binds"] & set(needs) and not i["work"])
        }
    # Add cells that define what the chosen cells (or the tests) use and nobody chosen defines.
    while True:
        bound = set().union(*(info[n]["binds"] for n in chosen)) if chosen else set()
        read = set().union(*(info[n]["reads"] for n in chosen)) if chosen else set()
        wanted = (read | set(needs)) - bound - set(dir(builtins))
        extra = {
            n for n, i in info.items() if n not in chosen and not i["work"] and i["binds"] & wanted
        }
        if not extra:
            break
        chosen |= extra
    return [c for c in cells if c.number in chosen], bool(tagged)


def original_format(nb: dict[str, Any], used_tags: bool) -> bool:
    """Whether submission `nb` is in the original course's format: no cell tags (`used_tags`,
    from definition_cells) and no code cell that imports the kit's ``helpers`` (the kit's setup
    cell does, so a kit notebook whose tags an editor dropped keeps the kit's spec). The judges
    then accept the choices the original course left open (docs/testing.md)."""
    if used_tags:
        return False
    for node in _import_statements(nb, "helpers"):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            names = [node.module or ""]
        if any(n == "helpers" or n.startswith("helpers.") for n in names):
            return False
    return True


def original_train_note(cells: Iterable[Cell]) -> list[str]:
    """The report's note, once, when the chosen `cells` define the original course's
    ``train(D, G, n_epochs, print_every=50)``, which test_train runs with the globals the
    original notebook gives it; else no note."""
    from helpers.graded.training import ORIGINAL_GLOBALS, ORIGINAL_PARAMETERS

    for cell in cells:
        try:
            tree = ast.parse(cell.run or strip_magics(cell.source))
        except UNPARSABLE:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "train":
                names = tuple(a.arg for a in node.args.posonlyargs + node.args.args)
                if names[: len(ORIGINAL_PARAMETERS)] == ORIGINAL_PARAMETERS:
                    try:  # a default of 900 nested additions exhausts unparse's recursion
                        shown = ast.unparse(node.args)
                    except (RecursionError, ValueError):
                        shown = ""
                    if not shown or len(shown) > 200:
                        shown = ", ".join(names)
                    return [
                        f"`train` has the original course's signature train("
                        f"{shown}): test_train ran it for 2 epochs with "
                        f"print_every=1 and the globals the original notebook gives it "
                        f"({ORIGINAL_GLOBALS}), and judged each of its D and G steps."
                    ]
    return []


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)


def _statement_names(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """(names `stmt` reads, names it binds) at its top level, not inside function bodies."""
    reads: set[str] = set()
    binds: set[str] = set()
    for node in _top_level_nodes(stmt):
        if isinstance(node, ast.Name):
            (reads if isinstance(node.ctx, ast.Load) else binds).add(node.id)
    return reads, binds


def leave_out_skipped_reads(
    nb: dict[str, Any], cells: list[Cell], needs: Iterable[str]
) -> list[str]:
    """Leave out of the chosen `cells` the top-level statements that read a name only skipped
    cells define; return a note per cell so edited (none when nothing was left out).

    The original course checks scale with ``img = images[0]``, where ``images`` comes from a
    plotting cell the grader does not run: in Jupyter the cell runs, in the grader it would stop
    at that line, before the definitions below it. So such a statement is replaced by ``pass``
    (line numbers kept), and so is every later statement of the cell that reads what a left-out
    one binds; definitions (``def``, ``class``, imports) always stay. A statement that binds a
    name the graded tests take (`needs`) stays too, so its failure still says why that name is
    missing. Each cell's ``run`` is edited in place.
    """
    chosen = {c.number for c in cells}
    aliases = graded_test_aliases(nb)
    skipped: dict[str, int] = {}  # name -> the first skipped cell that binds it
    for number, cell in enumerate(nb["cells"], start=1):
        if cell.get("cell_type") == "code" and number not in chosen:
            for name in analyse_cell(Cell(number, cell.get("source", "")), aliases)["binds"]:
                skipped.setdefault(name, number)
    bound = set().union(*(c.binds for c in cells)) if cells else set()
    only_skipped = set(skipped) - bound - set(dir(builtins))
    keep = set(needs)
    notes = []
    for cell in cells:
        source = cell.run or strip_magics(cell.source)
        try:
            tree = ast.parse(source)
        except UNPARSABLE:
            continue
        unknown, left, read = set(only_skipped), [], set()
        for stmt in tree.body:
            if isinstance(stmt, _DEFINITIONS):
                continue
            reads, binds = _statement_names(stmt)
            if reads & unknown and not binds & keep:
                left.append(stmt)
                read |= reads & only_skipped
                unknown |= binds
        if not left:
            continue
        lines = source.encode("utf-8").split(b"\n")
        for stmt in reversed(left):  # ast offsets are UTF-8 bytes
            first, last = stmt.lineno - 1, (stmt.end_lineno or stmt.lineno) - 1
            head = lines[first][: stmt.col_offset]
            tail = lines[last][stmt.end_col_offset :]
            lines[first : last + 1] = [head + b"pass" + tail] + [b""] * (last - first)
        cell.run = b"\n".join(lines).decode("utf-8")
        where = ", ".join(f"`{n}` (cell {skipped[n]})" for n in sorted(read))
        numbers = ", ".join(str(s.lineno) for s in left)
        notes.append(
            f"Cell {cell.number}: line(s) {numbers} were not run, and its definitions were kept: "
            f"they read {where}, which only a cell the grader does not run defines (it loads "
            "data, trains or plots). In Jupyter that cell ran first."
        )
    return notes
