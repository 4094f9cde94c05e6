"""A network's layers as data, and their replay: what makes the judge trust a traced network.

Serves test_conv, test_deconv, test_discriminator and test_generator (the notebook steps
"Building blocks: `conv` and `deconv`", "The discriminator" and "The generator") and part 2's
network tests: the observe side runs the network and records every layer (kind,
hyperparameters, weights) and every call; the judge rebuilds the record and replays each call
of a layer it knows with torch.nn.functional before its checks read it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.graded.failures import GradedTestFailure, check, describe, malformed
from helpers.graded.plain import plain

__all__ = [
    "INPUT_RANKS",
    "KNOWN_LEAVES",
    "MAX_KERNEL",
    "MAX_REPLAY_CALLS",
    "MAX_REPLAY_MACS",
    "MAX_REPLAY_OUTPUT",
    "MAX_STEP",
    "POOLING",
    "REFUSED",
    "Call",
    "Leaf",
    "check_first_input",
    "check_output_activation",
    "check_output_is_last_layers",
    "check_output_shape",
    "check_record_is_own",
    "check_replayed",
    "follows",
    "leaf_modules",
    "leaf_record",
    "mixes_images",
    "output_activation",
    "rebuild_trace",
    "refuse",
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


def follows(prev: torch.Tensor, out: object, dropout: bool = False) -> bool:
    """Whether `out` is `prev` (a network's last layer's output), or tanh or sigmoid of it, up to
    a reshape: nothing else happens after a network's last layer. `dropout`: `prev` is the last
    weighted layer's, so dropout on it (before a tanh or sigmoid or not) counts too, for
    output_activation to name."""
    if not isinstance(out, torch.Tensor) or prev.numel() != out.numel():
        return False
    p, o = prev.flatten().double(), out.flatten().double()
    return any(
        torch.allclose(f(p), o, atol=1e-5, rtol=1e-4)
        for f in (lambda t: t, torch.tanh, torch.sigmoid)
    ) or (dropout and _dropped_out(p, o) is not None)


# The layers with weights, whose output a network's own output follows
WEIGHTED = ("Conv2d", "ConvTranspose2d", "Linear")

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
    weights and input (the calls of rebuild_trace). Before any replay, the whole record is
    priced (replay_cost): a shape or hyperparameter no real layer has is refused, and a record
    whose replay would cost more than MAX_REPLAY_MACS fails."""
    if len(calls) > MAX_REPLAY_CALLS:
        raise refuse(
            f"the record of {who}'s layers holds {len(calls)} calls, over the "
            f"{MAX_REPLAY_CALLS} the grader replays"
        )
    cost = sum(
        replay_cost(leaf, inp, f"{who}'s {leaf.kind} layer (call {n})")
        for n, (leaf, inp, _) in enumerate(calls)
    )
    check(
        cost <= MAX_REPLAY_MACS and not any(leaf.left_out for leaf, _, _ in calls),
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
    leaf, _, last = calls[-1]
    check(
        follows(last, out, dropout=leaf.known and leaf.kind in WEIGHTED),
        f"{who[0].upper()}{who[1:]}'s output is not what its last layer gave: the record of {who} "
        "cannot be trusted.",
    )


def check_output_shape(
    out: object, who: str, batch: int, in_shape: str, out_shape: tuple[int, ...]
) -> None:
    """The network's own output on the judge's traced batch (batch, in_shape) has the shape
    (batch, *out_shape): the output shape read from the record, not from a reported one."""
    shape = tuple(getattr(out, "shape", ()))
    check(
        shape == (batch, *out_shape),
        f"{who} on the test's ({batch}, {in_shape}) batch returned shape {shape}, expected "
        f"{(batch, *out_shape)}.",
    )


def mixes_images(calls: list[Call]) -> bool:
    """Whether a layer's recorded input carries numbers of other images of the batch: between
    two calls, the next input's positive numbers found, bit for bit, in the previous output of
    another image (a reshape that mixes the batch, such as x.transpose(0, 1).reshape(B, -1)).

    Read from the record: an elementwise step (an activation's positive side, a flatten or view
    that keeps each image's numbers in its row) keeps each number in its own image; numbers that
    changed on the way (dropout's scaling) or that several images share are not counted."""
    for (_, _, before), (_, after, _) in zip(calls, calls[1:]):
        b = before.shape[0] if before.dim() >= 2 else 0
        if b < 2 or after.dim() < 2 or after.shape[0] != b:
            continue
        prev, nxt = before.reshape(b, -1), after.reshape(b, -1)
        owner = torch.arange(b).unsqueeze(1).expand_as(prev)
        keep = prev > 0
        values, order = prev[keep].sort()
        owners = owner[keep][order]
        if values.numel() < 2:
            continue
        # a number held by more than one image says nothing about where it came from
        shared = torch.zeros_like(values, dtype=torch.bool)
        same = values[1:] == values[:-1]
        shared[1:] |= same
        shared[:-1] |= same
        rows = torch.arange(b).unsqueeze(1).expand_as(nxt)
        wanted, row = nxt[nxt > 0], rows[nxt > 0]
        at = torch.searchsorted(values, wanted).clamp(max=values.numel() - 1)
        found = (values[at] == wanted) & ~shared[at]
        foreign = found & (owners[at] != row)
        if int(found.sum()) >= 16 and float(foreign.sum()) > 0.5 * float(found.sum()):
            return True
    return False


def output_activation(calls: list[Call], out: object) -> str | None:
    """What the network applies after its last conv, transposed conv or linear layer, read from
    its record: "none" (that layer's output is the network's output, up to a reshape), "tanh" or
    "sigmoid" (a function or a module), "dropout" (outputs zeroed, the others scaled by one
    factor), or "dropout, then tanh" / "dropout, then sigmoid" (dropout on that layer's output
    before the squashing: outputs of exactly tanh(0) or sigmoid(0), the others the squashing of
    the output scaled by one factor); None when the record cannot tell (no such layer, none of
    these, or outputs so small that tanh and none agree). Derived on the judge's side: the
    layer's output is replayed from its recorded weights (check_replayed) and `out` is the
    network's own output on the judge's batch; no value the learner side computes about the
    network is trusted."""
    known = [o for leaf, _, o in calls if leaf.known and leaf.kind in WEIGHTED]
    if not known or not isinstance(out, torch.Tensor) or known[-1].numel() != out.numel():
        return None
    p, o = known[-1].flatten().double(), out.flatten().double()
    dropped = _dropped_out(p, o)
    if dropped is not None:
        return dropped
    fits = [
        name
        for name, f in (("none", lambda t: t), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid))
        if torch.allclose(f(p), o, atol=1e-5, rtol=1e-4)
    ]
    return fits[0] if len(fits) == 1 else None


