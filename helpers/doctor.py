"""The GAN doctor: it watches training as it runs and names a known failure in plain words
(the notebook's "Train" step, explained in its "When training goes wrong: the GAN doctor" step).

    doctor = Doctor(D, G, z_size, device)
    ...                                   # each logging step, right after G's optimizer step:
    for message in doctor.on_log(stats):  # stats: epoch, batch, step, d_loss, g_loss, d_x, d_g_z
        print(message)
    ...                                   # after each epoch:
    for message in doctor.on_epoch(epoch):
        print(message)

What it reads: the logged losses, D(x) and D(G(z)); on logging steps, G's gradient norm (the
``.grad`` of its parameters, left by the last step) and how far G's weights moved since the last
logging step; once an epoch, how much G's samples for a fixed batch of noise vary with z. What
it says, each at most once until its condition clears:

- NaN or inf in a loss or a weight: it raises :class:`StopTraining` with the likely causes;
- D winning: D(G(z)) near 0 for a long stretch while G's loss has climbed;
- G not learning: G's weights do not move (a learning rate of 0, or G's gradients are zero);
- mode collapse: G's samples barely vary with z;
- oscillation: the losses swing between extremes instead of settling.

The thresholds are :class:`Thresholds`' fields (``Doctor(..., d_wins_below=0.001)``), each with
why it has its value. Training goes exactly as it would without the doctor: it reads, never
writes, and its one G forward per epoch runs under ``torch.no_grad`` in eval mode with the random
number generators' state restored. ``demo()`` shows it on a tiny training broken on purpose.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.metrics import spread

__all__ = ["DEMOS", "Doctor", "StepStats", "StopTraining", "Thresholds", "demo"]


class StopTraining(Exception):
    """Raised by a watcher of training (the doctor, on a NaN or inf) to end the run; the
    training session saves nothing new and prints the message."""


@dataclass(frozen=True)
class StepStats:
    """One logged training step, as a watcher sees it.

    epoch: the epoch it belongs to, from 1. batch: its index in the epoch, from 0. step: its
    index among all the run's batches, from 0 (a resumed run goes on counting). d_loss, g_loss:
    the losses of this batch. d_x, d_g_z: the mean probabilities D gave the real and the fake
    images in its step, in [0, 1] (nan when they could not be measured).
    """

    epoch: int
    batch: int
    step: int
    d_loss: float
    g_loss: float
    d_x: float
    d_g_z: float


@dataclass(frozen=True)
class Thresholds:
    """When the doctor speaks. The values come from healthy and broken runs of the notebook's
    networks (tests/test_doctor.py) and from the committed full run's losses (docs/losses.png)."""

    # The stretch D winning and oscillation look at, in training steps: long enough that one
    # spike of a healthy run (docs/losses.png has several) is not a trend.
    window_steps: int = 200
    # ... and the fewest logging steps in it for a verdict (print_every=10 gives 20).
    min_logs: int = 8
    # D winning: D(G(z)) below this in most of the window. A healthy run sits at 0.02 to 0.1,
    # with dips (the full run's first 400 steps); a D with 25 to 50 times G's learning rate sits
    # under 0.001.
    d_wins_below: float = 0.005
    # ... in at least this share of the window's logging steps,
    d_wins_share: float = 0.8
    # ... while G's loss has climbed at least this much above its start (it begins near 0.7 to
    # 1.7; with D(G(z)) under 0.005 it is above 5).
    g_loss_climb: float = 2.0
    # G not learning: its weights moved less than this, relative to their size, since the last
    # logging step. Adam moves them by about lr per step (a relative 0.01 at lr 0.0002); with a
    # learning rate of 0 they do not move at all.
    still_below: float = 1e-9
    # ... on this many logging steps in a row (one could be a skipped step).
    still_logs: int = 3
    # Mode collapse: the spread of G's samples across z, relative to how much each sample varies
    # within itself (pixel std), under this. Real faces: about 1.1; healthy runs 0.4 to 1; a G
    # that ignores z: 0; a G with 25 times D's learning rate collapsed to about 0.05.
    collapse_ratio: float = 0.1
    # ... or under this share of the largest spread G had at an earlier epoch.
    collapse_drop: float = 0.25
    # Samples this flat (pixel std within a sample) are a G that has not started to draw yet,
    # not a collapse: early in training, in eval mode, G's samples are near-uniform grey.
    flat_below: float = 0.05
    # Samples that differ by less than this (pixel std across z) are the same image, whatever
    # their flatness: a G that ignores z gives exactly 0, healthy runs 0.04 and up by step 80.
    identical_below: float = 0.001
    # ... and mode collapse is looked for only after this many training steps.
    collapse_after_steps: int = 100
    # The fixed batch of noise vectors G's spread is measured on, and the seed that draws it.
    spread_batch: int = 64
    spread_seed: int = 1234
    # Oscillation: d_loss swinging from under `swing_low` (D wins outright) to over `swing_high`
    # (D is fooled: 2 ln 2 = 1.39 is a coin toss) and back, at least `swings` times in the window.
    # A healthy run's d_loss sits at 0.1 to 0.5, with spikes too far apart to make 4 swings.
    swing_low: float = 0.1
    swing_high: float = 1.0
    swings: int = 4
    # ... and each extreme holds at least this share of the window's logging steps: two lone
    # spikes of a healthy run logged at every step made 4 swings, but under 5% of the steps.
    swing_share: float = 0.1


