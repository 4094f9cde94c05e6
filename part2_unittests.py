"""Graded tests for part 2, part2_dcgan64_wgan.ipynb: the paper's 64x64 DCGAN, WGAN-GP and the
latent space.

As in problem_unittests.py (part 1), each ``test_*`` function checks one piece you write. It
prints ``Tests Passed`` when the piece behaves as asked, and otherwise raises a
GradedTestFailure (an AssertionError) that says what was expected, what your code gave, and
the most likely cause. Their machinery lives in helpers/checks.py (shared with part 1) and
helpers/checks_part2.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from helpers.checks import (
    GradedTestFailure,  # noqa: F401  (re-exported: `except tests.GradedTestFailure`)
    TinyG,
    calling,
    check,
    check_d_gives_logits,
    check_d_gradients,
    check_g_ends_with_tanh,
    check_no_dropout_on_output,
    check_size_follows_conv_dim,
    device_of,
    n_params,
    observe_gradients,
    observe_independence,
    params_without_gradient,
    passed,
    push_output,
    quiet,
    samples_independent,
    trace_leaves,
)
from helpers.checks_part2 import (
    LinearCritic,
    SquareCritic,
    TinyCritic,
    WGANRecorder,
    check_batch_sizes_64,
    check_d64_batch_norm,
    check_d64_layers,
    check_g64_layers,
    check_leaky_between,
    check_no_batch_norm,
    independent_in_train_mode,
    mixing_weights,
    reference_penalty,
)

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


def test_discriminator64(Discriminator64):
    """Discriminator64(conv_dim): (B, 3, 64, 64) in [-1, 1] -> logits (B, 1), the paper's layers."""
    torch.manual_seed(0)
    with calling("Discriminator64(conv_dim=8)"):
        D = Discriminator64(8)
    check(isinstance(D, nn.Module), "Discriminator64 should be an nn.Module subclass.")
    device = device_of(D)

    def images(b):
        return (torch.rand(b, 3, 64, 64) * 2 - 1).to(device)

    check_batch_sizes_64(D, images, "D", "3, 64, 64", (1,))
    with torch.no_grad():
        check_no_dropout_on_output(D(images(32)))
    x = images(16)
    with calling("D on a (16, 3, 64, 64) batch"):
        out, calls = trace_leaves(D, x)
    check(
        out.std() > 1e-6,
        "D gives the same output for every image: its output must depend on the input.",
    )
    convs = check_d64_layers(D, calls, 8, "D")
    check_d64_batch_norm(calls, convs)
    check_leaky_between(convs, "D")
    check(
        samples_independent(observe_independence(D, x)),
        "In eval mode, D's score for one image changes when other images are in the batch: keep "
        "each image's numbers together (x.flatten(1) at the end, not a view that mixes images).",
    )
    check_d_gives_logits(*[push_output(D, lambda: images(8), d) for d in (+1, -1)])
    check_d_gradients(observe_gradients(D, images(6), "D"))
    with calling("Discriminator64(conv_dim=16)"):
        D16 = Discriminator64(16)
    check_size_follows_conv_dim(
        n_params(D), n_params(D16), "D", 3.5, "conv_dim, 2x, 4x and 8x conv_dim"
    )
    passed()