def _dropped_out(p: torch.Tensor, o: torch.Tensor) -> str | None:
    """What output_activation calls "dropout", "dropout, then tanh" or "dropout, then sigmoid",
    when output `o` is the last layer's output `p` with dropout on it (before that squashing,
    or none); else None."""
    dropped = (o == 0) & (p != 0)
    if bool(dropped.any()):  # zeros the layer did not give, the rest scaled by one factor
        kept = ~dropped & (p != 0)
        ratio = o[kept] / p[kept]
        if not kept.any() or torch.allclose(ratio, ratio.median().expand_as(ratio), rtol=1e-4):
            return "dropout"
    # where dropout zeroed the output, tanh(0) or sigmoid(0); elsewhere the squashing of the
    # output scaled up by one factor (a factor of 1 is no dropout: a sigmoid of a tiny output)
    squashings = (("tanh", torch.atanh, 0.0, 1.0), ("sigmoid", torch.logit, 0.5, 0.5))
    for name, inverse, centre, half in squashings:
        dropped = (o == centre) & (p != 0)
        # where the squashing saturates, its inverse says little: those outputs are left out
        kept = ~dropped & (p.abs() > 1e-3) & ((o - centre).abs() < half * (1 - 1e-3))
        if not bool(dropped.any()) or int(kept.sum()) < 2:
            continue
        scaled = inverse(o[kept])
        factor = (scaled / p[kept]).median()
        if factor > 1 and torch.allclose(scaled, factor * p[kept], atol=1e-4, rtol=1e-3):
            return f"dropout, then {name}"
    return None


