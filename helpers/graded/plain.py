"""The learner's values as plain data: what an observation carries from the sandbox to the judge.

Serves the observe halves of both parts' graded tests (helpers/graded/verdicts.py): tensors,
numbers and text as they are, an optimizer's facts for test_optimizers (the notebook's "The
optimizers" step), a training run's logged numbers for test_train, and tensor_like for
test_scale (the notebook step "Scale the images to [-1, 1]").
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn as nn

from helpers.graded.failures import check

__all__ = ["logged_numbers", "optimizer_facts", "plain", "tensor_like", "type_name"]


def plain(value: object, _depth: int = 0) -> Any:
    """What the learner's code returned, as data: tensors detached on the CPU, lists and tuples
    item by item, plain numbers and text as they are, anything else as {"type": its name}."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and _depth < 4 and len(value) <= 1000:
        return [plain(v, _depth + 1) for v in value]
    return {"type": type(value).__name__}


def type_name(value: object) -> str:
    """The type name of what the learner's code returned, from its plain() form."""
    if isinstance(value, torch.Tensor):
        return "Tensor"
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return value["type"]
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def tensor_like(value: object, reference: torch.Tensor, what: str) -> torch.Tensor:
    """`value` (observed) when it is a tensor shaped like `reference`, else a failure naming it."""
    check(
        isinstance(value, torch.Tensor) and value.shape == reference.shape,
        f"{what} should return a tensor of shape {tuple(reference.shape)}, got "
        + (
            f"shape {tuple(value.shape)}."
            if isinstance(value, torch.Tensor)
            else f"a {type(value).__name__}."
        ),
    )
    return cast(torch.Tensor, value)


def optimizer_facts(
    opt: torch.optim.Optimizer | None, D: nn.Module, G: nn.Module
) -> dict[str, Any] | None:
    """An optimizer as data: its class, and per parameter group the learning rate, the betas and
    which parameters it holds (["D", i] for D's i-th parameter, ["G", i], or ["other", -1])."""
    if opt is None:
        return None
    which = {id(p): ["G", i] for i, p in enumerate(G.parameters())}
    which.update({id(p): ["D", i] for i, p in enumerate(D.parameters())})
    groups: list[dict[str, Any]] = []
    for group in getattr(opt, "param_groups", []):
        groups.append(
            {
                "lr": plain(group.get("lr")),
                "betas": plain(group.get("betas")),
                "params": [which.get(id(p), ["other", -1]) for p in group.get("params", [])],
            }
        )
    return {
        "adam": isinstance(opt, torch.optim.Adam),
        "type": type(opt).__name__,
        "groups": groups,
    }


def logged_numbers(record: object) -> list[float | None] | dict[str, str]:
    """One logged record as a list of floats (None where an entry is not a number)."""
    if not isinstance(record, (tuple, list)):
        return {"type": type(record).__name__}
    numbers: list[float | None] = []
    for value in list(record)[:8]:
        try:
            numbers.append(float(value))
        except (TypeError, ValueError, RuntimeError):
            numbers.append(None)
    return numbers
