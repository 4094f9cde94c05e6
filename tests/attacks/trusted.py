"""Crafted observations and notebooks against the grader's trusted side
(tests/test_attacks_trusted.py, benchmarks/judge_bounds.py): each is what a hostile learner side
could send back, made from the solution's own honest observation with one part changed.

An observation here is the wire form (verdicts.encode, through JSON): what the grader's judge
reads. Each maker takes the solution's observation of its test (decoded, so tensors are
tensors) and returns a forged one, decoded too; `wire` encodes it again.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import torch

import problem_unittests as tests
from helpers.graded import verdicts
from helpers.instructor import references
from helpers.notebook import graded_test_calls, load_solution, read_notebook

references.install()  # these observations are judged as the grader judges them, at its seeds

SEED = 4242  # the grader's seed in these attacks


def solution_observations(names: list[str] | None = None, seed: int = SEED) -> dict[str, Any]:
    """{test name: the solution's observation, decoded} for part 1's judged tests."""
    calls = graded_test_calls(read_notebook())
    with contextlib.redirect_stdout(io.StringIO()):
        solution = load_solution()
        return {
            name: over_the_wire(
                tests.VERDICTS[name][0](*[solution[a] for a in calls[name]], seed=seed)
            )
            for name in names or sorted(tests.VERDICTS)
        }


def wire(obs: dict[str, Any]) -> Any:
    """An observation as the learner side sends it: encoded and through JSON."""
    return json.loads(json.dumps(verdicts.encode(obs)))


def over_the_wire(obs: dict[str, Any]) -> verdicts.Observation:
    """An observation as the judge reads it: encoded, through JSON, decoded."""
    return verdicts.decode(wire(obs))


def _first(obs: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(leaf for leaf in obs["trace"]["leaves"] if leaf["kind"] == kind)


def huge_stride_deconv(generator_obs: dict[str, Any]) -> dict[str, Any]:
    """G's first ConvTranspose2d given stride 16 and a 1x1 kernel with 512 output channels: a
    tiny record whose replay would make a (16, 512, 49, 49) output, 20 M numbers, from a 4x4
    input (with stride 1000 and more channels, the issue's attack took 3.7 GB and more)."""
    leaf = _first(generator_obs, "ConvTranspose2d")
    leaf["attrs"].update(stride=[16, 16], padding=[0, 0], output_padding=[0, 0])
    leaf["state"]["weight"] = torch.zeros(leaf["state"]["weight"].shape[0], 512, 1, 1)
    return generator_obs


def stride_in_odd_forms(generator_obs: dict[str, Any], stride: Any) -> dict[str, Any]:
    """G's first ConvTranspose2d with `stride` as given ([2], [-1, 2], [10**6, 1], ...)."""
    _first(generator_obs, "ConvTranspose2d")["attrs"]["stride"] = stride
    return generator_obs


def odd_rank_input(discriminator_obs: dict[str, Any]) -> dict[str, Any]:
    """D's first conv's call given a 5-dimensional input (no real Conv2d takes one)."""
    call = discriminator_obs["trace"]["calls"][0]
    call["input"] = call["input"][None]
    return discriminator_obs


def flood_of_noise(train_obs: dict[str, Any], extra: int = 400) -> dict[str, Any]:
    """The training run's record with `extra` more G calls and its overflow flag still false:
    the events that made check_fresh_noise quadratic (77-102 s before the cap)."""
    events = train_obs["run"]["events"]
    call = next(e for e in events if e["kind"] == "G")
    events += [
        {"kind": "G", "input": torch.rand_like(call["input"]), "output": call["output"]}
        for _ in range(extra)
    ]
    train_obs["run"]["overflow"] = False
    return train_obs


def many_noise_rows(n_calls: int = 190, rows: int = 64, width: int = 192) -> list[torch.Tensor]:
    """What check_fresh_noise can be given within the event cap: `n_calls` G calls of `rows`
    distinct noise rows each (12 160 rows; pairwise, about 3e10 comparisons)."""
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(rows, width, generator=gen) for _ in range(n_calls)]


def notebook_with_cell(source: str) -> dict[str, Any]:
    """A version 4 notebook of one code cell holding `source`."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [{"cell_type": "code", "metadata": {}, "source": source, "outputs": []}],
    }


def deeply_nested_json(depth: int = 100_000) -> str:
    """A notebook whose JSON nests lists `depth` deep (json.loads overflows its stack)."""
    return '{"nbformat": 4, "cells": [], "x": ' + "[" * depth + "]" * depth + "}"


UNREADABLE = {
    # name: (the file's bytes, a phrase of the one line `grade` prints)
    "deep nesting": (deeply_nested_json().encode(), "nested too deep"),
    "tags that are lists of lists": (
        json.dumps(
            {
                "nbformat": 4,
                "cells": [
                    {"cell_type": "code", "metadata": {"tags": [["solution"]]}, "source": "x=1"}
                ],
            }
        ).encode(),
        "tags should be a list of strings",
    ),
    "metadata that is a list": (
        json.dumps(
            {"nbformat": 4, "cells": [{"cell_type": "code", "metadata": [], "source": ""}]}
        ).encode(),
        "metadata of cell 1 is malformed",
    ),
    "nbformat as a string": (
        json.dumps({"nbformat": "4", "cells": []}).encode(),
        "the grader reads version 4",
    ),
    "not UTF-8": (b'{"nbformat": 4, "cells": ["\xff\xfe"]}', "not valid JSON"),
}
