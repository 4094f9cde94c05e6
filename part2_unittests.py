"""Graded tests for part 2, part2_dcgan64_wgan.ipynb: the paper's 64x64 DCGAN, WGAN-GP and the
latent space.

As in problem_unittests.py (part 1), each ``test_*`` function checks one piece you write. It
prints ``Tests Passed`` when the piece behaves as asked, and otherwise raises a
GradedTestFailure (an AssertionError) that says what was expected, what your code gave, and
the most likely cause. Like part 1's, each test is two halves (helpers/graded/verdicts.py):
``observe_x(..., seed)`` runs your code and returns plain data, ``judge_x(obs, seed)`` holds
every check and message and never calls your code, so the grader can judge in its own process.
Their machinery lives in helpers/graded/ (shared with part 1) and helpers/graded/part2.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from helpers.graded.failures import (
    GradedTestFailure,  # noqa: F401  (re-exported: `except tests.GradedTestFailure`)
    calling,
    check,
    judged,
    passed,
    reported,
)
from helpers.graded.layers import (
    check_output_activation,
    check_output_shape,
    check_record_is_own,
    rebuild_trace,
    trace_input,
    trace_record,
)
from helpers.graded.networks import (
    check_d_gives_logits,
    check_d_gradients,
    check_g_ends_with_tanh,
    check_images_independent,
    check_no_dropout_on_output,
    check_size_follows_conv_dim,
    device_of,
    n_params,
    observe_batch_sizes,
    observe_gradients,
    observe_independence,
    params_without_gradient,
    push_output,
)
from helpers.graded.part2 import (
    LinearCritic,
    SquareCritic,
    TinyCritic,
    WGANJudge,
    WGANRecorder,
    batch_norms,
    check_batch_sizes_64,
    check_d64_batch_norm,
    check_d64_layers,
    check_g64_layers,
    check_interpolates,
    check_leaky_between,
    check_no_batch_norm,
    observe_train_independence,
)
from helpers.graded.plain import (
    check_adam_steps,
    optimizer_facts,
    optimizer_steps,
    plain,
    type_name,
)
from helpers.graded.training import TinyG, observe_training_run
from helpers.graded.verdicts import NOTEBOOK_SEED, Observation, observing

__all__ = [
    "test_discriminator64",
    "test_generator64",
    "test_critic",
    "test_gradient_penalty",
    "test_critic_loss",
    "test_generator_loss",
    "test_wgan_optimizers",
    "test_train_wgan",
    "test_slerp",
    "test_attribute_vector",
]


# ---------------------------------------------------------------- the 64x64 DCGAN

# The networks are traced layer by layer on a few images, and a layer's weights are sent to the
# judge only up to a size far beyond the test's conv_dim=8 (32 times its largest layer): a network
# that ignores conv_dim (conv_dim=64 written in) then still fits in the grader's observation
# limits and fails on its sizes, with the message that says so.
TRACE_BATCH = 4
MAX_LAYER_STATE = 2**20


def _images(seed, device):
    """Random images in [-1, 1] from `seed`, one batch per call."""
    gen = torch.Generator().manual_seed(seed)
    return lambda b: (torch.rand(b, 3, 64, 64, generator=gen) * 2 - 1).to(device)


def observe_discriminator64(Discriminator64, seed):
    obs = Observation()
    with observing(obs):
        torch.manual_seed(seed)
        with calling("Discriminator64(conv_dim=8)"):
            D = Discriminator64(8)
        obs["module"] = isinstance(D, nn.Module)
        if not obs["module"]:
            return obs
        images = _images(seed, device_of(D))
        if not observe_batch_sizes(obs, D, images, "D", "3, 64, 64", out_shape=(1,)):
            return obs
        with torch.no_grad(), calling("D on a (32, 3, 64, 64) batch"):
            obs["logits on 32"] = plain(D(images(32)))
        x = trace_input(seed, TRACE_BATCH, 3, 64, 64).to(device_of(D))
        with calling(f"D on a ({TRACE_BATCH}, 3, 64, 64) batch"):
            obs["out"], obs["trace"] = trace_record(D, x, max_state=MAX_LAYER_STATE)
        obs["independence"] = observe_independence(D, x)
        obs["pushed"] = [plain(push_output(D, lambda: images(8), d)) for d in (+1, -1)]
        obs["gradients"] = observe_gradients(D, images(6), "D")
        with calling("Discriminator64(conv_dim=16)"):
            obs["sizes"] = [n_params(D), n_params(Discriminator64(16))]
    return obs


@judged
def judge_discriminator64(obs, seed):
    with reported():
        check(obs.need("module") is True, "Discriminator64 should be an nn.Module subclass.")
        check_batch_sizes_64(obs, "D", "3, 64, 64", (1,))
        check_no_dropout_on_output(obs.need("logits on 32"))
    out = obs.need("out")
    check_output_shape(out, "D", TRACE_BATCH, "3, 64, 64", (1,))  # from the record
    leaves, calls = rebuild_trace(obs.need("trace"), "D", replay=False)
    check(
        out.std() > 1e-6,
        "D gives the same output for every image: its output must depend on the input.",
    )
    convs = check_d64_layers(leaves, calls, 8, "D")
    check_d64_batch_norm(calls, convs)
    check_leaky_between(convs, "D")
    mixing = (
        "In eval mode, D's score for one image changes when other images are in the batch: "
        "keep each image's numbers together (x.flatten(1) at the end, not a view that mixes "
        "images)."
    )
    check_images_independent(obs, calls, mixing)  # the record, then the mode
    check_output_activation(calls, out, "D", "none")  # from the record, replayed below
    with reported():
        check_d_gives_logits(*obs.need("pushed"))
        check_d_gradients(obs.need("gradients"))  # backward runs on the learner's side
        small, big = obs.need("sizes")
        check_size_follows_conv_dim(small, big, "D", 3.5, "conv_dim, 2x, 4x and 8x conv_dim")
    check_record_is_own(calls, out, trace_input(seed, TRACE_BATCH, 3, 64, 64), "D")


def test_discriminator64(Discriminator64):
    """Discriminator64(conv_dim): (B, 3, 64, 64) in [-1, 1] -> logits (B, 1), the paper's layers."""
    judge_discriminator64(observe_discriminator64(Discriminator64, NOTEBOOK_SEED), NOTEBOOK_SEED)
    passed()


