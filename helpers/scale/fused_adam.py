"""Fused Adam, opt-in and CUDA only: serves the notebook's "Train" step (after the learner made
``d_optimizer`` and ``g_optimizer``), ``python -m helpers distributed --fused-adam`` and
``benchmarks.throughput --variants fused``.
Its GPU path is not yet measured on a GPU (docs/performance.md will hold the numbers when it is).

    prepare_optimizers(device, d_optimizer, g_optimizer)

One kernel updates all of a network's parameters, instead of the several ``foreach`` kernels
PyTorch's Adam uses on CUDA by default. The same maths, hyperparameters and state; checkpoints
are saved as a plain Adam's, so they resume anywhere. Off CUDA nothing changes, and asking for it
there (``fused=True``) is refused with a message.
"""

from __future__ import annotations

from typing import Any

import torch

from helpers.gpu import on_cuda

__all__ = ["prepare_optimizers"]


def _supports_fused(optimizer: torch.optim.Optimizer) -> str | None:
    """Why ``optimizer`` cannot switch to its fused kernel, or None when it can."""
    if "fused" not in optimizer.defaults:
        return f"{type(optimizer).__name__} has no fused implementation in PyTorch"
    for group in optimizer.param_groups:
        if group.get("differentiable"):
            return "it was made with differentiable=True, which the fused kernel does not support"
        for p in group["params"]:
            if not p.is_floating_point():
                return f"it holds a {p.dtype} parameter"
            if p.device.type not in ("cuda", "cpu"):
                return f"it holds a parameter on {p.device}"
    return None


def _move_steps(optimizer: torch.optim.Optimizer) -> None:
    # The fused kernel reads Adam's step counts on the parameters' device, as float32
    # (PyTorch's own rule for fused optimizers; a plain Adam keeps them on the CPU).
    for p, state in optimizer.state.items():
        step = state.get("step")
        if isinstance(step, torch.Tensor) and step.device != p.device:
            state["step"] = step.to(device=p.device, dtype=torch.float32)


def _as_saved_plain(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
    """A state_dict post-hook: the checkpoint records the optimizer as it was made (not fused)."""
    originals = optimizer._kit_fused_from  # type: ignore[attr-defined]  # set by _use_fused
    for group, (fused, foreach) in zip(state_dict["param_groups"], originals):
        group["fused"], group["foreach"] = fused, foreach
    for key, state in state_dict["state"].items():
        step = state.get("step")
        if isinstance(step, torch.Tensor) and step.device.type != "cpu":
            # a new dict: state_dict's entries are the live state's own dicts
            state_dict["state"][key] = {**state, "step": step.cpu()}
    return state_dict


def _use_fused(optimizer: torch.optim.Optimizer) -> None:
    """Switch ``optimizer`` (made without fused) to its fused kernel, in place.

    The hyperparameters and the state (moments, step counts) stay; after a ``load_state_dict``
    it switches again, and its ``state_dict`` records the options it was made with.
    """
    if not hasattr(optimizer, "_kit_fused_from"):
        made_with = [(g["fused"], g["foreach"]) for g in optimizer.param_groups]
        optimizer._kit_fused_from = made_with  # type: ignore[attr-defined]  # the kit's own mark
        optimizer.register_state_dict_post_hook(_as_saved_plain)
        optimizer.register_load_state_dict_post_hook(_use_fused)
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = True, False  # the fused kernel and foreach exclude
    _move_steps(optimizer)


def prepare_optimizers(
    device: torch.device | str, *optimizers: torch.optim.Optimizer, fused: bool | None = None
) -> tuple[torch.optim.Optimizer, ...]:
    """Switch optimizers to fused kernels on CUDA, in place; returns them as a tuple.

    ``fused``: None (default) switches every optimizer that has a fused kernel (Adam does) when
    ``device`` is a CUDA GPU and changes nothing elsewhere; True asks for it and is refused off
    CUDA or for an optimizer without one; False changes nothing. The hyperparameters, the
    state and the maths stay the same (fused Adam differs from foreach Adam only by float
    rounding); checkpoints are saved as the plain optimizer's.
    """
    if fused not in (None, True, False):
        raise ValueError(f"fused must be None, True or False; got {fused!r}.")
    if fused is False:
        return optimizers
    if not on_cuda(device):
        if fused:
            raise ValueError(
                f"fused=True is a speed-up for CUDA GPUs, and training runs on "
                f"{torch.device(device)}. Leave fused out there: the optimizers then stay "
                f"exactly as you made them."
            )
        return optimizers
    for optimizer in optimizers:
        problem = _supports_fused(optimizer)
        if problem is None and any(
            p.device.type != "cuda" for g in optimizer.param_groups for p in g["params"]
        ):
            problem = "some of its parameters are not on the GPU (call prepare_models first)"
        if problem is not None:
            if fused:
                raise ValueError(f"fused=True: cannot switch this optimizer, since {problem}.")
            continue
        _use_fused(optimizer)
    return optimizers
