"""Grade a learner's notebook with the kit's graded tests (instructor tool).

    python -m helpers grade SUBMISSION.ipynb [--json report.json] [--timeout 60] [--workers 2]
                                             [--deadline SECONDS] [--no-sandbox]

What runs:

- From the submission, only its definition cells: code cells tagged ``setup`` or ``solution``.
  When a submission has lost its tags (some editors drop cell metadata), the cells are chosen by
  what they do: import cells, and cells that define or assign the names the graded tests need
  (the original course's notebooks have no tags and call ``tests.test_discriminator(...)`` in
  the cell that defines the class: such calls are dropped, the definitions kept). In both cases
  a cell that defines a name the chosen cells use is added too, but never a cell
  that loads data, trains or plots (one that calls ``train(...)``, ``get_dataloader(...)``,
  ``helpers.plotting``, ``plt``, the graded tests, ...).
- Which graded tests, and with which arguments, comes from the kit's own solution notebook
  (its ``graded-test`` cells), and the tests are the kit's own ``problem_unittests.py``: nothing
  in the submission can change them.

How it runs: each graded test in its own process, with a time limit, so an endless loop or a
crash (even a segfault) in one learner function fails that test only. A process runs every
definition cell in order, one at a time and past failures (as a learner who runs each cell
would), then calls its test. A test whose names exist runs even when some other cell failed;
a test that needs a name the cells did not define fails with the reason: the cell that should
have defined it and the error it raised, or "`Generator` is not defined in your notebook".
The processes start from a fork server that has already imported torch and the kit (POSIX),
so a test costs little more than its own run; each process uses cpu_count / workers threads.

Two sides: this process (trusted) reads the notebook and the kit, and starts the learner side
(``learner_side``: the scheduler and the test processes) in a bubblewrap sandbox
(helpers.instructor.sandbox), or with ``--no-sandbox`` as a plain child process, for trusted
notebooks.
The learner side answers in JSON lines, which this side caps, validates and cleans; it never
unpickles anything. The README's "threat model" says what that does and does not protect.

Exit status: 0 when every test passes, 1 when any fails, 2 for a bad command line, a notebook
that cannot be read, or no sandbox.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import importlib
import io
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import symtable
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from secrets import randbelow

from helpers.files import atomic_write, positive_int
from helpers.notebook import (
    DEFINITION_TAGS,
    NOTEBOOK,
    PART2_NOTEBOOK,
    ROOT,
    graded_test_calls,
    read_notebook,
    run_cells,
    strip_magics,
    tags,
)

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
CELL_FILE = re.compile(r"<cell (\d+)>")
# What reading a hostile cell may raise in the grader (null bytes, the parser's stack overflowing).
UNPARSABLE = (SyntaxError, ValueError, MemoryError, RecursionError)
# Caps on what crosses from the learner side to the grader (bytes, or items).
MAX_MESSAGE = 1024  # one test message or definition error
MAX_ERRORS = 50  # definition errors kept in a report
MAX_OUTPUT = 64 * 1024 * 1024  # everything the learner side may send back (observations)
MAX_LINES = 200
MAX_LINE = 24 * 1024 * 1024  # one line: one test's observation
MAX_CHILD_REPLY = MAX_LINE  # one test process's reply to the learner-side scheduler
MAX_JOB = 64 * 1024 * 1024
MAX_NOTEBOOK = 50 * 1024 * 1024  # larger is outputs, not code
LOG_TAIL = 256 * 1024  # read from the end of a test process's log
NOT_IMPLEMENTED = re.compile(r"^(.+?): not implemented yet")
# The graded tests' module: test_* functions, and VERDICTS = {name: (observe, judge)} for those
# the grader judges in its own process (helpers.graded.verdicts).
TESTS_MODULE = "problem_unittests"


# ---------------------------------------------------------------- what to run


@dataclass
class GradedTest:
    """One graded test as the kit's notebook calls it: ``tests.<name>(<args>)``."""

    name: str  # "test_optimizers"
    args: list  # argument expressions: ["D", "G", "d_optimizer", ...]
    needs: list = field(default_factory=list)  # names the arguments read
    signature: str = ""  # "train(D, G, ...)" when the kit checks the call first
    module: str = "problem_unittests"  # the kit's tests module: part2_unittests for part 2

    @property
    def call(self):
        return f"tests.{self.name}({', '.join(self.args)})"


@dataclass
class Cell:
    """A code cell of the submission: its 1-based position among all the notebook's cells.

    `run` is what the grader executes: the cell as plain Python with its top-level statements
    that call the graded tests replaced by ``pass`` (same line numbers). The original course
    puts ``tests.test_discriminator(Discriminator)`` in the cell that defines the class.
    """

    number: int
    source: str
    run: str = ""

    @property
    def excerpt(self):
        first = next((line.strip() for line in self.source.splitlines() if line.strip()), "")
        return first if len(first) <= 40 else first[:37] + "..."


# Functions whose signature the grader checks before their test runs: the original course's
# train(D, G, n_epochs, print_every=50) reads the optimizers and data from globals, so the kit's
# test_train cannot call it; one clear message beats the TypeError the call would raise.
SIGNATURE_CHECKED = ("train",)
ORIGINAL_TRAIN = ("D", "G", "n_epochs")


# ---- part 2: which kit notebook (and tests module) grades a submission
TESTS_MODULES = {NOTEBOOK: "problem_unittests", PART2_NOTEBOOK: "part2_unittests"}


