"""Specification of the averaged G (helpers.training.Average, averaged): its update, the samples
drawn with it, and its resumption from a checkpoint, bit for bit."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.training import EMA_DECAY, Average, Session, averaged
from tests.test_training import Z, bce

N_BATCHES = 4


def setup(seed=0, decay=None):
    """Tiny D and a G with batch norm (running statistics to average), their optimizers, a loader
    of 4 batches in a fixed order, and a namespace like the notebook's."""
    torch.manual_seed(seed)
    D = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    G = nn.Sequential(
        nn.Linear(Z, 3 * 4 * 4), nn.BatchNorm1d(48), nn.Tanh(), nn.Unflatten(1, (3, 4, 4))
    )
    d_opt = torch.optim.Adam(D.parameters(), lr=0.01, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=0.01, betas=(0.5, 0.999))
    images = torch.rand(2 * N_BATCHES, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    loader = DataLoader(TensorDataset(images, torch.zeros(len(images))), batch_size=2)
    namespace = {"d_optimizer": d_opt, "g_optimizer": g_opt}
    if decay is not None:
        namespace["ema_decay"] = decay
    return D, G, d_opt, g_opt, loader, namespace


def train(n_epochs, nets, path=None):
    """The notebook's train; each batch's noise depends on (epoch, batch) only, so that a resumed
    run draws what an unbroken one draws."""
    D, G, d_opt, g_opt, loader, namespace = nets
    session = Session(
        namespace, D, G, d_opt, g_opt, loader, n_epochs, Z, "cpu",
        print_every=2, checkpoint_path=path, sample_size=3, watchers=[],
    )  # fmt: skip
    fixed_z = session.fixed_z
    for epoch in session.epochs():
        for batch, real in enumerate(session.batches(epoch)):
            noise = torch.Generator().manual_seed(100 * epoch + batch)
            fake = G(torch.rand(len(real), Z, generator=noise) * 2 - 1)
            d_opt.zero_grad()
            d_loss = bce(D(real * 2 - 1), 1.0) + bce(D(fake.detach()), 0.0)
            d_loss.backward()
            d_opt.step()
            g_opt.zero_grad()
            g_loss = bce(D(fake), 1.0)
            g_loss.backward()
            g_opt.step()
            session.log(d_loss, g_loss)
        session.keep_samples(fixed_z)
    return session.finish()


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_average_follows_the_weights_with_a_warm_up_and_averages_batch_norms_statistics():
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    average = Average(net, decay=0.9)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.add_(1)
            else:
                t.fill_(7)
    average.update()
    d = min(0.9, 2 / 11)  # the first update's warm-up decay
    for name, now in net.state_dict().items():
        if now.is_floating_point():  # weights, and the running mean and variance
            torch.testing.assert_close(average.weights[name], d * start[name] + (1 - d) * now)
        else:
            assert torch.equal(average.weights[name], now)  # batches counted: copied
    for _ in range(200):
        average.update()
    assert min(0.9, 202 / 211) == 0.9  # past the warm-up, the decay is the one asked for
    torch.testing.assert_close(average.weights["0.weight"], net.state_dict()["0.weight"])


def test_the_samples_are_the_averaged_gs_and_g_itself_is_left_as_it_was():
    nets = setup()
    G = nets[1]
    weights = []
    real_keep = Session.keep_samples

    def keep(session, fixed_z):
        weights.append({k: v.clone() for k, v in G.state_dict().items()})
        real_keep(session, fixed_z)
        assert same(weights[-1], G.state_dict())  # restored bit for bit

    Session.keep_samples = keep
    try:
        _, samples = train(2, nets)
    finally:
        Session.keep_samples = real_keep
    G_ema = averaged(G)
    assert not G_ema.training and not any(p.requires_grad for p in G_ema.parameters())
    assert not same(G_ema.state_dict(), G.state_dict())
    fixed_z = torch.rand(3, Z)
    assert not torch.equal(G_ema(fixed_z), G.eval()(fixed_z))
    assert G_ema is not G and averaged(G) is not G_ema  # a copy each time, never G


def test_samples_are_drawn_with_the_average(tmp_path):
    nets = setup()
    _, samples = train(1, nets, tmp_path / "checkpoint.pt")
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["ema"]["decay"] == EMA_DECAY and saved["ema"]["updates"] == N_BATCHES
    G_ema = averaged(nets[1])
    assert same(saved["ema"]["weights"], G_ema.state_dict())
    assert torch.equal(samples[0], G_ema(saved["fixed_z"]))


def test_decay_0_makes_the_average_g_itself():
    nets = setup(decay=0.0)
    train(1, nets)
    assert same(averaged(nets[1]).state_dict(), nets[1].state_dict())


def test_a_g_that_train_never_saw_has_no_average():
    with pytest.raises(LookupError, match="not trained by train"):
        averaged(nn.Linear(2, 2))


def test_a_resumed_run_ends_with_the_average_of_an_unbroken_one_bit_for_bit(tmp_path, capsys):
    unbroken = setup()
    losses, samples = train(3, unbroken, tmp_path / "unbroken.pt")
    broken = setup()
    train(2, broken, tmp_path / "broken.pt")
    resumed = setup(seed=5)  # a new kernel: other weights until the checkpoint is read
    resumed_losses, resumed_samples = train(3, resumed, tmp_path / "broken.pt")
    assert "Resuming from" in capsys.readouterr().out
    assert same(averaged(resumed[1]).state_dict(), averaged(unbroken[1]).state_dict())
    assert same(resumed[1].state_dict(), unbroken[1].state_dict())
    assert resumed_losses == losses
    assert all(torch.equal(a, b) for a, b in zip(resumed_samples, samples))
    one, other = (
        torch.load(tmp_path / name, weights_only=True)["ema"]
        for name in ("unbroken.pt", "broken.pt")
    )
    assert one["updates"] == other["updates"] == 3 * N_BATCHES
    assert same(one["weights"], other["weights"])


def test_a_resumed_run_with_another_decay_starts_the_average_again_and_says_so(tmp_path, capsys):
    train(1, setup(), tmp_path / "checkpoint.pt")
    resumed = setup(seed=5, decay=0.5)
    train(2, resumed, tmp_path / "checkpoint.pt")
    said = f"kept with decay {EMA_DECAY}; with decay 0.5 it starts again"
    assert said in capsys.readouterr().out
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["ema"]
    assert saved["decay"] == 0.5 and saved["updates"] == N_BATCHES
