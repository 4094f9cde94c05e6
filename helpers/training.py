"""The plumbing around the learner's D and G steps (notebook step "The training loop").

The notebook's ``train`` keeps only what the learner writes; a ``Session`` does the rest:

    session = helpers.training.Session(globals(), D, G, d_optimizer, g_optimizer, dataloader,
                                       n_epochs, z_size, device, print_every=print_every, ...)
    fixed_z = session.fixed_z
    for epoch in session.epochs():                  # resumes after the last saved epoch
        for real_images in session.batches(epoch):  # on `device`, in [0, 1]; a bar per epoch
            ...                                     # the learner's D step and G step
            session.log(d_loss, g_loss)             # every print_every batches: losses, D(x)...
        session.keep_samples(fixed_z)               # the averaged G's images for fixed_z
    return session.finish()                         # (losses, samples)

    G_ema = helpers.training.averaged(G)            # after train: the averaged G, to sample from

Before training it checks that the optimizers were made with the hyperparameters cell's ``lr``
and betas, then resumes from the checkpoint when it holds this same run (``helpers.checkpoint``).
After each epoch it saves a checkpoint and prints one line.
Every batch, ``log`` also updates an exponential moving average of G's weights (``Average``;
Karras et al. 2018, Yazici et al. 2019): the samples are drawn with it, the checkpoint carries it,
and ``averaged(G)`` gives it after training as a network of its own.
A Ctrl-C stops at the end of the batch that runs and says, in three lines, where it stopped, what
is saved and how to go on. Watchers (``Watcher``; by default the GAN doctor, ``helpers.doctor``)
see every logged step and every epoch's end, and may print advice or stop the run
(``helpers.doctor.StopTraining``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from helpers.checkpoint import describe_run, load_checkpoint, save_checkpoint
from helpers.doctor import Doctor, StepStats, StopTraining
from helpers.monitor import DiscriminatorProbe

__all__ = [
    "EMA_DECAY",
    "Average",
    "OptimizerSettingsError",
    "Session",
    "TrainingInterrupted",
    "Watcher",
    "averaged",
    "check_optimizer_settings",
    "doctor_off",
    "keep_average",
    "saved_epochs",
]


class Watcher(Protocol):
    """Looks at training as it runs (the GAN doctor is one). Made by the caller with
    (D, G, z_size, device); each method returns lines to print (often none), or raises
    StopTraining."""

    def on_log(self, stats: StepStats) -> list[str]:
        """Called on every logged step, right after the G step."""
        ...

    def on_epoch(self, epoch: int) -> list[str]:
        """Called when epoch `epoch` (from 1) has run all its batches, before it is saved."""
        ...


# The GAN doctor watches every run unless a caller turns it off (doctor_off).
_watching = True


@contextlib.contextmanager
def doctor_off() -> Iterator[None]:
    """Train without the GAN doctor while this block runs. The graded test uses it: it judges
    the learner's own steps, which a doctor's stop (on a NaN) would cut short."""
    global _watching
    before, _watching = _watching, False
    try:
        yield
    finally:
        _watching = before


class _ShortMessage:
    """An exception IPython shows as its message alone: the message is the whole story."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


class OptimizerSettingsError(_ShortMessage, RuntimeError):
    """The optimizers were made with other settings than the hyperparameters cell's."""


class TrainingInterrupted(_ShortMessage, KeyboardInterrupt):
    """Ctrl-C stopped training between two batches; the message says what is saved."""


def check_optimizer_settings(
    namespace: Mapping[str, Any],
    d_optimizer: torch.optim.Optimizer,
    g_optimizer: torch.optim.Optimizer,
) -> None:
    """Raise OptimizerSettingsError when the notebook's own optimizers (``d_optimizer`` and
    ``g_optimizer`` in `namespace`) were made with another lr, beta1 or beta2 than the ones the
    hyperparameters cell sets now: the cell was changed and run, the optimizers cell was not.

    Optimizers that are not the notebook's (a graded test's, part 2's) are not checked.
    """
    wanted = {}
    for name in ("lr", "beta1", "beta2"):
        value = namespace.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            wanted[name] = float(value)
    problems = []
    for name, optimizer in (("d_optimizer", d_optimizer), ("g_optimizer", g_optimizer)):
        if namespace.get(name) is not optimizer:
            continue
        for group in optimizer.param_groups:
            betas = group.get("betas")
            now = {"lr": group.get("lr")}
            if isinstance(betas, (tuple, list)) and len(betas) == 2:
                now["beta1"], now["beta2"] = betas
            for key, value in wanted.items():
                got = now.get(key)
                if isinstance(got, (int, float)) and not math.isclose(got, value, rel_tol=1e-9):
                    problems.append(f"{name} has {key} {got:g}, the cell says {key} = {value:g}")
    if problems:
        raise OptimizerSettingsError(
            "The optimizers were made before the hyperparameters cell last changed: "
            + "; ".join(dict.fromkeys(problems))
            + ". Run the optimizers cell (step 10, `d_optimizer = ...`) again, then this cell. "
            "Nothing was trained or saved."
        )


