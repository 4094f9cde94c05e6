"""Specification of helpers.training.Session: the plumbing of the notebook's train around the
learner's D and G steps (resume, logging, samples, checkpoints, Ctrl-C, watchers, the
optimizers' settings)."""

import os
import signal
import time

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.doctor import StepStats, StopTraining
from helpers.training import (
    OptimizerSettingsError,
    Session,
    TrainingInterrupted,
)

Z = 4  # small for testing speed


def setup(seed=0, lr=0.0002):
    """Tiny D and G, their optimizers, a loader of 4 batches of 2 images (4x4) and a namespace
    like the notebook's, whose optimizers are these."""
    torch.manual_seed(seed)
    D = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    G = nn.Sequential(nn.Linear(Z, 3 * 4 * 4), nn.Tanh(), nn.Unflatten(1, (3, 4, 4)))
    d_opt = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    loader = DataLoader(TensorDataset(torch.rand(8, 3, 4, 4), torch.zeros(8)), batch_size=2)
    namespace = {"lr": 0.0002, "beta1": 0.5, "beta2": 0.999, "d_optimizer": d_opt}
    namespace["g_optimizer"] = g_opt
    return D, G, d_opt, g_opt, loader, namespace


def bce(out, label):
    return nn.functional.binary_cross_entropy_with_logits(out, torch.full_like(out, label))


def step(D, G, d_opt, g_opt, real):
    """The notebook's D step and G step."""
    fake = G(torch.rand(len(real), Z) * 2 - 1)
    d_opt.zero_grad()
    d_loss = bce(D(real * 2 - 1), 1.0) + bce(D(fake.detach()), 0.0)
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad()
    g_loss = bce(D(fake), 1.0)
    g_loss.backward()
    g_opt.step()
    return d_loss, g_loss


def train(n_epochs, nets, path=None, watchers=None, on_batch=None, print_every=2):
    """The notebook's train, as the learner sees it, on `nets` (setup's tuple)."""
    D, G, d_opt, g_opt, loader, namespace = nets
    session = Session(
        namespace, D, G, d_opt, g_opt, loader, n_epochs, Z, "cpu",
        print_every=print_every, checkpoint_path=path, sample_size=3, watchers=watchers,
    )  # fmt: skip
    fixed_z = session.fixed_z
    for epoch in session.epochs():
        for batch, real_images in enumerate(session.batches(epoch)):
            d_loss, g_loss = step(D, G, d_opt, g_opt, real_images)
            if on_batch:
                on_batch(epoch, batch)
            session.log(d_loss, g_loss)
        session.keep_samples(fixed_z)
    return session.finish()


def test_logs_every_print_every_batches_and_keeps_one_sample_batch_per_epoch(capsys):
    losses, samples = train(2, setup())
    assert len(losses) == 4  # 4 batches an epoch, logged on batches 0 and 2
    assert all(len(row) == 4 and all(isinstance(v, float) for v in row) for row in losses)
    assert all(0 <= v <= 1 for row in losses for v in row[2:])  # D(x), D(G(z))
    assert [tuple(s.shape) for s in samples] == [(3, 3, 4, 4)] * 2
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("|")[0].strip() for line in lines] == ["Epoch   1/2", "Epoch   2/2"]
    assert "D(G(z))" in lines[0] and "left" in lines[0] and "left" not in lines[1]


def test_a_rerun_resumes_from_the_checkpoint_and_trains_only_the_epochs_left(tmp_path, capsys):
    nets = setup()
    path = tmp_path / "checkpoint.pt"
    train(2, nets, path)
    steps = []
    losses, samples = train(3, nets, path, on_batch=lambda epoch, batch: steps.append(epoch))
    assert steps == [3] * 4
    assert len(losses) == 6 and len(samples) == 3
    assert "Resuming from" in capsys.readouterr().out


def test_optimizers_made_before_the_hyperparameters_changed_name_the_cell_to_rerun(tmp_path):
    nets = setup()
    nets[5]["lr"] = 0.001  # the hyperparameters cell changed and ran; the optimizers cell did not
    with pytest.raises(OptimizerSettingsError) as err:
        train(1, nets, tmp_path / "checkpoint.pt")
    message = str(err.value)
    assert "d_optimizer has lr 0.0002, the cell says lr = 0.001" in message
    assert "optimizers cell" in message and "again" in message
    assert not (tmp_path / "checkpoint.pt").exists()


def test_optimizers_that_are_not_the_notebooks_are_not_checked():
    nets = setup(lr=0.01)  # a graded test's own optimizers, with the notebook's namespace
    D, G, d_opt, g_opt, loader, namespace = nets
    namespace["d_optimizer"] = torch.optim.Adam(D.parameters(), lr=0.0002)
    namespace["g_optimizer"] = torch.optim.Adam(G.parameters(), lr=0.0002)
    losses, _ = train(1, nets)
    assert len(losses) == 2


class Recorder:
    """A watcher that keeps what it was told and says one line per epoch."""

    def __init__(self, stop_at_step=None):
        self.seen, self.stop_at_step = [], stop_at_step

    def on_log(self, stats):
        self.seen.append(stats)
        if stats.step == self.stop_at_step:
            raise StopTraining("The losses are nan: training stopped.")
        return []

    def on_epoch(self, epoch):
        self.seen.append(epoch)
        return [f"watcher: epoch {epoch} looks fine"]