def kit_notebook_for(nb):
    """The kit notebook whose graded tests grade submission `nb`: part 2's when one of its code
    cells imports part2_unittests (part 2's setup cell does), else part 1's."""
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code" and "part2_unittests" in cell.get("source", ""):
            try:
                tree = ast.parse(strip_magics(cell["source"]))
            except UNPARSABLE:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import) and any(
                    a.name == "part2_unittests" for a in node.names
                ):
                    return PART2_NOTEBOOK
    return NOTEBOOK


def kit_tests(kit_notebook=NOTEBOOK):
    """The graded tests, in order, from the kit's trusted notebook: a list of GradedTest."""
    nb = read_notebook(kit_notebook)
    module = TESTS_MODULES.get(Path(kit_notebook).resolve(), "problem_unittests")
    signatures = {}
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code" and "solution" in tags(cell):
            for node in ast.parse(strip_magics(cell["source"])).body:
                if isinstance(node, ast.FunctionDef) and node.name in SIGNATURE_CHECKED:
                    signatures[node.name] = f"{node.name}({ast.unparse(node.args)})"
    found = []
    for name, args in graded_test_calls(nb).items():
        needs = []
        for arg in args:
            needs += [
                n.id
                for n in ast.walk(ast.parse(arg, mode="eval"))
                if isinstance(n, ast.Name) and n.id not in needs
            ]
        signature = signatures.get(args[0], "") if len(args) == 1 else ""
        found.append(GradedTest(name, args, needs, signature, module))
    return found


def signature_problem(function, expected):
    """Why `function` cannot be called as the kit's `expected` ("train(D, G, ...)"), or None.

    The kit's call passes every parameter without a default by position and the others by
    keyword; a function that cannot bind those fails here, before its test runs.
    """
    import inspect

    try:
        own = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    kit = ast.parse(f"def {expected}: pass").body[0].args
    positional = [a.arg for a in kit.posonlyargs + kit.args]
    n_required = len(positional) - len(kit.defaults)
    try:
        own.bind(*positional[:n_required], **dict.fromkeys(positional[n_required:]))
        return None
    except TypeError:
        pass
    name = expected.split("(")[0]
    names = list(own.parameters)
    if tuple(names[: len(ORIGINAL_TRAIN)]) == ORIGINAL_TRAIN and name == "train":
        return (
            f"This notebook uses the original course's `train` signature: train{own}, which takes "
            f"the optimizers, the data loader and z_size from the notebook's globals. The kit's "
            f"test_train calls {expected} and checks what it returns (losses, samples) and that it "
            f"resumes from its checkpoint. Give train this signature (the kit's notebook shows its "
            f"start and end) to have it graded; the other tests grade your code as it is."
        )
    return (
        f"`{name}` has the signature {name}{own}, but the test calls {expected}. Keep the "
        f"parameters the notebook gives (names and order), then run the test again."
    )


def _callee(node):
    """Dotted name of a call's function ('helpers.plotting.show_batch'), or '' when it has none."""
    parts, func = [], node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _global_reads(table):
    names = set()
    for sym in table.get_symbols():
        if sym.is_referenced() and (table.get_type() == "module" or sym.is_global()):
            names.add(sym.get_name())
    for child in table.get_children():
        names |= _global_reads(child)
    return names


def _without_test_calls(source, tree, aliases):
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
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Call):
            stmt, filler = stmt.value, b"None"  # `result = tests.test_x(X)` keeps `result` bound
        else:
            filler = b"pass"
        first, last = stmt.lineno - 1, stmt.end_lineno - 1  # ast offsets are UTF-8 bytes
        head, tail = lines[first][: stmt.col_offset], lines[last][stmt.end_col_offset :]
        # What followed it on its last line moves up beside the filler; blank lines keep the count.
        lines[first : last + 1] = [head + filler + tail] + [b""] * (last - first)
        dropped += 1
    return b"\n".join(lines).decode("utf-8"), dropped