def saved_epochs(path: str | Path) -> int | None:
    """The number of finished epochs in the checkpoint at `path`; None when there is none or it
    cannot be read."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return int(state["epoch"])
    except Exception:  # any unreadable file: the caller says "no checkpoint" instead
        return None


def _silent_bar(iterable: Any, *args: Any, **kwargs: Any) -> Any:
    return iterable


# ---------------------------------------------------------------- the averaged G

# The decay of the average of G's weights. Chosen by a short race on the built-in faces
# (docs/performance.md, "The averaged generator"); a notebook's `ema_decay` overrides it, and
# 0 turns the average off (it is then G itself).
EMA_DECAY = 0.99


def _unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel or torch.compile wrapper."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


class Average:
    """An exponential moving average of a network's weights (Polyak averaging, as in Karras et
    al. 2018 and Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training").

    After each step, ``update`` moves every average toward the network's weight:
    ``avg = d * avg + (1 - d) * w``, with ``d = min(decay, (1 + n) / (10 + n))`` at the n-th
    update, so the first steps (a random network) fade out fast. Batch norm's running mean and
    variance are averaged the same way: they are the statistics of the averaged weights' recent
    past, as the weights are. Integer buffers (batches counted) are copied. decay 0: the average
    is the network itself.
    """

    def __init__(self, model: nn.Module, decay: float = EMA_DECAY) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"The decay of the averaged G must be in [0, 1), not {decay}.")
        self.model, self.decay, self.updates = _unwrap(model), float(decay), 0
        live = self.model.state_dict(keep_vars=True)
        self.weights = {name: t.detach().clone() for name, t in live.items()}
        self._live = list(live.values())
        self._float = [i for i, t in enumerate(self._live) if t.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        """Move the average one step toward the network's weights (after its optimizer step)."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        averages = list(self.weights.values())
        floats = [averages[i] for i in self._float]
        torch._foreach_lerp_(floats, [self._live[i].detach() for i in self._float], 1 - decay)
        for average, live in zip(averages, self._live):
            if not live.is_floating_point():
                average.copy_(live)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The averaged weights in the network itself while the block runs; its own weights are
        restored, bit for bit, afterwards. The network's hooks see the calls (the graded test
        records the sample noise this way)."""
        with torch.no_grad():
            own = [t.detach().clone() for t in self._live]
            for live, average in zip(self._live, self.weights.values()):
                live.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for live, saved in zip(self._live, own):
                    live.copy_(saved)

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps: {"decay", "updates", "weights" (name -> tensor, CPU)}."""
        weights = {name: t.detach().cpu().clone() for name, t in self.weights.items()}
        return {"decay": self.decay, "updates": self.updates, "weights": weights}

    def restore(self, state: Mapping[str, Any]) -> bool:
        """Take up a saved ``state``; False (nothing changed) when it was saved with another decay
        or for another network."""
        weights = state.get("weights", {})
        if float(state.get("decay", -1)) != self.decay or set(weights) != set(self.weights):
            return False
        if any(weights[k].shape != t.shape for k, t in self.weights.items()):
            return False
        with torch.no_grad():
            for name, average in self.weights.items():
                average.copy_(weights[name])
        self.updates = int(state["updates"])
        return True

    def network(self) -> nn.Module:
        """A network of its own with the averaged weights, in eval mode, without gradients: a copy
        of the network without its forward hooks (the kit's probes), for sampling."""
        stashed = []
        for module in self.model.modules():
            stashed.append((module, module._forward_hooks))
            module._forward_hooks = type(module._forward_hooks)()
        try:
            copied = copy.deepcopy(self.model)
        finally:
            for module, hooks in stashed:
                module._forward_hooks = hooks
        copied.load_state_dict(self.weights)
        copied.requires_grad_(False)
        return copied.eval()


# Each trained G's average, for ``averaged`` after train returns.
_averages: weakref.WeakKeyDictionary[nn.Module, Average] = weakref.WeakKeyDictionary()


