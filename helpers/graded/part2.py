"""The machinery behind part 2's graded tests (part2_unittests.py): the 64x64 networks' layer
checks, small known-answer critics for the gradient penalty, and the WGAN-GP training recorder
(observe side) with its judge, which replays every step's gradients.

What part 2 shares with part 1 is imported, not copied: the failure type and the learner's
exceptions as messages (failures.py), layers traced and replayed from their records (layers.py),
the network checks (networks.py), the training recorder (training.py) and gradient replay
(gradients.py). The checks here run on the judge's side (helpers/graded/verdicts.py): on recorded
data, never on the learner's objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from helpers.graded.failures import GradedTestFailure, check, malformed
from helpers.graded.gradients import grads_close, grads_equal, is_zero, replay_grads, rows_match
from helpers.graded.layers import POOLING, Call, Leaf
from helpers.graded.networks import BATCHES, leaky_slope
from helpers.graded.plain import plain
from helpers.graded.training import RUN, Recorder, StepJudge, check_recorded_call, run_events

# ---------------------------------------------------------------- the 64x64 networks

# The networks' checks run on the judge's side, on the layers as records
# (helpers.graded.layers.Leaf, from rebuild_trace; check_record_is_own replays every call after
# them): a layer is known by its .kind.
if TYPE_CHECKING:  # for the annotations only
    from helpers.graded.verdicts import Observation

__all__ = [
    "NORMS",
    "LinearCritic",
    "SquareCritic",
    "TinyCritic",
    "WGANJudge",
    "WGANRecorder",
    "after",
    "batch_norms",
    "check_batch_sizes_64",
    "check_d64_batch_norm",
    "check_d64_layers",
    "check_g64_layers",
    "check_interpolates",
    "check_leaky_between",
    "check_no_batch_norm",
    "kind",
    "mixing_weights",
    "observe_train_independence",
    "on_segments",
]

NORMS = ("BatchNorm2d", "GroupNorm", "LayerNorm", "InstanceNorm2d")


def kind(leaf: Leaf | None) -> str | None:
    """The kind of a traced layer, or None (nothing came after the network's last layer)."""
    return None if leaf is None else leaf.kind


def check_batch_sizes_64(
    obs: Observation, who: str, in_shape: str, out_shape: tuple[int, ...]
) -> None:
    """net on batches of 5, 16 and then 1 returned (B, *out_shape) (observe_batch_sizes of
    helpers.graded.networks); part 2's advice for a (B, 1, 1, 1) output."""
    for b in BATCHES:
        shape = tuple(obs.need(f"batch {b}"))
        flat = " The last conv gives (B, 1, 1, 1): return it as (B, 1) with .flatten(1)."
        check(
            shape == (b, *out_shape),
            f"{who} on a ({b}, {in_shape}) batch should return shape {(b, *out_shape)}, got "
            f"{shape}." + (flat if out_shape == (1,) and shape == (b, 1, 1, 1) else ""),
        )


def check_d64_layers(leaves: list[Leaf], calls: list[Call], conv_dim: int, who: str) -> list[Call]:
    """Four stride-2 4x4 convs 64 -> 32 -> 16 -> 8 -> 4 with conv_dim x 1, 2, 4, 8 channels, then a
    4x4 conv to one logit; no pooling, no fully connected layer. Returns the traced convs.

    `leaves` are the network's layers and `calls` their calls, from rebuild_trace."""
    convs = [(m, i, o) for m, i, o in calls if m.kind == "Conv2d"]
    pools = [m.kind for m in leaves if m.kind in POOLING]
    check(
        not pools,
        f"{who} should downsample with strided convolutions, not pooling; found {pools[:1]}.",
    )
    linears = [m for m, _, _ in calls if m.kind == "Linear"]
    check(
        not linears,
        f"{who} uses an nn.Linear layer. The DCGAN paper's 64x64 {who} has no fully connected "
        "layer: after the four stride-2 convs (4x4 pixels left), a last nn.Conv2d(8 * conv_dim, "
        "1, 4, 1, 0) gives the one score per image.",
    )
    check(
        len(convs) == 5,
        f"{who} should have five conv layers (four stride-2 ones, then the 4x4 conv to one score), "
        f"found {len(convs)}.",
    )
    first = convs[0][0]
    check(
        first.in_channels == 3 and first.out_channels == conv_dim,
        f"{who}'s first conv layer should take the 3 colour channels to conv_dim={conv_dim} "
        f"channels, got {first.in_channels} -> {first.out_channels}.",
    )
    sizes = [o.shape[-1] for _, _, o in convs]
    check(
        sizes == [32, 16, 8, 4, 1],
        f"{who}'s conv layers should take a 64x64 image to 32, 16, 8, 4 and then 1x1 pixels, got "
        f"sizes {sizes}. Use kernel 4, stride 2, padding 1 for the first four, and kernel 4, "
        "stride 1, padding 0 for the last.",
    )
    for m, _, _ in convs:
        check(
            m.kernel_size == (4, 4),
            f"Every conv layer of {who} should use a 4x4 kernel (the paper's), found "
            f"{m.kernel_size}.",
        )
    depths = [m.out_channels for m, _, _ in convs]
    want = [conv_dim, 2 * conv_dim, 4 * conv_dim, 8 * conv_dim, 1]
    check(
        depths == want,
        f"With conv_dim={conv_dim}, {who}'s conv layers should have {want} output channels "
        f"(conv_dim, 2x, 4x, 8x, then one score), got {depths}.",
    )
    return convs


def after(calls: list[Call], leaf: Leaf) -> Leaf | None:
    """The layer called right after `leaf` (None at the end)."""
    order = [m for m, _, _ in calls]
    i = order.index(leaf) + 1
    return order[i] if i < len(order) else None


def check_d64_batch_norm(calls: list[Call], convs: list[Call]) -> None:
    """No batch norm after D's first and last conv (the paper), batch norm after the other three."""
    check(
        kind(after(calls, convs[0][0])) != "BatchNorm2d",
        "D's first conv layer should have no batch norm (the paper leaves it out at D's input).",
    )
    missing = [k + 1 for k in (1, 2, 3) if kind(after(calls, convs[k][0])) not in NORMS]
    check(
        not missing,
        f"D should have an nn.BatchNorm2d right after its conv layers 2, 3 and 4; there is none "
        f"after conv layer(s) {missing}.",
    )
    kinds = {str(kind(after(calls, convs[k][0]))) for k in (1, 2, 3)}  # conv 5 comes after
    check(
        kinds == {"BatchNorm2d"},
        f"D (the DCGAN) should use batch norm, nn.BatchNorm2d, after its conv layers 2 to 4; it "
        f"uses {sorted(kinds)}. Layer norm is for the WGAN-GP critic, later in the notebook.",
    )
    check(
        after(calls, convs[4][0]) is None,
        "D's last conv layer gives the logit: nothing should come after it (no batch norm, no "
        "activation, no sigmoid).",
    )


def check_leaky_between(convs: list[Call], who: str) -> None:
    """LeakyReLU(0.2) before conv layers 2 to 5, read from what reaches each conv."""
    for k in range(1, 5):
        inp = convs[k][1]
        check(
            (inp < 0).float().mean() > 0.05,
            f"Almost no negative values reach {who}'s conv layer {k + 1}: {who} uses ReLU (or "
            "none) between its conv layers. Use LeakyReLU with negative slope 0.2: "
            "F.leaky_relu(x, 0.2) or nn.LeakyReLU(0.2).",
        )
    slope = leaky_slope(convs[0][2], convs[1][1])
    if slope is not None:
        check(
            abs(slope - 0.2) < 0.03,
            f"{who}'s LeakyReLU has negative slope {slope:.2f}. The paper (and the notebook) use "
            "0.2: F.leaky_relu(x, 0.2) or nn.LeakyReLU(0.2).",
        )


def check_g64_layers(calls: list[Call], conv_dim: int, z_size: int) -> None:
    """A stride-1 4x4 transposed conv z -> 4x4, then stride-2 ones to 8, 16, 32, 64 pixels with
    8, 4, 2, 1 x conv_dim and 3 channels; batch norm after all but the last; ReLU between."""
    deconvs = [(m, i, o) for m, i, o in calls if m.kind == "ConvTranspose2d"]
    linears = [m for m, _, _ in calls if m.kind == "Linear"]
    check(
        not linears,
        "G uses an nn.Linear layer. The paper's 64x64 G starts with a transposed conv instead: "
        "z as a (B, z_size, 1, 1) image, nn.ConvTranspose2d(z_size, 8 * conv_dim, 4, 1, 0) makes "
        "it 4x4.",
    )
    check(
        len(deconvs) == 5,
        f"G should have five transposed conv layers (1 -> 4 -> 8 -> 16 -> 32 -> 64 pixels), found "
        f"{len(deconvs)}.",
    )
    first = deconvs[0][0]
    check(
        first.in_channels == z_size,
        f"G's first transposed conv should take the z_size={z_size} numbers of z as channels, got "
        f"in_channels={first.in_channels}. Build it from the z_size argument.",
    )
    sizes = [o.shape[-1] for _, _, o in deconvs]
    check(
        sizes == [4, 8, 16, 32, 64],
        f"G's transposed convs should make 4, 8, 16, 32 and 64 pixels, got {sizes}. The first "
        "uses kernel 4, stride 1, padding 0 (1x1 -> 4x4); the others kernel 4, stride 2, "
        "padding 1.",
    )
    depths = [m.out_channels for m, _, _ in deconvs]
    want = [8 * conv_dim, 4 * conv_dim, 2 * conv_dim, conv_dim, 3]
    check(
        depths == want,
        f"With conv_dim={conv_dim}, G's transposed convs should have {want} output channels, got "
        f"{depths}.",
    )
    missing = [k + 1 for k in range(4) if kind(after(calls, deconvs[k][0])) != "BatchNorm2d"]
    check(
        not missing,
        "G should have an nn.BatchNorm2d right after each transposed conv but the last; there is "
        f"none after layer(s) {missing}.",
    )
    order = [m for m, _, _ in calls]
    after_last = order[order.index(deconvs[4][0]) :]
    check(
        not any(m.kind == "BatchNorm2d" for m in after_last),
        "G's output layer should have no batch norm: the paper leaves it out at G's output.",
    )
    for k in range(1, 5):
        check(
            deconvs[k][1].min() >= 0,
            f"The input of G's transposed conv {k + 1} has negative values (min "
            f"{deconvs[k][1].min():.3f}): use ReLU after each batch norm of G (the paper uses "
            "ReLU in G, LeakyReLU only in D).",
        )


def batch_norms(critic: nn.Module) -> list[str]:
    """The names of the critic's batch norm layers (observed, reported to the judge)."""
    return [
        type(m).__name__
        for m in critic.modules()
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm))
    ]