def test_generator64(Generator64):
    """Generator64(z_size, conv_dim): z (B, z_size, 1, 1) or (B, z_size) -> (B, 3, 64, 64)."""
    torch.manual_seed(0)
    with calling("Generator64(z_size=20, conv_dim=8)"):
        G = Generator64(z_size=20, conv_dim=8)
    check(isinstance(G, nn.Module), "Generator64 should be an nn.Module subclass.")
    device = device_of(G)

    def noise(b, size=20):
        return torch.randn(b, size, 1, 1).to(device)

    check_batch_sizes_64(
        G,
        noise,
        "G",
        "20, 1, 1",
        (3, 64, 64),
        hint="Generator64(z_size=20, ...) must take z of shape (B, 20, 1, 1): build its first "
        "transposed conv from the z_size argument, nn.ConvTranspose2d(z_size, 8 * conv_dim, 4, 1, "
        "0), and check the layer sizes above.",
    )
    with calling(
        "G on a (5, 20) batch of z",
        hint="G should also take z as (B, z_size), the shape part 1's train makes: reshape it "
        "first with z.view(z.size(0), self.z_size, 1, 1) (or -1 for the 1, 1).",
    ):
        flat = G(noise(5).flatten(1))
    check(
        tuple(flat.shape) == (5, 3, 64, 64),
        f"G on a (5, 20) batch of z should return (5, 3, 64, 64), got {tuple(flat.shape)}. Reshape "
        "z to (B, z_size, 1, 1) first.",
    )
    z = noise(16)
    with calling("G on a (16, 20, 1, 1) batch of z"):
        out, calls = trace_leaves(G, z)
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
    check(
        samples_independent(observe_independence(G, z)),
        "In eval mode, G's image for one z changes when other z are in the batch: reshape z with "
        "z.view(z.size(0), z_size, 1, 1), which keeps each z's numbers together.",
    )
    check_g_ends_with_tanh(*[push_output(G, lambda: noise(8), d) for d in (+1, -1)])
    missing = params_without_gradient(G, noise(6), "G")
    check(
        not missing,
        f"No gradient reached these parameters of G: {missing}. Every layer must be used in "
        "forward().",
    )
    with calling("Generator64(z_size=7, conv_dim=8)"):
        G7 = Generator64(z_size=7, conv_dim=8)
    with calling("Generator64(z_size=7, conv_dim=8) on a (3, 7, 1, 1) batch of z"):
        out7 = G7(noise(3, 7))
    check(
        tuple(out7.shape) == (3, 3, 64, 64),
        "Generator64(z_size=7) should take z of shape (3, 7, 1, 1) and return (3, 3, 64, 64), got "
        f"{tuple(out7.shape)}. Build the first layer from the z_size argument.",
    )
    with calling("Generator64(z_size=20, conv_dim=16)"):
        G16 = Generator64(z_size=20, conv_dim=16)
    check_size_follows_conv_dim(n_params(G), n_params(G16), "G", 3.0, "8x, 4x, 2x and 1x conv_dim")
    passed()


# ---------------------------------------------------------------- WGAN-GP


def test_critic(Critic):
    """Critic(conv_dim): D's layers without batch norm; each image's score depends on it alone."""
    torch.manual_seed(0)
    with calling("Critic(conv_dim=8)"):
        C = Critic(8)
    check(isinstance(C, nn.Module), "Critic should be an nn.Module subclass.")
    device = device_of(C)

    def images(b):
        return (torch.rand(b, 3, 64, 64) * 2 - 1).to(device)

    check_batch_sizes_64(C, images, "the critic", "3, 64, 64", (1,))
    check_no_batch_norm(C)
    x = images(16)
    with calling("The critic on a (16, 3, 64, 64) batch"):
        out, calls = trace_leaves(C, x)
    check(out.std() > 1e-6, "The critic gives the same score to every image.")
    convs = check_d64_layers(C, calls, 8, "the critic")
    check_leaky_between(convs, "the critic")
    check(
        independent_in_train_mode(C, x),
        "In train mode, the critic's score for one image changes when other images are in the "
        "batch. The gradient penalty needs each score to depend on its own image only: no batch "
        "norm and no statistics across the batch (layer norm, nn.GroupNorm(1, channels), "
        "normalises each image on its own).",
    )
    check_d_gives_logits(*[push_output(C, lambda: images(8), d) for d in (+1, -1)])
    check_d_gradients(observe_gradients(C, images(6), "the critic"))
    passed()