def averaged(G: nn.Module) -> nn.Module:
    """The averaged G the last ``train`` of `G` kept (``Average``): a network of its own, in eval
    mode, on G's device, that maps z (N, z_size) to images (N, 3, H, W) in [-1, 1] as G does.
    Raises LookupError when `G` was not trained in this session."""
    average = _averages.get(_unwrap(G))
    if average is None:
        raise LookupError(
            "This G was not trained by train in this session, so it has no averaged weights. "
            "Run the training cell first (it resumes from its checkpoint)."
        )
    return average.network()


# The optimizer hook that updates each G's average kept by ``keep_average``.
_hooks: weakref.WeakKeyDictionary[nn.Module, Any] = weakref.WeakKeyDictionary()


def keep_average(
    G: nn.Module, g_optimizer: torch.optim.Optimizer, decay: float = EMA_DECAY
) -> Average:
    """Start an average of G's weights (``Average``) for a training loop without a ``Session``
    (part 2's ``train_wgan``): every ``g_optimizer.step()`` updates it, and ``averaged(G)`` gives
    it afterwards. Call it again for the same G and the average starts afresh from G's weights."""
    model = _unwrap(G)
    previous = _hooks.pop(model, None)
    if previous is not None:
        previous.remove()
    average = Average(model, decay)
    _hooks[model] = g_optimizer.register_step_post_hook(lambda *_: average.update())
    _averages[model] = average
    return average


