"""A network's layers as data, and their replay: what makes the judge trust a traced network.

Serves test_conv, test_deconv, test_discriminator and test_generator (the notebook steps
"Building blocks: `conv` and `deconv`", "The discriminator" and "The generator") and part 2's
network tests: the observe side runs the network and records every layer (kind,
hyperparameters, weights) and every call; the judge rebuilds the record and replays each call
of a layer it knows with torch.nn.functional before its checks read it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.graded.failures import check, describe, malformed
from helpers.graded.plain import plain

__all__ = [
    "KNOWN_LEAVES",
    "MAX_REPLAY_MACS",
    "POOLING",
    "Call",
    "Leaf",
    "check_first_input",
    "check_output_is_last_layers",
    "check_record_is_own",
    "check_replayed",
    "follows",
    "leaf_modules",
    "leaf_record",
    "rebuild_trace",
    "replay",
    "replay_cost",
    "trace_input",
    "trace_leaves",
    "trace_record",
]


def leaf_modules(module: nn.Module) -> list[nn.Module]:
    """The modules of `module` that hold no other module, in registration order."""
    return [m for m in module.modules() if not list(m.children())]


def trace_leaves(
    module: nn.Module, *inputs: torch.Tensor
) -> tuple[Any, list[tuple[nn.Module, torch.Tensor, torch.Tensor]]]:
    """Run module(*inputs) and record (leaf module, input tensor, output tensor) in call order."""
    calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
    handles = []
    for leaf in leaf_modules(module):
        handles.append(
            leaf.register_forward_hook(
                lambda m, inp, out: calls.append((m, inp[0].detach().clone(), out.detach().clone()))
            )
        )
    try:
        out = module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return out, calls


def trace_input(seed: int, *shape: int, normal: bool = False) -> torch.Tensor:
    """The batch a network is traced on, drawn from `seed`: the judge draws it again. Uniform in
    [-1, 1] (images, part 1's z), or normal (part 2's z)."""
    gen = torch.Generator().manual_seed(seed + 3)
    return (
        torch.randn(*shape, generator=gen) if normal else torch.rand(*shape, generator=gen) * 2 - 1
    )


def follows(prev: torch.Tensor, out: object) -> bool:
    """Whether `out` is `prev` (a network's last layer's output), or tanh or sigmoid of it, up to
    a reshape: nothing else happens after a network's last layer."""
    if not isinstance(out, torch.Tensor) or prev.numel() != out.numel():
        return False
    p, o = prev.flatten().double(), out.flatten().double()
    return any(
        torch.allclose(f(p), o, atol=1e-5, rtol=1e-4)
        for f in (lambda t: t, torch.tanh, torch.sigmoid)
    )


# Layers the judge knows: their hyperparameters, read into a record and replayed from it.
KNOWN_LEAVES = {
    "Conv2d": (
        nn.Conv2d,
        ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")
        + ("padding_mode",),
    ),
    "ConvTranspose2d": (
        nn.ConvTranspose2d,
        ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")
        + ("padding_mode", "output_padding"),
    ),
    "BatchNorm2d": (nn.BatchNorm2d, ("num_features", "eps", "affine", "track_running_stats")),
    # the WGAN-GP critic's per-image norms (part 2)
    "GroupNorm": (nn.GroupNorm, ("num_groups", "num_channels", "eps", "affine")),
    "LayerNorm": (nn.LayerNorm, ("normalized_shape", "eps", "elementwise_affine")),
    "InstanceNorm2d": (
        nn.InstanceNorm2d,
        ("num_features", "eps", "affine", "track_running_stats"),
    ),
    "Linear": (nn.Linear, ("in_features", "out_features")),
    "LeakyReLU": (nn.LeakyReLU, ("negative_slope", "inplace")),
    "ReLU": (nn.ReLU, ("inplace",)),
    "Tanh": (nn.Tanh, ()),
    "Sigmoid": (nn.Sigmoid, ()),
    "Identity": (nn.Identity, ()),
    "Flatten": (nn.Flatten, ("start_dim", "end_dim")),
    "Dropout": (nn.Dropout, ("p",)),
    "Dropout2d": (nn.Dropout2d, ("p",)),
    "MaxPool2d": (nn.MaxPool2d, ()),
    "AvgPool2d": (nn.AvgPool2d, ()),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, ()),
    "AdaptiveMaxPool2d": (nn.AdaptiveMaxPool2d, ()),
}
POOLING = ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d")


