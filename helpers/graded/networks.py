"""The checks of D and G: layers, batch sizes, activations, logits and tanh, gradients, size.

Serves test_discriminator, test_generator and test_weights_init (the notebook steps "The
discriminator", "The generator" and "Initialise the weights"); part 2's 64x64 networks and the
critic reuse the shared ones (helpers/graded/part2.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn as nn

from helpers.graded.failures import calling, check, reported
from helpers.graded.layers import POOLING, Call, Leaf, mixes_images
from helpers.graded.plain import plain

if TYPE_CHECKING:  # for the annotations only
    from helpers.graded.verdicts import Observation

__all__ = [
    "BATCHES",
    "BATCH_NORM_ONE_HINTS",
    "D_NORMS",
    "FIND_TRUTHINESS",
    "ORIGINAL_SLOPES",
    "check_batch_sizes",
    "check_images_independent",
    "check_d_activations",
    "check_d_batch_norm",
    "check_d_convs",
    "check_d_gives_logits",
    "check_d_gradients",
    "check_g_ends_with_tanh",
    "check_g_layers",
    "check_init_picks_the_layers",
    "check_no_dropout_on_output",
    "check_size_follows_conv_dim",
    "conv_ignores_batch_norm",
    "device_of",
    "leaky_slope",
    "n_params",
    "observe_batch_sizes",
    "observe_gradients",
    "observe_independence",
    "params_without_gradient",
    "push_output",
    "samples_independent",
]


def device_of(module: nn.Module) -> torch.device:
    """The device of the module's first parameter (the CPU when it has none)."""
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def check_no_dropout_on_output(out: torch.Tensor) -> None:
    """D's logits (`out`, on 64 images in train mode) are never exactly 0; dropout after the last
    layer makes some so."""
    zeros = int((out == 0).sum())
    check(
        zeros == 0,
        f"{zeros} of D's {out.numel()} outputs are exactly 0 in train mode: D applies dropout to "
        "its final output (the logits), which zeroes random scores and scales up the others. Put "
        "dropout, if you use it, before the last Linear layer, never after it.",
    )


def conv_ignores_batch_norm(Discriminator: type) -> bool:
    """Whether the notebook's conv() (the one Discriminator uses) adds batch norm even when
    called with batch_norm=False; False when it cannot tell."""
    conv = getattr(getattr(Discriminator, "__init__", None), "__globals__", {}).get("conv")
    if not callable(conv):
        return False
    try:
        block = conv(3, 8, 4, batch_norm=False)
        return any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    except Exception:
        return False


def leaky_slope(before: torch.Tensor, after: torch.Tensor) -> float | None:
    """The negative slope of the activation between two layers, from their traced tensors.

    `before` is one layer's output, `after` the next layer's input; None when they are not one
    elementwise step apart. Zeros (dropout) are left out, and dropout's rescaling cancels.
    """
    if before.shape != after.shape:
        return None
    kept = after != 0
    neg, pos = kept & (before < -1e-3), kept & (before > 1e-3)
    if neg.sum() < 10 or pos.sum() < 10:
        return None
    ratio = after / before
    return (ratio[neg].median() / ratio[pos].median()).item()


FIND_TRUTHINESS = (
    "classname.find('Conv') is 0, which is falsy, when the name starts with 'Conv', and -1, which "
    "is truthy, when 'Conv' is not in it: write classname.find('Conv') != -1, or use "
    "isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))."
)