def _top_level_nodes(node):
    """`node` and the nodes below it, not entering function, class or lambda bodies."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            yield from _top_level_nodes(child)


def graded_test_aliases(nb):
    """Names the notebook imports problem_unittests as (``tests`` in the kit and the original)."""
    aliases = {"tests"}
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code" or "problem_unittests" not in cell.get("source", ""):
            continue
        try:
            tree = ast.parse(strip_magics(cell["source"]))
        except UNPARSABLE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases |= {a.asname or a.name for a in node.names if a.name == "problem_unittests"}
    return aliases


def analyse_cell(cell, aliases=("tests",)):
    """What a cell does, read without running it: dict with ``binds`` and ``reads`` (sets of names),
    ``imports_only``, ``work`` (it loads data, trains or plots at its top level) and ``run`` (the
    source to execute: its graded-test calls dropped; `aliases` are problem_unittests' names)."""
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


def definition_cells(nb, needs):
    """The submission's cells to run before the tests, in notebook order; whether tags chose them.

    `nb` is a notebook from read_notebook; `needs` are the names the graded tests take. Returns
    (list of Cell, used_tags). See the module docstring for the rules.
    """
    code = [(i + 1, c) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"]
    cells = [Cell(number, c.get("source", "")) for number, c in code]
    tagged = {number for number, c in code if set(tags(c)) & set(DEFINITION_TAGS)}
    aliases = graded_test_aliases(nb)
    info = {c.number: analyse_cell(c, aliases) for c in cells}
    for c in cells:
        c.run = info[c.number]["run"]
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


# ---------------------------------------------------------------- running (in the test's process)


def _describe(cell, failure):
    """A cell's failure (helpers.notebook.CellError) as a dict: cell, excerpt, error, line,
    detail (its message's first line), where and text (one line each)."""
    err, name, line, origin = failure.exception, failure.error, failure.line, failure.origin
    if isinstance(err, SyntaxError):
        detail = err.msg or ""
    elif isinstance(err, SystemExit):
        detail = "your code called exit() or sys.exit()"
    else:
        detail = _first_line(err)
    at = f" at line {line}" if line else ""
    return {
        "cell": cell.number,
        "excerpt": cell.excerpt,
        "error": name,
        "line": line,
        "detail": detail,
        "where": f"cell {cell.number} stopped{at}"
        + (f", from cell {origin[0]} line {origin[1]}" if origin else ""),
        "text": f"Cell {cell.number} raised {name}{at}"
        + (f" (from cell {origin[0]}, line {origin[1]})" if origin else "")
        + (f": {detail}" if detail else ""),
    }


def run_definitions(cells, namespace, skip=None, progress=None):
    """Execute `cells` one by one in `namespace` (helpers.notebook.run_cells), past failures;
    return the failures (dicts, see _describe).

    Each cell runs as ``cell.run`` (its graded-test calls dropped). `skip` maps cell numbers to a
    failure to report instead of running the cell (a cell that crashed or hung an earlier
    process); `progress(text)` is told which cell starts.
    """
    errors = []
    for cell in cells:
        if skip and cell.number in skip:
            errors.append(skip[cell.number])
            continue
        if progress:
            progress(f"cell {cell.number}")
        for failure in run_cells([(cell.number, cell.run or cell.source)], namespace):
            errors.append(_describe(cell, failure))
    return errors


def _missing_reason(name, cells, errors):
    """Why `name` is missing: the failed cell meant to define it, or that no cell defines it."""
    failed = {e["cell"]: e for e in errors}
    for cell in cells:
        if cell.number in failed and name in analyse_cell(cell)["binds"]:
            err = failed[cell.number]
            match = NOT_IMPLEMENTED.match(err["detail"])
            if err["error"] == "NotImplementedError" and match:
                return (
                    f"`{name}` could not be built: {match.group(1)} is not implemented yet "
                    f"({err['where']})."
                )
            text = f"`{name}` is not defined because {err['text'][0].lower()}{err['text'][1:]}"
            return text if text.endswith((".", "?", "!")) else text + "."
    reason = (
        f"`{name}` is not defined in your notebook. Define it with exactly this name, "
        f"run its cell, then run the test again."
    )
    # A cell too broken to read may be the one meant to define it.
    unreadable = [
        e
        for e in errors
        if e["error"] in ("SyntaxError", "IndentationError", "TabError")
        and not analyse_cell(next(c for c in cells if c.number == e["cell"]))["binds"]
    ]
    if unreadable:
        reason += f" ({unreadable[0]['text']}: was it meant to define `{name}`?)"
    return reason


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


class _Discard(io.TextIOBase):
    """A text stream that forgets what is written to it (the learner's prints, however many)."""

    def writable(self):
        return True

    def write(self, text):
        return len(text)


def run_graded_tests(cells, tests, skip=None, progress=None, seed=None):
    """Run the definition `cells`, then each of `tests` (GradedTest), in this process.

    Returns (results, definition errors): results are dicts with name, passed, message. What
    the learner's code prints is swallowed. The test functions come from the kit's
    problem_unittests and are looked up before any learner code runs. `skip` and `progress`
    as for run_definitions. With a `seed`, a test the kit can judge outside this process
    (VERDICTS of its tests module, part 1's or part 2's) is only observed: its result holds
    ``observation`` (encoded, helpers.graded.verdicts) instead of a verdict, unless the learner's
    code
    failed before it.
    """
    from helpers.graded import verdicts

    # each test from its own module: problem_unittests (part 1) or part2_unittests (part 2)
    modules = {t.module: importlib.import_module(t.module) for t in tests}
    functions = {t.name: getattr(modules[t.module], t.name) for t in tests}
    observers = {
        name: pair[0]
        for module in modules.values()
        for name, pair in getattr(module, "VERDICTS", {}).items()
        if seed is not None
    }
    namespace = {"__name__": "__notebook__"}
    quiet = _Discard()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        errors = run_definitions(cells, namespace, skip, progress)
    results = []
    for test in tests:
        missing = [n for n in test.needs if n not in namespace]
        if missing:
            results.append(
                {
                    "name": test.name,
                    "passed": False,
                    "message": _missing_reason(missing[0], cells, errors),
                }
            )
            continue
        if progress:
            progress(f"test {test.name}")
        problem = None
        if test.signature and callable(namespace.get(test.args[0])):
            problem = signature_problem(namespace[test.args[0]], test.signature)
        if problem:
            results.append({"name": test.name, "passed": False, "message": problem})
            continue
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                args = [eval(arg, namespace) for arg in test.args]
                if test.name in observers:
                    observation = observers[test.name](*args, seed=seed)
                    results.append({"name": test.name, "observation": verdicts.encode(observation)})
                    continue
                functions[test.name](*args)
            passed, message = True, "Tests Passed"
        except KeyboardInterrupt:
            raise
        except AssertionError as err:
            passed, message = (
                False,
                _first_line(err) or "The test failed (AssertionError without a message).",
            )
        except SystemExit:
            passed, message = False, "Your code called exit() or sys.exit() during the test."
        except BaseException as err:  # the test itself could not finish
            passed, message = (
                False,
                f"The test stopped with {type(err).__name__}: {_first_line(err)}",
            )
        results.append({"name": test.name, "passed": passed, "message": message})
    return results, errors


def _child(job, conn):
    """Body of one test's process: its own output log, then run_graded_tests for one test.

    The verdict goes back as JSON bytes, never a pickle. Phases ("cell 12", "test test_scale")
    go to their own file, so a flood of learner output cannot hide them.
    """
    if hasattr(os, "setpgid"):
        os.setpgid(
            0, 0
        )  # its own process group, so a timeout also ends workers the learner started
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    phases = os.open(job["log"] + ".phase", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
    import faulthandler

    # A crash, or a hang near the time limit, leaves the Python stack (cell and line) in the log.
    faulthandler.enable()
    faulthandler.dump_traceback_later(job["timeout"] * 0.9)
    os.chdir(job["workdir"])
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.update(DCGAN_QUICK="1", DCGAN_OUT=job["out_dir"], MPLBACKEND="Agg")
    import torch

    torch.set_num_threads(
        job["threads"]
    )  # more threads than cores makes every test many times slower

    def progress(phase):
        os.write(phases, f"{phase}\n".encode())

    test = GradedTest(**job["test"])
    cells = [Cell(**c) for c in job["cells"]]
    try:
        results, errors = run_graded_tests(cells, [test], job["skip"], progress, job["seed"])
        reply = {"result": results[0], "errors": errors}
    except Exception as err:  # a fault of the grader, not of the learner: say so
        traceback.print_exc()
        reply = {
            "result": {
                "name": test.name,
                "passed": False,
                "message": f"Grader error (not your code): {type(err).__name__}: {err}",
            },
            "errors": [],
        }
    data = json.dumps(reply, default=str).encode()
    if len(data) > MAX_CHILD_REPLY:
        reply["result"] = {
            "name": test.name,
            "passed": False,
            "message": f"What the test observed ({len(data) / 1e6:.0f} MB) is larger than the "
            f"grader reads ({MAX_CHILD_REPLY / 1e6:.0f} MB): does your code return huge tensors?",
        }
        data = json.dumps(reply, default=str).encode()[:MAX_CHILD_REPLY]
    conn.send_bytes(data)
    conn.close()


# ---------------------------------------------------------------- scheduling the processes


def preload_modules(kit_notebook=NOTEBOOK):
    """Modules the fork server imports once: the kit's, and those the setup cells import."""
    modules = [TESTS_MODULE, "part2_unittests", "helpers.instructor.grade"]
    for cell in read_notebook(kit_notebook)["cells"]:
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


def _context(preload):
    """A multiprocessing context whose new processes start with torch and the kit imported."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    return ctx


def _tail(path, size=LOG_TAIL):
    """The last `size` bytes of a file, as text ('' when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - size))
            return f.read(size).decode("utf-8", "replace")
    except OSError:
        return ""


def _read_log(path, cells=(), tests=()):
    """From a dead or killed test process's logs: (phase, where). phase is 'cell N' (N one of
    `cells`), 'test NAME' (one of `tests`) or None; where is [(cell, line), ...] from the last
    Python stack dump, innermost first. Lines that do not fit are ignored."""
    phase = None
    for line in _tail(path + ".phase", 4096).splitlines():
        match = re.fullmatch(r"cell (\d{1,6})|test (\w{1,60})", line)
        if match and (int(match.group(1)) in cells if match.group(1) else match.group(2) in tests):
            phase = line
    dumps = re.split(r"most recent call first\):", _tail(path))
    frames = (
        re.findall(r'File "<cell (\d{1,6})>", line (\d{1,7})', dumps[-1]) if len(dumps) > 1 else []
    )
    return phase, [(int(c), int(n)) for c, n in frames]


def _stack_text(frames, cell=None):
    """' at line 14 (from cell 18, line 6)' for a stack, relative to `cell` when given."""
    if not frames:
        return ""
    own = [ln for c, ln in frames if c == cell]
    text = f" at line {own[-1]}" if own else ""
    inner = frames[0]
    if inner[0] != cell:
        text += (
            f" (from cell {inner[0]}, line {inner[1]})"
            if own
            else f" in cell {inner[0]}, line {inner[1]}"
        )
    return text


def _how_it_ended(exitcode):
    if not isinstance(exitcode, int) or not -128 < exitcode < 256:  # a status the learner forged
        return f"ended with a status the grader cannot read ({str(exitcode)[:20]})"
    if exitcode is not None and exitcode < 0:
        try:
            return f"crashed ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"crashed (signal {-exitcode})"
    return f"ended with status {exitcode}"


@contextlib.contextmanager
def _starting_processes():
    """Around Process.start(): help the fork server import the kit, and leave __main__ alone.

    The fork server, started by the first start(), imports the preloaded modules with the
    path and environment it starts with (Python 3.11 ignores our sys.path), so the kit root goes
    on PYTHONPATH and matplotlib gets a backend that needs no display. And
    multiprocessing re-runs this program's __main__ (pytest, say) in every new process to find
    functions defined there; ours all live in helpers.instructor.grade, so it is hidden meanwhile.
    """
    main = sys.modules.get("__main__")
    saved = {
        k: main.__dict__[k]
        for k in ("__spec__", "__file__")
        if main is not None and k in main.__dict__
    }
    env = {k: os.environ.get(k) for k in ("PYTHONPATH", "MPLBACKEND")}
    try:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + ([env["PYTHONPATH"]] if env["PYTHONPATH"] else [])
        )
        os.environ["MPLBACKEND"] = env["MPLBACKEND"] or "Agg"  # matplotlib reads it when imported
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (AttributeError, OSError):
        proc.kill()
    proc.join()


def _schedule(cells, tests, timeout, workers, threads, preload, workdir, emit, seed=None):
    """Run each of `tests` in its own process, `workers` at a time; emit("test", result) and
    emit("error", definition error) as they come. A definition cell that crashes or hangs its
    process is reported as that cell's error and left out when the test runs again."""
    by_number = {c.number: c for c in cells}
    names = {t.name for t in tests}
    ctx = _context(preload)
    errors, skip = {}, {}
    with tempfile.TemporaryDirectory(prefix="dcgan-grade-") as tmp:
        pending, running, attempt = list(tests), [], 0
        while pending or running:
            while pending and len(running) < workers:
                test, attempt = pending.pop(0), attempt + 1
                job = {
                    "cells": [vars(c) for c in cells],
                    "test": vars(test),
                    "skip": dict(skip),
                    "log": str(Path(tmp) / f"{attempt}.log"),
                    "out_dir": str(Path(tmp) / "outputs"),
                    "threads": threads,
                    "timeout": timeout,
                    "workdir": workdir,
                    "seed": seed,
                }
                receive, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child, args=(job, send), daemon=True)
                with _starting_processes():
                    proc.start()
                send.close()  # only the child writes; end-of-file then means it is gone
                running.append(
                    {
                        "job": job,
                        "test": test,
                        "proc": proc,
                        "conn": receive,
                        "start": time.monotonic(),
                    }
                )
            deadline = min(r["start"] for r in running) + timeout
            multiprocessing.connection.wait(
                [r["conn"] for r in running] + [r["proc"].sentinel for r in running],
                timeout=max(0.0, deadline - time.monotonic()),
            )
            for run in list(running):
                job, test, proc = run["job"], run["test"], run["proc"]
                elapsed, message, timed_out = time.monotonic() - run["start"], None, False
                if run["conn"].poll():
                    try:
                        message = json.loads(run["conn"].recv_bytes(MAX_CHILD_REPLY))
                        message["result"]["name"] = test.name
                    except (EOFError, OSError, ValueError, TypeError, KeyError):
                        message = None
                    proc.join(5)
                    if proc.is_alive():
                        _kill(proc)
                elif not proc.is_alive():
                    proc.join()
                elif elapsed >= timeout:
                    _kill(proc)
                    timed_out = True
                else:
                    continue
                running.remove(run)
                run["conn"].close()
                if message is not None:
                    emit("test", {**message["result"], "seconds": round(elapsed, 2)})
                    for err in message.get("errors", []):
                        if isinstance(err, dict) and err.get("cell") not in errors:
                            errors[err.get("cell")] = err
                            emit("error", err)
                    continue
                phase, frames = _read_log(job["log"], by_number, names)
                ended = (
                    f"did not finish within {timeout:g} s"
                    if timed_out
                    else _how_it_ended(proc.exitcode)
                )
                if phase and phase.startswith("cell ") and int(phase[5:]) not in job["skip"]:
                    # A definition cell took the process down: report it as that cell's error and
                    # run the test again without it, so only the tests that need it fail.
                    number = int(phase[5:])
                    if number not in skip:
                        skip[number] = {
                            "cell": number,
                            "excerpt": by_number[number].excerpt,
                            "line": None,
                            "detail": "",
                            "error": "Timeout" if timed_out else "Crash",
                            "where": f"cell {number} {ended}{_stack_text(frames, number)}",
                            "text": f"Cell {number} {ended}{_stack_text(frames, number)}"
                            + (" (an endless loop?)" if timed_out else ""),
                        }
                        if number not in errors:
                            errors[number] = skip[number]
                            emit("error", skip[number])
                    pending.insert(0, test)
                    continue
                where = _stack_text(frames)
                if timed_out:
                    text = (
                        f"Timed out after {timeout:g} s: {test.call} did not finish{where and ';'}"
                        f"{where and ' it was' + where}. "
                        "Look for an endless loop (or very slow code)."
                    )
                else:
                    text = f"The test's process {ended}{where} while running {test.call}" + (
                        "."
                        if proc.exitcode and proc.exitcode < 0
                        else ": does your code call os._exit() or exit()?"
                    )
                emit(
                    "test",
                    {
                        "name": test.name,
                        "passed": False,
                        "message": text,
                        "seconds": round(elapsed, 2),
                    },
                )