def _attr(value: object) -> object:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value):
        return list(value)
    return None


def leaf_record(m: nn.Module, max_state: int | None = None) -> dict[str, Any]:
    """A leaf module as data: its kind (the torch.nn class it is or extends, else its own class
    name), hyperparameters, train/eval mode and its parameters and buffers (CPU copies).

    A layer with more than `max_state` numbers in its state is recorded without them ("state":
    {}, "left_out": True): far larger than any the test asks for, it can fail the structural
    checks but never pass the replay."""
    kind = next(
        (
            name
            for cls in type(m).__mro__
            for name, (known, _) in KNOWN_LEAVES.items()
            if cls is known
        ),
        None,
    )
    attrs = {a: _attr(getattr(m, a, None)) for a in KNOWN_LEAVES[kind][1]} if kind else {}
    state = m.state_dict()
    record: dict[str, Any] = {
        "kind": kind or type(m).__name__,
        "known": kind is not None,
        "attrs": attrs,
        "training": bool(m.training),
        "state": {k: v.detach().to("cpu", copy=True) for k, v in state.items()},
        "params": [name for name, _ in m.named_parameters()],
    }
    if max_state is not None and sum(v.numel() for v in state.values()) > max_state:
        record.update(state={}, left_out=True)
    return record


def trace_record(
    module: nn.Module, *inputs: torch.Tensor, max_state: int | None = None
) -> tuple[Any, dict[str, Any]]:
    """Run module(*inputs) as trace_leaves does; return (output as data, the trace as data:
    {"leaves": [leaf_record], "calls": [{"leaf": index, "input", "output"}]}). `max_state` as
    for leaf_record."""
    leaves = leaf_modules(module)
    index = {id(m): i for i, m in enumerate(leaves)}
    out, calls = trace_leaves(module, *inputs)
    record = {
        "leaves": [leaf_record(m, max_state) for m in leaves],
        "calls": [
            {"leaf": index[id(m)], "input": i.cpu(), "output": o.cpu()}
            for m, i, o in calls
            if id(m) in index
        ],
    }
    return plain(out), record


