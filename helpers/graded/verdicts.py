"""Graded tests in two halves: OBSERVE runs the learner's code, JUDGE decides
(helpers.instructor.grade).

A graded test that can be judged outside the learner's process is written as two functions:

- ``observe_x(*args, seed)`` runs the learner's code on inputs drawn from `seed` and returns
  plain data (a dict of numbers, strings, lists and CPU tensors). It checks nothing: when the
  learner's code raises, it stores the failure (``Observation.fail``) and stops there.
- ``judge_x(obs, seed)`` is a pure function of that data and the seed: every check and every
  message of the test. It never calls the learner's code and prints nothing (it may return a
  note for the learner), so the grader can judge in several threads at once.

In the notebook, ``test_x(...)`` is ``judge_x(observe_x(..., seed=0), seed=0)`` in the learner's
own process: one source for both uses. The grader runs OBSERVE in the sandbox with a seed it drew
and the learner side cannot predict, carries the observation back as JSON (``encode``: tensors
as raw little-endian bytes in base64, never a pickle), checks it (``decode``: known dtypes,
shapes that match the bytes, size caps) and runs JUDGE in its own trusted process.

A tests module lists its halves in ``VERDICTS = {"test_x": (observe_x, judge_x)}``; tests not
listed there are still decided in the sandbox.
"""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from helpers.graded.failures import GradedTestFailure

__all__ = [
    "DTYPES",
    "MAX_ARRAY_BYTES",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_STRING",
    "NOTEBOOK_SEED",
    "MalformedObservation",
    "Observation",
    "decode",
    "encode",
    "observing",
    "provide_reference",
    "reference",
    "selected",
]

NOTEBOOK_SEED = 0  # in the notebook: the same inputs every run, so a message reads the same
DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_}
MAX_ARRAY_BYTES = 32 * 1024 * 1024  # all arrays of one observation together
MAX_DEPTH = 16
MAX_ITEMS = 200_000  # numbers, strings, list items and dict entries of one observation
MAX_STRING = 4096


# Answers a judge compares with that must not ship to learners (a learner could return them as
# their own): the grader's trusted side provides them (helpers.instructor.references) before it
# judges; in the notebook the tests use the answers stored for NOTEBOOK_SEED alone.
_REFERENCES: dict[str, Callable[..., Any]] = {}


def provide_reference(name: str, function: Callable[..., Any]) -> None:
    """Make `function` the reference answer `name` that judges ask for with reference(name)."""
    _REFERENCES[name] = function


def reference(name: str) -> Callable[..., Any]:
    """The reference answer `name` (provide_reference); RuntimeError where none was provided:
    outside the grader, the tests judge NOTEBOOK_SEED only."""
    if name not in _REFERENCES:
        raise RuntimeError(
            f"The reference {name!r} is on the grader's side only: outside the grader, judge the "
            f"notebook's seed ({NOTEBOOK_SEED})."
        )
    return _REFERENCES[name]


def selected(
    reported: object,
    derived: dict[str, Any] | None,
    fact: str,
    lenient: object,
    unreadable: str,
    altered: str,
) -> object:
    """The value of a fact about the learner's code that picks which checks a judge runs, where
    `lenient` is the value that skips some (a real_loss without smooth, the original course's
    train).

    In the notebook (`derived` None) it is the learner side's `reported` value. In the grader,
    `derived` holds the facts read from the notebook's source (helpers.instructor.selectors), and
    a patch of the kit's observers cannot pick the lenient branch: a reported value that differs
    from the source's fails the test with `altered`; where the source does not show the fact
    (None), the lenient value fails it with `unreadable`, and the other runs every check.
    """
    if derived is None:
        return reported
    source = derived.get(fact)
    if source is None:
        if reported == lenient:
            raise GradedTestFailure(unreadable)
        return reported
    if source != reported:
        raise GradedTestFailure(altered)
    return source


class MalformedObservation(ValueError):
    """What came back from the learner side is not an observation the judge can read."""


class Observation(dict[str, Any]):
    """The data OBSERVE collects, in order; ``fail`` records the learner's failure that stopped it.

    ``need(key)`` is how JUDGE reads: the value, or, when observing stopped before `key`, the
    failure that stopped it (so JUDGE raises it at the place the test would have), or a
    MalformedObservation when neither is there.
    """

    def fail(self, failure: GradedTestFailure) -> Observation:
        """Record the failure that stopped OBSERVE; returns the observation."""
        self["failure"] = failure
        return self

    def need(self, key: str) -> Any:
        """The value at `key` for JUDGE (see the class)."""
        if key in self:
            return self[key]
        failure = self.get("failure")
        if isinstance(failure, AssertionError):
            raise failure
        raise MalformedObservation(f"the observation has no {key!r}")