def check_output_activation(
    calls: list[Call], out: object, who: str, want: str, accepted: dict[str, str] | None = None
) -> str | None:
    """The network's output is its last weighted layer's output with `want` ("none": logits, or
    "tanh") after it, as its record shows (output_activation); a record that cannot tell passes.
    `accepted`: {ending: why it is right here}, endings accepted besides `want` (a sigmoid at
    D's end with losses that take probabilities, in the original course's notebooks). Returns
    the ending found (None when the record cannot tell)."""
    accepted = accepted or {}
    found = output_activation(calls, out)
    if found is None or found == want or found in accepted:
        return found
    if found == "dropout":
        raise GradedTestFailure(
            f"Some of {who}'s outputs on the test's batch are exactly 0 where its last layer's "
            f"are not, and the others are scaled up: {who} applies dropout to its final output. "
            "Put dropout, if you use it, before the last layer, never after it."
        )
    if found.startswith("dropout, then "):
        squashing = found.removeprefix("dropout, then ")
        fixed = 0.5 if squashing == "sigmoid" else 0
        message = (
            f"Some of {who}'s outputs on the test's batch are exactly {fixed:g} where its last "
            f"layer's are not, and the others are the {squashing} of its last layer's output "
            f"scaled up: {who} applies dropout to its last layer's output"
            f"{' (the logits)' if want == 'none' else ''} before its {squashing}, so random "
            f"images get {fixed:g} whatever they show. Put dropout, if you use it, before the "
            "last layer, never after it."
        )
        if squashing in accepted:
            message += f" {accepted[squashing]}"
        elif squashing != want:
            message += f" {_ending_message(who, squashing, want, also=True)}"
        raise GradedTestFailure(message)
    raise GradedTestFailure(_ending_message(who, found, want))


