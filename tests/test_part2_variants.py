"""No false rejections in part 2: correct alternatives to the part-2 solution pass its graded
tests (the mirror image of test_part2_mutants.py, as tests/test_variants.py is for part 1).

Each variant edits the part-2 solution notebook's own code (tests.mutants.apply), runs its
definition cells and calls the one graded test it targets, which must print "Tests Passed".
"""

import contextlib
import io
import json

import pytest

import part2_unittests
from helpers.graded import verdicts
from helpers.instructor import grade
from helpers.notebook import PART2_NOTEBOOK
from tests.mutants import Region, apply, definition_cells, run_definitions
from tests.variants import V, code

NUMBERS, CELLS, CALLS = definition_cells(PART2_NOTEBOOK)

PART2_VARIANTS = [
    V(
        "test_discriminator64",
        "attributes-and-functional",
        "one attribute per layer, F.leaky_relu in forward",
        "Discriminator64",
        (
            Region(0),
            code(
                """
        self.conv1 = nn.Conv2d(3, conv_dim, 4, 2, 1)
        self.conv2 = nn.Conv2d(conv_dim, conv_dim * 2, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(conv_dim * 2)
        self.conv3 = nn.Conv2d(conv_dim * 2, conv_dim * 4, 4, 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(conv_dim * 4)
        self.conv4 = nn.Conv2d(conv_dim * 4, conv_dim * 8, 4, 2, 1, bias=False)
        self.bn4 = nn.BatchNorm2d(conv_dim * 8)
        self.conv5 = nn.Conv2d(conv_dim * 8, 1, 4, 1, 0)
        """,
                8,
            ),
        ),
        (
            Region(1),
            code(
                """
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.bn2(self.conv2(x)), 0.2)
        x = F.leaky_relu(self.bn3(self.conv3(x)), 0.2)
        x = F.leaky_relu(self.bn4(self.conv4(x)), 0.2)
        return self.conv5(x).view(x.size(0), 1)
        """,
                8,
            ),
        ),
    ),
    V(
        "test_generator64",
        "attributes-and-functional",
        "one attribute per layer, F.relu and torch.tanh in forward, z.view(-1, z_size, 1, 1)",
        "Generator64",
        (
            Region(0),
            code(
                """
        c = conv_dim
        self.t1 = nn.ConvTranspose2d(z_size, c * 8, 4, 1, 0, bias=False)
        self.b1 = nn.BatchNorm2d(c * 8)
        self.t2 = nn.ConvTranspose2d(c * 8, c * 4, 4, 2, 1, bias=False)
        self.b2 = nn.BatchNorm2d(c * 4)
        self.t3 = nn.ConvTranspose2d(c * 4, c * 2, 4, 2, 1, bias=False)
        self.b3 = nn.BatchNorm2d(c * 2)
        self.t4 = nn.ConvTranspose2d(c * 2, c, 4, 2, 1, bias=False)
        self.b4 = nn.BatchNorm2d(c)
        self.t5 = nn.ConvTranspose2d(c, 3, 4, 2, 1)
        """,
                8,
            ),
        ),
        (
            Region(1),
            code(
                """
        x = z.view(-1, self.z_size, 1, 1)
        x = F.relu(self.b1(self.t1(x)))
        x = F.relu(self.b2(self.t2(x)))
        x = F.relu(self.b3(self.t3(x)))
        x = F.relu(self.b4(self.t4(x)))
        return torch.tanh(self.t5(x))
        """,
                8,
            ),
        ),
    ),
    V(
        "test_critic",
        "no-normalisation",
        "no normalisation at all (the notebook allows none)",
        "Critic",
        (
            "            nn.GroupNorm(1, c * 2),  # layer norm: each image normalised on its own\n",
            "",
        ),
        ("            nn.GroupNorm(1, c * 4),\n", ""),
        ("            nn.GroupNorm(1, c * 8),\n", ""),
    ),
    V(
        "test_critic",
        "instance-norm",
        "instance norm with a learned scale and shift",
        "Critic",
        ("nn.GroupNorm(1, c * 2),", "nn.InstanceNorm2d(c * 2, affine=True),"),
        ("nn.GroupNorm(1, c * 4),", "nn.InstanceNorm2d(c * 4, affine=True),"),
        ("nn.GroupNorm(1, c * 8),", "nn.InstanceNorm2d(c * 8, affine=True),"),
    ),
    V(
        "test_critic",
        "layer-norm-module",
        "nn.LayerNorm over (C, H, W)",
        "Critic",
        ("nn.GroupNorm(1, c * 2),", "nn.LayerNorm([c * 2, 16, 16]),"),
        ("nn.GroupNorm(1, c * 4),", "nn.LayerNorm([c * 4, 8, 8]),"),
        ("nn.GroupNorm(1, c * 8),", "nn.LayerNorm([c * 8, 4, 4]),"),
    ),
    V(
        "test_gradient_penalty",
        "grad-outputs",
        "the common form: grad_outputs of ones, retain_graph, view(B, -1)",
        "gradient_penalty",
        (
            Region(0),
            code(
                """
    alpha = torch.rand(real_images.size(0), 1, 1, 1).to(real_images.device)
    alpha = alpha.expand_as(real_images)
    interpolates = alpha * real_images + (1 - alpha) * fake_images
    interpolates = torch.autograd.Variable(interpolates, requires_grad=True)
    disc_interpolates = critic(interpolates)
    gradients = torch.autograd.grad(
        outputs=disc_interpolates,
        inputs=interpolates,
        grad_outputs=torch.ones_like(disc_interpolates),
        create_graph=True,
        retain_graph=True,
        only_inputs=True,
    )[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean()
    """,
                4,
            ),
        ),
    ),
    V(
        "test_critic_loss",
        "negated-difference",
        "-(mean real - mean fake), with torch.mean",
        "critic_loss",
        (
            "return fake_scores.mean() - real_scores.mean()",
            "return -(torch.mean(real_scores) - torch.mean(fake_scores))",
        ),
    ),
    V(
        "test_generator_loss",
        "torch-mean",
        "-torch.mean(fake_scores)",
        "generator_loss",
        ("return -fake_scores.mean()", "return -torch.mean(fake_scores)"),
    ),
    V(
        "test_wgan_optimizers",
        "literals",
        "the paper's values written out",
        "<module>",
        (
            "c_optimizer = optim.Adam(critic.parameters(), lr=wgan_lr, betas=wgan_betas)",
            "c_optimizer = torch.optim.Adam(critic.parameters(), 1e-4, (0.0, 0.9))",
        ),
        (
            "g_optimizer = optim.Adam(G.parameters(), lr=wgan_lr, betas=wgan_betas)",
            "g_optimizer = torch.optim.Adam(G.parameters(), 1e-4, (0.0, 0.9))",
        ),
    ),
    V(
        "test_train_wgan",
        "one-critic-call",
        "real and fake scored in one critic call, the penalty computed first",
        "train_wgan",
        (
            Region(0),
            code(
                """
            fake_images = G(torch.randn(batch_size, z_size, device=device)).detach()
            penalty = gradient_penalty(critic, real_images, fake_images)
            scores = critic(torch.cat([real_images, fake_images]))
            c_loss = critic_loss(scores[:batch_size], scores[batch_size:])
            c_optimizer.zero_grad()
            loss = c_loss + gp_weight * penalty
            loss.backward()
            c_optimizer.step()
            if step % n_critic == 0:
                for p in critic.parameters():
                    p.requires_grad_(False)  # the G step needs no gradients for the critic
                g_optimizer.zero_grad()
                g_loss = generator_loss(critic(G(torch.randn(batch_size, z_size, device=device))))
                g_loss.backward()
                g_optimizer.step()
                for p in critic.parameters():
                    p.requires_grad_(True)
            """,
                12,
            ),
        ),
    ),
    V(
        "test_slerp",
        "normalised-dot",
        "omega from the dot product of unit vectors, the fallback with a small epsilon",
        "slerp",
        (
            Region(0),
            code(
                """
    if not torch.is_tensor(t):
        t = torch.full((z0.size(0),), float(t))
    t = t.to(z0).unsqueeze(1)
    u0 = z0 / z0.norm(dim=1, keepdim=True)
    u1 = z1 / z1.norm(dim=1, keepdim=True)
    omega = torch.acos((u0 * u1).sum(dim=1, keepdim=True).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    lerp = (1 - t) * z0 + t * z1
    arc = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / so.clamp_min(1e-8)
    return torch.where(so < 1e-4, lerp, arc)
    """,
                4,
            ),
        ),
    ),
    V(
        "test_attribute_vector",
        "weighted-means",
        "means written as weighted sums of a float mask",
        "attribute_vector",
        (
            Region(0),
            code(
                """
    m = has_attribute.float().unsqueeze(1)
    return (z * m).sum(0) / m.sum() - (z * (1 - m)).sum(0) / (1 - m).sum()
    """,
                4,
            ),
        ),
    ),
]


