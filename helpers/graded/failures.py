"""How a graded test fails: the failure type, and the learner's exceptions as plain messages.

Serves every graded test of problem_unittests.py and part2_unittests.py (every notebook step
with a test, from the notebook step "Scale the images to [-1, 1]" to "The training loop"): a
failure shows the message and the learner's own cell and line, never the kit's frames.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec

import torch

__all__ = [
    "KIT_FRAMES",
    "SHOWN",
    "WIDTH",
    "GradedTestFailure",
    "ReportedFailure",
    "calling",
    "check",
    "describe",
    "judged",
    "malformed",
    "passed",
    "render_failure",
    "reported",
]

_P = ParamSpec("_P")


class GradedTestFailure(AssertionError):
    """A graded test did not pass. The message is written for the learner.

    In Jupyter (and under nbval) it is shown without the kit's traceback: the message
    first, then, when the learner's own code raised, the cell and line where it did.
    """

    def __init__(self, message: str, learner_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.learner_frames = _learner_frames(learner_error)

    def _render_traceback_(self) -> list[str]:
        """IPython calls this instead of printing a traceback (the lines it shows, in order)."""
        try:
            return render_failure(self)
        except Exception:  # never hide the message behind a formatting problem
            return [f"{type(self).__name__}: {self}"]


class ReportedFailure(GradedTestFailure):
    """A failed check on a value the learner's side only reports, which no record the judge
    replays can confirm (a patch of the kit's observers could report anything there).

    The notebook's test fails as for any other check; the grader gives the point and its
    report says the check is not scored (helpers.instructor.grade). `note`: the judge's note
    for the learner, as it would have returned it.
    """

    def __init__(self, message: str, note: str | None = None) -> None:
        super().__init__(message)
        self.note = note


# Frames from these are the kit's, not the learner's (folders end with a separator, so a
# learner's helpers_mine.py beside the kit is not taken for the kit's helpers/).
_HELPERS = Path(__file__).resolve().parents[1]
KIT_FRAMES = (
    str(_HELPERS) + os.sep,
    str(_HELPERS.parent / "problem_unittests.py"),
    str(_HELPERS.parent / "part2_unittests.py"),  # part 2's graded tests
)
WIDTH = 100  # wrap long messages: error outputs do not always wrap


def _library_dirs() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    return tuple(
        {
            str(Path(paths[k]).resolve()) + os.sep
            for k in ("stdlib", "platstdlib", "purelib", "platlib")
        }
    )


def _learner_frames(err: BaseException | None, keep: int = 2) -> list[tuple[str, int, str]]:
    """(file, line number, function) of the deepest frames of `err` that are the learner's code.

    The learner's code is what is neither the kit (problem_unittests.py, helpers/) nor Python's
    or a library's (torch): in Jupyter, the notebook's cells.
    """
    import traceback

    if err is None or err.__traceback__ is None:
        return []
    skip = KIT_FRAMES + _library_dirs()
    frames = []
    for frame, lineno in traceback.walk_tb(err.__traceback__):
        name = frame.f_code.co_filename
        if name.startswith("<frozen") or str(Path(name).resolve()).startswith(skip):
            continue
        frames.append((name, lineno, frame.f_code.co_name))
    return frames[-keep:]


def _where(filename: str, lineno: int) -> str:
    """'Cell In[5], line 3' for a Jupyter cell (as IPython writes it), 'Cell 5, line 3' for a
    cell run by helpers.notebook.run_cells, else 'File "...", line 3'."""
    try:
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821  (only inside IPython)
        label = shell.compile.format_code_name(filename)
    except Exception:
        label = None
    if label:
        return f"{label[0]} {label[1]}, line {lineno}"
    if filename.startswith("<cell "):  # helpers.notebook.run_cells (grading, headless runs)
        return f"Cell {filename[6:-1]}, line {lineno}"
    return f'File "{filename}", line {lineno}'


def _test_name(err: BaseException) -> str | None:
    """The graded test the failure came from (test_scale, ...), or None."""
    import traceback

    names = [
        f.f_code.co_name
        for f, _ in traceback.walk_tb(err.__traceback__)
        if f.f_code.co_name.startswith("test_")
        and Path(f.f_code.co_filename).name in ("problem_unittests.py", "part2_unittests.py")
    ]
    return names[0] if names else None


def render_failure(err: GradedTestFailure) -> list[str]:
    """The failure as a few short lines: what failed and why, then the learner's line if any."""
    import linecache
    import textwrap

    test = _test_name(err)
    # a ReportedFailure reads as any other failure in the notebook
    head = "GradedTestFailure" + (f" in {test}" if test else "") + ": "
    lines = []
    for i, paragraph in enumerate(str(err).split("\n")):
        lines += textwrap.wrap((head if i == 0 else "") + paragraph, WIDTH) or [""]
    if err.learner_frames:
        lines.append("Your code raised it here:")
        for filename, lineno, function in err.learner_frames:
            lines.append(f"  {_where(filename, lineno)}, in {function}")
            source = linecache.getline(filename, lineno).strip()
            if source:
                lines.append(f"    {source}")
    return lines


def check(condition: object, message: str) -> None:
    """Fail the graded test with `message` (written for the learner) unless `condition` holds."""
    if not condition:
        raise GradedTestFailure(message)


class _Reported:
    """The first failed check on a reported value in the judge now running (judged)."""

    def __init__(self) -> None:
        self.failure: GradedTestFailure | None = None


_REPORTED: contextvars.ContextVar[_Reported | None] = contextvars.ContextVar(
    "reported", default=None
)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Around a judge's checks on values the learner's side only reports (which a patch of the
    kit's observers could set to anything). In a judge made with `judged`, a failure here does
    not stop it: its derived checks (from the record, the data, its own seed) still run, in the
    same order. Elsewhere the failure is raised as any other."""
    state = _REPORTED.get()
    try:
        yield
    except GradedTestFailure as failure:
        if state is None:
            raise
        if state.failure is None:
            state.failure = failure


def judged(judge: Callable[_P, str | None]) -> Callable[_P, str | None]:
    """A judge (returning its note for the learner, or None) that only its derived checks score.

    The test fails with the first failed check's message, as if the judge had stopped there (the
    notebook's messages are unchanged). When every failed check is under `reported()`, it fails
    as a ReportedFailure carrying the judge's note, which the grader does not score; when a
    derived check fails too (or a value it needs is missing, as an observer stops at a failed
    check), as that first GradedTestFailure.
    """

    @functools.wraps(judge)
    def judging(*args: _P.args, **kwargs: _P.kwargs) -> str | None:
        state = _Reported()
        token = _REPORTED.set(state)
        try:
            note = judge(*args, **kwargs)
        except (ReportedFailure, MemoryError):
            raise  # the grader refuses an observation that needs too much memory, as such
        except Exception as err:
            if state.failure is None:
                raise
            raise state.failure from err
        finally:
            _REPORTED.reset(token)
        if state.failure is not None:
            unscored = ReportedFailure(str(state.failure), note)
            unscored.learner_frames = state.failure.learner_frames
            raise unscored from state.failure
        return note

    return judging


def passed() -> None:
    """What a graded test prints when every check held."""
    print("Tests Passed")


@contextlib.contextmanager
def calling(
    what: str, hint: str = "", shape_hint: str = "", hints: tuple[tuple[str, str], ...] = ()
) -> Iterator[None]:
    """Turn an exception raised by the learner's code into a failure that says where it came from.

    `hint` names the likely cause when the caller knows it better than the generic guesses;
    `shape_hint` does so only for errors about sizes or shapes; `hints` are (words, hint) pairs
    tried first: the hint of the first whose words the error's "Type: message" contains
    (lower case).
    """
    try:
        yield
    except AssertionError:
        raise
    except NotImplementedError as err:
        raise GradedTestFailure(
            f"{what} is not implemented yet ({err}). Write it in the cell above, run that cell, "
            "then run this test again."
        ) from None
    except Exception as err:  # anything else the learner's code raised
        detail = str(err).strip().split("\n")[0]
        if len(detail) > 200:
            detail = detail[:200] + " ..."
        text = f"{type(err).__name__}: {detail}"
        lowered = text.lower()
        if chosen := next((h for words, h in hints if words in lowered), ""):
            hint = chosen
        elif any(word in lowered for word in ("cuda", "device", "nvidia", "driver")):
            hint = (
                "Likely cause: a tensor made on a fixed device (for example with .cuda()). Create "
                "tensors on the input's device, e.g. torch.ones_like(x) or torch.zeros(n, "
                "device=x.device)."
            )
        elif "backward through the graph a second time" in lowered:
            hint = (
                "Likely cause: the D step's fakes are not detached, so d_loss.backward() goes "
                "through G and frees its graph, and the G step then reuses the same fake_images. "
                "Detach them in the D step: fake_loss(D(fake_images.detach()))."
            )
        elif isinstance(err, TypeError) and (called := _signature_mismatch(detail)):
            hint = (
                f"Likely cause: a signature mismatch: {called}() is called with arguments its "
                "parameters do not take. Compare its def line with the call (the names, their "
                "order, which have defaults); the notebook gives each function's signature."
            )
        elif "should be between 0 and 1" in lowered:
            hint = (
                "Likely cause: nn.BCELoss (or F.binary_cross_entropy) on D's logits. BCELoss "
                "takes probabilities in [0, 1], but D returns logits, any real number: use "
                "nn.BCEWithLogitsLoss(), which applies the sigmoid itself."
            )
        elif not hint and ("shape" in lowered or "size" in lowered):
            hint = shape_hint or (
                "Likely cause: a layer's size or a reshape does not match the shapes given above."
            )
        end = "" if text.endswith(".") else "."
        if hint:  # the likely cause first, then what Python said
            message = f"{what} raised {type(err).__name__}. {hint} The error: {detail}{end}"
        else:
            message = f"{what} raised {text}{end}"
        raise GradedTestFailure(message, learner_error=err) from err


def _signature_mismatch(detail: str) -> str:
    """The function a TypeError's message says was called with arguments it does not take
    ("conv() missing 2 required positional arguments: ..." gives "conv"), or ""."""
    import re

    match = re.match(
        r"([\w.]+)\(\) (missing \d+ required|takes \d+|takes from|got an unexpected keyword|"
        r"got multiple values)",
        detail,
    )
    return match.group(1).removesuffix(".__init__") if match else ""


# A record the learner side sent that the judge cannot read: a forged or broken observation.
# The message's first sentence stays the same for every such record (tests match on it); what
# follows says which part was wrong, for the instructor who reads it.

SHOWN = 60  # characters of a value shown in a message


def describe(value: object, limit: int = SHOWN) -> str:
    """`value` in a few words for a message: a tensor by its shape and dtype, a dict by its
    keys, a long list by its length, anything else by its repr; never longer than about
    `limit` characters."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"a {dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, dict):
        text = f"a dict with the keys {sorted(map(str, value))}"
    elif isinstance(value, (list, tuple)) and not all(
        v is None or isinstance(v, (bool, int, float, str)) for v in value
    ):
        kinds = sorted({type(v).__name__ for v in value})
        text = f"a {type(value).__name__} of {len(value)} items ({', '.join(kinds)})"
    elif value is None or isinstance(value, (bool, int, float, str, list, tuple)):
        text = repr(value)
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def malformed(
    what: str, part: str, expected: str, got: object, aside: str = ""
) -> GradedTestFailure:
    """The failure for a record the judge cannot read, to raise: "{what} came back
    malformed{aside}." then "{part} should be {expected}, got {describe(got)}."

    `what` names the record ("The record of the training run"), `part` the piece that is wrong
    ("the kind of event 4"), `expected` what the judge reads there, `got` what came instead.
    """
    shown = describe(got)
    end = "" if shown.endswith("...") else "."
    return GradedTestFailure(
        f"{what} came back malformed{aside}. {part[:1].upper()}{part[1:]} should be {expected}, "
        f"got {shown}{end}"
    )