def check_init_picks_the_layers(
    model: nn.Sequential,
    before: list[torch.Tensor],
    kinds: dict[int, str],
    batch_norm: int,
    any_layer: bool = True,
) -> None:
    """weights_init_normal changed the conv/linear layers of `model` and left batch norm alone.

    `before` holds each layer's weights before model.apply; `kinds` maps the index of each layer
    it should initialise to a name; `batch_norm` is the index of the batch norm layer;
    `any_layer`: it also changed a layer of another kind (a LayerNorm), as a class-name test
    that is always true does. The message names the likely mistake from which layers changed.
    """

    def weight(i: int) -> torch.Tensor:
        return cast(torch.Tensor, model[i].weight).detach()

    left = [kind for i, kind in kinds.items() if torch.equal(weight(i), before[i])]
    done = [kind for kind in kinds.values() if kind not in left]
    bn = weight(batch_norm)
    bn_changed = not (torch.allclose(bn, before[batch_norm]) or abs(bn.mean().item() - 1) < 0.05)
    if (
        bn_changed
        and not left
        and not any_layer
        and abs(bn.mean().item()) < 0.01
        and abs(bn.std().item() - 0.02) < 0.005
    ):
        check(
            False,
            "weights_init_normal draws batch norm's scale (its weight) from N(0, 0.02) too, so "
            "every normalised activation is multiplied by about 0.02 and the network starts "
            "almost silent. The notebook initialises only Conv2d, ConvTranspose2d and Linear "
            "layers: leave BatchNorm2d as it is (scale 1, shift 0), or draw its scale from "
            "N(1, 0.02) as PyTorch's DCGAN example does.",
        )
    if bn_changed and left:
        check(
            False,
            "weights_init_normal picks the wrong layers: it changed batch norm's scale (mean "
            f"{bn.mean().item():.3f}, it should stay near 1) and left the {', '.join(left)} layers "
            f"as they were. Likely cause: {FIND_TRUTHINESS}",
        )
    check(
        not bn_changed,
        f"weights_init_normal changed the batch norm layer's scale (mean {bn.mean().item():.3f}, "
        "it should stay near 1). Initialise only Conv2d, ConvTranspose2d and Linear layers. If "
        f"you test class names: {FIND_TRUTHINESS}",
    )
    check(
        done,
        "weights_init_normal changed no layer's weights: the weights of Conv2d, "
        "ConvTranspose2d and Linear layers should be drawn from N(0, 0.02) "
        "(nn.init.normal_(m.weight, 0.0, 0.02)) and their biases set to 0. If it does test the "
        "layer type, that test is never true: conditions joined with `and` "
        "(classname.find('Conv') != -1 and classname.find('Linear') != -1) need both names in "
        "one class name; join them with `or`, or use isinstance(m, (nn.Conv2d, "
        "nn.ConvTranspose2d, nn.Linear)).",
    )
    check(
        not left,
        f"weights_init_normal left the {', '.join(left)} layers' weights as they were (it did "
        f"initialise {', '.join(done)}). Check how you recognise the layers: the class names are "
        "exactly 'Conv2d', 'ConvTranspose2d' and 'Linear' (a misspelt name such as 'Conv2D' or "
        "'Convo2d' never matches), and isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) "
        "matches all three.",
    )


BATCHES = (5, 16, 1)  # a batch of one last, so its failure can say only that one breaks
# Batch norm on a 1x1 map sees one value per channel in a batch of one: it cannot train on it.
BATCH_NORM_ONE_HINTS = (
    (
        "expected more than 1 value per channel",
        "Likely cause: a batch norm layer normalises a 1x1 feature map (for example after a "
        "conv that shrinks the image to 1x1), which in a batch of one holds a single value per "
        "channel, so batch norm cannot train on it. Leave batch norm out of that layer (the "
        "last layer before the output needs none).",
    ),
)


def observe_batch_sizes(
    obs: Observation,
    net: Callable[[torch.Tensor], Any],
    make_input: Callable[[int], torch.Tensor],
    who: str,
    in_shape: str,
    hint: str = "",
    out_shape: tuple[int, ...] | None = None,
) -> bool:
    """The shape of net's output on batches of 5, 16 and then 1: obs["batch B"] ([] when it is
    not a tensor). Returns whether every shape was (B, *out_shape), when `out_shape` is given:
    part 2's observers stop there when not, as its judge does."""
    for b in BATCHES:
        one = (
            f"{who} works on batches of 5 and 16 but not on a batch of one. Likely cause: "
            "squeeze() drops the batch dimension when it is 1, or a reshape assumes a batch size; "
            "keep the batch dimension (x.flatten(1), x.view(x.size(0), -1))."
        )
        with calling(
            f"{who} on a ({b}, {in_shape}) batch",
            hint=one if b == 1 else hint,
            hints=BATCH_NORM_ONE_HINTS if b == 1 else (),
        ):
            out = net(make_input(b))
        obs[f"batch {b}"] = list(out.shape) if isinstance(out, torch.Tensor) else []
    return out_shape is None or all(obs[f"batch {b}"] == [b, *out_shape] for b in BATCHES)


