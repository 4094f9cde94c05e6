"""The learner side's entry point and the scheduler of the test processes, inside the sandbox.

``learner_side()`` reads the job (JSON) on stdin, runs each graded test in its own process
(helpers.sandboxed.tests_process), `workers` at a time, each with a time limit, so an endless
loop or a crash (even a segfault) in one learner function fails that test only, and answers in
JSON lines on stdout. The processes start from a fork server that has already imported torch
and the kit (POSIX), so a test costs little more than its own run.

Nothing here is trusted by the grader (helpers.instructor.grade), which validates every line.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, cast

from helpers.notebook import ROOT
from helpers.sandboxed.job import LOG_TAIL, MAX_CHILD_REPLY, MAX_JOB, Cell, GradedTest, how_it_ended
from helpers.sandboxed.tests_process import one_test_process

__all__ = ["learner_side"]


def _context(preload: Iterable[str]) -> ForkServerContext | SpawnContext:
    """A multiprocessing context whose new processes start with torch and the kit imported."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    return ctx


def _tail(path: str, size: int = LOG_TAIL) -> str:
    """The last `size` bytes of a file, as text ('' when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - size))
            return f.read(size).decode("utf-8", "replace")
    except OSError:
        return ""


def _read_log(
    path: str, cells: Collection[int] = (), tests: Collection[str] = ()
) -> tuple[str | None, list[tuple[int, int]]]:
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


def _stack_text(frames: list[tuple[int, int]], cell: int | None = None) -> str:
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


@contextlib.contextmanager
def _starting_processes() -> Iterator[None]:
    """Around Process.start(): help the fork server import the kit, and leave __main__ alone.

    The fork server, started by the first start(), imports the preloaded modules with the
    path and environment it starts with (Python 3.11 ignores our sys.path), so the kit root goes
    on PYTHONPATH and matplotlib gets a backend that needs no display. And
    multiprocessing re-runs this program's __main__ (pytest, say) in every new process to find
    functions defined there; ours all live in helpers.sandboxed, so it is hidden meanwhile.
    """
    main = sys.modules.get("__main__")
    saved: dict[str, Any] = {
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


def _kill(proc: BaseProcess) -> None:
    try:
        os.killpg(cast(int, proc.pid), signal.SIGKILL)  # started: it has a pid
    except (AttributeError, OSError):
        proc.kill()
    proc.join()


def _schedule(
    cells: list[Cell],
    tests: list[GradedTest],
    timeout: float,
    workers: int,
    threads: int,
    preload: list[str],
    workdir: str,
    emit: Callable[[str, Any], None],
    seed: int | None = None,
) -> None:
    """Run each of `tests` in its own process, `workers` at a time; emit("test", result) and
    emit("error", definition error) as they come. A definition cell that crashes or hangs its
    process is reported as that cell's error and left out when the test runs again."""
    by_number = {c.number: c for c in cells}
    names = {t.name for t in tests}
    ctx = _context(preload)
    errors: dict[object, dict[str, Any]] = {}  # by cell number, as the processes sent it
    skip: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="dcgan-grade-") as tmp:
        pending, attempt = list(tests), 0
        running: list[dict[str, Any]] = []
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
                proc = ctx.Process(target=one_test_process, args=(job, send), daemon=True)
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
                    else how_it_ended(proc.exitcode)
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


def learner_side() -> None:
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

    def emit(kind: str, item: Any) -> None:
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