def test_every_part2_graded_test_has_a_correct_variant():
    assert {v.test for v in PART2_VARIANTS} == set(CALLS)


@pytest.mark.parametrize("variant", PART2_VARIANTS, ids=lambda v: f"{v.test}-{v.name}")
def test_correct_part2_variant_passes(variant):
    namespace, errors = run_definitions(NUMBERS, apply(variant, CELLS))
    assert not errors, f"the variant's cells do not run: {errors[0]}"
    args = [namespace[name] for name in CALLS[variant.test]]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            getattr(part2_unittests, variant.test)(*args)
        except AssertionError as err:
            pytest.fail(f"{variant.test} rejected a correct variant ({variant.style}): {err}")
    assert out.getvalue().strip().splitlines()[-1] == "Tests Passed"


@pytest.mark.parametrize("variant", PART2_VARIANTS, ids=lambda v: f"{v.test}-{v.name}")
def test_correct_part2_variant_passes_the_graders_judge_on_random_seeds(variant):
    # as the grader sees it: observed on its seed, through JSON, judged in its own process
    namespace, _ = run_definitions(NUMBERS, apply(variant, CELLS))
    args = [namespace[name] for name in CALLS[variant.test]]
    observe, judge = part2_unittests.VERDICTS[variant.test]
    for seed in (11, 4242, 2**31 - 99):
        with contextlib.redirect_stdout(io.StringIO()):
            wire = json.loads(json.dumps(verdicts.encode(observe(*args, seed=seed))))
        assert grade.judge_observation(judge, wire, seed) == (True, "Tests Passed"), seed