def check_batch_sizes(
    obs: Observation, who: str, in_shape: str, out_shape: tuple[int, ...]
) -> None:
    """net on batches of 5, 16 and then 1 returned (B, *out_shape) (observe_batch_sizes)."""
    for b in BATCHES:
        shape = tuple(obs.need(f"batch {b}"))
        check(
            shape == (b, *out_shape),
            f"{who} on a ({b}, {in_shape}) batch should return shape {(b, *out_shape)}, got "
            f"{shape}."
            + (
                " Flatten with x.flatten(1) (or x.view(x.size(0), -1)) before the final "
                "nn.Linear(..., 1)."
                if out_shape == (1,)
                else ""
            ),
        )


def check_d_convs(
    leaves: list[Leaf], calls: list[Call], conv_dim: int, original: bool = False
) -> list[Call]:
    """Three strided convs (no pooling) halve 32 -> 16 -> 8 -> 4 with conv_dim, 2x, 4x channels;
    convs that keep the size (stride 1) may come between them or after them.

    `leaves` are D's layers and `calls` their calls, from rebuild_trace. `original`: the
    original course's notebook, which left D's depths open (only the first conv's, conv_dim,
    and the halving are checked)."""
    convs = [(m, i, o) for m, i, o in calls if m.kind == "Conv2d"]
    check(
        len(convs) >= 3, f"D should use (at least) three strided conv layers, found {len(convs)}."
    )
    pools = [m.kind for m in leaves if m.kind in POOLING]
    check(
        not pools,
        f"D should downsample with strided convolutions, not pooling; found {pools[:1]}.",
    )
    first = convs[0][0]
    check(
        first.in_channels == 3 and first.out_channels == conv_dim,
        f"D's first conv layer should take the 3 colour channels to conv_dim={conv_dim} channels, "
        f"got {first.in_channels} -> {first.out_channels}.",
    )
    # the convs that shrink the image; stride-1 ones (same size out as in) are extra layers
    shrinking = [c for c in convs if c[2].shape[-1] != c[1].shape[-1]]
    sizes = [o.shape[-1] for _, _, o in shrinking[:3]]
    check(
        sizes == [16, 8, 4],
        "D's strided conv layers should halve the image each time (32 -> 16 -> 8 -> 4), got "
        f"sizes {sizes}. Use stride 2 (the conv helper's default); layers with stride 1 that "
        "keep the size may come in between.",
    )
    depths = [m.out_channels for m, _, _ in shrinking[:3]]
    want = [conv_dim, 2 * conv_dim, 4 * conv_dim]
    check(
        original or depths == want,
        f"With conv_dim={conv_dim}, D's strided conv layers should have {want} output channels "
        f"(conv_dim, 2x, 4x), got {depths}.",
    )
    return convs


# The normalisations D may use after its 2nd and 3rd conv: the paper's batch norm, or instance
# norm, which the original course allowed (each image normalised on its own).
D_NORMS = ("BatchNorm2d", "InstanceNorm2d")


