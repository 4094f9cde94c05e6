"""Grade a learner's notebook with the kit's graded tests (instructor tool).

    python -m helpers grade SUBMISSION.ipynb [--json report.json] [--timeout 60] [--workers 2]
                                             [--deadline SECONDS] [--no-sandbox]

``grade()`` is four steps, each a function below, in the spirit of nbgrader's preprocessors:

1. ``read``: read the submission and the kit's solution notebook, and pick what to run: the
   submission's definition cells and the kit's graded tests (helpers.instructor.cells);
2. ``run_learner_side``: run them on the untrusted side (helpers.sandboxed), in a bubblewrap
   sandbox (helpers.instructor.sandbox), or with ``--no-sandbox`` as a plain child process, for
   trusted notebooks. Each graded test runs there in its own process, with a time limit, so an
   endless loop or a crash in one learner function fails that test only;
3. ``judge``: validate what the learner side answered (JSON lines, capped and cleaned; nothing
   is unpickled) and judge, in this process, the tests the kit decides itself from what the
   learner side observed (helpers.graded.verdicts);
4. ``build_report``: one row per test, the definition cells' errors and notes on anything unusual.

docs/threat-model.md says what the sandbox does and does not protect.

Exit status: 0 when every test passes, 1 when any fails, 2 for a bad command line, a notebook
that cannot be read, or no sandbox.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import json
import math
import os
import re
import resource
import select
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from secrets import randbelow
from typing import Any, NamedTuple

from helpers.files import atomic_write, positive_int
from helpers.instructor import sandbox as box
from helpers.instructor.cells import (
    TESTS_MODULES,
    definition_cells,
    kit_notebook_for,
    leave_out_skipped_reads,
    original_format,
    original_train_note,
    read_kit,
    read_submission,
)
from helpers.notebook import NOTEBOOK, PART2_NOTEBOOK, ROOT
from helpers.sandboxed.job import MAX_LINE, Cell, GradedTest, how_it_ended

__all__ = [
    "JUDGE_BUDGET",
    "JUDGE_MEMORY",
    "JUDGE_SECONDS",
    "MAX_ERRORS",
    "MAX_LINES",
    "MAX_MESSAGE",
    "MAX_OUTPUT",
    "NOT_SCORED",
    "Judged",
    "LearnerRun",
    "Plan",
    "add_grading_arguments",
    "clean_text",
    "format_report",
    "grade",
    "judge",
    "judge_observation",
    "judge_observations",
    "judged_tests",
    "main",
    "read",
    "build_report",
    "run_learner_side",
]

# Caps on what the grader takes from the learner side (bytes, or items).
MAX_MESSAGE = 1024  # one test message or definition error
MAX_ERRORS = 50  # definition errors kept in a report
MAX_OUTPUT = 64 * 1024 * 1024  # everything the learner side may send back (observations)
MAX_LINES = 200
# How the note on a failed check that carries no points starts (judge_observation): the check
# reads a value only the learner's side reports, so a patch of the kit there could forge it.
NOT_SCORED = "not scored, as only the learner's side reports what it checks: "
MAX_PROBLEMS_SHOWN = 5  # malformed lines described in a report's note
# Judging one observation, in a process of its own forked from the grader's: its deadline, and
# the memory it may add to the grader's address space. The solution's slowest judge (test_train)
# takes under a second and adds 40 MB (benchmarks.judge_bounds); the replay caps
# (helpers.graded.layers) keep any observation well inside both, and these catch what they miss.
JUDGE_SECONDS = 10.0
JUDGE_MEMORY = 2 * 1024**3
# All of one submission's judging together: the grader's time after its sandbox ends stays under
# this whatever the observations (the solution's 11 take under half a second; an observation
# still waiting when it runs out is refused).
JUDGE_BUDGET = 15.0
REFUSED = "The grader refused this observation"
# How test_train's note on the original course's signature ends (problem_unittests._original_note)
ORIGINAL_TRAIN_CHECKED = "Each D and G step was checked."
# The learner side's entry point, run inside the sandbox (where helpers/instructor/ is absent).
LEARNER_SIDE = [
    sys.executable,
    "-c",
    "from helpers.sandboxed.scheduler import learner_side; learner_side()",
]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def grade(
    submission: Path | str,
    timeout: float = 60.0,
    workers: int = 2,
    kit_notebook: Path | str | None = None,
    sandbox: bool = True,
    deadline: float | None = None,
    limits: box.Limits | None = None,
    slot: int = 0,
    only: Collection[str] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Grade notebook `submission` with the kit's graded tests; each test in its own process.

    The learner's code runs on the untrusted side: a bubblewrap sandbox
    (helpers.instructor.sandbox), or, with sandbox=False, a plain child process for trusted
    self-checks. This process only reads its JSON lines, validated and capped. `deadline`
    (seconds, default from timeout and the number of tests) bounds the whole submission.
    `only` (test names) grades just those tests. `threads` is torch's thread count per test
    process (default: the cores shared by `workers`); `slot` numbers the sandboxes that run at
    once (helpers.instructor.classroom).

    Returns a report dict: notebook, passed, total, tests (list of {name, passed, message,
    seconds}), definition_errors (list of {cell, error, line, message, cell_starts}), cells (the
    cell numbers run before the tests), notes, sandbox (how it ran), seconds.
    Raises FileNotFoundError or ValueError for a notebook that cannot be read, and
    helpers.instructor.sandbox.SandboxUnavailable when a sandbox is asked for and cannot start.
    `kit_notebook` defaults to the one kit_notebook_for picks (part 1's or part 2's).
    """
    plan = read(submission, kit_notebook, only)
    if deadline is None:
        deadline = timeout * (2 + -(-len(plan.tests) // workers)) + 30
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    run = run_learner_side(plan, timeout, workers, threads, deadline, sandbox, limits, slot)
    judged = judge(run, plan)
    return build_report(submission, plan, run, judged, deadline)


# ---------------------------------------------------------------- 1. read


@dataclass
class Plan:
    """What the learner side runs: the kit's graded tests, the submission's definition cells,
    the modules its fork server preloads, and notes for the report."""

    tests: list[GradedTest]
    cells: list[Cell]
    preload: list[str]
    notes: list[str] = field(default_factory=list)
    original: bool = False  # the original course's format: its judges (original_format)


def read(
    submission: Path | str,
    kit_notebook: Path | str | None = None,
    only: Collection[str] | None = None,
) -> Plan:
    """Step 1: read the submission and the kit notebook that grades it (once each); pick the
    graded tests (`only` those names, when given) and the definition cells they need."""
    nb = read_submission(submission)
    kit = read_kit(kit_notebook if kit_notebook is not None else kit_notebook_for(nb))
    tests = [t for t in kit.tests if only is None or t.name in only]
    if not tests:
        raise ValueError(
            f"The kit notebook {kit.notebook} has no graded-test cells"
            + (f" named {', '.join(only)}." if only else ".")
        )
    needs = list(dict.fromkeys(n for t in tests for n in t.needs))
    cells, used_tags = definition_cells(nb, needs)
    skipped_reads = leave_out_skipped_reads(nb, cells, needs)
    notes = (
        []
        if used_tags
        else [
            "The notebook has no `setup`/`solution` cell tags (the original course's notebooks "
            "have none, and some editors drop them); the cells to run were chosen by what they "
            "define, without their graded-test calls."
        ]
    )
    notes += skipped_reads
    if any(t.name == "test_train" for t in tests):
        notes += original_train_note(cells)
    return Plan(tests, cells, kit.preload, notes, original_format(nb, used_tags))


# ---------------------------------------------------------------- 2. run in the sandbox


@dataclass
class LearnerRun:
    """What came back from the learner side: the sandbox's outcome (its stdout holds the JSON
    lines), the seed its tests observed with, and how it was sandboxed."""

    outcome: box.Outcome
    seed: int
    sandbox: str


def run_learner_side(
    plan: Plan,
    timeout: float,
    workers: int,
    threads: int,
    deadline: float,
    sandbox: bool = True,
    limits: box.Limits | None = None,
    slot: int = 0,
) -> LearnerRun:
    """Step 2: send `plan` to the learner side (helpers.sandboxed.scheduler.learner_side) and
    wait for its answer, at most `deadline` seconds; each test's process gets `timeout` seconds
    and `threads` torch threads, `workers` at a time. Raises SandboxUnavailable when the sandbox
    does not start."""
    seed = randbelow(2**31)  # the learner side's inputs: drawn now, unknown before
    job: dict[str, Any] = {
        "seed": seed,
        "cells": [vars(c) for c in plan.cells],
        "tests": [vars(t) for t in plan.tests],
        "timeout": timeout,
        "workers": workers,
        "threads": threads,
        "preload": plan.preload,
    }
    # The judges need torch here too, but only once the learner side has ended: importing it
    # meanwhile saved about 2 s of wall time and cost about 350 MB of peak memory (both sides'
    # torch at once), which put one grade over Gradescope's 768 MB (benchmarks.platform_limits).
    if sandbox:
        job["workdir"] = box.SCRATCH
        outcome = box.run_in_sandbox(
            LEARNER_SIDE, json.dumps(job).encode(), deadline, MAX_OUTPUT, limits=limits, slot=slot
        )
        if not outcome.stdout.startswith(b'{"started": true}') and not outcome.timed_out:
            # bwrap failed before the learner side began (seen under load in CI): a fault of
            # the grading machine, not of the submission, so no grade rather than a zero.
            raise box.SandboxUnavailable(
                "the sandbox did not start: "
                + clean_text(outcome.stderr.decode("utf-8", "replace")[-300:], 300)
            )
        return LearnerRun(outcome, seed, box.mode(slot, limits))
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
            LEARNER_SIDE, json.dumps(job).encode(), deadline, MAX_OUTPUT, env=env, cwd=work
        )
    return LearnerRun(
        outcome, seed, "none (--no-sandbox: the learner's code ran with this user's rights)"
    )


# ---------------------------------------------------------------- 3. judge


def clean_text(text: object, limit: int = MAX_MESSAGE, secrets: Iterable[str] = ()) -> str:
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


def _environment_secrets() -> list[str]:
    """Values of the grader's own environment long enough to be worth hiding from a report."""
    return sorted({v for v in os.environ.values() if len(v) >= 12}, key=len, reverse=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def judged_tests(
    modules: Iterable[str] = (TESTS_MODULES[NOTEBOOK],),
    original: bool = False,
    derived: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Callable[..., Any]]:
    """{test name: judge} for the graded tests this process decides itself
    (helpers.graded.verdicts), from the tests `modules` (part 2's are in part2_unittests),
    with the reference answers they need, which never ship (helpers.instructor.references).
    `original`: the submission is in the original course's format, so the judges that take an
    ``original`` argument get it (they accept the choices that course left open). `derived`:
    {test name: facts} read from the submission's source (helpers.instructor.selectors.derive),
    given to the judges that take a ``derived`` argument: the facts that pick their checks,
    which the learner side's report of them then cannot pick."""
    from helpers.instructor import references

    references.install()
    judges = {}
    for name in modules:
        module = importlib.import_module(name)
        for test, (_, judge_fn) in getattr(module, "VERDICTS", {}).items():
            parameters = inspect.signature(judge_fn).parameters
            options: dict[str, Any] = {}
            if original and "original" in parameters:
                options["original"] = True
            if derived is not None and "derived" in parameters:
                options["derived"] = derived.get(test, {})
            judges[test] = functools.partial(judge_fn, **options) if options else judge_fn
    return judges


def judge_observation(
    judge: Callable[..., Any], observation: Any, seed: int, secrets: Iterable[str] = ()
) -> tuple[bool, str]:
    """(passed, message): run `judge` (trusted) on what the learner side observed.

    The observation is decoded and checked first (helpers.graded.verdicts.decode); a malformed
    one, or one the judge cannot read, fails the test with the reason. A check on a value the
    learner side only reports (ReportedFailure) is not scored: the test passes, and its note
    says the check failed and why it carries no points. Never runs the learner's code.
    """
    from helpers.graded import verdicts
    from helpers.graded.failures import GradedTestFailure, ReportedFailure

    try:
        obs = verdicts.decode(observation, clean=lambda text: clean_text(text, secrets=secrets))
        note = judge(obs, seed)  # prints nothing: a note for the learner is its return value
        return True, "Tests Passed" + (f" {clean_text(note, secrets=secrets)}" if note else "")
    except ReportedFailure as err:
        unscored = f"Note: {NOT_SCORED}{_first_line(err)}"
        notes = [err.note, unscored] if err.note else [unscored]
        return True, "Tests Passed " + clean_text(" ".join(notes), secrets=secrets)
    except GradedTestFailure as err:
        return False, _first_line(err) or "The test failed."
    except verdicts.MalformedObservation as err:
        return False, (
            f"What the learner side observed for this test cannot be read ({err}), so the test "
            "fails."
        )
    except MemoryError:
        return False, f"{REFUSED}: judging it needed more memory than the grader gives a judge."
    except Exception as err:  # data that does not fit the judge's checks (shapes, types)
        if isinstance(err, RuntimeError) and "allocate" in str(err):  # torch's MemoryError
            return False, f"{REFUSED}: judging it needed more memory than the grader gives a judge."
        return False, (
            "What the learner side observed for this test does not fit the test "
            f"({type(err).__name__}: {_first_line(err)[:200]}), so the test fails."
        )


def _address_space() -> int:
    """Bytes of this process's address space now (VmSize), 0 where /proc cannot tell."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _judge_in_child(
    jobs: list[tuple[Callable[..., Any], Any]],
    seed: int,
    secrets: list[str],
    seconds: float,
    memory: int,
    deadline: float = math.inf,
) -> tuple[list[tuple[bool, str]], str]:
    """Judge `jobs` in order in one forked child, `seconds` each and all by `deadline` (of
    time.monotonic); (the results it gave, in order; why it stopped before the next one, or ""
    when it judged them all)."""
    limit = _address_space() + memory
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: judge, write one JSON line per result, never return
        try:
            # Only its own pipe stays open: a copy of another thread's pipe (a sandbox's stdin)
            # would keep that pipe from ending while this child judges.
            os.closerange(3, write_end)
            os.closerange(write_end + 1, os.sysconf("SC_OPEN_MAX"))
            # torch's thread pool does not survive a fork (the child would wait on threads that
            # are not there): judge on this thread alone
            import torch

            torch.set_num_threads(1)
            if limit > memory:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            with os.fdopen(write_end, "w") as out:
                for judge_fn, observation in jobs:
                    passed, message = judge_observation(judge_fn, observation, seed, secrets)
                    out.write(json.dumps([passed, message]) + "\n")
                    out.flush()
        finally:
            os._exit(0)
    os.close(write_end)
    results: list[tuple[bool, str]] = []
    buffer, why = b"", ""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        waited = 0.0
        while len(results) < len(jobs):
            started = time.monotonic()
            wait = min(seconds - waited, deadline - started)
            ready, _, _ = select.select([pipe], [], [], max(0.0, wait))
            waited += time.monotonic() - started
            if not ready:
                why = (
                    f"judging it took over {seconds:g} s"
                    if waited >= seconds
                    else "the grader's time for judging this submission ran out"
                )
                os.kill(pid, signal.SIGKILL)
                break
            chunk = pipe.read(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer and len(results) < len(jobs):
                line, buffer = buffer.split(b"\n", 1)
                passed, message = json.loads(line)
                results.append((passed is True, str(message)))
                waited = 0.0  # each observation has its own deadline
    _, status = os.waitpid(pid, 0)
    if len(results) < len(jobs) and not why:
        code = os.waitstatus_to_exitcode(status)
        why = (
            f"judging it needed more than the grader's {memory / 2**30:g} GB"
            if code == -signal.SIGKILL
            else f"judging it ended the judge's process ({how_it_ended(code)})"
        )
    return results, why


def judge_observations(
    jobs: list[tuple[Callable[..., Any], Any]],
    seed: int,
    secrets: Iterable[str] = (),
    seconds: float | None = None,
    memory: int | None = None,
    budget: float | None = None,
) -> list[tuple[bool, str]]:
    """(passed, message) for each (judge, observation) of `jobs`, as judge_observation gives
    it, but judged in a child process forked from this one: at most `seconds` per observation,
    `budget` seconds for them all, and `memory` bytes over this process's address space. An
    observation that runs past any of them (or ends its process) fails as refused, with why, and
    so does each one left when the budget is spent; the rest are judged in a new child.
    `seconds`, `memory` and `budget` default to JUDGE_SECONDS, JUDGE_MEMORY and JUDGE_BUDGET.
    Without fork (not POSIX), they are judged in this process, unbounded."""
    seconds = JUDGE_SECONDS if seconds is None else seconds
    memory = JUDGE_MEMORY if memory is None else memory
    deadline = time.monotonic() + (JUDGE_BUDGET if budget is None else budget)
    secrets = list(secrets)
    if not hasattr(os, "fork"):
        return [judge_observation(j, o, seed, secrets) for j, o in jobs]
    results: list[tuple[bool, str]] = []
    while len(results) < len(jobs):
        if time.monotonic() >= deadline:
            spent = f"{REFUSED}: the grader's time for judging this submission ran out."
            results += [(False, spent)] * (len(jobs) - len(results))
            break
        done, why = _judge_in_child(jobs[len(results) :], seed, secrets, seconds, memory, deadline)
        results += done
        if why:
            results.append((False, f"{REFUSED}: {why}."))
    return results


class Judged(NamedTuple):
    """What the learner side's answer came to: {test name: result}, the definition cells'
    errors (by cell number), whether it said it was done, and what was wrong with each line
    that was ignored ("line 3: ...")."""

    results: dict[str, dict[str, Any]]
    definition_errors: list[dict[str, Any]]
    done: bool
    problems: list[str]


@dataclass
class _Context:
    """What the line handlers check against, and what they fill in."""

    tests: dict[str, GradedTest]
    cells: dict[int, Cell]
    judges: dict[str, Callable[..., Any]]  # none without a seed
    seed: int
    secrets: list[str]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[int, dict[str, Any]] = field(default_factory=dict)
    done: bool = False
    # (test name, observation): judged after every line is read (judge_observations)
    observed: list[tuple[str, Any]] = field(default_factory=list)


def _shown(value: object) -> str:
    """A value the learner side sent, quoted for a note: short, cleaned."""
    return clean_text(repr(value), 80)


def _seconds(value: dict[str, Any]) -> float:
    return round(min(max(float(value.get("seconds", 0)), 0.0), 1e6), 2)


def _on_started(ctx: _Context, value: Any) -> str | None:
    return None if value is True else f'"started" is {_shown(value)}, not true'


def _on_done(ctx: _Context, value: Any) -> str | None:
    if value is not True:
        return f'"done" is {_shown(value)}, not true'
    ctx.done = True
    return None


def _on_test(ctx: _Context, value: Any) -> str | None:
    """A test's result: a verdict, or for a test the kit judges itself, an observation that
    the judge, run here, decides on; a "pass" sent for such a test is forged and fails."""
    if not isinstance(value, dict):
        return f"a test result that is not an object ({type(value).__name__})"
    name, results = value.get("name"), ctx.results
    if name not in ctx.tests:
        return f"a result for {_shown(name)}, which is not a graded test being run"
    if name in results:
        return f"a second result for {name}"
    if not isinstance(value.get("seconds", 0), (int, float)):
        return f"the result for {name} has 'seconds' {_shown(value.get('seconds'))}, not a number"
    if name in ctx.judges and ("observation" in value or value.get("passed") is not False):
        if "observation" in value:
            ctx.observed.append((name, value["observation"]))
            passed, message = False, "Not judged yet."  # judge_observations fills it in
        else:
            passed, message = (
                False,
                "The learner side sent a verdict instead of observations for this test; only "
                "the grader decides whether a test passes.",
            )
    elif not isinstance(value.get("passed"), bool):
        return f"the result for {name} has 'passed' {_shown(value.get('passed'))}, not true/false"
    elif not isinstance(value.get("message"), str):
        return f"the result for {name} has 'message' {_shown(value.get('message'))}, not text"
    else:
        passed, message = value["passed"], value["message"]
    results[name] = {
        "name": name,
        "passed": passed,
        "message": "Tests Passed" if passed else clean_text(message, secrets=ctx.secrets),
        "seconds": _seconds(value),
    }
    return None


def _on_error(ctx: _Context, value: Any) -> str | None:
    """A definition cell's error: it must name a cell that ran, once, with a plain error name,
    a line number or none, and a text."""
    if not isinstance(value, dict):
        return f"a cell error that is not an object ({type(value).__name__})"
    number, errors = value.get("cell"), ctx.errors
    if number not in ctx.cells:
        return f"an error for cell {_shown(number)}, which is not a cell that ran"
    if number in errors:
        return f"a second error for cell {number}"
    if len(errors) >= MAX_ERRORS:
        return f"an error for cell {number}, over the {MAX_ERRORS} errors a report keeps"
    error, line = value.get("error"), value.get("line")
    if not isinstance(error, str) or not re.fullmatch(r"[A-Za-z_][\w.]{0,60}", error):
        return f"the error of cell {number} is named {_shown(error)}, not an exception's name"
    if line is not None and not (isinstance(line, int) and 0 < line < 10**7):
        return f"the error of cell {number} is at line {_shown(line)}, not a line number"
    if not isinstance(value.get("text"), str):
        return f"the error of cell {number} has 'text' {_shown(value.get('text'))}, not text"
    errors[number] = {
        "cell": number,
        "error": error,
        "line": line,
        "message": clean_text(value["text"], secrets=ctx.secrets),
        "cell_starts": clean_text(ctx.cells[number].excerpt, 80),
    }
    return None


# One handler per kind of line the learner side sends: it takes the line's value, records what
# it accepts, and returns what was wrong with the value, or None.
_HANDLERS: dict[str, Callable[[_Context, Any], str | None]] = {
    "started": _on_started,
    "done": _on_done,
    "test": _on_test,
    "error": _on_error,
}


def _problem_with_line(ctx: _Context, line: bytes) -> str | None:
    """Handle one line from the learner side; what was wrong with it, or None."""
    if len(line) > MAX_LINE:
        return f"{len(line) / 1e6:.0f} MB long, over the {MAX_LINE / 1e6:.0f} MB a line may be"
    try:
        item = json.loads(line)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        return f"not JSON ({clean_text(str(err), 120)})"
    if not isinstance(item, dict) or len(item) != 1:
        what = f"object with {len(item)} keys" if isinstance(item, dict) else type(item).__name__
        return f"a JSON {what}, not an object with one key"
    ((kind, value),) = item.items()
    handler = _HANDLERS.get(kind)
    if handler is None:
        return f"an unknown kind of line, {_shown(kind)}"
    return handler(ctx, value)


def _collect(
    stdout: bytes,
    tests: list[GradedTest],
    cells: list[Cell],
    seed: int | None = None,
    original: bool = False,
    derived: bool = True,
) -> Judged:
    """Validate what the learner side sent, line by line (_HANDLERS), and judge it.

    Each line must be one JSON object of a known kind; a result must name a graded test and
    carry a bool and a string; an error must name a cell that ran. Anything else is dropped,
    and what was wrong with it is one of the `problems` ("line 4: ..."). With a `seed` (the one
    the learner side observed with), the tests the kit judges itself (judged_tests) pass only
    on an observation that their judge, run here, accepts: a verdict of "passed" sent for them
    counts as a failure. The observations are judged once every line is read, each in a process
    of its own under a deadline and a memory cap (judge_observations). `derived`: the judges
    get the facts that pick their checks as read from the source of `cells`
    (helpers.instructor.selectors), not as the learner side reports them (False: the reports
    pick, as in the notebook).
    """
    facts = None
    if derived and seed is not None:
        from helpers.instructor.selectors import derive

        facts = derive(cells, tests, seed, original)
    ctx = _Context(
        tests={t.name: t for t in tests},
        cells={c.number: c for c in cells},
        judges=judged_tests({t.module for t in tests}, original, facts) if seed is not None else {},
        seed=seed or 0,
        secrets=_environment_secrets(),
    )
    problems = []
    for number, line in enumerate(stdout.split(b"\n")[:MAX_LINES], start=1):
        if line.strip():
            problem = _problem_with_line(ctx, line)
            if problem:
                problems.append(f"line {number}: {problem}")
    verdicts = judge_observations(
        [(ctx.judges[name], observation) for name, observation in ctx.observed],
        ctx.seed,
        ctx.secrets,
    )
    for (name, _), (passed, message) in zip(ctx.observed, verdicts):
        ctx.results[name].update(
            passed=passed,
            message="Tests Passed" if passed else clean_text(message, secrets=ctx.secrets),
        )
        if passed and message.startswith("Tests Passed Note: "):  # the judge's note
            ctx.results[name]["note"] = message.removeprefix("Tests Passed Note: ")
    return Judged(ctx.results, [ctx.errors[n] for n in sorted(ctx.errors)], ctx.done, problems)


def judge(run: LearnerRun, plan: Plan) -> Judged:
    """Step 3: validate the learner side's answer and judge its observations (_collect)."""
    return _collect(run.outcome.stdout, plan.tests, plan.cells, run.seed, plan.original)


# ---------------------------------------------------------------- 4. report


def build_report(
    submission: Path | str, plan: Plan, run: LearnerRun, judged: Judged, deadline: float
) -> dict[str, Any]:
    """Step 4: the report dict (see grade): a row per test in the kit's order, a test with no
    result failing with why, and notes on anything unusual in how grading went."""
    outcome, notes = run.outcome, list(plan.notes)
    if outcome.timed_out:
        why = f"the submission's deadline of {deadline:g} s ran out before this test finished"
    elif outcome.overflow:
        why = "the learner side sent more output than the grader reads"
    elif not judged.done:
        ended = how_it_ended(outcome.returncode)
        why = f"the learner side stopped before this test finished ({ended})"
    else:
        why = "the learner side sent no result for this test"
    if judged.problems:
        shown = "; ".join(judged.problems[:MAX_PROBLEMS_SHOWN])
        more = len(judged.problems) - MAX_PROBLEMS_SHOWN
        notes.append(
            f"{len(judged.problems)} line(s) from the learner side were not valid results and "
            f"were ignored: {shown}" + (f"; and {more} more." if more > 0 else ".")
        )
    if "NOT capped" in run.sandbox:  # the instructor should know the sandbox ran with less
        notes.append(f"The sandbox ran with a cap missing: {run.sandbox}.")
    if not judged.done or outcome.overflow or outcome.timed_out:
        notes.append(f"Grading did not finish normally: {why}.")
        stderr = clean_text(
            outcome.stderr.decode("utf-8", "replace")[-600:], 600, _environment_secrets()
        )
        if stderr:
            notes.append(f"Last words of the learner side: {stderr}")
    ordered = [
        judged.results.get(t.name)
        or {"name": t.name, "passed": False, "message": f"No result: {why}.", "seconds": 0.0}
        for t in plan.tests
    ]
    # a passed test's note (a choice the original course left open): one report note each; what
    # the original train's says of its signature is the plan's note already (original_train_note)
    for r in ordered:
        note = r.pop("note", None)
        if note and r["name"] == "test_train" and plan.original:
            note = note.partition(ORIGINAL_TRAIN_CHECKED)[2].strip()
        if note:
            notes.append(f"{r['name']}: {note}")
    return {
        "notebook": str(submission),
        "passed": sum(r["passed"] for r in ordered),
        "total": len(ordered),
        "tests": ordered,
        "definition_errors": judged.definition_errors,
        "cells": [c.number for c in plan.cells],
        "notes": notes,
        "sandbox": run.sandbox,
        "seconds": round(outcome.seconds, 2),
    }


# ---------------------------------------------------------------- command line


def format_report(report: dict[str, Any]) -> str:
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


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value

    return parse


def add_grading_arguments(parser: argparse.ArgumentParser) -> None:
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


def main(argv: list[str] | None = None) -> int:
    """Command line: grade, print the rubric, write --json; exit 0 all passed, 1 any failed, 2."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers grade",
        description="Grade a learner's notebook with the kit's graded tests in a bubblewrap "
        "sandbox, each test in its own process with a time limit, and print a rubric.",
        epilog="Exit status: 0 when every test passes, 1 when any fails, 2 for a bad command line, "
        "a notebook that cannot be read, or no sandbox. Grade a whole folder with "
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
    except (FileNotFoundError, ValueError, box.SandboxUnavailable) as err:
        print(f"grade: error: {err}", file=sys.stderr)
        return 2
    except (RecursionError, MemoryError) as err:
        # a notebook nested or sized past what the grader's own Python can read
        what = "too deeply nested" if isinstance(err, RecursionError) else "too large"
        print(
            f"grade: error: {args.submission} is {what} for the grader to read; no grade.",
            file=sys.stderr,
        )
        return 2
    print(format_report(report))
    if args.json:
        with atomic_write(args.json, "w") as f:
            f.write(json.dumps(report, indent=2) + "\n")
    return 0 if report["passed"] == report["total"] else 1