@contextlib.contextmanager
def observing(obs: Observation) -> Iterator[Observation]:
    """Around OBSERVE's body: the first graded failure (the learner's code raised, see
    failures.calling) is recorded in `obs` and ends the observation; JUDGE raises it in turn."""
    try:
        yield obs
    except GradedTestFailure as failure:
        obs.fail(failure)


# ---------------------------------------------------------------- JSON both ways


def encode(obj: object, _depth: int = 0) -> Any:
    """An observation as JSON-ready data: tensors and arrays become {"$array": ...}, a failure
    {"$failure": message}. Raises TypeError for anything else (a bug of the observer)."""
    if _depth > MAX_DEPTH:
        raise TypeError("observation nested too deep")
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$float": repr(obj)}
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        if obj.is_floating_point() and obj.dtype not in (torch.float32, torch.float64):
            obj = obj.float()  # float16, bfloat16: numpy has no bfloat16
        elif not obj.is_floating_point() and obj.dtype not in (torch.int64, torch.bool):
            obj = obj.long() if not obj.is_complex() else obj.real.float()
        obj = obj.numpy()
    if isinstance(obj, np.ndarray):
        name = str(obj.dtype)
        if name not in DTYPES:
            obj, name = obj.astype(np.float32), "float32"
        data = np.ascontiguousarray(obj, dtype=np.dtype(DTYPES[name]).newbyteorder("<"))
        return {
            "$array": {
                "dtype": name,
                "shape": list(obj.shape),
                "data": base64.b64encode(data.tobytes()).decode("ascii"),
            }
        }
    if isinstance(obj, GradedTestFailure):
        return {"$failure": str(obj)}
    if isinstance(obj, (list, tuple)):
        return [encode(x, _depth + 1) for x in obj]
    if isinstance(obj, dict):
        return {str(k): encode(v, _depth + 1) for k, v in obj.items()}
    raise TypeError(f"cannot send {type(obj).__name__} in an observation")


def decode(data: object, clean: Callable[[str], str] = str) -> Observation:
    """The Observation that `data` (parsed JSON from the learner side) stands for, checked.

    Tensors come back as CPU tensors of a known dtype whose shape matches their bytes; failures
    as GradedTestFailure with their message passed through `clean`. Raises MalformedObservation
    for anything else, too deep, too many items or too many bytes.
    """
    budget = {"bytes": MAX_ARRAY_BYTES, "items": MAX_ITEMS}

    def spend(kind, n):
        budget[kind] -= n
        if budget[kind] < 0:
            raise MalformedObservation(f"the observation holds too many {kind}")

    def walk(x, depth):
        if depth > MAX_DEPTH:
            raise MalformedObservation("the observation is nested too deep")
        spend("items", 1)
        if x is None or isinstance(x, (bool, int, float)):
            return x
        if isinstance(x, str):
            if len(x) > MAX_STRING:
                raise MalformedObservation("the observation holds a string that is too long")
            return x
        if isinstance(x, list):
            return [walk(v, depth + 1) for v in x]
        if not isinstance(x, dict):
            raise MalformedObservation(f"unexpected {type(x).__name__} in the observation")
        if set(x) == {"$float"} and x["$float"] in ("nan", "inf", "-inf"):
            return float(x["$float"])
        if set(x) == {"$failure"} and isinstance(x["$failure"], str):
            return GradedTestFailure(clean(x["$failure"]))
        if set(x) == {"$array"}:
            return array(x["$array"])
        if any(k.startswith("$") for k in x):
            raise MalformedObservation("unknown special entry in the observation")
        return {k: walk(v, depth + 1) for k, v in x.items()}

    def array(spec):
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data"}:
            raise MalformedObservation("an array without dtype, shape and data")
        dtype, shape, text = spec["dtype"], spec["shape"], spec["data"]
        if dtype not in DTYPES or not isinstance(text, str):
            raise MalformedObservation(f"an array of unknown dtype {str(dtype)[:20]!r}")
        if (
            not isinstance(shape, list)
            or len(shape) > 8
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
        ):
            raise MalformedObservation("an array with a malformed shape")
        itemsize = np.dtype(DTYPES[dtype]).itemsize
        size = math.prod(shape) * itemsize
        spend("bytes", size)
        if len(text) > 4 * (size // 3 + 1) + 4:
            raise MalformedObservation("an array with more data than its shape holds")
        try:
            raw = base64.b64decode(text, validate=True)
        except ValueError:
            raise MalformedObservation("an array whose data is not base64") from None
        if len(raw) != size:
            raise MalformedObservation(
                f"an array of shape {shape} with {len(raw)} bytes instead of {size}"
            )
        values = np.frombuffer(raw, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<"))
        return torch.from_numpy(values.astype(DTYPES[dtype]).reshape(shape))

    if not isinstance(data, dict):
        raise MalformedObservation("the observation is not a JSON object")
    return Observation(walk(data, 0))