def check_d_batch_norm(conv_ignores_bn: bool, calls: list[Call], first: Leaf) -> None:
    """No batch norm right after D's first conv (the paper), batch norm after the next two
    (instance norm counts as batch norm, D_NORMS).

    `conv_ignores_bn`: the notebook's conv() adds batch norm even with batch_norm=False."""
    order = [m for m, _, _ in calls]
    after = order[order.index(first) + 1] if order.index(first) + 1 < len(order) else None
    after_bn = after is not None and after.kind in D_NORMS
    check(
        not (after_bn and conv_ignores_bn),
        "D's first conv layer has batch norm because your conv() ignores batch_norm=False: "
        "conv(3, 8, 4, batch_norm=False) still adds a BatchNorm2d. Add it only when batch_norm is "
        "True (test_conv checks this), run that cell, then this test again.",
    )
    check(
        not after_bn,
        "D's first conv layer should have no batch norm (the paper leaves it out at D's input): "
        "use conv(..., batch_norm=False) there.",
    )
    bn_count = sum(m.kind in D_NORMS for m in order)
    check(
        bn_count >= 2,
        f"D should use batch norm after its 2nd and 3rd conv layers, found {bn_count} batch norm "
        "layer(s) (InstanceNorm2d, which the original course allowed, counts too).",
    )


# The LeakyReLU slopes the original course's notebooks may use (it asked for none in particular;
# below 0.005 it is close to a ReLU, a real mistake).
ORIGINAL_SLOPES = (0.005, 0.35)


def _selu_like(before: torch.Tensor, after: torch.Tensor) -> str:
    """ "SELU" or "ELU" when `after` is that function of `before` (one elementwise step), else
    ""."""
    if before.shape != after.shape:
        return ""
    for name, fn in (("SELU", torch.nn.functional.selu), ("ELU", torch.nn.functional.elu)):
        if torch.allclose(fn(before), after, atol=1e-4, rtol=1e-4):
            return name
    return ""


def check_d_activations(convs: list[Call], original: bool = False) -> str | None:
    """LeakyReLU with slope 0.2 between D's conv layers, read from what reaches the next conv.

    `original`: the original course's notebook, which left the activation open: a slope in
    ORIGINAL_SLOPES, SELU or ELU pass with a note (returned), a ReLU still fails."""
    elu = _selu_like(convs[0][2], convs[1][1])
    if elu:
        if original:
            return (
                f"Note: D uses {elu} between its conv layers, which the original course left "
                "open. The kit's notebook uses LeakyReLU(0.2), the activation of every model in "
                "the DCGAN paper."
            )
        selu = " (F.selu's second argument is inplace, not a slope)" if elu == "SELU" else ""
        check(
            False,
            f"D uses {elu} between its conv layers{selu}, not LeakyReLU. The notebook asks for "
            "LeakyReLU with negative slope 0.2, the activation of every model in the DCGAN "
            "paper: F.leaky_relu(x, 0.2) or nn.LeakyReLU(0.2).",
        )
    for _, inp, _ in convs[1:3]:
        check(
            inp.min() < 0,
            "The input of D's second and third conv layers has no negative values, so D uses ReLU "
            "(or no activation before a ReLU-like step). Use LeakyReLU with negative slope 0.2: "
            "F.leaky_relu(x, 0.2) or nn.LeakyReLU(0.2).",
        )
    check(
        (convs[1][1] < 0).float().mean() > 0.05,
        "D's activations look like ReLU (almost no negative values reach the 2nd conv layer). Use "
        "LeakyReLU(0.2) between the conv layers.",
    )
    slope = leaky_slope(convs[0][2], convs[1][1])
    if slope is not None and original and abs(slope - 0.2) >= 0.03:
        low, high = ORIGINAL_SLOPES
        check(
            low <= slope <= high,
            f"D's LeakyReLU has negative slope {slope:.3g}, so small or large that it is close "
            "to a ReLU or to no activation at all. The DCGAN paper uses 0.2: "
            "F.leaky_relu(x, 0.2) or nn.LeakyReLU(0.2).",
        )
        return (
            f"Note: D's LeakyReLU has negative slope {slope:.2f}, which the original course left "
            "open. The kit's notebook asks for 0.2, the slope of every model in the DCGAN paper."
        )
    if slope is not None:
        default = " (F.leaky_relu's default)" if abs(slope - 0.01) < 0.005 else ""
        check(
            abs(slope - 0.2) < 0.03,
            f"D's LeakyReLU has negative slope {slope:.2f}{default}. The notebook asks for 0.2, "
            "the slope of every model in the DCGAN paper; a much smaller one passes almost no "
            "gradient for negative inputs, close to a ReLU. Use F.leaky_relu(x, 0.2) or "
            "nn.LeakyReLU(0.2).",
        )
    return None