def test_gradient_penalty(gradient_penalty):
    """gradient_penalty(critic, real, fake): mean over images of (||grad critic(x_hat)|| - 1)^2."""
    torch.manual_seed(0)
    shape = (16, 3, 8, 8)
    real, fake = torch.rand(shape) * 2 - 1, torch.rand(shape) * 2 - 1
    real0, fake0 = real.clone(), fake.clone()
    w = torch.randn(3, 8, 8)
    for norm, expected, meaning in (
        (1.0, 0.0, "a critic whose gradient has norm 1 everywhere"),
        (0.0, 1.0, "a critic whose gradient is 0 everywhere"),
        (3.0, 4.0, "a critic whose gradient has norm 3 everywhere"),
    ):
        critic = LinearCritic(w / w.norm() * norm)
        with calling("gradient_penalty(critic, real_images, fake_images)"):
            gp = gradient_penalty(critic, real, fake)
        check(
            isinstance(gp, torch.Tensor) and gp.dim() == 0,
            "gradient_penalty should return a 0-dim tensor (one number: the mean over the batch), "
            f"got {type(gp).__name__} of shape {tuple(getattr(gp, 'shape', ()))}.",
        )
        batch = len(real)
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
    check(
        torch.equal(real, real0) and torch.equal(fake, fake0),
        "gradient_penalty changed real_images or fake_images in place; build x_hat as a new "
        "tensor.",
    )

    # The interpolates: one eps per image, uniform in [0, 1], on each real-fake segment.
    critic = LinearCritic(w / w.norm())
    many_real, many_fake = torch.rand(64, 3, 8, 8) * 2 - 1, torch.rand(64, 3, 8, 8) * 2 - 1
    with calling("gradient_penalty on a batch of 64"):
        gradient_penalty(critic, many_real, many_fake)
    check(
        len(critic.inputs) == 1,
        f"gradient_penalty should call the critic once, on x_hat; it called it "
        f"{len(critic.inputs)} times.",
    )
    x_hat = critic.inputs[0]
    check(
        tuple(x_hat.shape) == (64, 3, 8, 8),
        f"The critic should score x_hat of the images' shape (64, 3, 8, 8), got "
        f"{tuple(x_hat.shape)}.",
    )
    eps, error = mixing_weights(x_hat, many_real, many_fake)
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

    # Each image's own gradient: a critic whose gradient differs from image to image.
    critic = SquareCritic(1.7)
    with calling("gradient_penalty with a critic whose gradient depends on the image"):
        gp = gradient_penalty(critic, real, fake)
    want = reference_penalty(critic, critic.inputs[-1]).item()
    check(
        math.isclose(gp.item(), want, rel_tol=1e-3, abs_tol=1e-5),
        f"With a critic whose gradient differs from image to image, the penalty should be "
        f"{want:.4f} on your own x_hat, got {gp.item():.4f}. Take the gradient of "
        "critic(x_hat).sum() (each image's score depends on its own x_hat only), its norm per "
        "image, flatten(1).norm(2, dim=1), and the mean of (norm - 1)^2 over the batch.",
    )

    # create_graph: the penalty must train the critic.
    critic = SquareCritic(1.7)
    gp = gradient_penalty(critic, real, fake)
    with calling(
        "gradient_penalty(...).backward()",
        hint="Likely cause: the gradient is taken without create_graph=True, so the penalty is a "
        "constant for the critic's weights and backward() has nothing to go through. Use "
        "torch.autograd.grad(scores.sum(), x_hat, create_graph=True).",
    ):
        gp.backward()
    check(
        critic.a.grad is not None and critic.a.grad.abs() > 1e-6,
        "The penalty does not reach the critic's weights, so it cannot train the critic: take "
        "the gradient with torch.autograd.grad(..., create_graph=True), and do not detach it.",
    )
    passed()