def learner_side():
    """Entry point of the untrusted side (inside the sandbox): read the job (JSON) on stdin, run
    the tests, write one JSON object per line on stdout: {"test": ...}, {"error": ...}, then
    {"done": true}.

    Nothing here is trusted by the grader: it validates every line (see _collect).
    """
    # First line, before any learner code can run: tells the grader the sandbox itself started.
    sys.stdout.write(json.dumps({"started": True}) + "\n")
    sys.stdout.flush()
    job = json.loads(sys.stdin.read(MAX_JOB))
    # Not dumpable: the learner's processes (same uid) cannot open /proc/<this>/fd or ptrace it.
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass
    out = os.fdopen(os.dup(1), "w", buffering=1)  # only this process writes results here
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # what anything else prints goes nowhere
    # stderr stays: the grader keeps its cleaned last lines in the report's notes when the
    # learner side stops early.

    def emit(kind, item):
        out.write(json.dumps({kind: item}, default=str) + "\n")

    cells = [Cell(**c) for c in job["cells"]]
    tests = [GradedTest(**t) for t in job["tests"]]
    _schedule(
        cells,
        tests,
        job["timeout"],
        job["workers"],
        job["threads"],
        job["preload"],
        job["workdir"],
        emit,
        job.get("seed"),
    )
    emit("done", True)
    out.close()