def check_d_gives_logits(up: torch.Tensor, down: torch.Tensor) -> None:
    """Trained to grow (push_output), D's outputs `up` pass 1 and, trained to shrink, `down` go
    below 0: no final sigmoid."""
    check(
        up.max() > 1.0 and down.min() < 0.0,
        f"D's outputs stay inside [0, 1] even when trained to grow (max {up.max():.3f}, min "
        f"{down.min():.3f}): D ends with a sigmoid. Return the raw Linear output (logits); "
        "BCEWithLogitsLoss applies the sigmoid.",
    )


def observe_gradients(net: nn.Module, images: torch.Tensor, who: str) -> dict[str, Any]:
    """Backpropagate net(images).sum(): {"missing": names of parameters without a gradient,
    "input": whether the input got a nonzero gradient}."""
    xg = images.requires_grad_(True)
    missing = params_without_gradient(net, xg, who)
    return {"missing": missing, "input": bool(xg.grad is not None and torch.any(xg.grad != 0))}


def check_d_gradients(found: dict[str, Any]) -> None:
    """Every parameter of D gets a gradient, and so does D's input image (G learns through it)."""
    missing = found["missing"]
    check(
        not missing,
        f"No gradient reached these parameters of D: {missing}. Every layer must be used in "
        "forward(), without .detach() or torch.no_grad().",
    )
    check(
        found["input"] is True,
        "No gradient flows from D's output back to its input image, so G could not learn from D. "
        "Do not detach x inside forward().",
    )


# Layers that act on each number alone: the tensor before G's activation is the output of the
# last layer that is not one of these.
ELEMENTWISE = ("Dropout", "LeakyReLU", "ReLU", "ELU", "SELU", "Identity", "Tanh", "Sigmoid")


def check_g_layers(calls: list[Call], conv_dim: int, original: bool = False) -> str | None:
    """Transposed convs up to 3 channels, batch norm in hidden layers only, ReLU before the last.

    `original`: the original course's notebook, which left G's depths and its hidden activation
    open: the last layer may come from any depth, and LeakyReLU may replace ReLU (a note is
    returned); no activation at all still fails."""
    deconvs = [(m, i, o) for m, i, o in calls if m.kind == "ConvTranspose2d"]
    check(
        len(deconvs) >= 2,
        f"G should upsample with transposed convolutions (deconv), found {len(deconvs)}.",
    )
    last, last_input, _ = deconvs[-1]
    check(
        last.out_channels == 3 and (original or last.in_channels == conv_dim),
        f"G's last transposed conv should go from conv_dim={conv_dim} channels to 3 (RGB), got "
        f"{last.in_channels} -> {last.out_channels}.",
    )
    order = [m for m, _, _ in calls]
    notes = []
    if original and last.in_channels != conv_dim:
        notes.append(
            f"G's last transposed conv takes {last.in_channels} channels; the kit's notebook "
            f"takes conv_dim={conv_dim} there (4*conv_dim, 2*conv_dim, conv_dim, then 3), "
            "halving the depth at each step as the DCGAN paper does"
        )
    check(
        not any(m.kind == "BatchNorm2d" for m in order[order.index(last) + 1 :]),
        "G's output layer should have no batch norm: use deconv(..., batch_norm=False) for the "
        "last layer.",
    )
    bn_count = sum(m.kind == "BatchNorm2d" for m in order)
    check(
        bn_count >= 2,
        f"G should use batch norm in its hidden layers, found {bn_count} batch norm layer(s).",
    )
    leaky = None
    if original and last_input.min() < 0:
        at = order.index(last)
        before = [
            o
            for m, _, o in calls[:at]
            if o.shape == last_input.shape and not m.kind.startswith(ELEMENTWISE)
        ]
        slope = leaky_slope(before[-1], last_input) if before else None
        if slope is not None and 0.005 <= slope <= 0.35:
            leaky = slope
            notes.append(
                f"G's hidden layers use LeakyReLU (slope {slope:.2f}), which the original "
                "course left open; the kit's notebook uses ReLU in G, as the DCGAN paper does "
                "(LeakyReLU only in D)"
            )
    check(
        leaky is not None or last_input.min() >= 0,
        f"The input of G's last layer has negative values (min {last_input.min():.3f}): G's hidden "
        "layers should end with ReLU (the paper uses ReLU in G and LeakyReLU only in D).",
    )
    return f"Note: {'; '.join(notes)}." if notes else None