def test_critic_loss(critic_loss):
    """critic_loss(real_scores, fake_scores) = mean fake score - mean real score (0-dim)."""
    real = torch.tensor([[2.0], [-1.0], [0.5], [3.5]], requires_grad=True)
    fake = torch.tensor([[0.3], [1.0], [-2.0], [-0.1]], requires_grad=True)
    with calling("critic_loss(real_scores, fake_scores)"):
        loss = critic_loss(real, fake)
    check(
        isinstance(loss, torch.Tensor) and loss.dim() == 0,
        "critic_loss should return a 0-dim tensor (one number), got "
        f"{tuple(getattr(loss, 'shape', ()))}.",
    )
    want = fake.mean().item() - real.mean().item()  # -0.2 - 1.25
    check(
        not math.isclose(loss.item(), -want, abs_tol=1e-5),
        f"critic_loss has the wrong sign: it gave {loss.item():.4f}, expected {want:.4f}. The "
        "critic minimises mean(fake_scores) - mean(real_scores): it wants high scores for real "
        "images and low ones for fakes.",
    )
    check(
        not math.isclose(loss.item(), 4 * want, abs_tol=1e-5),
        f"critic_loss gave {loss.item():.4f}, the sum over the batch; expected the mean, "
        f"{want:.4f}, so the loss does not grow with the batch size.",
    )
    check(
        math.isclose(loss.item(), want, abs_tol=1e-5),
        f"critic_loss(real_scores, fake_scores) should be fake_scores.mean() - "
        f"real_scores.mean() = {want:.4f}, got {loss.item():.4f}. The scores are not "
        "probabilities: no sigmoid, no log, no BCE.",
    )
    with calling(
        "critic_loss(...).backward()",
        hint="critic_loss should keep the graph to the scores: do not detach them or use .item().",
    ):
        loss.backward()
    check(
        real.grad is not None and fake.grad is not None,
        "critic_loss should keep the graph to the scores: do not detach them or use .item().",
    )
    passed()


def test_generator_loss(generator_loss):
    """generator_loss(fake_scores) = -mean fake score (a 0-dim tensor)."""
    fake = torch.tensor([[0.3], [1.0], [-2.0], [-0.1], [4.0]], requires_grad=True)
    with calling("generator_loss(fake_scores)"):
        loss = generator_loss(fake)
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
        not math.isclose(loss.item(), 5 * want, abs_tol=1e-5),
        f"generator_loss gave {loss.item():.4f}, the sum over the batch; expected the mean, "
        f"{want:.4f}.",
    )
    check(
        math.isclose(loss.item(), want, abs_tol=1e-5),
        f"generator_loss(fake_scores) should be -fake_scores.mean() = {want:.4f}, got "
        f"{loss.item():.4f}. The scores are not probabilities: no sigmoid, no log, no BCE.",
    )
    with calling(
        "generator_loss(...).backward()",
        hint="generator_loss should keep the graph to the scores: do not detach them or use "
        ".item().",
    ):
        loss.backward()
    check(
        fake.grad is not None,
        "generator_loss should keep the graph to the scores: do not detach them or use .item().",
    )
    passed()


def test_wgan_optimizers(critic, G, c_optimizer, g_optimizer):
    """Adam over exactly the critic's and G's parameters, with Gulrajani et al.'s settings."""
    for name, opt, net, net_name, other, other_name in (
        ("c_optimizer", c_optimizer, critic, "the critic", G, "G"),
        ("g_optimizer", g_optimizer, G, "G", critic, "the critic"),
    ):
        check(opt is not None, f"{name} is None: create it in the cell above.")
        check(
            isinstance(opt, torch.optim.Adam),
            f"{name} should be a torch.optim.Adam, got {type(opt).__name__}.",
        )
        covered = {id(p) for group in opt.param_groups for p in group["params"]}
        own = {id(p) for p in net.parameters()}
        check(
            not covered & {id(p) for p in other.parameters()},
            f"{name} updates {other_name}'s parameters. Give it {net_name}'s parameters only.",
        )
        check(
            covered == own,
            f"{name} should cover all of {net_name}'s parameters and nothing else: it covers "
            f"{len(covered & own)} of {len(own)}.",
        )
        for group in opt.param_groups:
            check(
                abs(group["lr"] - 1e-4) < 1e-12,
                f"{name}'s learning rate is {group['lr']}; WGAN-GP uses 0.0001 (wgan_lr in the "
                "hyperparameters cell, Gulrajani et al.'s value).",
            )
            b1, b2 = group["betas"]
            check(
                abs(b1) < 1e-12 and abs(b2 - 0.9) < 1e-12,
                f"{name}'s betas are {tuple(group['betas'])}; WGAN-GP uses (0.0, 0.9) (wgan_betas "
                "in the hyperparameters cell, Gulrajani et al.'s Algorithm 1): beta1 = 0, no "
                "momentum, not part 1's 0.5.",
            )
    check(c_optimizer is not g_optimizer, "c_optimizer and g_optimizer must be two optimizers.")
    passed()