def _ending_message(who: str, found: str, want: str, also: bool = False) -> str:
    """The message for a network that ends with `found` ("tanh", "sigmoid" or "none") where it
    should end with `want`; `also`: it follows another mistake's message."""
    name = f"{who[0].upper()}{who[1:]}"
    if want == "none":
        what = (
            f"Also, {who} ends with a {found}"
            if also
            else f"{name}'s output is the {found} of its last layer's output: {who} ends with a "
            f"{found}"
        )
        return (
            f"{what}. Return the raw output of the last layer (logits, any real number); the "
            "loss applies what it needs (BCEWithLogitsLoss its own sigmoid)."
        )
    if found == "sigmoid":
        what = (
            "Also, it ends"
            if also
            else f"{name}'s output is the sigmoid of its last layer's output: it ends"
        )
        return (
            f"{what} with a sigmoid (range [0, 1]). Use torch.tanh, whose range [-1, 1] matches "
            "the scaled real images."
        )
    return (
        f"{name}'s output is its last layer's output with nothing after it, so it can leave "
        "[-1, 1]: end it with torch.tanh, whose range matches the scaled real images."
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
# The numbers one replayed call may make: more than a record can carry back (decode's 32 MB of
# arrays, 8 M float32), so a call refused for it could never have matched its recorded output.
MAX_REPLAY_OUTPUT = 2**24
MAX_REPLAY_CALLS = 4096  # the notebook's networks make about 15 calls per trace
# Ranges of a real layer of the notebook's networks (kernel 4, stride 1 or 2, padding 0 or 1),
# with room for every variant: a kernel of at most MAX_KERNEL pixels a side, strides, paddings
# and dilations of at most MAX_STEP.
MAX_KERNEL = 16
MAX_STEP = 16
# The input ranks a real layer of each kind takes (torch's own rules); others take any rank.
INPUT_RANKS = {
    "Conv2d": (3, 4),
    "ConvTranspose2d": (3, 4),
    "BatchNorm2d": (4,),
    "InstanceNorm2d": (3, 4),
    "GroupNorm": tuple(range(2, 9)),
    "LayerNorm": tuple(range(1, 9)),
    "Linear": tuple(range(1, 9)),
}
REFUSED = "The grader refused this observation"


def refuse(why: str) -> GradedTestFailure:
    """The failure for an observation the judge will not compute with: "The grader refused this
    observation: `why`." (a shape or size no run of the learner's code can give)."""
    return GradedTestFailure(f"{REFUSED}: {why}.")


def _replayed(leaf: Leaf, x: torch.Tensor) -> bool:
    """Whether replay(leaf, x) computes anything (not a random, unknown or in-place layer)."""
    a = leaf.attrs
    if not leaf.known or not x.is_floating_point() or a.get("inplace"):
        return False
    return leaf.kind not in ("Conv2d", "ConvTranspose2d") or a.get("padding_mode") == "zeros"


def _pair(a: dict[str, Any], name: str, low: int, where: str) -> tuple[int, int]:
    """Hyperparameter `name` as a real Conv layer holds it: two ints from `low` to MAX_STEP."""
    value = a.get(name)
    if not (
        isinstance(value, tuple)
        and len(value) == 2
        and all(type(n) is int and low <= n <= MAX_STEP for n in value)
    ):
        raise refuse(
            f"{where} has {name} {describe(value)}; a real layer of the test's networks has two "
            f"whole numbers from {low} to {MAX_STEP}"
        )
    return value[0], value[1]


def _conv_output(leaf: Leaf, x: torch.Tensor, where: str) -> tuple[int, int]:
    """(multiply-adds, output numbers) of a Conv2d or ConvTranspose2d call, from shapes alone;
    refuses hyperparameters and shapes no real layer has."""
    a, weight = leaf.attrs, leaf.state.get("weight")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        raise refuse(f"{where} has no 4-dimensional weight")
    kernel = tuple(weight.shape[2:])
    if not all(1 <= k <= MAX_KERNEL for k in kernel):
        raise refuse(
            f"{where} has a {kernel[0]}x{kernel[1]} kernel; the grader replays kernels of 1 to "
            f"{MAX_KERNEL} pixels a side"
        )
    stride = _pair(a, "stride", 1, where)
    dilation = _pair(a, "dilation", 1, where)
    groups = a.get("groups")
    if not (type(groups) is int and 1 <= groups <= 4096):
        raise refuse(f"{where} has groups {describe(groups)}, not a whole number from 1 to 4096")
    transposed = leaf.kind == "ConvTranspose2d"
    padding = a.get("padding")
    if transposed or padding not in ("same", "valid"):
        padding = _pair(a, "padding", 0, where)
    spatial = tuple(x.shape[-2:])
    if transposed:
        extra = _pair(a, "output_padding", 0, where)
        size = [
            (spatial[i] - 1) * stride[i]
            - 2 * padding[i]
            + dilation[i] * (kernel[i] - 1)
            + extra[i]
            + 1
            for i in (0, 1)
        ]
        channels = weight.shape[1] * groups
    else:
        size = [
            spatial[i]
            if padding == "same"
            else (
                spatial[i]
                + 2 * (0 if padding == "valid" else padding[i])
                - dilation[i] * (kernel[i] - 1)
                - 1
            )
            // stride[i]
            + 1
            for i in (0, 1)
        ]
        channels = weight.shape[0]
    batch = x.shape[0] if x.dim() == 4 else 1
    out = batch * channels * max(size[0], 0) * max(size[1], 0)
    # each output number of a conv costs a pass of one filter; each input pixel of a transposed
    # conv spreads over the whole weight
    if transposed:
        return batch * math.prod(spatial) * weight.numel(), out
    return out * weight[0].numel(), out


def replay_cost(leaf: Leaf, x: torch.Tensor, where: str = "a layer") -> int:
    """What replay(leaf, x) costs, from shapes alone, before any tensor is made: an upper bound
    on its multiply-adds plus the numbers of its output. Raises the grader's refusal (refuse)
    for a call no real layer makes: an input rank the layer does not take, hyperparameters in
    odd forms or out of range (see MAX_KERNEL and MAX_STEP), or an output of more than
    MAX_REPLAY_OUTPUT numbers. `where` names the layer in the message."""
    if not _replayed(leaf, x):
        return 0
    ranks = INPUT_RANKS.get(leaf.kind)
    if ranks is not None and x.dim() not in ranks:
        raise refuse(
            f"{where} took an input of {x.dim()} dimensions {list(x.shape)}; a real "
            f"{leaf.kind} layer takes {' or '.join(map(str, ranks[:3]))}"
            + (" or more" if len(ranks) > 3 else "")
        )
    weight = leaf.state.get("weight")
    if leaf.kind in ("Conv2d", "ConvTranspose2d"):
        work, out = _conv_output(leaf, x, where)
    elif leaf.kind == "Linear":
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise refuse(f"{where} has no 2-dimensional weight")
        rows = math.prod(x.shape[:-1])
        work, out = rows * weight.numel(), rows * weight.shape[0]
    else:  # element-wise, norms and flatten: an output the size of the input
        work = out = x.numel()
    if out > MAX_REPLAY_OUTPUT:
        raise refuse(
            f"{where} would make an output of {out} numbers, over the {MAX_REPLAY_OUTPUT} the "
            "grader replays (no record can carry that much back)"
        )
    return work + out


def replay(leaf: Leaf, x: torch.Tensor) -> torch.Tensor | None:
    """What `leaf` computes from input x with its recorded weights; None for layers that are
    random (dropout) or unknown to the judge."""
    a, st = leaf.attrs, leaf.state
    if not _replayed(leaf, x):
        return None  # an in-place activation's recorded input is already its output
    replay_cost(leaf, x)  # refuses what no real layer computes, before any tensor is made
    x = x.float()
    kind = leaf.kind
    if kind in ("Conv2d", "ConvTranspose2d"):
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