def observe_generator64(Generator64, seed):
    obs = Observation()
    with observing(obs):
        torch.manual_seed(seed)
        with calling("Generator64(z_size=20, conv_dim=8)"):
            G = Generator64(z_size=20, conv_dim=8)
        obs["module"] = isinstance(G, nn.Module)
        if not obs["module"]:
            return obs
        device = device_of(G)
        gen = torch.Generator().manual_seed(seed)

        def noise(b, size=20):
            return torch.randn(b, size, 1, 1, generator=gen).to(device)

        if not observe_batch_sizes(
            obs,
            G,
            noise,
            "G",
            "20, 1, 1",
            out_shape=(3, 64, 64),
            hint="Generator64(z_size=20, ...) must take z of shape (B, 20, 1, 1): build its first "
            "transposed conv from the z_size argument, nn.ConvTranspose2d(z_size, 8 * conv_dim, 4, "
            "1, 0), and check the layer sizes above.",
        ):
            return obs
        with calling(
            "G on a (5, 20) batch of z",
            hint="G should also take z as (B, z_size), the shape part 1's train makes: reshape it "
            "first with z.view(z.size(0), self.z_size, 1, 1) (or -1 for the 1, 1).",
        ):
            flat = G(noise(5).flatten(1))
        obs["flat z"] = list(getattr(flat, "shape", ()))
        z = trace_input(seed, TRACE_BATCH, 20, 1, 1, normal=True).to(device)
        with calling(f"G on a ({TRACE_BATCH}, 20, 1, 1) batch of z"):
            obs["out"], obs["trace"] = trace_record(G, z, max_state=MAX_LAYER_STATE)
        obs["independence"] = observe_independence(G, z)
        # only the extremes of the pushed images: all the tanh check reads, at a fraction of the
        # size (8 images of 64x64)
        obs["pushed"] = [
            plain(torch.stack([p.min(), p.max()]))
            for p in (push_output(G, lambda: noise(8), d) for d in (+1, -1))
        ]
        obs["missing"] = params_without_gradient(G, noise(6), "G")
        with calling("Generator64(z_size=7, conv_dim=8)"):
            G7 = Generator64(z_size=7, conv_dim=8)
        with calling("Generator64(z_size=7, conv_dim=8) on a (3, 7, 1, 1) batch of z"):
            obs["z_size 7"] = list(getattr(G7(noise(3, 7)), "shape", ()))
        with calling("Generator64(z_size=20, conv_dim=16)"):
            obs["sizes"] = [n_params(G), n_params(Generator64(z_size=20, conv_dim=16))]
    return obs


@judged
def judge_generator64(obs, seed):
    with reported():
        check(obs.need("module") is True, "Generator64 should be an nn.Module subclass.")
        check_batch_sizes_64(obs, "G", "20, 1, 1", (3, 64, 64))
        flat = tuple(obs.need("flat z"))
        check(
            flat == (5, 3, 64, 64),
            f"G on a (5, 20) batch of z should return (5, 3, 64, 64), got {flat}. Reshape z "
            "to (B, z_size, 1, 1) first.",
        )
    out = obs.need("out")
    check_output_shape(out, "G", TRACE_BATCH, "20, 1, 1", (3, 64, 64))  # from the record
    _, calls = rebuild_trace(obs.need("trace"), "G", replay=False)
    check(
        out.min() >= -1 and out.max() <= 1,
        f"G's images should lie in [-1, 1], got min {out.min():.3f}, max {out.max():.3f}. End "
        "with tanh.",
    )
    check(
        (out[0] - out[1]).abs().max() > 1e-4,
        "G makes the same image for different z: its output must depend on z.",
    )
    check_g64_layers(calls, 8, 20)
    mixing = (
        "In eval mode, G's image for one z changes when other z are in the batch: reshape z "
        "with z.view(z.size(0), z_size, 1, 1), which keeps each z's numbers together."
    )
    check_images_independent(obs, calls, mixing)  # the record, then the mode
    check_output_activation(calls, out, "G", "tanh")  # from the record, replayed below
    with reported():
        check_g_ends_with_tanh(*obs.need("pushed"))
        missing = obs.need("missing")
        check(
            not missing,
            f"No gradient reached these parameters of G: {missing}. Every layer must be used "
            "in forward().",
        )
        out7 = tuple(obs.need("z_size 7"))
        check(
            out7 == (3, 3, 64, 64),
            "Generator64(z_size=7) should take z of shape (3, 7, 1, 1) and return (3, 3, 64, "
            f"64), got {out7}. Build the first layer from the z_size argument.",
        )
        small, big = obs.need("sizes")
        check_size_follows_conv_dim(small, big, "G", 3.0, "8x, 4x, 2x and 1x conv_dim")
    check_record_is_own(calls, out, trace_input(seed, TRACE_BATCH, 20, 1, 1, normal=True), "G")


def test_generator64(Generator64):
    """Generator64(z_size, conv_dim): z (B, z_size, 1, 1) or (B, z_size) -> (B, 3, 64, 64)."""
    judge_generator64(observe_generator64(Generator64, NOTEBOOK_SEED), NOTEBOOK_SEED)
    passed()


# ---------------------------------------------------------------- WGAN-GP


def observe_critic(Critic, seed):
    obs = Observation()
    with observing(obs):
        torch.manual_seed(seed)
        with calling("Critic(conv_dim=8)"):
            C = Critic(8)
        obs["module"] = isinstance(C, nn.Module)
        if not obs["module"]:
            return obs
        images = _images(seed, device_of(C))
        if not observe_batch_sizes(obs, C, images, "the critic", "3, 64, 64", out_shape=(1,)):
            return obs
        obs["batch norms"] = batch_norms(C)
        x = trace_input(seed, TRACE_BATCH, 3, 64, 64).to(device_of(C))
        with calling(f"The critic on a ({TRACE_BATCH}, 3, 64, 64) batch"):
            obs["out"], obs["trace"] = trace_record(C, x, max_state=MAX_LAYER_STATE)
        obs["independence"] = observe_train_independence(C, x)
        obs["pushed"] = [plain(push_output(C, lambda: images(8), d)) for d in (+1, -1)]
        obs["gradients"] = observe_gradients(C, images(6), "the critic")
    return obs