def check_g_ends_with_tanh(up: torch.Tensor, down: torch.Tensor) -> None:
    """Trained to grow or shrink (push_output: `up`, `down`), G's outputs stay in [-1, 1] and
    reach below -0.5: tanh."""
    check(
        up.max() <= 1.0 + 1e-6 and down.min() >= -1.0 - 1e-6,
        f"G's outputs leave [-1, 1] when trained to grow or shrink (max {up.max():.3f}, min "
        f"{down.min():.3f}): end G with torch.tanh.",
    )
    check(
        down.min() < -0.5,
        f"G's outputs cannot go below {down.min():.3f} even when trained to: it ends with a "
        "sigmoid (range [0, 1]). Use torch.tanh, whose range [-1, 1] matches the scaled real "
        "images.",
    )


def n_params(module: nn.Module) -> int:
    """How many numbers the parameters of `module` hold."""
    return sum(p.numel() for p in module.parameters())


def observe_independence(net: nn.Module, inputs: torch.Tensor, n: int = 4) -> dict[str, Any]:
    """In eval mode, the outputs of the first n samples inside the batch and alone."""
    net.eval()
    try:
        with torch.no_grad():
            together = net(inputs)
            alone = torch.cat([net(inputs[i : i + 1]) for i in range(n)])
    finally:
        net.train()
    return {"together": plain(together[:n]), "alone": plain(alone)}


def samples_independent(found: dict[str, Any]) -> bool:
    """Is each sample's output the same alone as inside the batch (observe_independence)?"""
    together, alone = found["together"], found["alone"]
    return together.shape == alone.shape and torch.allclose(together, alone, atol=1e-4)


def check_images_independent(obs: Observation, calls: list[Call], message: str) -> None:
    """Fail with `message` when a network's output for one sample depends on the others in the
    batch: from the replayed record (scored), then from the learner side's observation
    (observe_independence: eval or train mode, which the record does not show; not scored)."""
    check(not mixes_images(calls), message)
    with reported():
        check(samples_independent(obs.need("independence")), message)


def params_without_gradient(net: nn.Module, inputs: torch.Tensor, who: str) -> list[str]:
    """Backpropagate net(inputs).sum(); return the names of parameters that got no gradient."""
    with calling(f"Backpropagating through {who}"):
        net.zero_grad()
        net(inputs).sum().backward()
    return [n for n, p in net.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]


def check_size_follows_conv_dim(small: int, big: int, who: str, low: float, layers: str) -> None:
    """Doubling conv_dim should about quadruple the parameters (k x k x in x out): `small` and
    `big` are the parameter counts."""
    ratio = big / small if small else 0.0
    check(
        low < ratio < 4.5,
        f"{who}'s size should follow conv_dim: doubling conv_dim should roughly quadruple the "
        f"parameters, got {ratio:.2f}x. Build every layer from conv_dim ({layers}).",
    )


def push_output(
    module: nn.Module,
    make_input: Callable[[], torch.Tensor],
    direction: float,
    steps: int = 25,
    lr: float = 0.05,
) -> torch.Tensor:
    """Train `module` briefly to push its outputs up (+1) or down (-1); return the final outputs.

    A linear output grows without bound; an output squashed by sigmoid or tanh cannot pass its
    limits. Works on a copy so the learner's module is untouched.
    """
    import copy

    probe = copy.deepcopy(module)
    probe.train()
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = -direction * probe(make_input()).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return probe(make_input())