def check_no_batch_norm(bns: list[str]) -> None:
    """The critic has no batch norm (`bns`: batch_norms, and any BatchNorm2d among its traced
    layers): the gradient penalty is per image, batch norm mixes them."""
    check(
        not bns,
        f"The critic uses {bns[0] if bns else ''}. WGAN-GP's penalty is on the gradient of each "
        "image's score with respect to that image alone; batch norm makes every score depend on "
        "the whole batch. Use layer norm, nn.GroupNorm(1, channels), or no normalisation.",
    )


def observe_train_independence(net: nn.Module, x: torch.Tensor, n: int = 4) -> dict[str, Any]:
    """In train mode (where batch norm mixes images), the scores of the first n images inside the
    batch and alone (networks.samples_independent compares them)."""
    net.train()
    with torch.no_grad():
        together = net(x)
        alone = torch.cat([net(x[i : i + 1]) for i in range(n)])
    return {"together": plain(together[:n]), "alone": plain(alone)}


# ---------------------------------------------------------------- gradient penalty


class LinearCritic(nn.Module):
    """score(x) = <w, x> + b: its gradient with respect to x is w for every image."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(0.3))
        self.inputs: list[torch.Tensor] = []  # what the penalty scored (the interpolates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return (x * self.w).flatten(1).sum(1, keepdim=True) + self.b  # (B, 1)


class SquareCritic(nn.Module):
    """score(x) = sum(a * x^2) / 2: its gradient with respect to x is a * x, different for every
    image, so the penalty of a batch depends on each image's own gradient norm."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return (self.a * x**2).flatten(1).sum(1, keepdim=True) / 2