@judged
def judge_critic(obs, seed):
    with reported():
        check(obs.need("module") is True, "Critic should be an nn.Module subclass.")
        check_batch_sizes_64(obs, "the critic", "3, 64, 64", (1,))
    leaves, calls = rebuild_trace(obs.need("trace"), "the critic", replay=False)
    traced = [m.kind for m in leaves if m.kind == "BatchNorm2d"]
    with reported():  # the layers found by class, with the message that names them
        check_no_batch_norm(list(obs.need("batch norms")) + traced)
    check_no_batch_norm(traced)  # from the record
    out = obs.need("out")
    check_output_shape(out, "The critic", TRACE_BATCH, "3, 64, 64", (1,))  # from the record
    check(out.std() > 1e-6, "The critic gives the same score to every image.")
    convs = check_d64_layers(leaves, calls, 8, "the critic")
    check_leaky_between(convs, "the critic")
    mixing = (
        "In train mode, the critic's score for one image changes when other images are in "
        "the batch. The gradient penalty needs each score to depend on its own image only: no "
        "batch norm and no statistics across the batch (layer norm, nn.GroupNorm(1, "
        "channels), normalises each image on its own)."
    )
    check_images_independent(obs, calls, mixing)  # the record, then the mode
    check_output_activation(calls, out, "the critic", "none")  # from the record, replayed below
    with reported():
        check_d_gives_logits(*obs.need("pushed"))
        check_d_gradients(obs.need("gradients"))  # backward runs on the learner's side
    check_record_is_own(calls, out, trace_input(seed, TRACE_BATCH, 3, 64, 64), "the critic")


def test_critic(Critic):
    """Critic(conv_dim): D's layers without batch norm; each image's score depends on it alone."""
    judge_critic(observe_critic(Critic, NOTEBOOK_SEED), NOTEBOOK_SEED)
    passed()


GP_SHAPE = (16, 3, 8, 8)
GP_SQUARE = 1.7  # SquareCritic's a: its gradient a * x differs from image to image


def _square_penalty(a, x_hat):
    """SquareCritic(a)'s penalty on x_hat, in closed form: its gradient for image i is a * x_i, of
    norm |a| * ||x_i||, so the penalty is the mean of (|a| * ||x_i|| - 1)^2 (with a graph to a).
    This critic's alone: what learners get holds no general gradient penalty to return."""
    return ((a.abs() * x_hat.detach().flatten(1).norm(dim=1) - 1) ** 2).mean()


def _penalty_inputs(seed):
    """real and fake images, the linear critics' direction w, and a batch of 64 of each."""
    gen = torch.Generator().manual_seed(seed)
    real, fake = (
        torch.rand(GP_SHAPE, generator=gen) * 2 - 1,
        torch.rand(GP_SHAPE, generator=gen) * 2 - 1,
    )
    w = torch.randn(3, 8, 8, generator=gen)
    many_real = torch.rand(64, 3, 8, 8, generator=gen) * 2 - 1
    many_fake = torch.rand(64, 3, 8, 8, generator=gen) * 2 - 1
    return real, fake, w, many_real, many_fake


def _known_penalties(seed):
    """(gradient norm of a linear critic, the penalty it gives, what it means): the answers
    known by heart, and one drawn from `seed`, which no answer written in advance can match."""
    drawn = 1.5 + torch.rand(1, generator=torch.Generator().manual_seed(seed + 1)).item()
    return (
        (1.0, 0.0, "a critic whose gradient has norm 1 everywhere"),
        (0.0, 1.0, "a critic whose gradient is 0 everywhere"),
        (3.0, 4.0, "a critic whose gradient has norm 3 everywhere"),
        (drawn, (drawn - 1) ** 2, f"a critic whose gradient has norm {drawn:.3f} everywhere"),
    )


def observe_gradient_penalty(gradient_penalty, seed):
    obs = Observation()
    with observing(obs):
        torch.manual_seed(seed)
        real, fake, w, many_real, many_fake = _penalty_inputs(seed)
        given_real, given_fake = real.clone(), fake.clone()
        for k, (norm, _, _) in enumerate(_known_penalties(seed)):
            critic = LinearCritic(w / w.norm() * norm)
            with calling("gradient_penalty(critic, real_images, fake_images)"):
                obs[f"penalty {k}"] = plain(gradient_penalty(critic, given_real, given_fake))
        obs["inputs after"] = [plain(given_real), plain(given_fake)]

        # the interpolates, on a batch of 64
        critic = LinearCritic(w / w.norm())
        with calling("gradient_penalty on a batch of 64"):
            gradient_penalty(critic, many_real.clone(), many_fake.clone())
        obs["critic calls"] = len(critic.inputs)
        obs["x_hat"] = critic.inputs[0] if critic.inputs else None

        # each image's own gradient: a critic whose gradient differs from image to image
        critic = SquareCritic(GP_SQUARE)
        with calling("gradient_penalty with a critic whose gradient depends on the image"):
            obs["square penalty"] = plain(gradient_penalty(critic, real.clone(), fake.clone()))
        obs["square x_hat"] = critic.inputs[-1] if critic.inputs else None

        # create_graph: the penalty must train the critic
        critic = SquareCritic(GP_SQUARE)
        with calling("gradient_penalty(critic, real_images, fake_images)"):
            gp = gradient_penalty(critic, real.clone(), fake.clone())
        obs["graph x_hat"] = critic.inputs[-1] if critic.inputs else None
        with calling(
            "gradient_penalty(...).backward()",
            hint="Likely cause: the gradient is taken without create_graph=True, so the penalty is "
            "a constant for the critic's weights and backward() has nothing to go through. Use "
            "torch.autograd.grad(scores.sum(), x_hat, create_graph=True).",
        ):
            gp.backward()
        obs["weight grad"] = plain(critic.a.grad)
    return obs