def test_watchers_see_every_logged_step_and_every_epoch_end_and_their_lines_are_printed(capsys):
    watcher = Recorder()
    train(2, setup(), watchers=[watcher])
    steps = [s for s in watcher.seen if isinstance(s, StepStats)]
    assert [(s.epoch, s.batch, s.step) for s in steps] == [
        (1, 0, 0),
        (1, 2, 2),
        (2, 0, 4),
        (2, 2, 6),
    ]
    assert watcher.seen[2] == 1 and watcher.seen[-1] == 2  # on_epoch after each epoch's steps
    assert all(0 <= s.d_x <= 1 and s.d_loss > 0 for s in steps)
    assert "watcher: epoch 1 looks fine" in capsys.readouterr().out


def test_a_watcher_that_stops_training_ends_the_run_with_its_message_and_saves_nothing_new(
    tmp_path, capsys
):
    path = tmp_path / "checkpoint.pt"
    trained = []
    losses, samples = train(
        3,
        setup(),
        path,
        watchers=[Recorder(stop_at_step=6)],  # epoch 2, batch 2
        on_batch=lambda epoch, batch: trained.append((epoch, batch)),
    )
    assert trained[-1] == (2, 2)  # no batch after the one that stopped it
    assert len(samples) == 1 and len(losses) == 4
    out = capsys.readouterr().out
    assert "The losses are nan: training stopped." in out
    assert "after epoch 1 of 3" in out and "Epoch   2/3" not in out
    assert torch.load(path, weights_only=True)["epoch"] == 1


def test_ctrl_c_stops_after_the_batch_and_says_where_what_is_saved_and_how_to_go_on(tmp_path):
    path = tmp_path / "checkpoint.pt"
    trained = []

    def ctrl_c_in_epoch_2(epoch, batch):
        trained.append((epoch, batch))
        if (epoch, batch) == (2, 1):
            os.kill(os.getpid(), signal.SIGINT)

    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as err:
        train(3, setup(), path, on_batch=ctrl_c_in_epoch_2)
    assert trained[-1] == (2, 1)  # the batch running finished; no other began
    lines = err.value._render_traceback_()[0].splitlines()
    assert lines == [
        "Stopped by Ctrl-C in epoch 2/3, after batch 2 of 4.",
        f"Saved: {path}, after epoch 1 of 3; what epoch 2 had trained is not saved.",
        "To go on, run the training cell again: it resumes from epoch 2.",
    ]
    assert signal.getsignal(signal.SIGINT) is handler
    assert torch.load(path, weights_only=True)["epoch"] == 1


def test_ctrl_c_after_train_failed_interrupts_at_once():
    def fail(epoch, batch):
        raise ValueError("the learner's step failed")

    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(ValueError):
            train(1, setup(), on_batch=fail)
        # train's loop never ended (the generator still waits): Ctrl-C must not wait for it
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass
    finally:
        signal.signal(signal.SIGINT, handler)


def test_in_jupyter_a_ctrl_c_shows_its_three_lines_and_no_traceback(tmp_path, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns.update(train=train, setup=setup, os=os, signal=signal, path=tmp_path / "c.pt")
    shell.run_cell(
        "def ctrl_c(epoch, batch):\n"
        "    if (epoch, batch) == (1, 1):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "train(2, setup(), path, on_batch=ctrl_c)\n"
    )
    shown = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert shown == [
        "Stopped by Ctrl-C in epoch 1/2, after batch 2 of 4.",
        f"Nothing is saved yet: no epoch finished, so there is no {tmp_path / 'c.pt'}.",
        "To go on, run the training cell again: it starts from epoch 1.",
    ]


KERNEL_TRAINS = """
import time
import torch
from tests.test_training import setup, step, Z
from helpers.training import Session

D, G, d_opt, g_opt, loader, namespace = setup()
session = Session(namespace, D, G, d_opt, g_opt, loader, 1000, Z, "cpu", print_every=2)
print("training", flush=True)
for epoch in session.epochs():
    for real_images in session.batches(epoch):
        d_loss, g_loss = step(D, G, d_opt, g_opt, real_images)
        time.sleep(0.05)
        session.log(d_loss, g_loss)
    session.keep_samples(session.fixed_z)
"""


@pytest.mark.slow
def test_interrupting_a_jupyter_kernel_that_trains_shows_the_three_lines():
    from jupyter_client.manager import start_new_kernel

    from helpers.notebook import ROOT

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    try:
        kc.execute(KERNEL_TRAINS)
        errors = []
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and "training" in content.get("text", ""):
                time.sleep(3)  # a few epochs in
                km.interrupt_kernel()
            elif kind == "error":
                errors.append(content)
            elif kind == "status" and content["execution_state"] == "idle" and errors:
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert [e["ename"] for e in errors] == ["TrainingInterrupted"]
    shown = "\n".join(errors[0]["traceback"]).splitlines()
    assert len(shown) == 3 and shown[0].startswith("Stopped by Ctrl-C in epoch "), shown
    assert shown[1] == "Nothing is saved (train was given no checkpoint_path)."