# ---------------------------------------------------------------- the trusted side

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_text(text, limit=MAX_MESSAGE, secrets=()):
    """Text fit for a report: a string, control characters replaced by spaces, the values of
    `secrets` (the grader's environment) redacted, and at most `limit` bytes of UTF-8."""
    text = (
        CONTROL.sub(" ", text if isinstance(text, str) else repr(text)).replace("\n", " ").strip()
    )
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    data = text.encode("utf-8")
    if len(data) > limit:
        text = data[: limit - 20].decode("utf-8", "ignore") + " [... cut at 1 KB]"
    return text


def _environment_secrets():
    """Values of the grader's own environment long enough to be worth hiding from a report."""
    return sorted({v for v in os.environ.values() if len(v) >= 12}, key=len, reverse=True)


def judged_tests(modules=(TESTS_MODULE,)):
    """{test name: judge} for the graded tests this process decides itself
    (helpers.graded.verdicts),
    from the tests `modules` (part 2's tests are in part2_unittests)."""
    judges = {}
    for name in modules:
        module = importlib.import_module(name)
        judges.update({test: pair[1] for test, pair in getattr(module, "VERDICTS", {}).items()})
    return judges


def judge_observation(judge, observation, seed, secrets=()):
    """(passed, message): run `judge` (trusted) on what the learner side observed.

    The observation is decoded and checked first (helpers.graded.verdicts.decode); a malformed one,
    or
    one the judge cannot read, fails the test with the reason. Never runs the learner's code.
    """
    from helpers.graded import verdicts
    from helpers.graded.failures import GradedTestFailure

    try:
        obs = verdicts.decode(observation, clean=lambda text: clean_text(text, secrets=secrets))
        judge(obs, seed)  # prints nothing: a note for the learner is its return value
        return True, "Tests Passed"
    except GradedTestFailure as err:
        return False, _first_line(err) or "The test failed."
    except verdicts.MalformedObservation as err:
        return False, (
            f"What the learner side observed for this test cannot be read ({err}), so the test "
            "fails."
        )
    except Exception as err:  # data that does not fit the judge's checks (shapes, types)
        return False, (
            "What the learner side observed for this test does not fit the test "
            f"({type(err).__name__}: {_first_line(err)[:200]}), so the test fails."
        )