@judged
def judge_gradient_penalty(obs, seed):
    real, fake, w, many_real, many_fake = _penalty_inputs(seed)
    batch = len(real)
    for k, (norm, expected, meaning) in enumerate(_known_penalties(seed)):
        gp = obs.need(f"penalty {k}")
        check(
            isinstance(gp, torch.Tensor) and gp.dim() == 0,
            "gradient_penalty should return a 0-dim tensor (one number: the mean over the batch), "
            f"got {type_name(gp)} of shape {tuple(getattr(gp, 'shape', ()))}.",
        )
        check(
            norm == 0 or not math.isclose(gp.item(), (norm * batch**0.5 - 1) ** 2, rel_tol=1e-3),
            f"gradient_penalty takes one norm over the whole batch's gradient (it gave "
            f"{gp.item():.4f} where the answer is {expected:g}). Take the norm per image: "
            "grads.flatten(1).norm(2, dim=1), shape (B,), then the mean of (norm - 1)^2.",
        )
        check(
            norm == 0 or not math.isclose(gp.item(), (norm / batch - 1) ** 2, rel_tol=1e-3),
            f"gradient_penalty's gradients are {batch} times too small (it gave {gp.item():.4f} "
            f"where the answer is {expected:g}): they are the gradient of critic(x_hat).mean(), "
            "which divides each image's gradient by the batch size. Take the gradient of "
            "critic(x_hat).sum().",
        )
        check(
            math.isclose(gp.item(), expected, abs_tol=1e-4),
            f"For {meaning} the penalty is (||grad|| - 1)^2 = {expected:g}, but gradient_penalty "
            f"gave {gp.item():.4f}. Take each image's gradient norm (grads.flatten(1).norm(2, "
            "dim=1)), subtract 1, square, and average over the batch.",
        )
    with reported():
        real_after, fake_after = obs.need("inputs after")
        check(
            torch.equal(real_after, real) and torch.equal(fake_after, fake),
            "gradient_penalty changed real_images or fake_images in place; build x_hat as a new "
            "tensor.",
        )

    # The interpolates: one eps per image, uniform in [0, 1], on each real-fake segment.
    with reported():
        calls = obs.need("critic calls")
        check(
            calls == 1,
            f"gradient_penalty should call the critic once, on x_hat; it called it {calls} times.",
        )
    x_hat = obs.need("x_hat")
    check(
        isinstance(x_hat, torch.Tensor) and tuple(x_hat.shape) == (64, 3, 8, 8),
        f"The critic should score x_hat of the images' shape (64, 3, 8, 8), got "
        f"{tuple(getattr(x_hat, 'shape', ()))}.",
    )
    eps = check_interpolates(x_hat, many_real, many_fake)
    check(
        eps.std() > 0.1,
        "Every image is mixed with the same eps: draw one eps per image, torch.rand(batch_size, "
        "1, 1, 1), so the penalty is checked at points all along the segments.",
    )
    check(
        eps.min() < 0.3 and eps.max() > 0.7 and 0.3 < eps.mean() < 0.7,
        f"The mixing weights should be uniform in [0, 1] (torch.rand); in a batch of 64 they lay "
        f"between {eps.min():.2f} and {eps.max():.2f}, mean {eps.mean():.2f}.",
    )

    # Each image's own gradient: the judge's reference penalty on the learner's own x_hat.
    gp = obs.need("square penalty")
    x_hat = obs.need("square x_hat")
    check(
        isinstance(x_hat, torch.Tensor) and x_hat.shape == real.shape,
        f"The critic should score x_hat of the images' shape {tuple(real.shape)}, got "
        f"{tuple(getattr(x_hat, 'shape', ()))}.",
    )
    check_interpolates(x_hat, real, fake)
    want = _square_penalty(torch.tensor(GP_SQUARE), x_hat).item()
    got = gp.item() if isinstance(gp, torch.Tensor) and gp.numel() == 1 else math.nan
    check(
        math.isclose(got, want, rel_tol=1e-3, abs_tol=1e-5),
        f"With a critic whose gradient differs from image to image, the penalty should be "
        f"{want:.4f} on your own x_hat, got {got:.4f}. Take the gradient of "
        "critic(x_hat).sum() (each image's score depends on its own x_hat only), its norm per "
        "image, flatten(1).norm(2, dim=1), and the mean of (norm - 1)^2 over the batch.",
    )

    # create_graph: the penalty must train the critic.
    grad = obs.need("weight grad")
    check(
        isinstance(grad, torch.Tensor) and grad.numel() == 1 and grad.abs().item() > 1e-6,
        "The penalty does not reach the critic's weights, so it cannot train the critic: take "
        "the gradient with torch.autograd.grad(..., create_graph=True), and do not detach it.",
    )
    x_hat = obs.need("graph x_hat")
    check(
        isinstance(x_hat, torch.Tensor) and x_hat.shape == real.shape,
        "gradient_penalty should call the critic on x_hat of the images' shape.",
    )
    check_interpolates(x_hat, real, fake)
    a = torch.tensor(GP_SQUARE, requires_grad=True)
    _square_penalty(a, x_hat).backward()
    check(
        math.isclose(grad.item(), a.grad.item(), rel_tol=1e-3, abs_tol=1e-6),
        f"The penalty's gradient for the critic's weight is {grad.item():.4f}, but the penalty on "
        f"your own x_hat gives {a.grad.item():.4f}: take the gradient with "
        "torch.autograd.grad(scores.sum(), x_hat, create_graph=True) and build the penalty from "
        "it, without detaching.",
    )


def test_gradient_penalty(gradient_penalty):
    """gradient_penalty(critic, real, fake): mean over images of (||grad critic(x_hat)|| - 1)^2."""
    judge_gradient_penalty(observe_gradient_penalty(gradient_penalty, NOTEBOOK_SEED), NOTEBOOK_SEED)
    passed()


def _away_from(scores, mean):
    """`scores` shifted by 0.5 away from `mean`: the mistakes' values (sign, sum) stay apart."""
    return scores + (0.5 if scores.mean() >= mean else -0.5)


