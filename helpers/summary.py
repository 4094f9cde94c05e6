"""Shapes layer by layer: what a batch looks like after each layer of a network.

Serves the notebook's "try it" cells after ``conv``/``deconv``, the ``Discriminator`` and the
``Generator`` (``print_shapes``), and the architecture figure
(``helpers.plotting.plot_architecture``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["LONG_BLOCK", "Row", "layer_shapes", "print_shapes"]

# (name, description, output shape or None when not a tensor, parameter count)
Row = tuple[str, str, tuple[int, ...] | None, int]

# A Sequential child with more layers than this is shown layer by layer; shorter ones (part 1's
# conv/deconv blocks: a convolution and its batch norm) stay one row, "Conv2d + BatchNorm2d".
LONG_BLOCK = 3


def _describe(module: nn.Module) -> str:
    """'Conv2d + BatchNorm2d' for a Sequential block, else the module's class name."""
    if isinstance(module, nn.Sequential) and len(module):
        return " + ".join(type(m).__name__ for m in module)
    return type(module).__name__


def layer_shapes(model: nn.Module, x: torch.Tensor) -> tuple[list[Row], Any]:
    """Run `x` through `model` once and record the output of each of its direct sub-modules.

    model: an nn.Module; x: its input batch, e.g. (B, 3, 32, 32) images or (B, z_size) noise
    (moved to the model's device). The model runs in eval mode under no_grad, so its batch norm
    statistics and gradients are left as they were; its train/eval mode is restored after.

    Returns (rows, output): rows is a list of (name, description, output shape, parameters) in
    the order the layers ran; a model without sub-modules gives one row for itself, and a
    sub-module that is a Sequential of more than LONG_BLOCK layers one row per layer ("net.0").
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"layer_shapes expects an nn.Module, got {type(model).__name__}.")
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"layer_shapes expects the input batch as a tensor, got {type(x).__name__}."
        )
    parameter = next(model.parameters(), None)
    if parameter is not None:
        x = x.to(parameter.device)
    children: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential) and len(child) > LONG_BLOCK:
            # a whole network in one Sequential (part 2's `self.net`): one row per layer, since
            # one row would hide every shape but the last
            children += [(f"{name}.{i}", layer) for i, layer in enumerate(child)]
        else:
            children.append((name, child))
    children = children or [(type(model).__name__, model)]
    rows: list[Row] = []
    hooks = []

    def record(name, module):
        def hook(_module, _inputs, output):
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
            rows.append(
                (name, _describe(module), shape, sum(p.numel() for p in module.parameters()))
            )

        return hook

    for name, module in children:
        hooks.append(module.register_forward_hook(record(name, module)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(x)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return rows, output


def print_shapes(model: nn.Module, x: torch.Tensor) -> None:
    """Print the shape of `x` after each layer of `model`, with each layer's parameter count.

    For example ``print_shapes(Discriminator(32), torch.rand(8, 3, 32, 32) * 2 - 1)``. The first
    number of every shape is the batch size. See ``layer_shapes`` for how the model is run.
    """
    rows, output = layer_shapes(model, x)
    table = [("input", "", tuple(x.shape), None)] + rows
    name_width = max(len(name) for name, *_ in table)
    kind_width = max(len(kind) for _, kind, *_ in table)
    print(f"{type(model).__name__}, layer by layer:")
    for name, kind, shape, count in table:
        shown = str(shape) if shape is not None else "(not a tensor)"
        extra = f"  {count:,} parameters" if count else ""
        print(f"  {name:<{name_width}}  {kind:<{kind_width}}  -> {shown:<18}{extra}".rstrip())
    if isinstance(output, torch.Tensor) and (not rows or tuple(output.shape) != rows[-1][2]):
        # the last layer's output changed shape in forward (e.g. a reshape after it)
        print(f"  {'output':<{name_width}}  {'':<{kind_width}}  -> {tuple(output.shape)}")
    total = sum(p.numel() for p in model.parameters())
    print(f"  {total:,} parameters in all")