class Doctor:
    """Watches one training of D and G and names known failures (see the module's docstring).

    ``on_log(stats)`` and ``on_epoch(epoch)`` return the messages to show (one or two lines
    each; empty while training is healthy). ``on_log`` raises :class:`StopTraining` on NaN or inf.
    Keyword arguments override :class:`Thresholds`' fields.
    """

    def __init__(
        self,
        D: nn.Module,
        G: nn.Module,
        z_size: int,
        device: torch.device | str,
        **thresholds: Any,
    ) -> None:
        known = {f.name for f in fields(Thresholds)}
        unknown = sorted(set(thresholds) - known)
        if unknown:
            raise TypeError(f"Doctor: no threshold named {unknown}; they are {sorted(known)}.")
        self.D, self.G, self.z_size = D, G, z_size
        self.device = torch.device(device)
        self.t = Thresholds(**thresholds)
        self.said: set[str] = set()  # diagnoses said, and not yet cleared
        # (step, d_loss, g_loss, d_g_z) of the logging steps in the window
        self._logs: deque[tuple[int, float, float, float]] = deque()
        self._first_g_loss: list[float] = []  # G's loss on the first logging steps
        self._g_weights: torch.Tensor | None = None  # G's weights at the last logging step
        self._still = 0  # logging steps in a row at which G's weights had not moved
        self._step = 0  # the last logged step
        self._best_spread: tuple[float, int] | None = None  # (spread, epoch)

    # --- on each logging step ---------------------------------------------------------------

    def on_log(self, stats: StepStats) -> list[str]:
        """Read one logging step (called right after G's optimizer step); the messages to show.

        Raises StopTraining when a loss, a weight or a gradient is NaN or inf.
        """
        where = f"epoch {stats.epoch}, batch {stats.batch}"
        self._step = stats.step
        bad = [
            f"{name} is {value}"
            for name, value in (("d_loss", stats.d_loss), ("g_loss", stats.g_loss))
            if not math.isfinite(value)
        ]
        g_weights = _flat(p.detach() for p in self.G.parameters())
        g_grads = [p.grad.detach() for p in self.G.parameters() if p.grad is not None]
        # One wait for the GPU for all the numbers below.
        previous = self._g_weights
        moved = (
            torch.linalg.vector_norm((g_weights - previous).float())
            if previous is not None and previous.shape == g_weights.shape
            else torch.tensor(math.nan)
        )
        here = g_weights.device
        numbers = torch.stack(
            [
                _all_finite(self.D.parameters()).to(here),
                torch.isfinite(g_weights).all().float(),
                _norm(g_grads).to(here),
                torch.linalg.vector_norm(g_weights.float()),
                moved.to(here),
            ]
        ).tolist()
        d_finite, g_finite, g_grad_norm, g_norm, g_moved = numbers
        for name, net, finite in (("D", self.D, d_finite), ("G", self.G, g_finite)):
            if not finite:
                bad.append(f"{name}'s weight {_first_not_finite(net)} holds NaN or inf")
        if not math.isfinite(g_grad_norm):
            bad.append("G's gradients hold NaN or inf")
        if bad:
            raise StopTraining(
                f"GAN doctor, {where}: training stopped, {'; '.join(bad)}.\nLikely causes: a "
                "learning rate too high, a hand-written log(0) in a loss (use "
                "nn.BCEWithLogitsLoss on logits), real images not scaled to [-1, 1], or a NaN "
                "in the data or the starting weights."
            )
        self._g_weights = g_weights  # a copy: torch.cat copies

        messages = []
        messages += self._g_learning(where, g_moved, g_norm, g_grad_norm, len(g_grads))
        self._logs.append((stats.step, stats.d_loss, stats.g_loss, stats.d_g_z))
        while self._logs and self._logs[0][0] <= stats.step - self.t.window_steps:
            self._logs.popleft()
        if len(self._first_g_loss) < self.t.min_logs:
            self._first_g_loss.append(stats.g_loss)
        messages += self._d_winning(where, g_grad_norm)
        messages += self._oscillation(where)
        return messages

    def _say(self, key: str, condition: bool, message: str) -> list[str]:
        """[message] the first time `condition` holds; again only after it has cleared."""
        if not condition:
            self.said.discard(key)
            return []
        if key in self.said:
            return []
        self.said.add(key)
        return [message]

    def _g_learning(self, where, moved, size, grad_norm, n_grads):
        if math.isnan(moved):
            return []  # the first logging step: nothing to compare with yet
        still = moved <= self.t.still_below * max(size, 1e-12)
        self._still = self._still + 1 if still else 0
        if grad_norm == 0 or n_grads == 0:
            why = (
                "and its gradients are zero.\nG's loss does not reach G: is there a .detach() on "
                "the fakes in G's step, or is g_loss computed from D's step?"
            )
        else:
            why = (
                f"though its gradients are not zero (norm {grad_norm:.3g}).\nCheck g_optimizer: "
                "its learning rate may be 0, it may hold D's parameters, or g_optimizer.step() "
                "is not called."
            )
        return self._say(
            "g_still",
            self._still >= self.t.still_logs,
            f"GAN doctor, {where}: G is not learning. Its weights have not changed over the last "
            f"{self._still} logging steps, {why}",
        )

    def _window(self):
        """The window's logging steps, or [] while it is too short for a verdict."""
        logs = list(self._logs)
        if len(logs) < self.t.min_logs or logs[-1][0] - logs[0][0] < self.t.window_steps // 2:
            return []
        return logs

    def _d_winning(self, where, g_grad_norm):
        logs = self._window()
        measured = [d_g_z for _, _, _, d_g_z in logs if math.isfinite(d_g_z)]
        start = statistics.mean(self._first_g_loss) if self._first_g_loss else math.nan
        g_now = statistics.mean(g for _, _, g, _ in logs) if logs else math.nan
        low = sum(d < self.t.d_wins_below for d in measured)
        wins = (
            len(measured) >= self.t.min_logs
            and low >= self.t.d_wins_share * len(measured)
            and g_now >= start + self.t.g_loss_climb
        )
        steps = logs[-1][0] - logs[0][0] if logs else 0
        median = statistics.median(measured) if measured else math.nan
        return self._say(
            "d_wins",
            wins,
            f"GAN doctor, {where}: D is winning. D(G(z)) has stayed near 0 (median {median:.4f}) "
            f"for {steps} steps and G's loss climbed from {start:.2f} to {g_now:.2f} (G's "
            f"gradient norm {g_grad_norm:.3g}):\nD tells the fakes apart so easily that G learns "
            "little. Try a lower learning rate for D than for G, label smoothing "
            "(real_loss(..., smooth=True)), or a smaller D.",
        )

    def _oscillation(self, where):
        logs = self._window()
        d_losses = [d for _, d, _, _ in logs]
        swings, state = 0, None
        for d in d_losses:
            now = "low" if d <= self.t.swing_low else "high" if d >= self.t.swing_high else state
            if state is not None and now != state:
                swings += 1
            state = now
        steps = logs[-1][0] - logs[0][0] if logs else 0
        least = self.t.swing_share * len(d_losses)
        low = sum(d <= self.t.swing_low for d in d_losses)
        high = sum(d >= self.t.swing_high for d in d_losses)
        return self._say(
            "oscillation",
            swings >= self.t.swings and d_losses != [] and min(low, high) >= least,
            f"GAN doctor, {where}: training oscillates. d_loss swung between under "
            f"{self.t.swing_low} and over {self.t.swing_high} {swings} times in {steps} "
            f"steps (from {min(d_losses, default=0):.2f} to {max(d_losses, default=0):.2f}):\n"
            "the two networks overshoot each other instead of settling. Try lower learning rates "
            "for both, and beta1 = 0.5 (the paper's; 0.9 made its training oscillate).",
        )

    # --- after each epoch -----------------------------------------------------------------------

    def on_epoch(self, epoch: int) -> list[str]:
        """Measure how much G's samples vary with z (one G forward, no_grad, eval mode, the RNG
        state restored); the messages to show. `epoch` counts from 1."""
        if self._step < self.t.collapse_after_steps:
            return []
        across, flatness = self._spread()
        where = f"after epoch {epoch}"
        messages = []
        if flatness >= self.t.flat_below or across < self.t.identical_below:
            ratio = across / max(flatness, 1e-12)
            messages += self._say(
                "collapse",
                ratio < self.t.collapse_ratio or across < self.t.identical_below,
                f"GAN doctor, {where}: mode collapse. G's samples barely vary with z: across "
                f"{self.t.spread_batch} noise vectors they differ by {across:.3f} (pixel std), "
                f"{ratio:.2f} of how much each varies within itself (real faces: about 1).\nG "
                "has found a few images that fool D and draws them for every z. Try a lower "
                "learning rate for G, label smoothing, or restarting with another seed.",
            )
        best = self._best_spread
        if best is not None:
            messages += self._say(
                "spread_drop",
                across < self.t.collapse_drop * best[0] and "collapse" not in self.said,
                f"GAN doctor, {where}: G's samples vary with z much less than before: their "
                f"spread fell from {best[0]:.3f} after epoch {best[1]} to {across:.3f}, a sign "
                "of mode collapse.\nLook at the samples; if they look alike, try a lower "
                "learning rate for G or label smoothing.",
            )
        if best is None or across > best[0]:
            self._best_spread = (across, epoch)
        return messages

    def _spread(self) -> tuple[float, float]:
        """(spread of G's samples across z, mean pixel std within a sample), as floats."""
        g = torch.Generator().manual_seed(self.t.spread_seed)
        z = (torch.rand(self.t.spread_batch, self.z_size, generator=g) * 2 - 1).to(self.device)
        modes = [(m, m.training) for m in self.G.modules()]
        cpu_state = torch.get_rng_state()
        cuda_state = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        try:
            self.G.eval()
            with torch.no_grad():
                images = self.G(z).float()  # (spread_batch, 3, H, W)
                across = spread(images)  # the measure of the notebook's "Evaluate" verdict
                within = images.flatten(start_dim=1).std(dim=1).mean().item()
        finally:
            for module, mode in modes:
                module.training = mode
            torch.set_rng_state(cpu_state)
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state, self.device)
        return across, within