def _critic_scores(seed):
    """(4, 1) real and fake scores: the hand-computed ones in the notebook, drawn from the
    grader's seed there."""
    if seed == NOTEBOOK_SEED:
        real = torch.tensor([[2.0], [-1.0], [0.5], [3.5]])
        fake = torch.tensor([[0.3], [1.0], [-2.0], [-0.1]])
        return real, fake  # fake mean - real mean = -0.2 - 1.25
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(4, 1, generator=gen) * 2
    return real, _away_from(torch.randn(4, 1, generator=gen) * 2, real.mean())


def observe_critic_loss(critic_loss, seed):
    obs = Observation()
    with observing(obs):
        real, fake = (s.requires_grad_(True) for s in _critic_scores(seed))
        with calling("critic_loss(real_scores, fake_scores)"):
            loss = critic_loss(real, fake)
        obs["loss"] = plain(loss)
        with calling(
            "critic_loss(...).backward()",
            hint="critic_loss should keep the graph to the scores: do not detach them or use "
            ".item().",
        ):
            loss.backward()
        obs["graph kept"] = real.grad is not None and fake.grad is not None
    return obs


@judged
def judge_critic_loss(obs, seed):
    real, fake = _critic_scores(seed)
    loss = obs.need("loss")
    check(
        isinstance(loss, torch.Tensor) and loss.dim() == 0,
        "critic_loss should return a 0-dim tensor (one number), got "
        f"{tuple(getattr(loss, 'shape', ()))}.",
    )
    want = fake.mean().item() - real.mean().item()
    check(
        not math.isclose(loss.item(), -want, abs_tol=1e-5),
        f"critic_loss has the wrong sign: it gave {loss.item():.4f}, expected {want:.4f}. The "
        "critic minimises mean(fake_scores) - mean(real_scores): it wants high scores for real "
        "images and low ones for fakes.",
    )
    check(
        not math.isclose(loss.item(), len(real) * want, abs_tol=1e-5),
        f"critic_loss gave {loss.item():.4f}, the sum over the batch; expected the mean, "
        f"{want:.4f}, so the loss does not grow with the batch size.",
    )
    check(
        math.isclose(loss.item(), want, abs_tol=1e-5),
        f"critic_loss(real_scores, fake_scores) should be fake_scores.mean() - "
        f"real_scores.mean() = {want:.4f}, got {loss.item():.4f}. The scores are not "
        "probabilities: no sigmoid, no log, no BCE.",
    )
    with reported():  # seen by the observer, on its own graph
        check(
            obs.need("graph kept") is True,
            "critic_loss should keep the graph to the scores: do not detach them or use .item().",
        )


def test_critic_loss(critic_loss):
    """critic_loss(real_scores, fake_scores) = mean fake score - mean real score (0-dim)."""
    judge_critic_loss(observe_critic_loss(critic_loss, NOTEBOOK_SEED), NOTEBOOK_SEED)
    passed()


def _fake_scores(seed):
    """(5, 1) fake scores: the hand-computed ones in the notebook, drawn from the grader's seed
    there."""
    if seed == NOTEBOOK_SEED:
        return torch.tensor([[0.3], [1.0], [-2.0], [-0.1], [4.0]])
    gen = torch.Generator().manual_seed(seed)
    return _away_from(torch.randn(5, 1, generator=gen) * 2, 0.0)


def observe_generator_loss(generator_loss, seed):
    obs = Observation()
    with observing(obs):
        fake = _fake_scores(seed).requires_grad_(True)
        with calling("generator_loss(fake_scores)"):
            loss = generator_loss(fake)
        obs["loss"] = plain(loss)
        with calling(
            "generator_loss(...).backward()",
            hint="generator_loss should keep the graph to the scores: do not detach them or use "
            ".item().",
        ):
            loss.backward()
        obs["graph kept"] = fake.grad is not None
    return obs


@judged
def judge_generator_loss(obs, seed):
    fake = _fake_scores(seed)
    loss = obs.need("loss")
    check(
        isinstance(loss, torch.Tensor) and loss.dim() == 0,
        "generator_loss should return a 0-dim tensor (one number), got "
        f"{tuple(getattr(loss, 'shape', ()))}.",
    )
    want = -fake.mean().item()
    check(
        not math.isclose(loss.item(), -want, abs_tol=1e-5),
        f"generator_loss has the wrong sign: it gave {loss.item():.4f}, expected {want:.4f}. G "
        "wants the critic to score its fakes high, so it minimises -fake_scores.mean().",
    )
    check(
        not math.isclose(loss.item(), len(fake) * want, abs_tol=1e-5),
        f"generator_loss gave {loss.item():.4f}, the sum over the batch; expected the mean, "
        f"{want:.4f}.",
    )
    check(
        math.isclose(loss.item(), want, abs_tol=1e-5),
        f"generator_loss(fake_scores) should be -fake_scores.mean() = {want:.4f}, got "
        f"{loss.item():.4f}. The scores are not probabilities: no sigmoid, no log, no BCE.",
    )
    with reported():  # seen by the observer, on its own graph
        check(
            obs.need("graph kept") is True,
            "generator_loss should keep the graph to the scores: do not detach them or use "
            ".item().",
        )


def test_generator_loss(generator_loss):
    """generator_loss(fake_scores) = -mean fake score (a 0-dim tensor)."""
    judge_generator_loss(observe_generator_loss(generator_loss, NOTEBOOK_SEED), NOTEBOOK_SEED)
    passed()


# wgan_lr in part 2's hyperparameters cell: Gulrajani et al.'s on a GPU; on a CPU twice that, which
# drew faces in the short run where 0.0001 drew blurs (python -m benchmarks.part2_quality)
WGAN_LRS = (1e-4, 2e-4)


def observe_wgan_optimizers(critic, G, c_optimizer, g_optimizer, seed):
    obs = Observation()
    obs["sizes"] = {"D": len(list(critic.parameters())), "G": len(list(G.parameters()))}
    obs["c_optimizer"] = optimizer_facts(c_optimizer, critic, G)  # the critic's as "D"
    obs["g_optimizer"] = optimizer_facts(g_optimizer, critic, G)
    obs["same"] = c_optimizer is g_optimizer
    obs["steps"] = optimizer_steps(critic, G, c_optimizer, g_optimizer, seed)
    return obs


