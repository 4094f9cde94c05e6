"""One graded test's process, inside the sandbox: run the learner's definition cells, then the
graded test, and send back the result (or, for a test the grader judges itself, what the test
observed) as JSON bytes.

A process runs every definition cell in order, one at a time and past failures (as a learner who
runs each cell would), then calls its test. A test whose names exist runs even when some other
cell failed; a test that needs a name the cells did not define fails with the reason: the cell
that should have defined it and the error it raised, or "`Generator` is not defined in your
notebook".
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import io
import json
import os
import re
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, cast

from helpers.notebook import ROOT, CellError, run_cells
from helpers.sandboxed.job import MAX_CHILD_REPLY, Cell, GradedTest

__all__ = [
    "one_test_process",
    "run_definitions",
    "run_graded_tests",
    "signature_problem",
]

NOT_IMPLEMENTED = re.compile(r"^(.+?): not implemented yet")


def signature_problem(function: Callable[..., Any], expected: str) -> str | None:
    """Why `function` cannot be called as the kit's `expected` ("train(D, G, ...)"), or None.

    The kit's call passes every parameter without a default by position and the others by
    keyword; a function that cannot bind those fails here, before its test runs.
    """

    try:
        own = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    kit = cast(ast.FunctionDef, ast.parse(f"def {expected}: pass").body[0]).args
    positional = [a.arg for a in kit.posonlyargs + kit.args]
    n_required = len(positional) - len(kit.defaults)
    try:
        own.bind(*positional[:n_required], **dict.fromkeys(positional[n_required:]))
        return None
    except TypeError:
        pass
    from helpers.graded.training import ORIGINAL_PARAMETERS

    name = expected.split("(")[0]
    names = list(own.parameters)
    if tuple(names[: len(ORIGINAL_PARAMETERS)]) == ORIGINAL_PARAMETERS and name == "train":
        return None  # the original course's: test_train runs it with its globals
    return (
        f"`{name}` has the signature {name}{own}, but the test calls {expected}. Keep the "
        f"parameters the notebook gives (names and order), then run the test again."
    )


def _describe(cell: Cell, failure: CellError) -> dict[str, Any]:
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


def run_definitions(
    cells: list[Cell],
    namespace: dict[str, Any],
    skip: dict[int, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
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


def _missing_reason(
    name: str, cells: list[Cell], errors: list[dict[str, Any]], chain: bool = True
) -> str:
    """Why `name` is missing: the failed cell meant to define it (and, when `chain`, that
    failure's own cause further up), or that no cell defines it."""
    failed = {e["cell"]: e for e in errors}
    for cell in cells:
        if cell.number in failed and name in cell.binds:
            err = failed[cell.number]
            match = NOT_IMPLEMENTED.match(err["detail"])
            if err["error"] == "NotImplementedError" and match:
                return (
                    f"`{name}` could not be built: {match.group(1)} is not implemented yet "
                    f"({err['where']})."
                )
            text = f"`{name}` is not defined because {err['text'][0].lower()}{err['text'][1:]}"
            text = text if text.endswith((".", "?", "!")) else text + "."
            return text + _upstream(err, name, cells, errors, chain)
    reason = (
        f"`{name}` is not defined in your notebook. Define it with exactly this name, "
        f"run its cell, then run the test again."
    )
    # A cell too broken to read may be the one meant to define it.
    unreadable = [
        e
        for e in errors
        if e["error"] in ("SyntaxError", "IndentationError", "TabError")
        and not next(c for c in cells if c.number == e["cell"]).binds
    ]
    if unreadable:
        reason += f" ({unreadable[0]['text']}: was it meant to define `{name}`?)"
    return reason


NO_GPU = (
    " Likely cause: .cuda() called where there is no GPU (the grader has none): move tensors "
    "and models with .cuda() only `if train_on_gpu:`, as the notebook's other cells do."
)


def _upstream(
    err: dict[str, Any], name: str, cells: list[Cell], errors: list[dict[str, Any]], chain: bool
) -> str:
    """What to add to why `name` is missing when cell error `err` has a cause further up: a
    .cuda() call without a GPU, or (when `chain`) a NameError for a name that a cell which
    failed was meant to define (that cell's reason, one step up only)."""
    detail = err["detail"].lower()
    if err["error"] != "NameError" and any(w in detail for w in ("nvidia", "cuda")):
        return NO_GPU
    match = re.match(r"name '(\w+)' is not defined", err["detail"])
    if chain and err["error"] == "NameError" and match and match.group(1) != name:
        other = match.group(1)
        failed = {e["cell"] for e in errors}
        if any(c.number in failed and other in c.binds for c in cells):
            return " " + _missing_reason(other, cells, errors, chain=False)
    return ""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


class _Discard(io.TextIOBase):
    """A text stream that forgets what is written to it (the learner's prints, however many)."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


def run_graded_tests(
    cells: list[Cell],
    tests: list[GradedTest],
    skip: dict[int, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
    seed: int | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the definition `cells`, then each of `tests` (GradedTest), in this process.

    Returns (results, definition errors): results are dicts with name, passed, message. What
    the learner's code prints is swallowed. The test functions come from the kit's
    problem_unittests and are looked up before any learner code runs. `skip` and `progress`
    as for run_definitions. With a `seed`, a test the kit can judge outside this process
    (VERDICTS of its tests module, part 1's or part 2's) is only observed: its result holds
    ``observation`` (encoded, helpers.graded.verdicts) instead of a verdict, unless the learner's
    code failed before it.
    """
    from helpers.graded import verdicts

    if [t.name for t in tests] == ["test_train"]:
        # The course's own losses and scale, for an original-format train: only in test_train's
        # own process, where no test of those pieces runs that a learner's code could pass by
        # calling them.
        from helpers.sandboxed import course

        course.install()
    # each test from its own module: problem_unittests (part 1) or part2_unittests (part 2)
    modules = {t.module: importlib.import_module(t.module) for t in tests}
    functions = {t.name: getattr(modules[t.module], t.name) for t in tests}
    observers = {
        name: pair[0]
        for module in modules.values()
        for name, pair in getattr(module, "VERDICTS", {}).items()
        if seed is not None
    }
    namespace: dict[str, Any] = {"__name__": "__notebook__"}
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


# test_train records every D and G call of a run on batches of 4: it grows that large only when
# they see far more images than that.
TRAIN_TOO_BIG = (
    " For test_train: D and G saw far more images per step than the test's batches of 4. "
    "Likely cause: the fakes are made from fixed_z (the sample noise, often hundreds of "
    "samples) instead of new noise of the batch's size; keep fixed_z for the sample images only."
)


def one_test_process(job: dict[str, Any], conn: Connection) -> None:
    """Body of one test's process: its own output log, then run_graded_tests for one test.

    The verdict goes back as JSON bytes, never a pickle. Phases ("cell 12", "test test_scale")
    go to their own file, so a flood of learner output cannot hide them.
    """
    if hasattr(os, "setpgid"):  # its own process group: a timeout also ends the learner's workers
        os.setpgid(0, 0)
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

    # More threads than cores makes every test many times slower.
    torch.set_num_threads(job["threads"])

    def progress(phase: str) -> None:
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
            f"grader reads ({MAX_CHILD_REPLY / 1e6:.0f} MB): does your code return huge tensors?"
            + (TRAIN_TOO_BIG if test.name == "test_train" else ""),
        }
        data = json.dumps(reply, default=str).encode()[:MAX_CHILD_REPLY]
    conn.send_bytes(data)
    conn.close()