def _collect(stdout, tests, cells, seed=None):
    """Validate what the learner side sent; ({name: result}, [definition errors], done, problems).

    Each line must be one JSON object of a known kind; a result must name a graded test and
    carry a bool and a string; an error must name a cell that ran. Anything else is dropped
    and counted in `problems`. With a `seed` (the one the learner side observed with), the
    tests the kit judges itself (judged_tests) pass only on an observation that their judge,
    run here, accepts: a verdict of "passed" sent for them counts as a failure.
    """
    names = {t.name for t in tests}
    numbers = {c.number for c in cells}
    secrets = _environment_secrets()
    judges = judged_tests({t.module for t in tests}) if seed is not None else {}
    results, errors, done, problems = {}, {}, False, 0
    for line in stdout.split(b"\n")[:MAX_LINES]:
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            problems += 1
            continue
        try:
            item = json.loads(line)
            ((kind, value),) = item.items()
        except (ValueError, TypeError, AttributeError, RecursionError):
            problems += 1
            continue
        if kind == "started" and value is True:
            continue
        if kind == "done" and value is True:
            done = True
        elif (
            kind == "test"
            and isinstance(value, dict)
            and value.get("name") in judges
            and value["name"] not in results
            and isinstance(value.get("seconds", 0), (int, float))
            and ("observation" in value or value.get("passed") is not False)
        ):
            # Decided here: an observation goes to the judge; a "pass" without one is forged.
            if "observation" in value:
                passed, message = judge_observation(
                    judges[value["name"]], value["observation"], seed, secrets
                )
            else:
                passed, message = (
                    False,
                    (
                        "The learner side sent a verdict instead of observations for this test; "
                        "only the grader decides whether a test passes."
                    ),
                )
            results[value["name"]] = {
                "name": value["name"],
                "passed": passed,
                "message": "Tests Passed" if passed else clean_text(message, secrets=secrets),
                "seconds": round(min(max(float(value.get("seconds", 0)), 0.0), 1e6), 2),
            }
        elif (
            kind == "test"
            and isinstance(value, dict)
            and value.get("name") in names
            and value["name"] not in results
            and isinstance(value.get("passed"), bool)
            and isinstance(value.get("message"), str)
            and isinstance(value.get("seconds", 0), (int, float))
        ):
            results[value["name"]] = {
                "name": value["name"],
                "passed": value["passed"],
                "message": "Tests Passed"
                if value["passed"]
                else clean_text(value["message"], secrets=secrets),
                "seconds": round(min(max(float(value.get("seconds", 0)), 0.0), 1e6), 2),
            }
        elif (
            kind == "error"
            and isinstance(value, dict)
            and value.get("cell") in numbers
            and value["cell"] not in errors
            and len(errors) < MAX_ERRORS
            and isinstance(value.get("error"), str)
            and re.fullmatch(r"[A-Za-z_][\w.]{0,60}", value["error"])
            and (
                value.get("line") is None
                or (isinstance(value["line"], int) and 0 < value["line"] < 10**7)
            )
            and isinstance(value.get("text"), str)
        ):
            cell = next(c for c in cells if c.number == value["cell"])
            errors[value["cell"]] = {
                "cell": value["cell"],
                "error": value["error"],
                "line": value["line"],
                "message": clean_text(value["text"], secrets=secrets),
                "cell_starts": clean_text(cell.excerpt, 80),
            }
        else:
            problems += 1
    return results, [errors[n] for n in sorted(errors)], done, problems