def _flat(tensors) -> torch.Tensor:
    tensors = [t.reshape(-1) for t in tensors]
    return torch.cat(tensors) if tensors else torch.zeros(0)


def _all_finite(params) -> torch.Tensor:
    flags = [torch.isfinite(p.detach()).all() for p in params]
    return torch.stack(flags).all().float() if flags else torch.tensor(1.0)


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    if not tensors:
        return torch.zeros(())
    return torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(t.float()) for t in tensors])
    )


def _first_not_finite(net: nn.Module) -> str:
    for name, p in net.named_parameters():
        if not torch.isfinite(p.detach()).all():
            return f"'{name}'"
    return "(unknown)"


# --- the demo: a tiny training broken on purpose ------------------------------------------------

# What demo() can break, and how it says so
DEMOS = {
    "g_lr_zero": "G's learning rate set to 0",
    "nan_weight": "a NaN written into one of G's weights after 50 steps",
    "g_ignores_z": "a G that ignores its noise z (z * 0)",
    "healthy": "nothing broken",
}


def _demo_faces(n: int, seed: int) -> torch.Tensor:
    """n built-in faces, 16x16, as a (n, 3, 16, 16) tensor in [-1, 1]."""
    from helpers.faces import draw_face  # here: the doctor itself needs no drawing

    rng = np.random.default_rng(seed)
    faces = np.stack([np.asarray(draw_face(rng, size=16)) for _ in range(n)])
    return torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1