class Session:
    """One run of the notebook's ``train``: everything but the learner's D and G steps.

    namespace: the notebook's ``globals()``: what the run is trained with is read from it
    (``describe_run``), the hyperparameters cell's lr and betas, its ``ema_decay`` (default
    EMA_DECAY), and its ``tqdm``, ``save_checkpoint`` and ``load_checkpoint`` when it has them.
    watchers: what looks at the run as it goes (default: the GAN doctor, ``helpers.doctor``). The
    other arguments are ``train``'s own. Raises OptimizerSettingsError or
    ``helpers.checkpoint.CheckpointError`` before any training.
    """

    def __init__(
        self,
        namespace: Mapping[str, Any],
        D: nn.Module,
        G: nn.Module,
        d_optimizer: torch.optim.Optimizer,
        g_optimizer: torch.optim.Optimizer,
        dataloader: Any,
        n_epochs: int,
        z_size: int,
        device: torch.device | str,
        *,
        print_every: int = 50,
        checkpoint_path: str | Path | None = None,
        sample_size: int = 16,
        fresh: bool = False,
        watchers: list[Watcher] | None = None,
    ) -> None:
        check_optimizer_settings(namespace, d_optimizer, g_optimizer)
        self.D, self.G = D, G
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        self.dataloader, self.n_epochs, self.device = dataloader, n_epochs, device
        self.print_every, self.checkpoint_path = print_every, checkpoint_path
        if watchers is None:
            watchers = [Doctor(D, G, z_size, device)] if _watching else []
        self.watchers = list(watchers)
        # The notebook's own tqdm, save_checkpoint and load_checkpoint when it has them: the
        # graded test swaps tqdm for a silent one, helpers.scale.distributed all three for DDP.
        self._tqdm = namespace.get("tqdm") or _default_tqdm()
        self._save = namespace.get("save_checkpoint") or save_checkpoint
        load = namespace.get("load_checkpoint") or load_checkpoint
        # What this run is trained with (the settings and the learner's code): a checkpoint
        # made with anything else is set aside, not resumed.
        self.run = describe_run(namespace, D, G, d_optimizer, g_optimizer, dataloader, z_size)
        resumed = load(
            checkpoint_path, D, G, d_optimizer, g_optimizer, device, run=self.run, fresh=fresh
        )
        self.losses: list[tuple[float, ...]] = []
        self.samples: list[torch.Tensor] = []
        self.start_epoch = 0
        if resumed is None:
            # The same noise every epoch, so the samples show how G improves.
            self.fixed_z = torch.rand(sample_size, z_size, device=device) * 2 - 1
        else:
            self.start_epoch = resumed["epoch"]
            self.losses, self.samples = resumed["losses"], resumed["samples"]
            self.fixed_z = resumed["fixed_z"]
            print(
                f"Resuming from {checkpoint_path}: {self.start_epoch} of {n_epochs} epochs "
                f"already done (train(..., fresh=True) starts afresh)."
            )
        self.saved = self.start_epoch  # epochs in the checkpoint on disk
        decay = namespace.get("ema_decay", EMA_DECAY)
        self.average = Average(G, decay if isinstance(decay, (int, float)) else EMA_DECAY)
        saved_average = (resumed or {}).get("ema")
        if saved_average is not None and not self.average.restore(saved_average):
            print(
                f"The averaged G in {checkpoint_path} was kept with decay "
                f"{saved_average.get('decay')}; with decay {self.average.decay} it starts again "
                f"from G's weights."
            )
        _averages[self.average.model] = self.average
        # D(x) and D(G(z)): the mean probabilities D gives the real and the fake images
        self.probe = DiscriminatorProbe(D, G, d_optimizer, g_optimizer)
        self.epoch = self.start_epoch  # the epoch running, from 1 (0 before the first)
        self.batch = -1  # the batch running in it, from 0
        self.stopped = False
        self._per_epoch: int | None = None  # batches per epoch, when the loader has a length
        with contextlib.suppress(TypeError):
            self._per_epoch = len(dataloader)
        self.step = self.start_epoch * (self._per_epoch or 0) - 1  # the batch running, run-wide
        self._last: tuple[float, float] | None = None  # the last logged (d_loss, g_loss)
        self._bar: Any = None
        self._started = time.perf_counter()
        # Ctrl-C: only while the loop over epochs() runs; see _on_sigint
        self._caller: tuple[int, Any] | None = None
        self._interrupted = False
        self._previous_handler: Any = None

    # ---------------------------------------------------------------- the loops

    def epochs(self) -> Iterator[int]:
        """The epochs still to train, from 1; after each, a checkpoint and one line."""
        loop = sys._getframe(1)  # the frame running the loop over epochs (train's, in the notebook)
        self._caller = (id(loop), loop.f_code)
        self._catch_ctrl_c()
        try:
            for epoch in range(self.start_epoch + 1, self.n_epochs + 1):
                self.epoch, self.batch = epoch, -1
                self.D.train()
                self.G.train()
                epoch_started = time.perf_counter()
                yield epoch
                if self.stopped:
                    return
                if self._tell("on_epoch", epoch):
                    return
                self._end_epoch(epoch, time.perf_counter() - epoch_started)
        finally:
            self._release_ctrl_c()

    def batches(self, epoch: int) -> Iterator[torch.Tensor]:
        """The real images of `epoch` (the one ``epochs`` gave), (B, 3, H, W) in [0, 1] on the
        device, under a progress bar."""
        self.epoch = epoch
        with _closing(
            self._tqdm(
                self.dataloader,
                desc=f"Epoch {self.epoch}/{self.n_epochs}",
                unit="batch",
                leave=epoch == self.n_epochs,  # one bar stays: the last epoch's, full
            )
        ) as bar:
            self._bar = bar
            for batch_i, (real_images, _) in enumerate(bar):
                if self._interrupted:
                    self._stop_for_ctrl_c(bar)
                self.batch = batch_i
                self.step += 1
                self.probe.active = batch_i % self.print_every == 0  # measured on logging steps
                yield real_images.to(self.device)
                if self.stopped:
                    return
            if self._interrupted:
                self._stop_for_ctrl_c(bar)
        self._bar = None

    def log(self, d_loss: torch.Tensor | float, g_loss: torch.Tensor | float) -> None:
        """Keep this batch's losses, D(x) and D(G(z)) on every print_every-th batch; then let the
        watchers look. Call it once per batch, after the G step: it also updates the averaged G
        (``Average``)."""
        self.average.update()
        if self.batch % self.print_every != 0:
            return
        # .item() waits for the GPU, so only on logging steps
        d, g = (v.item() if isinstance(v, torch.Tensor) else float(v) for v in (d_loss, g_loss))
        d_x, d_g_z = self.probe.means()
        self.losses.append((d, g, d_x, d_g_z))
        self._last = (d, g)
        stats = StepStats(
            epoch=self.epoch,
            batch=self.batch,
            step=self.step,
            d_loss=d,
            g_loss=g,
            d_x=d_x,
            d_g_z=d_g_z,
        )
        self._tell("on_log", stats)

    def finish(self) -> tuple[list[tuple[float, ...]], list[torch.Tensor]]:
        """Remove the probe and return (losses, samples), train's result."""
        self.probe.close()
        self._release_ctrl_c()
        return self.losses, self.samples

    # ---------------------------------------------------------------- after each epoch

    def keep_samples(self, fixed_z: torch.Tensor) -> None:
        """Keep the averaged G's images for `fixed_z` (sample_size, z_size), made in eval mode
        (batch norm's running averages) without gradients, on the CPU: one entry of ``samples``
        per epoch. Nothing after a watcher stopped the run."""
        if self.stopped:
            return
        self.G.eval()
        with torch.no_grad(), self.average.swapped_in():
            self.samples.append(self.G(fixed_z).cpu())
        self.G.train()

    def _end_epoch(self, epoch, seconds):
        self._save(
            self.checkpoint_path,
            epoch=epoch,
            D=self.D,
            G=self.G,
            d_optimizer=self.d_optimizer,
            g_optimizer=self.g_optimizer,
            fixed_z=self.fixed_z,
            losses=self.losses,
            samples=self.samples,
            run=self.run,
            ema=self.average.state(),
        )
        if self.checkpoint_path is not None:
            self.saved = epoch
        words = [f"Epoch {epoch:3d}/{self.n_epochs}"]
        if self._last is not None:
            d, g = self._last
            d_x, d_g_z = self.losses[-1][2:4]  # at the epoch's last logging step
            words += [f"d_loss {d:6.4f}", f"g_loss {g:6.4f}", f"D(x) {d_x:4.2f}"]
            words.append(f"D(G(z)) {d_g_z:4.2f}")
        left = self.n_epochs - epoch
        words.append(
            f"{_clock(seconds)}" + (f", about {_clock(left * seconds)} left" if left else "")
        )
        print(" | ".join(words), flush=True)

    # ---------------------------------------------------------------- watchers

    def _tell(self, method, argument):
        """Call `method` of every watcher; print what they say. True when one stopped the run."""
        for watcher in self.watchers:
            try:
                lines = getattr(watcher, method)(argument) or []
            except StopTraining as stop:
                self._write(str(stop))
                self._write(self._saved_line())
                self.stopped = True
                return True
            for line in lines:
                self._write(line)
        return False

    def _write(self, line):
        """Print above the progress bar, which stays where it is."""
        write = getattr(self._bar, "write", None) or getattr(self._tqdm, "write", None)
        if write is not None and self._bar is not None:
            write(line)
        else:
            print(line, flush=True)

    def _saved_line(self):
        if self.checkpoint_path is None:
            return "Nothing is saved (train was given no checkpoint_path)."
        if self.saved == 0:
            return (
                f"Nothing is saved yet: no epoch finished, so there is no {self.checkpoint_path}."
            )
        return (
            f"Saved: {self.checkpoint_path}, after epoch {self.saved} of {self.n_epochs}; "
            f"what epoch {self.epoch} had trained is not saved."
        )

    # ---------------------------------------------------------------- Ctrl-C

    def _catch_ctrl_c(self):
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can be set from the main thread only
        self._previous_handler = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._on_sigint)

    def _release_ctrl_c(self):
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

    def _on_sigint(self, signum, frame):
        """Ctrl-C while train runs: stop after this batch, so what the message says is so. A
        second Ctrl-C, or one after train ended (with an error: its loop never closed), stops
        at once, as Python would."""
        training = False
        while frame is not None and self._caller is not None:
            if id(frame) == self._caller[0] and frame.f_code is self._caller[1]:
                training = True
                break
            frame = frame.f_back
        if self._interrupted or not training:
            self._release_ctrl_c()
            raise KeyboardInterrupt
        self._interrupted = True

    def _stop_for_ctrl_c(self, bar):
        getattr(bar, "close", lambda: None)()
        self._release_ctrl_c()
        self.probe.close()
        where = f"Stopped by Ctrl-C in epoch {self.epoch}/{self.n_epochs}"
        if self.batch >= 0:
            where += f", after batch {self.batch + 1}"
            if self._per_epoch is not None:
                where += f" of {self._per_epoch}"
        if self.checkpoint_path is None:
            again = "Without a checkpoint_path nothing resumes: run the cell again to train anew."
        elif self.saved:
            again = (
                f"To go on, run the training cell again: it resumes from epoch {self.saved + 1}."
            )
        else:
            again = "To go on, run the training cell again: it starts from epoch 1."
        raise TrainingInterrupted(f"{where}.\n{self._saved_line()}\n{again}")


def _default_tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency; without it, no bar
        return _silent_bar
    return tqdm


def _clock(seconds):
    seconds = max(0, int(seconds + 0.5))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _closing(bar):
    """`bar`, closed at the end when it can be (the graded test's silent bar is a plain
    iterable)."""
    return contextlib.closing(bar) if hasattr(bar, "close") else contextlib.nullcontext(bar)