def read_submission(submission):
    """The submission as a notebook dict; ValueError or FileNotFoundError with a clear reason when
    it is not a notebook the grader can read (not JSON, nbformat 3, cells not a list, ...)."""
    path = Path(submission)
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}.")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK:
        raise ValueError(
            f"{path} is {size / 1e6:.0f} MB; the grader reads notebooks up to "
            f"{MAX_NOTEBOOK / 1e6:.0f} MB. Clear its outputs (Cell > All Output > Clear) and save "
            "it."
        )
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(
            f"{path} is not a Jupyter notebook: it is not valid JSON ({err})."
        ) from None
    if not isinstance(nb, dict):
        raise ValueError(f"{path} is not a Jupyter notebook: its JSON is not an object.")
    if nb.get("nbformat") != 4:
        raise ValueError(
            f"{path} is a version {nb.get('nbformat')!r} notebook; the grader reads version 4 "
            "(open and save it in Jupyter 4 or later, or run `jupyter nbconvert --to notebook "
            "--nbformat 4`)."
        )
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise ValueError(
            f"{path} is not a Jupyter notebook: 'cells' should be a list, got "
            f"{type(cells).__name__}."
        )
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
        if not isinstance(metadata, dict) or not isinstance(metadata.get("tags", []), list):
            raise ValueError(
                f"{path}: the metadata of cell {number} is malformed (tags should be a list)."
            )
        cell["source"] = source
    return nb