def _judge_wgan_optimizer_facts(obs, sizes):
    """The optimizers' reported facts: class, parameters, settings."""
    for name, net, net_name, other, other_name in (
        ("c_optimizer", "D", "the critic", "G", "G"),
        ("g_optimizer", "G", "G", "D", "the critic"),
    ):
        opt = obs.need(name)
        check(opt is not None, f"{name} is None: create it in the cell above.")
        check(
            opt["adam"] is True,
            f"{name} should be a torch.optim.Adam, got {opt['type']}.",
        )
        covered = {tuple(p) for group in opt["groups"] for p in group["params"]}
        own = {(net, i) for i in range(sizes[net])}
        check(
            not covered & {(other, i) for i in range(sizes[other])},
            f"{name} updates {other_name}'s parameters. Give it {net_name}'s parameters only.",
        )
        check(
            covered == own,
            f"{name} should cover all of {net_name}'s parameters and nothing else: it covers "
            f"{len(covered & own)} of {len(own)}.",
        )
        for group in opt["groups"]:
            check(
                any(abs(group["lr"] - lr) < 1e-12 for lr in WGAN_LRS),
                f"{name}'s learning rate is {group['lr']}; use wgan_lr from the hyperparameters "
                "cell: 0.0001 on a GPU (Gulrajani et al.'s value), 0.0002 on a CPU, where the run "
                "is short.",
            )
            b1, b2 = group["betas"]
            check(
                abs(b1) < 1e-12 and abs(b2 - 0.9) < 1e-12,
                f"{name}'s betas are {tuple(group['betas'])}; WGAN-GP uses (0.0, 0.9) (wgan_betas "
                "in the hyperparameters cell, Gulrajani et al.'s Algorithm 1): beta1 = 0, no "
                "momentum, not part 1's 0.5.",
            )
    check(obs.need("same") is False, "c_optimizer and g_optimizer must be two optimizers.")
    lrs = {name: obs.need(name)["groups"][0]["lr"] for name in ("c_optimizer", "g_optimizer")}
    check(
        lrs["c_optimizer"] == lrs["g_optimizer"],
        f"c_optimizer's learning rate is {lrs['c_optimizer']} and g_optimizer's "
        f"{lrs['g_optimizer']}: give both wgan_lr.",
    )


@judged
def judge_wgan_optimizers(obs, seed):
    sizes = obs.need("sizes")
    with reported():
        _judge_wgan_optimizer_facts(obs, sizes)
    # The facts above are reported; these steps are run, on this test's gradients. Both are
    # replayed with the critic's learning rate, and only with one wgan_lr may be: a step of
    # another learning rate, or two different ones, fails here too.
    lr = float(obs.need("c_optimizer")["groups"][0]["lr"])
    lr = lr if any(abs(lr - allowed) < 1e-12 for allowed in WGAN_LRS) else WGAN_LRS[0]
    for name, net in (("c_optimizer", "D"), ("g_optimizer", "G")):
        check_adam_steps(
            obs.need("steps"),
            sizes,
            net,
            lr,
            (0.0, 0.9),
            seed,
            f"The optimizer steps the learner side recorded for {name} are not Adam's with "
            f"lr {lr:g} and betas (0.0, 0.9) on this test's gradients:",
        )


def test_wgan_optimizers(critic, G, c_optimizer, g_optimizer):
    """Adam over exactly the critic's and G's parameters, with the hyperparameters cell's lr and
    Gulrajani et al.'s betas."""
    judge_wgan_optimizers(
        observe_wgan_optimizers(critic, G, c_optimizer, g_optimizer, NOTEBOOK_SEED), NOTEBOOK_SEED
    )
    passed()


WGAN_Z = 8
WGAN_GP_WEIGHT = 10.0


def _wgan_setup(seed):
    """The kit's tiny critic and G, their data (20 images of 16x16) and its scaled batches of 4."""
    torch.manual_seed(seed)
    critic, G = TinyCritic(), TinyG(WGAN_Z)
    data = torch.rand(20, 3, 16, 16)
    scaled = [data[i : i + 4] * 2 - 1 for i in range(0, 20, 4)]
    return critic, G, data, scaled


def observe_train_wgan(train_wgan, seed):
    from torch.utils.data import DataLoader, TensorDataset

    obs = Observation()
    critic, G, data, _ = _wgan_setup(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    critic, G = critic.to(device), G.to(device)
    c_opt = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.0, 0.9))
    g_opt = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    loader = DataLoader(
        TensorDataset(data, torch.zeros(20, dtype=torch.long)), batch_size=4, shuffle=False
    )
    with observing(obs):
        observe_training_run(
            obs,
            WGANRecorder(critic, G, c_opt, g_opt),
            train_wgan,
            "train_wgan(critic, G, c_optimizer, g_optimizer, dataloader, n_epochs=2, ...)",
            critic,
            G,
            c_opt,
            g_opt,
            loader,
            2,
            WGAN_Z,
            device,
            n_critic=3,
            gp_weight=WGAN_GP_WEIGHT,
            print_every=1,
            sample_size=6,
        )
    return obs


