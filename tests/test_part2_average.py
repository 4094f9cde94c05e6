"""Part 2's averaged G: helpers.training.keep_average, which train_wgan calls (it has no Session),
and the solution's train_wgan, which keeps the average, draws its samples with it and leaves G
itself to the learner's steps.

Part 2 keeps no WGAN-GP checkpoint (train_wgan trains in one go), so there is no resumption to
test here; the DCGAN's average rides in part 1's checkpoint (tests/test_ema.py).
"""

import contextlib
import io

import pytest
import torch
from torch import nn

from helpers.notebook import PART2_NOTEBOOK, load_solution
from helpers.training import EMA_DECAY, Average, averaged, keep_average


@pytest.fixture(scope="module")
def solution():
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution(PART2_NOTEBOOK)


def tiny(seed=0):
    """A G with batch norm (running statistics to average) and its Adam."""
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh())
    return G, torch.optim.Adam(G.parameters(), lr=0.05)


def g_step(G, opt):
    opt.zero_grad()
    G(torch.randn(5, 4)).square().mean().backward()
    opt.step()


def test_keep_average_is_updated_by_every_optimizer_step_and_given_by_averaged():
    G, opt = tiny()
    reference = Average(G, 0.9)
    average = keep_average(G, opt, 0.9)
    for _ in range(4):
        g_step(G, opt)
        reference.update()  # what a Session does after each G step
    assert average.updates == 4
    kept = averaged(G).state_dict()
    assert kept.keys() == reference.weights.keys()
    assert all(torch.equal(kept[k], reference.weights[k]) for k in kept)
    assert any(not torch.equal(kept[k], v) for k, v in G.state_dict().items())


def test_keep_average_again_starts_afresh_and_the_first_stops():
    G, opt = tiny()
    first = keep_average(G, opt)
    g_step(G, opt)
    second = keep_average(G, opt, 0.5)
    g_step(G, opt)
    assert (first.updates, second.updates) == (1, 1)
    assert second.decay == 0.5 and averaged(G).state_dict().keys() == G.state_dict().keys()
    assert first.decay == EMA_DECAY


def test_train_wgan_keeps_the_average_of_g_and_draws_its_samples_with_it(solution):
    critic, G = solution["Critic"](4), solution["Generator64"](8, 4)
    c_opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.0, 0.9))
    g_opt = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.9))
    # the average a Session would keep: updated after every G step
    reference = Average(G, 0.9)
    g_opt.register_step_post_hook(lambda *_: reference.update())
    data = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    loader = [(data[i : i + 4], None) for i in (0, 4)]
    torch.manual_seed(5)
    fixed_z = torch.randn(3, 8)  # train_wgan's first draw, after the same seed
    torch.manual_seed(5)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        _, samples = solution["train_wgan"](
            critic, G, c_opt, g_opt, loader, 2, 8, "cpu", n_critic=2, ema_decay=0.9, sample_size=3
        )
    assert reference.updates == 2, "2 epochs x 2 batches, n_critic 2: two G steps"
    G_ema = averaged(G)
    kept = G_ema.state_dict()
    assert all(torch.equal(kept[k], reference.weights[k]) for k in kept)
    assert any(not torch.equal(kept[k], v) for k, v in G.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(samples[-1], G_ema(fixed_z))


def test_train_wgan_with_decay_0_keeps_g_itself(solution):
    critic, G = solution["Critic"](4), solution["Generator64"](8, 4)
    c_opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.0, 0.9))
    g_opt = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.9))
    loader = [(torch.rand(4, 3, 64, 64), None)]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        solution["train_wgan"](
            critic, G, c_opt, g_opt, loader, 2, 8, "cpu", n_critic=1, ema_decay=0
        )
    kept = averaged(G).state_dict()
    assert all(torch.equal(kept[k], v) for k, v in G.state_dict().items())
