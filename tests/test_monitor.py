"""Specification of helpers.monitor: D(x) and D(G(z)) as the D step of the learner's own code
saw them, in the orders learners write that step, logged by the notebook's train."""

import contextlib
import io

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.monitor import DiscriminatorProbe
from helpers.notebook import load_solution

Z = 4  # small for testing speed


def tiny_nets(seed=0):
    torch.manual_seed(seed)
    D = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    G = nn.Sequential(nn.Linear(Z, 3 * 4 * 4), nn.Tanh(), nn.Unflatten(1, (3, 4, 4)))
    return D, G, torch.optim.Adam(D.parameters()), torch.optim.Adam(G.parameters())


def bce(out, label):
    return nn.functional.binary_cross_entropy_with_logits(out, torch.full_like(out, label))


# Each step returns the D-step outputs on real and on fake images, as the learner's code used them.
def solution_order(D, G, d_opt, g_opt, real):
    fake = G(torch.rand(len(real), Z) * 2 - 1)
    d_opt.zero_grad()
    d_real, d_fake = D(real), D(fake.detach())
    (bce(d_real, 1.0) + bce(d_fake, 0.0)).backward()
    d_opt.step()
    g_opt.zero_grad()
    bce(D(fake), 1.0).backward()
    g_opt.step()
    return d_real, d_fake


def g_step_first(D, G, d_opt, g_opt, real):
    fake = G(torch.rand(len(real), Z) * 2 - 1)
    g_opt.zero_grad()
    bce(D(fake), 1.0).backward()
    g_opt.step()
    d_opt.zero_grad()
    d_fake, d_real = D(fake.detach()), D(real)
    (bce(d_real, 1.0) + bce(d_fake, 0.0)).backward()
    d_opt.step()
    return d_real, d_fake


def new_noise_inline_for_each_step(D, G, d_opt, g_opt, real):
    d_opt.zero_grad()
    d_real = D(real)
    d_fake = D(G(torch.rand(len(real), Z) * 2 - 1).detach())
    (bce(d_real, 0.9) + bce(d_fake, 0.0)).backward()  # with label smoothing
    d_opt.step()
    g_opt.zero_grad()
    bce(D(G(torch.rand(len(real), Z) * 2 - 1)), 1.0).backward()
    g_opt.step()
    return d_real, d_fake


@pytest.mark.parametrize("step", [solution_order, g_step_first, new_noise_inline_for_each_step])
def test_the_probe_measures_the_d_step_in_each_order(step):
    D, G, d_opt, g_opt = tiny_nets()
    probe = DiscriminatorProbe(D, G, d_opt, g_opt)
    for batch in range(3):
        real = torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(batch)) * 2 - 1
        d_real, d_fake = step(D, G, d_opt, g_opt, real)
        d_x, d_g_z = probe.means()
        assert d_x == pytest.approx(torch.sigmoid(d_real).mean().item(), abs=1e-6)
        assert d_g_z == pytest.approx(torch.sigmoid(d_fake).mean().item(), abs=1e-6)
    probe.close()


def test_nothing_is_measured_while_inactive_and_close_removes_every_hook():
    D, G, d_opt, g_opt = tiny_nets()
    probe = DiscriminatorProbe(D, G, d_opt, g_opt)
    probe.active = False
    solution_order(D, G, d_opt, g_opt, torch.rand(6, 3, 4, 4) * 2 - 1)
    assert all(v != v for v in probe.means())  # nan: not measured
    probe.close()
    assert not D._forward_hooks and not G._forward_hooks
    assert not d_opt._optimizer_step_pre_hooks and not g_opt._optimizer_step_pre_hooks


def test_a_new_probe_removes_the_hooks_an_interrupted_run_left():
    D, G, d_opt, g_opt = tiny_nets()
    DiscriminatorProbe(D, G, d_opt, g_opt)  # never closed: train was interrupted
    probe = DiscriminatorProbe(D, G, d_opt, g_opt)
    assert len(D._forward_hooks) == 1 and len(G._forward_hooks) == 1
    probe.close()


def test_the_notebook_train_logs_d_x_and_d_g_z_of_the_d_step_on_logging_steps(tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        notebook = load_solution()
    torch.manual_seed(0)
    D = notebook["Discriminator"](4)
    G = notebook["Generator"](z_size=8, conv_dim=4)
    d_opt = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
    images = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    loader = DataLoader(TensorDataset(images, torch.zeros(16, dtype=torch.long)), batch_size=4)
    real_batches = [images[i : i + 4] * 2 - 1 for i in range(0, 16, 4)]

    # An independent record of each D step: sigmoid of D's outputs on the real batch and on
    # anything else (the fakes), between the last optimizer step and d_optimizer.step().
    window, d_steps = [], []
    D.register_forward_hook(lambda m, i, o: window.append((i[0].detach(), o.detach())))

    def on_d_step(*_):
        real = [torch.sigmoid(o) for x, o in window if any(torch.equal(x, b) for b in real_batches)]
        fake = [
            torch.sigmoid(o) for x, o in window if not any(torch.equal(x, b) for b in real_batches)
        ]
        d_steps.append((torch.cat(real).mean().item(), torch.cat(fake).mean().item()))
        window.clear()

    d_opt.register_step_pre_hook(on_d_step)
    g_opt.register_step_pre_hook(lambda *_: window.clear())
    with contextlib.redirect_stdout(io.StringIO()) as out:
        losses, _ = notebook["train"](
            D,
            G,
            d_opt,
            g_opt,
            loader,
            2,
            8,
            torch.device("cpu"),
            print_every=2,
            checkpoint_path=tmp_path / "ck.pt",
            sample_size=2,
        )
    assert len(d_steps) == 8 and len(losses) == 4  # 4 batches x 2 epochs, logged at batches 0, 2
    logged = [d_steps[i] for i in (0, 2, 4, 6)]
    for record, (d_x, d_g_z) in zip(losses, logged):
        assert len(record) == 4
        assert record[2] == pytest.approx(d_x, abs=1e-6) and record[3] == pytest.approx(
            d_g_z, abs=1e-6
        )
        assert 0 < record[2] < 1 and 0 < record[3] < 1
    assert f"| D(x) {losses[-1][2]:4.2f} | D(G(z)) {losses[-1][3]:4.2f}" in out.getvalue()
    assert len(D._forward_hooks) == 1, "train left its own hooks on D (only the test's remains)"