def grade(
    submission,
    timeout=60.0,
    workers=2,
    kit_notebook=None,
    sandbox=True,
    deadline=None,
    limits=None,
    slot=0,
    only=None,
    threads=None,
):
    """Grade notebook `submission` with the kit's graded tests; each test in its own process.

    The learner's code runs on the untrusted side: a bubblewrap sandbox
    (helpers.instructor.sandbox), or,
    with sandbox=False, a plain child process for trusted self-checks. This process only reads
    its JSON lines, validated and capped. `deadline` (seconds, default from timeout and the
    number of tests) bounds the whole submission. `only` (test names) grades just those tests.
    `threads` is torch's thread count per test process (default: the cores shared by `workers`);
    `slot` numbers the sandboxes that run at once (helpers.instructor.classroom).

    Returns a report dict: notebook, passed, total, tests (list of {name, passed, message,
    seconds}), definition_errors (list of {cell, error, line, message, cell_starts}), cells (the
    cell numbers run before the tests), notes, sandbox (how it ran), seconds.
    Raises FileNotFoundError or ValueError for a notebook that cannot be read, and
    helpers.instructor.sandbox.SandboxUnavailable when a sandbox is asked for and cannot start.
    `kit_notebook` defaults to the one kit_notebook_for picks (part 1's or part 2's).
    """
    from helpers.instructor import sandbox as box

    nb = read_submission(submission)
    if kit_notebook is None:
        kit_notebook = kit_notebook_for(nb)
    tests = [t for t in kit_tests(kit_notebook) if only is None or t.name in only]
    if not tests:
        raise ValueError(
            f"The kit notebook {kit_notebook} has no graded-test cells"
            + (f" named {', '.join(only)}." if only else ".")
        )
    needs = list(dict.fromkeys(n for t in tests for n in t.needs))
    cells, used_tags = definition_cells(nb, needs)
    notes = (
        []
        if used_tags
        else [
            "The notebook has no `setup`/`solution` cell tags (the original course's notebooks "
            "have none, and some editors drop them); the cells to run were chosen by what they "
            "define, without their "
            "graded-test calls."
        ]
    )
    if deadline is None:
        deadline = timeout * (2 + -(-len(tests) // workers)) + 30
    seed = randbelow(2**31)  # the learner side's inputs: drawn now, unknown before
    job = {
        "seed": seed,
        "cells": [vars(c) for c in cells],
        "tests": [vars(t) for t in tests],
        "timeout": timeout,
        "workers": workers,
        "threads": threads or max(1, (os.cpu_count() or 1) // workers),
        "preload": preload_modules(kit_notebook),
    }
    inner = [sys.executable, "-c", "import helpers.instructor.grade as g; g.learner_side()"]
    # The judges need torch here too: import it while the learner side runs, not after.
    threading.Thread(target=judged_tests, daemon=True).start()
    if sandbox:
        job["workdir"] = box.SCRATCH
        outcome = box.run_in_sandbox(
            inner, json.dumps(job).encode(), deadline, MAX_OUTPUT, limits=limits, slot=slot
        )
        if not outcome.stdout.startswith(b'{"started": true}') and not outcome.timed_out:
            # bwrap failed before the learner side began (seen under load in CI): a fault of
            # the grading machine, not of the submission, so no grade rather than a zero.
            raise box.SandboxUnavailable(
                "the sandbox did not start: "
                + clean_text(outcome.stderr.decode("utf-8", "replace")[-300:], 300)
            )
        how = box.mode(slot)
    else:
        with tempfile.TemporaryDirectory(prefix="dcgan-work-") as work:
            job["workdir"] = work
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": work,
                "TMPDIR": work,
                "PYTHONPATH": str(ROOT),
                "MPLBACKEND": "Agg",
                "LANG": "C.UTF-8",
            }
            outcome = box.run_capped(
                inner, json.dumps(job).encode(), deadline, MAX_OUTPUT, env=env, cwd=work
            )
        how = "none (--no-sandbox: the learner's code ran with this user's rights)"
    results, definition_errors, done, problems = _collect(outcome.stdout, tests, cells, seed)
    if outcome.timed_out:
        why = f"the submission's deadline of {deadline:g} s ran out before this test finished"
    elif outcome.overflow:
        why = "the learner side sent more output than the grader reads"
    elif not done:
        ended = _how_it_ended(outcome.returncode)
        why = f"the learner side stopped before this test finished ({ended})"
    else:
        why = "the learner side sent no result for this test"
    if problems:
        notes.append(
            f"{problems} line(s) from the learner side were not valid results and were ignored."
        )
    if not done or outcome.overflow or outcome.timed_out:
        notes.append(f"Grading did not finish normally: {why}.")
        stderr = clean_text(
            outcome.stderr.decode("utf-8", "replace")[-600:], 600, _environment_secrets()
        )
        if stderr:
            notes.append(f"Last words of the learner side: {stderr}")
    ordered = [
        results.get(t.name)
        or {"name": t.name, "passed": False, "message": f"No result: {why}.", "seconds": 0.0}
        for t in tests
    ]
    return {
        "notebook": str(submission),
        "passed": sum(r["passed"] for r in ordered),
        "total": len(ordered),
        "tests": ordered,
        "definition_errors": definition_errors,
        "cells": [c.number for c in cells],
        "notes": notes,
        "sandbox": how,
        "seconds": round(outcome.seconds, 2),
    }


# ---------------------------------------------------------------- command line


def format_report(report):
    """The rubric as text: definition problems, one row per test, and the total."""
    lines = [f"Grading {report['notebook']}"]
    if report.get("sandbox"):
        lines.append(f"Sandbox: {report['sandbox']}")
    lines += [f"Note: {note}" for note in report["notes"]]
    if report["definition_errors"]:
        lines.append("Problems while running the definition cells:")
        lines += [
            f"  {e['message']}  [cell {e['cell']} starts: {e['cell_starts']}]"
            for e in report["definition_errors"]
        ]
    width = max(len(r["name"]) for r in report["tests"])
    lines.append("")
    lines.append(f"{'test':<{width}}  result  reason")
    for r in report["tests"]:
        lines.append(
            f"{r['name']:<{width}}  {'PASSED' if r['passed'] else 'FAILED'}  "
            f"{'' if r['passed'] else r['message']}".rstrip()
        )
    lines.append("")
    lines.append(f"{report['passed']}/{report['total']} tests passed")
    return "\n".join(lines)


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value

    return parse


def add_grading_arguments(parser):
    """The options grading one submission and grading a class share."""
    parser.add_argument(
        "--timeout",
        type=_positive(float),
        default=60.0,
        metavar="SECONDS",
        help="time limit of each test's process, start-up included; a test that runs "
        "longer fails as timed out (default: %(default)g)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        metavar="N",
        help="how many tests of one submission run at once, each in its own process "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--deadline",
        type=_positive(float),
        metavar="SECONDS",
        help="time limit of a whole submission; when it runs out the sandbox and every "
        "process in it are stopped, and unfinished tests fail (default: the "
        "timeout times the rounds of tests, plus two)",
    )
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run the learner's code without bubblewrap, with your own rights, for "
        "trusted self-checks only (your solution, a release you made)",
    )


def main(argv=None):
    """Command line: grade, print the rubric, write --json; exit 0 all passed, 1 any failed, 2."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers grade",
        description="Grade a learner's notebook with the kit's graded tests in a bubblewrap "
        "sandbox, each test in its own process with a time limit, and print a rubric.",
        epilog="Exit status: 0 when every test passes, 1 when any fails, 2 for a bad command line, "
        "a "
        "notebook that cannot be read, or no sandbox. Grade a whole folder with "
        "python -m helpers classroom.",
    )
    parser.add_argument("submission", help="the learner's notebook (.ipynb) to grade")
    parser.add_argument(
        "--part",
        type=int,
        choices=(1, 2),
        help="grade with part 1's or part 2's graded tests (default: part 2's when the "
        "notebook imports part2_unittests, else part 1's)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the report as JSON to PATH: passed, total, and per test its "
        "name, passed, message and seconds",
    )
    add_grading_arguments(parser)
    args = parser.parse_args(argv)
    from helpers.instructor.sandbox import SandboxUnavailable

    try:
        kit_notebook = {None: None, 1: NOTEBOOK, 2: PART2_NOTEBOOK}[args.part]
        report = grade(
            args.submission,
            timeout=args.timeout,
            workers=args.workers,
            kit_notebook=kit_notebook,
            sandbox=not args.no_sandbox,
            deadline=args.deadline,
        )
    except (FileNotFoundError, ValueError, SandboxUnavailable) as err:
        print(f"grade: error: {err}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        with atomic_write(args.json, "w") as f:
            f.write(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] == report["total"] else 1