def test_train_wgan(train_wgan):
    """train_wgan(...): a critic step per batch with the gradient penalty, a G step every n_critic.

    Every optimizer step is checked as it happens, by replaying the expected loss on the same
    inputs and comparing gradients (helpers.checks_part2.WGANRecorder).
    """
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    z_size = 8
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    critic, G = TinyCritic().to(device), TinyG(z_size).to(device)
    c_opt = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.0, 0.9))
    g_opt = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    data = torch.rand(20, 3, 16, 16)
    scaled = [data[i : i + 4] * 2 - 1 for i in range(0, 20, 4)]
    loader = DataLoader(
        TensorDataset(data, torch.zeros(20, dtype=torch.long)), batch_size=4, shuffle=False
    )
    c_before = [p.detach().clone() for p in critic.parameters()]
    g_before = [p.detach().clone() for p in G.parameters()]
    rec = WGANRecorder(critic, G, c_opt, g_opt, scaled, gp_weight=10.0)
    try:
        with (
            calling("train_wgan(critic, G, c_optimizer, g_optimizer, dataloader, n_epochs=2, ...)"),
            quiet(train_wgan),
        ):
            result = train_wgan(
                critic,
                G,
                c_opt,
                g_opt,
                loader,
                2,
                z_size,
                device,
                n_critic=3,
                gp_weight=10.0,
                print_every=1,
                sample_size=6,
            )
    finally:
        rec.close()
    n_c, n_g = rec.count("c_step"), rec.count("g_step")
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
    check(
        any(not torch.equal(a, b) for a, b in zip(c_before, critic.parameters())),
        "train_wgan did not change the critic's weights.",
    )
    check(
        any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters())),
        "train_wgan did not change G's weights.",
    )
    check(
        isinstance(result, tuple) and len(result) == 2,
        "train_wgan should return (losses, samples), as the given code at its end does.",
    )
    losses, samples = result
    check(
        len(losses) == 10 and all(all(math.isfinite(v) for v in row[:1]) for row in losses),
        f"With print_every=1, train_wgan should log 10 rows with a finite critic loss, got "
        f"{losses!r}.",
    )
    check(
        len(samples) == 2 and tuple(samples[0].shape) == (6, 3, 16, 16),
        "train_wgan should keep G's samples of fixed_z after each epoch, as the given code does.",
    )
    passed()


# ---------------------------------------------------------------- the latent space


