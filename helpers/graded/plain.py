"""The learner's values as plain data: what an observation carries from the sandbox to the judge.

Serves the observe halves of both parts' graded tests (helpers/graded/verdicts.py): tensors,
numbers and text as they are, an optimizer's facts for test_optimizers (the notebook's "The
optimizers" step), a training run's logged numbers for test_train, and tensor_like for
test_scale (the notebook step "Scale the images to [-1, 1]").
"""

from __future__ import annotations

import copy
import math
from typing import Any, cast

import torch
import torch.nn as nn

from helpers.graded.failures import check

__all__ = [
    "STEP_SAMPLE",
    "check_adam_steps",
    "logged_numbers",
    "optimizer_facts",
    "optimizer_steps",
    "plain",
    "tensor_like",
    "type_name",
]

# The first STEP_SAMPLE numbers of each parameter are recorded before and after the steps of
# optimizer_steps; at most STEP_PARAMETERS parameters a network (the notebook's have about 20).
STEP_SAMPLE = 8
STEP_PARAMETERS = 256
STEPS = 2  # two steps: Adam's first one cancels beta1 and beta2 out (bias correction)


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


def _step_gradients(
    shapes: dict[str, list[list[int]]], seed: int
) -> list[dict[str, list[torch.Tensor]]]:
    """Per step, per network ("D", "G"), per parameter: the gradient of its first sampled numbers,
    drawn from `seed` in a fixed order (the rest of each gradient is 0)."""
    gen = torch.Generator().manual_seed(seed)
    steps = []
    for _ in range(STEPS):
        steps.append(
            {
                net: [
                    torch.randn(min(STEP_SAMPLE, math.prod(shape)), generator=gen)
                    for shape in shapes[net]
                ]
                for net in ("D", "G")
            }
        )
    return steps


def optimizer_steps(
    D: nn.Module,
    G: nn.Module,
    d_optimizer: torch.optim.Optimizer | None,
    g_optimizer: torch.optim.Optimizer | None,
    seed: int,
) -> dict[str, Any] | None:
    """Two real steps of each optimizer alone, on copies, with gradients drawn from `seed` for
    every parameter of both networks.

    Returns {"shapes": {"D": [...], "G": [...]}, "before": {"D": (n,), "G": (m,)}, "after":
    {"D": {"D": (n,), "G": (m,)}, "G": {...}}}: each network's parameter shapes, the first
    STEP_SAMPLE numbers of each of its parameters (concatenated) before the steps, and after
    the two steps of d_optimizer alone (after["D"]) or of g_optimizer alone (after["G"]); or
    None when the optimizers cannot step. Which numbers each optimizer moved tells which
    parameters it holds. The learner's own networks and optimizers are left as they are.
    """
    if d_optimizer is None or g_optimizer is None:
        return None
    try:
        return _steps(D, G, {"D": d_optimizer, "G": g_optimizer}, seed)
    except Exception:  # not an optimizer: its reported facts say what is wrong
        return None


def _steps(
    D: nn.Module, G: nn.Module, optimizers: dict[str, torch.optim.Optimizer], seed: int
) -> dict[str, Any] | None:
    shapes = {net: [list(p.shape) for p in m.parameters()] for net, m in (("D", D), ("G", G))}
    if any(len(s) > STEP_PARAMETERS for s in shapes.values()):
        return None

    def sample(params: dict[str, list[nn.Parameter]]) -> dict[str, torch.Tensor]:
        return {
            net: torch.cat([p.detach().flatten()[:STEP_SAMPLE].float().cpu() for p in ps])
            for net, ps in params.items()
        }

    before, after = None, {}
    for stepped in ("D", "G"):
        # one deepcopy per optimizer, so the copied optimizer holds the copied parameters
        d, g, opt = copy.deepcopy((D, G, optimizers[stepped]))
        params = {"D": list(d.parameters()), "G": list(g.parameters())}
        before = before or sample(params)
        for grads in _step_gradients(shapes, seed):
            for net, ps in params.items():
                for p, grad in zip(ps, grads[net]):
                    full = torch.zeros(p.numel(), dtype=p.dtype)
                    full[: grad.numel()] = grad.to(p.dtype)
                    p.grad = full.view_as(p).to(p.device)
            opt.step()
        after[stepped] = sample(params)
    return {"shapes": shapes, "before": before, "after": after}


def check_adam_steps(
    steps: object,
    sizes: dict[str, int],
    net: str,
    lr: float,
    betas: tuple[float, float],
    seed: int,
    message: str,
) -> None:
    """The steps optimizer_steps recorded for the optimizer of network `net` ("D" or "G") are
    Adam's (eps 1e-8, no weight decay) with `lr` and `betas` on this seed's gradients, replayed
    here on the recorded "before" numbers, and left the other network's numbers as they were.
    `message` opens the failure; the failure names what does not match."""
    check(isinstance(steps, dict), f"{message} no step was recorded.")
    steps = cast(dict[str, Any], steps)
    shapes = steps.get("shapes")
    check(
        isinstance(shapes, dict)
        and all(
            isinstance(shapes.get(n), list)
            and len(shapes[n]) == sizes[n] <= STEP_PARAMETERS
            and all(
                isinstance(s, list) and all(isinstance(d, int) and d >= 0 for d in s)
                for s in shapes[n]
            )
            for n in ("D", "G")
        ),
        f"{message} the recorded parameter shapes do not match the networks' parameters.",
    )
    shapes = cast(dict[str, list[list[int]]], shapes)
    sizes_of = {n: sum(min(STEP_SAMPLE, math.prod(s)) for s in shapes[n]) for n in ("D", "G")}
    before, after = steps.get("before"), steps.get("after")
    after = after.get(net) if isinstance(after, dict) else None
    check(
        all(
            isinstance(record, dict)
            and all(
                isinstance(record.get(n), torch.Tensor) and record[n].shape == (sizes_of[n],)
                for n in ("D", "G")
            )
            for record in (before, after)
        ),
        f"{message} the recorded numbers of the parameters are missing or of the wrong size.",
    )
    before, after = cast(dict[str, torch.Tensor], before), cast(dict[str, torch.Tensor], after)
    other = "G" if net == "D" else "D"
    check(
        torch.equal(after[other], before[other]),
        f"{message} stepping it moved {other}'s parameters: it should hold {net}'s alone.",
    )
    n = sizes_of[net]
    param = before[net].double()
    m = torch.zeros_like(param)
    v = torch.zeros_like(param)
    b1, b2 = betas
    for t, grads in enumerate(_step_gradients(shapes, seed), start=1):
        g = torch.cat(grads[net]).double() if grads[net] else torch.zeros(0, dtype=torch.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        param = param - lr * m_hat / (v_hat.sqrt() + 1e-8)
    moved = after[net].double()
    wrong = ~torch.isclose(moved, param, rtol=1e-6, atol=1e-8)
    if bool(wrong.any()):
        i = int(wrong.nonzero()[0].item())
        check(
            False,
            f"{message} {int(wrong.sum())} of {n} recorded numbers of {net}'s parameters differ "
            f"(the first: {before[net][i].item():.8f} became {moved[i].item():.8f}, "
            f"Adam's steps give {param[i].item():.8f}).",
        )


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