@judged
def judge_train_wgan(obs, seed):
    critic, G, _, scaled = _wgan_setup(seed)
    c_before = [p.detach().clone() for p in critic.parameters()]
    g_before = [p.detach().clone() for p in G.parameters()]
    rec = WGANJudge(critic, G, scaled, WGAN_GP_WEIGHT, obs.need("run"))
    n_c, n_g = rec.count("c_step"), rec.count("g_step")
    check(
        not rec.overflow,
        "train_wgan called the critic, G and the optimizers far more often than 5 batches x 2 "
        "epochs need.",
    )
    check(
        n_c == 10,
        "train_wgan should take one critic step per batch: 5 batches x 2 epochs = 10 calls of "
        f"c_optimizer.step(), got {n_c}.",
    )
    check(
        n_g == 3,
        "With n_critic=3, train_wgan should take one generator step after every 3 critic steps "
        f"(counted across epochs, with the given `step` counter): 10 critic steps give 3 "
        f"generator steps, got {n_g}. Use the n_critic argument.",
    )
    check(
        rec.order[:4] == ["c", "c", "c", "g"],
        f"The steps came in the order {''.join(rec.order)} (c: critic, g: generator); expected "
        "cccg cccg ...: the generator steps after n_critic critic steps.",
    )
    after = obs.need("after")
    with torch.no_grad():
        critic.load_state_dict(after["D"])
        G.load_state_dict(after["G"])
    check(
        any(not torch.equal(a, b) for a, b in zip(c_before, critic.parameters())),
        "train_wgan did not change the critic's weights.",
    )
    check(
        any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters())),
        "train_wgan did not change G's weights.",
    )
    with reported():  # what train_wgan returned; its steps above are replayed
        result = obs.need("result")
        check(
            result["pair"] is True,
            "train_wgan should return (losses, samples), as the given code at its end does.",
        )
        losses = result["losses"]
        check(
            len(losses) == 10
            and all(
                isinstance(row, list)
                and all(isinstance(v, float) and math.isfinite(v) for v in row[:1])
                for row in losses
            ),
            f"With print_every=1, train_wgan should log 10 rows with a finite critic loss, got "
            f"{[tuple(r) if isinstance(r, list) else r for r in losses]!r}.",
        )
        samples = result["samples"]
        check(
            len(samples) == 2 and tuple(samples[0]) == (6, 3, 16, 16),
            "train_wgan should keep G's samples of fixed_z after each epoch, as the given code "
            "does.",
        )


def test_train_wgan(train_wgan):
    """train_wgan(...): a critic step per batch with the gradient penalty, a G step every n_critic.

    Every optimizer step is recorded as it happens (helpers.graded.part2.WGANRecorder) and
    checked by replaying the expected loss on the same inputs and comparing gradients
    (WGANJudge).
    """
    judge_train_wgan(observe_train_wgan(train_wgan, NOTEBOOK_SEED), NOTEBOOK_SEED)
    passed()


# ---------------------------------------------------------------- the latent space


def _slerp_inputs(seed):
    gen = torch.Generator().manual_seed(seed)
    z0, z1 = torch.randn(6, 10, generator=gen), torch.randn(6, 10, generator=gen)
    unit0 = z0 / z0.norm(dim=1, keepdim=True) * 3.0
    unit1 = z1 / z1.norm(dim=1, keepdim=True) * 3.0
    return z0, z1, unit0, unit1


SLERP_T = (0.0, 1.0, 0.5, 0.25, 0.75, 0.1)  # one t per row


def observe_slerp(slerp, seed):
    obs = Observation()
    with observing(obs):
        torch.manual_seed(seed)
        z0, z1, unit0, unit1 = _slerp_inputs(seed)
        a0, a1 = z0.clone(), z1.clone()
        for t in (0.0, 1.0):
            with calling(f"slerp(z0, z1, {t})"):
                obs[f"t={t}"] = plain(slerp(a0, a1, t))
        obs["inputs after"] = [plain(a0), plain(a1)]
        with calling("slerp(z0, z1, 0.5)"):
            obs["half"] = plain(slerp(z0.clone(), z1.clone(), 0.5))
        for i in range(3):
            with calling(f"slerp(z0[{i}:{i + 1}], z1[{i}:{i + 1}], 0.5)"):
                obs[f"alone {i}"] = plain(slerp(z0[i : i + 1].clone(), z1[i : i + 1].clone(), 0.5))
        with calling("slerp(z0, z1, 0.5) with |z0| = |z1| = 3"):
            obs["mid"] = plain(slerp(unit0.clone(), unit1.clone(), 0.5))
        with calling("slerp(z0, z1, 0.25)"):
            obs["quarter"] = plain(slerp(unit0.clone(), unit1.clone(), 0.25))
        with calling(
            "slerp(z0, z1, t) with t a (6,) tensor",
            hint="Likely cause: t of shape (B,) is not reshaped to (B, 1), so it pairs with z's "
            "columns instead of its rows: t.reshape(-1, 1).",
        ):
            obs["rows"] = plain(slerp(z0.clone(), z1.clone(), torch.tensor(SLERP_T)))
        for i, t in enumerate(SLERP_T):
            with calling(f"slerp(z0[{i}:{i + 1}], z1[{i}:{i + 1}], {t:g})"):
                obs[f"one {i}"] = plain(slerp(z0[i : i + 1].clone(), z1[i : i + 1].clone(), t))
        with calling("slerp(z, 2 * z, 0.5) (parallel vectors, angle 0)"):
            obs["parallel"] = plain(slerp(z0.clone(), 2 * z0, 0.5))
    return obs