def test_slerp(slerp):
    """slerp(z0, z1, t): z0, z1 (B, z); t a float or a (B,) tensor -> (B, z) on the great circle."""
    torch.manual_seed(0)
    z0, z1 = torch.randn(6, 10), torch.randn(6, 10)
    a0, a1 = z0.clone(), z1.clone()
    for t, want, end in ((0.0, z0, "z0"), (1.0, z1, "z1")):
        with calling(f"slerp(z0, z1, {t})"):
            out = slerp(z0, z1, t)
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
    check(
        torch.equal(z0, a0) and torch.equal(z1, a1),
        "slerp changed z0 or z1 in place; return a new tensor.",
    )
    # Each row on its own: its own angle.
    with calling("slerp(z0, z1, 0.5)"):
        half = slerp(z0, z1, 0.5)
    for i in range(3):
        with calling(f"slerp(z0[{i}:{i + 1}], z1[{i}:{i + 1}], 0.5)"):
            alone = slerp(z0[i : i + 1], z1[i : i + 1], 0.5)
        check(
            torch.allclose(half[i], alone[0], atol=1e-5),
            f"Row {i} of slerp(z0, z1, 0.5) differs from slerp on that row alone: compute the "
            "angle omega per row (the cosine of each pair, dim=1, shape (B, 1)), not one angle "
            "over the whole batch.",
        )
    # Same norms: slerp stays on the sphere (a straight line cuts inside it).
    unit0 = z0 / z0.norm(dim=1, keepdim=True) * 3.0
    unit1 = z1 / z1.norm(dim=1, keepdim=True) * 3.0
    with calling("slerp(z0, z1, 0.5) with |z0| = |z1| = 3"):
        mid = slerp(unit0, unit1, 0.5)
    norms = mid.norm(dim=1)
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
    with calling("slerp(z0, z1, 0.25)"):
        quarter = slerp(unit0, unit1, 0.25)
    angle = torch.acos(cos(unit0, quarter, dim=1).clamp(-1, 1))
    check(
        torch.allclose(angle, omega * 0.25, atol=1e-3),
        "slerp(z0, z1, 0.25) should be a quarter of the way along the arc: its angle to z0 should "
        "be omega / 4, with omega the angle between z0 and z1 (computed per row, from the "
        "normalised vectors: torch.acos of their cosine).",
    )
    # One t per row.
    t = torch.tensor([0.0, 1.0, 0.5, 0.25, 0.75, 0.1])
    with calling(
        "slerp(z0, z1, t) with t a (6,) tensor",
        hint="Likely cause: t of shape (B,) is not reshaped to (B, 1), so it pairs with z's "
        "columns instead of its rows: t.reshape(-1, 1).",
    ):
        rows = slerp(z0, z1, t)
    check(
        tuple(rows.shape) == (6, 10),
        f"slerp with t of shape (6,) should return (6, 10), got {tuple(rows.shape)}. Reshape t to "
        "(B, 1) so that each row gets its own t.",
    )
    for i in range(6):
        with calling(f"slerp(z0[{i}:{i + 1}], z1[{i}:{i + 1}], {t[i].item():g})"):
            one = slerp(z0[i : i + 1], z1[i : i + 1], t[i].item())
        check(
            torch.allclose(rows[i], one[0], atol=1e-5),
            f"Row {i} of slerp(z0, z1, t) with t a tensor differs from slerp on that row alone "
            f"with t={t[i].item():g}: each row must use its own t and its own angle omega (the "
            "dot product per row, dim=1, not over the whole batch).",
        )
    # Parallel rows: no division by zero.
    with calling("slerp(z, 2 * z, 0.5) (parallel vectors, angle 0)"):
        par = slerp(z0, 2 * z0, 0.5)
    check(
        torch.isfinite(par).all() and torch.allclose(par, 1.5 * z0, atol=1e-3),
        "slerp of two parallel vectors (angle 0) should give the straight-line point, here 1.5 * "
        "z0, not nan: sin(omega) is 0 there; fall back to (1 - t) * z0 + t * z1 when it is tiny.",
    )
    passed()


def test_attribute_vector(attribute_vector):
    """attribute_vector(z, has_attribute) = mean z with the attribute - mean z without."""
    torch.manual_seed(0)
    z = torch.randn(10, 6)
    has = torch.tensor([1, 0, 0, 1, 1, 0, 0, 0, 1, 0], dtype=torch.bool)
    want = z[has].mean(0) - z[~has].mean(0)
    with calling("attribute_vector(z, has_attribute)"):
        v = attribute_vector(z, has)
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
    with calling("attribute_vector(z, has_attribute) with has_attribute of 0s and 1s"):
        v01 = attribute_vector(z, has.long())
    check(
        torch.allclose(v01, want, atol=1e-5),
        "attribute_vector should also take has_attribute as 0s and 1s (a classifier's labels): "
        "turn it into a bool mask first, has_attribute.bool().",
    )
    passed()