class Leaf:
    """A leaf module rebuilt from its record (judge side): .kind, its hyperparameters as
    attributes (tuples where the module has tuples), .state and .training."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.kind = str(record["kind"])
        self.known = record["known"] is True
        self.training = record["training"] is True
        self.state = dict(record["state"])
        self.params = list(record["params"])
        self.left_out = record.get("left_out") is True  # recorded without its state
        for name, value in self.state.items():
            if not isinstance(value, torch.Tensor):
                raise malformed(
                    "The record of a layer",
                    f"the entry {describe(name)} of its {describe(self.kind)} layer's state",
                    "a tensor",
                    value,
                )
        self.attrs: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in dict(record["attrs"]).items()
        }

    def __getattr__(self, name: str) -> Any:
        attrs = self.__dict__.get("attrs", {})
        if name in attrs:
            return attrs[name]
        raise AttributeError(name)

    def n_params(self) -> int:
        """How many numbers its parameters hold (its recorded state, buffers left out)."""
        return sum(self.state[k].numel() for k in self.params if k in self.state)


# One layer call of a trace: (the layer, its input, its output)
Call = tuple[Leaf, torch.Tensor, torch.Tensor]


def rebuild_trace(
    record: dict[str, Any], who: str, first_input: torch.Tensor | None = None, replay: bool = True
) -> tuple[list[Leaf], list[Call]]:
    """(leaves, calls) from trace_record's data, checked: every call of a layer the judge knows
    gives what that layer computes from its recorded weights and input, and the first call
    takes `first_input` (the test's own input, when given). calls are (Leaf, input, output).
    With replay=False only read: the caller runs check_replayed(calls, who) itself, later."""
    leaves = [Leaf(r) for r in record["leaves"]]
    calls = []
    what = f"The record of {who}'s layers"
    for n, call in enumerate(record["calls"]):
        i, inp, out = call["leaf"], call["input"], call["output"]
        if not (isinstance(i, int) and 0 <= i < len(leaves)):
            layers = f"(0 to {len(leaves) - 1})" if leaves else "(the record lists none)"
            raise malformed(what, f"the layer of call {n}", f"the index of a layer {layers}", i)
        if not isinstance(inp, torch.Tensor):
            raise malformed(what, f"the input of call {n}", "a tensor", inp)
        if not isinstance(out, torch.Tensor):
            raise malformed(what, f"the output of call {n}", "a tensor", out)
        calls.append((leaves[i], inp, out))
    if replay:
        check_replayed(calls, who)
    if first_input is not None:
        check_first_input(calls, first_input, who)
    return leaves, calls


def check_replayed(calls: list[Call], who: str) -> None:
    """Every call of a layer the judge knows gives what that layer computes from its recorded
    weights and input (the calls of rebuild_trace)."""
    check(
        sum(replay_cost(leaf, inp) for leaf, inp, _ in calls) <= MAX_REPLAY_MACS
        and not any(leaf.left_out for leaf, _, _ in calls),
        f"The record of {who}'s layers is far larger than the test's networks: it cannot be "
        "replayed.",
    )
    for leaf, inp, out in calls:
        expected = replay(leaf, inp)
        if expected is None:
            continue
        check(
            expected.shape == out.shape
            and (expected - out).abs().max() <= 1e-4 * (1 + expected.abs().max()),
            f"{who}'s {leaf.kind} layer gave outputs that its own weights do not give for its "
            "input: the record of this network cannot be trusted.",
        )


def check_first_input(calls: list[Call], first_input: torch.Tensor, who: str) -> None:
    """The first traced call took `first_input` (the test's own input), up to a reshape."""
    if calls:
        inp = calls[0][1]
        check(
            inp.numel() == first_input.numel()
            and torch.allclose(inp.flatten().double(), first_input.flatten().double(), atol=1e-6),
            f"{who}'s first layer did not receive the test's input: the record of this network "
            "cannot be trusted (pass the input straight to the first layer).",
        )


def check_output_is_last_layers(calls: list[Call], out: object, who: str) -> None:
    """The network's output `out` is what its last traced layer gave (follows)."""
    check(
        follows(calls[-1][2], out),
        f"{who[0].upper()}{who[1:]}'s output is not what its last layer gave: the record of {who} "
        "cannot be trusted.",
    )


def check_record_is_own(
    calls: list[Call], out: object, first_input: torch.Tensor, who: str
) -> None:
    """The trace of rebuild_trace(..., replay=False) is the network's own: every layer call
    replayed from its recorded weights, its first layer took the judge's `first_input`, and its
    output is the last layer's."""
    check_replayed(calls, who)
    check_first_input(calls, first_input, who)
    check_output_is_last_layers(calls, out, who)


MAX_REPLAY_MACS = 5 * 10**9  # the test's D needs 10**7 (10**9 with 16 times the channels)


def replay_cost(leaf: Leaf, x: torch.Tensor) -> int:
    """An upper bound on the multiply-adds replay(leaf, x) does, from shapes alone."""
    weight = leaf.state.get("weight")
    if not isinstance(weight, torch.Tensor) or x.dim() < 1:
        return x.numel()
    if leaf.kind == "Conv2d" and x.dim() == 4 and weight.dim() == 4:
        a = leaf.attrs
        try:  # each output pixel costs one pass of the weight
            pad = (0, 0) if a["padding"] == "valid" else a["padding"]
            size = []
            for i in (0, 1):
                reach = a["dilation"][i] * (weight.shape[2 + i] - 1) + 1
                span = x.shape[2 + i] + (0 if pad == "same" else 2 * pad[i] - reach)
                size.append(x.shape[2 + i] if pad == "same" else span // a["stride"][i] + 1)
        except (KeyError, TypeError, IndexError, ZeroDivisionError):
            return 0  # hyperparameters replay() refuses anyway
        return x.shape[0] * max(size[0], 0) * max(size[1], 0) * weight.numel()
    if leaf.kind == "ConvTranspose2d":
        return x.numel() // max(1, x.shape[1] if x.dim() > 1 else 1) * weight.numel()
    if leaf.kind == "Linear":
        return x.numel() // max(1, x.shape[-1]) * weight.numel()
    return x.numel()


def replay(leaf: Leaf, x: torch.Tensor) -> torch.Tensor | None:
    """What `leaf` computes from input x with its recorded weights; None for layers that are
    random (dropout) or unknown to the judge."""
    a, st = leaf.attrs, leaf.state
    if not leaf.known or not x.is_floating_point() or a.get("inplace"):
        return None  # an in-place activation's recorded input is already its output
    x = x.float()
    kind = leaf.kind
    if kind in ("Conv2d", "ConvTranspose2d"):
        if a.get("padding_mode") != "zeros":
            return None
        small = all(
            isinstance(a.get(k), tuple) and all(isinstance(n, int) and 0 <= n <= 16 for n in a[k])
            for k in ("stride", "dilation") + (("output_padding",) if "output_padding" in a else ())
        ) and (
            a.get("padding") in ("same", "valid")
            or (
                isinstance(a.get("padding"), tuple)
                and all(isinstance(n, int) and 0 <= n <= 16 for n in a["padding"])
            )
        )
        check(
            small and isinstance(a.get("groups"), int) and 1 <= a["groups"] <= 4096,
            f"A {kind} layer's stride, padding or dilation is outside what the test accepts "
            "(0 to 16).",
        )
    if kind == "Conv2d":
        return F.conv2d(
            x, st["weight"], st.get("bias"), a["stride"], a["padding"], a["dilation"], a["groups"]
        )
    if kind == "ConvTranspose2d":
        return F.conv_transpose2d(
            x,
            st["weight"],
            st.get("bias"),
            a["stride"],
            a["padding"],
            a["output_padding"],
            a["groups"],
            a["dilation"],
        )
    if kind in ("BatchNorm2d", "InstanceNorm2d"):  # the same arguments, in the same order
        norm = F.batch_norm if kind == "BatchNorm2d" else F.instance_norm
        batch_stats = leaf.training or not a["track_running_stats"]
        return norm(
            x,
            None if batch_stats else st["running_mean"],
            None if batch_stats else st["running_var"],
            st.get("weight"),
            st.get("bias"),
            batch_stats,
            0.0,
            a["eps"],
        )
    if kind == "GroupNorm":
        return F.group_norm(x, a["num_groups"], st.get("weight"), st.get("bias"), a["eps"])
    if kind == "LayerNorm":
        shape = a["normalized_shape"]
        return F.layer_norm(x, shape, st.get("weight"), st.get("bias"), a["eps"])
    if kind == "Linear":
        return F.linear(x, st["weight"], st.get("bias"))
    if kind == "LeakyReLU":
        return F.leaky_relu(x, a["negative_slope"])
    simple: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "ReLU": F.relu,
        "Tanh": torch.tanh,
        "Sigmoid": torch.sigmoid,
        "Identity": lambda t: t,
    }
    if kind in simple:
        return simple[kind](x)
    if kind == "Flatten":
        return x.flatten(a["start_dim"], a["end_dim"])
    return None