@judged
def judge_slerp(obs, seed):
    z0, z1, unit0, unit1 = _slerp_inputs(seed)
    for t, want, end in ((0.0, z0, "z0"), (1.0, z1, "z1")):
        out = obs.need(f"t={t}")
        check(
            isinstance(out, torch.Tensor) and tuple(out.shape) == (6, 10),
            f"slerp(z0, z1, t) with z0 and z1 of shape (6, 10) should return (6, 10), got "
            f"{tuple(getattr(out, 'shape', ()))}.",
        )
        check(
            torch.allclose(out, want, atol=1e-5),
            f"slerp(z0, z1, {t}) should give {end} exactly; it is off by "
            f"{(out - want).abs().max().item():.4f}. At t=0 the weights are sin(omega)/sin(omega) "
            "= 1 on z0 and 0 on z1.",
        )
    with reported():
        a0, a1 = obs.need("inputs after")
        check(
            torch.equal(z0, a0) and torch.equal(z1, a1),
            "slerp changed z0 or z1 in place; return a new tensor.",
        )
    # Each row on its own: its own angle.
    half = obs.need("half")
    for i in range(3):
        alone = obs.need(f"alone {i}")
        check(
            torch.allclose(half[i], alone[0], atol=1e-5),
            f"Row {i} of slerp(z0, z1, 0.5) differs from slerp on that row alone: compute the "
            "angle omega per row (the cosine of each pair, dim=1, shape (B, 1)), not one angle "
            "over the whole batch.",
        )
    # Same norms: slerp stays on the sphere (a straight line cuts inside it).
    norms = obs.need("mid").norm(dim=1)
    check(
        torch.allclose(norms, torch.full_like(norms, 3.0), atol=1e-4),
        f"With |z0| = |z1| = 3, slerp(z0, z1, 0.5) should also have norm 3 (it moves along the "
        f"great circle), got norms from {norms.min():.3f} to {norms.max():.3f}. Straight-line "
        "interpolation, (1 - t) * z0 + t * z1, cuts through the inside of the sphere; use "
        "sin((1 - t) * omega) / sin(omega) * z0 + sin(t * omega) / sin(omega) * z1, with omega "
        "the angle between the normalised vectors (torch.acos of their cosine), not of their raw "
        "dot product.",
    )
    # The angle from z0 grows linearly with t.
    cos = torch.nn.functional.cosine_similarity
    omega = torch.acos(cos(unit0, unit1, dim=1).clamp(-1, 1))
    angle = torch.acos(cos(unit0, obs.need("quarter"), dim=1).clamp(-1, 1))
    check(
        torch.allclose(angle, omega * 0.25, atol=1e-3),
        "slerp(z0, z1, 0.25) should be a quarter of the way along the arc: its angle to z0 should "
        "be omega / 4, with omega the angle between z0 and z1 (computed per row, from the "
        "normalised vectors: torch.acos of their cosine).",
    )
    # One t per row.
    rows = obs.need("rows")
    check(
        tuple(getattr(rows, "shape", ())) == (6, 10),
        f"slerp with t of shape (6,) should return (6, 10), got "
        f"{tuple(getattr(rows, 'shape', ()))}. Reshape t to (B, 1) so that each row gets its own "
        "t.",
    )
    for i, t in enumerate(SLERP_T):
        one = obs.need(f"one {i}")
        check(
            torch.allclose(rows[i], one[0], atol=1e-5),
            f"Row {i} of slerp(z0, z1, t) with t a tensor differs from slerp on that row alone "
            f"with t={t:g}: each row must use its own t and its own angle omega (the "
            "dot product per row, dim=1, not over the whole batch).",
        )
    # Parallel rows: no division by zero.
    par = obs.need("parallel")
    check(
        torch.isfinite(par).all() and torch.allclose(par, 1.5 * z0, atol=1e-3),
        "slerp of two parallel vectors (angle 0) should give the straight-line point, here 1.5 * "
        "z0, not nan: sin(omega) is 0 there; fall back to (1 - t) * z0 + t * z1 when it is tiny.",
    )


def test_slerp(slerp):
    """slerp(z0, z1, t): z0, z1 (B, z); t a float or a (B,) tensor -> (B, z) on the great circle."""
    judge_slerp(observe_slerp(slerp, NOTEBOOK_SEED), NOTEBOOK_SEED)
    passed()


ATTRIBUTE_MASK = (1, 0, 0, 1, 1, 0, 0, 0, 1, 0)  # which of the 10 samples show the attribute


def _attribute_inputs(seed):
    z = torch.randn(10, 6, generator=torch.Generator().manual_seed(seed))
    return z, torch.tensor(ATTRIBUTE_MASK, dtype=torch.bool)


def observe_attribute_vector(attribute_vector, seed):
    obs = Observation()
    with observing(obs):
        z, has = _attribute_inputs(seed)
        with calling("attribute_vector(z, has_attribute)"):
            obs["vector"] = plain(attribute_vector(z.clone(), has.clone()))
        with calling("attribute_vector(z, has_attribute) with has_attribute of 0s and 1s"):
            obs["vector 01"] = plain(attribute_vector(z.clone(), has.long()))
    return obs


def judge_attribute_vector(obs, seed):
    z, has = _attribute_inputs(seed)
    want = z[has].mean(0) - z[~has].mean(0)
    v = obs.need("vector")
    check(
        isinstance(v, torch.Tensor) and tuple(v.shape) == (6,),
        f"attribute_vector with z of shape (10, 6) should return one vector of shape (6,), got "
        f"{tuple(getattr(v, 'shape', ()))}. Average over the samples, dim=0.",
    )
    check(
        not torch.allclose(v, -want, atol=1e-5),
        "attribute_vector points the wrong way: it should be the mean z of the samples WITH the "
        "attribute minus the mean z of those WITHOUT it, so adding it turns the attribute on.",
    )
    check(
        not torch.allclose(v, z[has].mean(0) - z.mean(0), atol=1e-5),
        "attribute_vector subtracts the mean of all samples; subtract the mean z of the samples "
        "without the attribute, z[~has_attribute].mean(0).",
    )
    check(
        torch.allclose(v, want, atol=1e-5),
        "attribute_vector should be z[has_attribute].mean(0) - z[~has_attribute].mean(0): the "
        f"difference of two means (not sums); it is off by {(v - want).abs().max().item():.4f}.",
    )
    v01 = obs.need("vector 01")
    check(
        isinstance(v01, torch.Tensor)
        and v01.shape == want.shape
        and torch.allclose(v01, want, atol=1e-5),
        "attribute_vector should also take has_attribute as 0s and 1s (a classifier's labels): "
        "turn it into a bool mask first, has_attribute.bool().",
    )


def test_attribute_vector(attribute_vector):
    """attribute_vector(z, has_attribute) = mean z with the attribute - mean z without."""
    judge_attribute_vector(observe_attribute_vector(attribute_vector, NOTEBOOK_SEED), NOTEBOOK_SEED)
    passed()


# Every graded test in two halves (helpers.graded.verdicts), as in problem_unittests: the grader
# runs
# OBSERVE in the sandbox with a seed it drew and JUDGE in its own process.
VERDICTS = {
    "test_discriminator64": (observe_discriminator64, judge_discriminator64),
    "test_generator64": (observe_generator64, judge_generator64),
    "test_critic": (observe_critic, judge_critic),
    "test_gradient_penalty": (observe_gradient_penalty, judge_gradient_penalty),
    "test_critic_loss": (observe_critic_loss, judge_critic_loss),
    "test_generator_loss": (observe_generator_loss, judge_generator_loss),
    "test_wgan_optimizers": (observe_wgan_optimizers, judge_wgan_optimizers),
    "test_train_wgan": (observe_train_wgan, judge_train_wgan),
    "test_slerp": (observe_slerp, judge_slerp),
    "test_attribute_vector": (observe_attribute_vector, judge_attribute_vector),
}