def _tiny_critic_penalty(critic: nn.Module, x_hat: torch.Tensor) -> torch.Tensor:
    """The penalty of the judge's TinyCritic on given interpolates: mean over images of
    (||d critic / d x_hat|| - 1)^2. Refuses any other critic: what learners get holds no
    gradient penalty that answers test_gradient_penalty's critics or the notebook's Critic."""
    if type(critic) is not TinyCritic:
        raise TypeError("the judge's penalty is TinyCritic's alone")
    x_hat = x_hat.detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()


def mixing_weights(
    x_hat: torch.Tensor, real: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the eps that best writes x_hat as eps * real + (1 - eps) * fake, and the largest
    pixel error of that fit (0 when x_hat lies on the real-fake segment's line)."""
    d = (real - fake).flatten(1)
    eps = ((x_hat - fake).flatten(1) * d).sum(1) / (d * d).sum(1)
    fit = fake.flatten(1) + eps[:, None] * d
    return eps, (x_hat.flatten(1) - fit).abs().amax(1)


def on_segments(x_hat: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> bool:
    """Whether each image of x_hat lies on the segment from its fake to its real image."""
    eps, error = mixing_weights(x_hat, real, fake)
    return bool(error.max() < 1e-4 and eps.min() >= -1e-4 and eps.max() <= 1 + 1e-4)


def check_interpolates(x_hat: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """x_hat mixes each real and fake pair with one eps per image, in [0, 1]; returns the eps."""
    eps, error = mixing_weights(x_hat, real, fake)
    check(
        error.max() < 1e-4,
        "The interpolates x_hat do not lie on the lines from each fake to its real image: mix "
        "with one eps per image, eps of shape (B, 1, 1, 1), not one per pixel: x_hat = eps * "
        "real_images + (1 - eps) * fake_images.",
    )
    check(
        eps.min() >= -1e-4 and eps.max() <= 1 + 1e-4,
        f"The mixing weights should lie in [0, 1] (torch.rand), got values from {eps.min():.2f} "
        f"to {eps.max():.2f}.",
    )
    return eps


# ---------------------------------------------------------------- training step


class TinyCritic(nn.Module):
    """A small critic for 16x16 images (layer norm, no batch norm), used only by test_train_wgan."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 4, 4, 2, 1),
            nn.LeakyReLU(0.2),  # (B, 4, 8, 8)
            nn.Conv2d(4, 8, 4, 2, 1),
            nn.GroupNorm(1, 8),
            nn.LeakyReLU(0.2),  # (B, 8, 4, 4)
            nn.Conv2d(8, 1, 4, 1, 0),  # (B, 1, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class WGANRecorder(Recorder):
    """Watches a WGAN-GP training run and records, as data, what WGANJudge needs.

    helpers.graded.training.Recorder's events, the critic's calls under the kind "D" and
    c_optimizer's steps as "d_step"; each call made with gradients on also says whether its input
    required a gradient ("grad": the interpolates of the penalty do). Calls under torch.no_grad()
    (sampling, logging) are not recorded.
    """

    def _forward(self, kind, inputs, output):
        if not torch.is_grad_enabled():
            return
        x = inputs[0]
        self._add(
            {
                "kind": kind,
                "input": x.detach().cpu().clone(),
                "output": output.detach().cpu().clone(),
                "grad": bool(x.requires_grad),
            }
        )


class WGANJudge:
    """Checks every optimizer step of a recorded WGAN-GP run (WGANRecorder.record()), in order.

    At each step it loads the recorded weights into its own critic and G (the kit's TinyCritic
    and TinyG, built by the judge), finds the real batch, the fakes and the interpolates among
    the critic's inputs since the last step, and replays critic_loss + gp_weight * penalty (at a
    critic step) or -critic(G(z)).mean() (at a G step) on them; the first wrong step raises.
    """

    def __init__(
        self,
        critic: nn.Module,
        G: nn.Module,
        scaled_batches: list[torch.Tensor],
        gp_weight: float,
        record: dict[str, Any],
    ) -> None:
        self.critic, self.G = critic, G
        self.scaled_batches, self.gp_weight = scaled_batches, gp_weight
        # ("C" | "G", input, output, input needed grad) since the last step
        self.window: list[tuple[str, torch.Tensor, torch.Tensor, bool]] = []
        self.steps = {"c_step": 0, "g_step": 0}
        self.order: list[str] = []  # "c" and "g", the order of the steps
        self.overflow = record["overflow"] is True
        events = run_events(record)
        self.last_g_grads = self._grads(events[0]["g_grads"], G)
        for index, event in enumerate(events[1:], 1):
            kind = event["kind"]
            if kind in ("D", "G"):
                call = f"event {index} (a call of {'the critic' if kind == 'D' else 'G'})"
                self._forward("C" if kind == "D" else "G", event, call)
            elif kind in ("d_step", "g_step"):
                with torch.no_grad():
                    critic.load_state_dict(event["D"])
                    G.load_state_dict(event["G"])
                c_grads = self._grads(event["d_grads"], critic)
                g_grads = self._grads(event["g_grads"], G)
                if kind == "d_step":
                    self._check_c_step(c_grads, g_grads)
                else:
                    self._check_g_step(g_grads)
                self.window = []
            else:
                raise malformed(
                    RUN, f"the kind of event {index}", '"D", "G", "d_step" or "g_step"', kind
                )

    _grads = staticmethod(StepJudge._grads)  # recorded gradients, checked against the network

    def _forward(self, kind, event, call):
        inp, out, grad = event["input"], event["output"], event["grad"]
        check_recorded_call(call, inp, out, "the critic and G")
        if not isinstance(grad, bool):
            raise malformed(RUN, f'the "grad" entry of {call}', "True or False", grad)
        self.window.append((kind, inp.float(), out.float(), grad))

    def _check_c_step(self, got, g_grads):
        self.steps["c_step"] += 1
        self.order.append("c")
        calls = [e for e in self.window if e[0] == "C"]
        fakes = [e[2] for e in self.window if e[0] == "G"]
        check(
            calls,
            "c_optimizer.step() was called without the critic scoring any image since the last "
            "step.",
        )
        check(
            fakes,
            "The critic step scored no fakes: make them with G from fresh noise in every critic "
            "step, fake_images = G(z).detach().",
        )
        check(
            is_zero(g_grads) or grads_equal(g_grads, self.last_g_grads),
            "The critic step's backward also sent gradients into G: detach the fakes in the critic "
            "step, fake_images = G(z).detach(), so that step trains the critic only.",
        )
        fake = fakes[-1]
        batches = torch.cat([c[1] for c in calls if not c[3]]) if calls else None
        real = next(
            (
                b
                for b in self.scaled_batches
                if batches is not None and rows_match(b, batches).all()
            ),
            None,
        )
        if real is None:
            unscaled = any(
                batches is not None and rows_match((b + 1) / 2, batches).all()
                for b in self.scaled_batches
            )
            check(
                not unscaled,
                "The critic scored the real images in [0, 1]: scale them to [-1, 1] first "
                "(real_images * 2 - 1, as the given code does), like G's tanh outputs.",
            )
            raise GradedTestFailure(
                "The critic step did not score the batch of real images it was given."
            )
        mixed = [c[1] for c in calls if c[3] and not rows_match(c[1], fake).all()]
        check(
            len(mixed) == 1,
            "In each critic step the critic should score the interpolates x_hat once, with "
            "requires_grad, inside gradient_penalty, and that penalty goes into the critic's loss: "
            f"found {len(mixed)} such call(s). c_loss + gp_weight * gradient_penalty(critic, "
            "real_images, fake_images).",
        )
        x_hat = mixed[0]
        check(
            x_hat.shape == real.shape == fake.shape and on_segments(x_hat, real, fake),
            "The interpolates x_hat the critic step's penalty scored do not lie between this "
            "step's real images and fakes: gradient_penalty(critic, real_images, fake_images), "
            "with the real images of this batch and the fakes of this step.",
        )
        critic, gp_weight = self.critic, self.gp_weight

        def loss(weight=gp_weight, sign=1.0):
            wass = critic(fake).mean() - critic(real).mean()
            return sign * wass + weight * _tiny_critic_penalty(critic, x_hat)

        if grads_close(got, replay_grads([critic], critic, loss)):
            return
        check(
            not grads_close(got, replay_grads([critic], critic, lambda: loss(weight=0.0))),
            "The critic's gradients leave out the gradient penalty: add gp_weight * "
            "gradient_penalty(critic, real_images, fake_images) to the critic's loss before "
            "backward() (and compute the penalty with create_graph=True so it can train).",
        )
        check(
            not grads_close(got, replay_grads([critic], critic, lambda: loss(weight=1.0))),
            "The critic's loss adds the gradient penalty unweighted: multiply it by gp_weight "
            "(lambda = 10 in Gulrajani et al.).",
        )
        check(
            not grads_close(got, replay_grads([critic], critic, lambda: loss(sign=-1.0))),
            "The critic's loss has the wrong sign: it is critic_loss(real_scores, fake_scores) = "
            "mean fake score - mean real score, which the critic minimises.",
        )
        check(
            False,
            "The critic's gradients at its step are not those of critic_loss(critic(real), "
            "critic(fake)) + gp_weight * gradient_penalty(...) on this step's batch. Zero the "
            "gradients first (c_optimizer.zero_grad()), use this batch's real images and the "
            "fakes of this step, and call backward() once on that sum.",
        )

    def _check_g_step(self, got):
        self.steps["g_step"] += 1
        self.order.append("g")
        g_calls = [e for e in self.window if e[0] == "G"]
        check(
            g_calls,
            "g_optimizer.step() was called without G making fakes since the last step. Make new "
            "fakes from fresh noise for the generator step.",
        )
        check(
            not is_zero(got),
            "At the generator step, G has no gradient: do not detach the fakes in the generator "
            "step, and call g_loss.backward() before g_optimizer.step().",
        )
        z = g_calls[-1][1]
        critic, G = self.critic, self.G

        def loss(sign=1.0):
            return -sign * critic(G(z)).mean()

        if grads_close(got, replay_grads([critic, G], G, loss)):
            self.last_g_grads = got
            return
        check(
            not grads_close(got, replay_grads([critic, G], G, lambda: loss(sign=-1.0))),
            "The generator's loss has the wrong sign: G wants high critic scores for its fakes, so "
            "generator_loss(fake_scores) = -fake_scores.mean().",
        )
        check(
            False,
            "G's gradients at its step are not those of generator_loss(critic(G(z))) for the last "
            "z it used. Zero G's gradients first (g_optimizer.zero_grad()), score the new fakes "
            "with the critic, and call backward() on that loss.",
        )

    def count(self, kind: str) -> int:
        """How many "c_step" or "g_step" steps were checked."""
        return self.steps[kind]