def demo(
    broken: str = "g_lr_zero",
    steps: int = 200,
    seed: int = 0,
    print_every: int = 5,
) -> list[str]:
    """Train a tiny GAN (two small MLPs on 16x16 built-in faces, on the CPU, a few seconds) with
    one thing broken on purpose (a key of DEMOS), the doctor watching; print and return what the
    doctor says."""
    if broken not in DEMOS:
        raise ValueError(f"demo: broken must be one of {sorted(DEMOS)}, not {broken!r}.")
    torch.manual_seed(seed)
    z_size, batch_size, size = 16, 16, 3 * 16 * 16
    real = _demo_faces(128, seed)
    G: nn.Module = nn.Sequential(
        nn.Linear(z_size, 128),
        nn.ReLU(),
        nn.Linear(128, size),
        nn.Tanh(),
        nn.Unflatten(1, (3, 16, 16)),
    )
    D = nn.Sequential(nn.Flatten(), nn.Linear(size, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))
    if broken == "g_ignores_z":
        G = _IgnoresZ(G)
    g_lr = 0.0 if broken == "g_lr_zero" else 0.0002
    d_optimizer = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
    g_optimizer = torch.optim.Adam(G.parameters(), lr=g_lr, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    doctor = Doctor(D, G, z_size, "cpu")
    print(f"A tiny GAN trains for {steps} steps with {DEMOS[broken]}; the GAN doctor watches.")
    said: list[str] = []
    per_epoch = len(real) // batch_size
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # nets this small run fastest on one core, and leave the rest free
    try:
        for step in range(steps):
            epoch, batch = divmod(step, per_epoch)
            epoch += 1  # epochs count from 1, as the notebook's train shows them
            images = real[torch.randint(0, len(real), (batch_size,))]
            z = torch.rand(batch_size, z_size) * 2 - 1
            fakes = G(z)
            d_real, d_fake = D(images), D(fakes.detach())
            d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
            d_optimizer.zero_grad()
            d_loss.backward()
            d_optimizer.step()
            g_out = D(fakes)
            g_loss = bce(g_out, torch.ones_like(g_out))
            g_optimizer.zero_grad()
            g_loss.backward()
            g_optimizer.step()
            if broken == "nan_weight" and step == 50:
                with torch.no_grad():
                    next(G.parameters())[0, 0] = math.nan
            new: list[str] = []
            if step % print_every == 0:
                stats = StepStats(
                    epoch,
                    batch,
                    step,
                    d_loss.item(),
                    g_loss.item(),
                    torch.sigmoid(d_real).mean().item(),
                    torch.sigmoid(d_fake).mean().item(),
                )
                new += doctor.on_log(stats)
            if batch == per_epoch - 1:
                new += doctor.on_epoch(epoch)
            for message in new:
                print(message)
            said += new
    except StopTraining as stop:
        print(stop)
        said.append(str(stop))
    finally:
        torch.set_num_threads(threads)
    if not said:
        print("The doctor found nothing wrong.")
    return said


class _IgnoresZ(nn.Module):
    """G with its noise multiplied by 0: the same image for every z."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z * 0)
