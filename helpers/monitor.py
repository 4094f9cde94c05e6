"""D(x) and D(G(z)) during training (notebook steps "The training loop" and "Training losses").

    probe = DiscriminatorProbe(D, G, d_optimizer, g_optimizer)
    ...                                   # each batch: probe.active = (a logging step?)
    d_x, d_g_z = probe.means()            # on logging steps, next to d_loss.item()

``helpers.training.Session`` does this around the notebook's ``train``.

D(x) is the mean probability D gives the real images of its step, D(G(z)) the mean it gives
the fakes; healthy training moves both toward 0.5, while "D wins" reads D(x) near 1 and D(G(z))
near 0. The probe watches the learner's own ``train`` without changing it: a forward hook on G
keeps its latest outputs, a forward hook on D counts a call as fake when its input shares
memory with one of them (``.detach()`` shares memory) and as real otherwise, and an optimizer
hook keeps the values of the calls before ``d_optimizer.step()``, the D step. Nothing is
measured while ``active`` is False, and nothing waits for the GPU until ``means()``.
A batch of real and fake images joined into one D call (``torch.cat``) counts as real.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

__all__ = ["DiscriminatorProbe"]

# The G outputs kept to recognise fakes: the D step and the G step may each make their own.
_G_OUTPUTS_KEPT = 2
# One probe per discriminator: a new one removes the hooks that an interrupted run left behind.
_probes: weakref.WeakKeyDictionary[nn.Module, DiscriminatorProbe] = weakref.WeakKeyDictionary()


def _storage(t):
    return t.untyped_storage().data_ptr()


class DiscriminatorProbe:
    """Measures D(x) and D(G(z)) in the D step of a training batch, without changing training."""

    def __init__(
        self,
        D: nn.Module,
        G: nn.Module,
        d_optimizer: torch.optim.Optimizer,
        g_optimizer: torch.optim.Optimizer,
    ) -> None:
        old = _probes.get(D)
        if old is not None:
            old.close()
        _probes[D] = self
        self.active = True
        # Holding the outputs keeps their memory from being reused by the next real batch,
        # which would then be taken for fakes.
        self._g_outputs: list[torch.Tensor] = []
        self._sums: dict[str, torch.Tensor | None] = {"real": None, "fake": None}
        self._counts = {"real": 0, "fake": 0}
        # (D(x), D(G(z))) of the last D step, as tensors
        self._last: tuple[torch.Tensor | None, torch.Tensor | None] | None = None
        self._handles = [
            G.register_forward_hook(self._on_g),
            D.register_forward_hook(self._on_d),
            d_optimizer.register_step_pre_hook(self._on_d_step),
            g_optimizer.register_step_pre_hook(self._on_g_step),
        ]

    def _on_g(self, module, inputs, output):
        if self.active and isinstance(output, torch.Tensor):
            self._g_outputs = [*self._g_outputs, output.detach()][-_G_OUTPUTS_KEPT:]

    def _on_d(self, module, inputs, output):
        if not self.active or not inputs or not isinstance(inputs[0], torch.Tensor):
            return
        fakes = {_storage(t) for t in self._g_outputs}
        kind = "fake" if _storage(inputs[0]) in fakes else "real"
        with torch.no_grad():
            total = torch.sigmoid(output.detach().float()).sum()
        previous = self._sums[kind]
        self._sums[kind] = total if previous is None else previous + total
        self._counts[kind] += output.numel()

    def _mean(self, kind: str) -> torch.Tensor | None:
        total = self._sums[kind]
        if self._counts[kind] == 0 or total is None:
            return None
        return total / self._counts[kind]

    def _reset(self):
        self._sums = {"real": None, "fake": None}
        self._counts = {"real": 0, "fake": 0}

    def _on_d_step(self, optimizer, args, kwargs):
        if self.active:
            self._last = (self._mean("real"), self._mean("fake"))
        self._reset()

    def _on_g_step(self, optimizer, args, kwargs):
        self._reset()  # D's calls in the G step score fakes for G's loss, not D's step

    def means(self) -> tuple[float, ...]:
        """(D(x), D(G(z))) of the last D step, as floats in [0, 1] (nan when not measured).

        Waits for the GPU once; call it on logging steps only.
        """
        last = self._last or (None, None)
        measured = [v for v in last if v is not None]
        if not measured:
            return (float("nan"), float("nan"))
        nan = torch.full((), float("nan"), device=measured[0].device)
        values = torch.stack([nan if v is None else v.float() for v in last])
        self._last = None
        return tuple(values.tolist())  # one wait for the GPU for both

    def close(self) -> None:
        """Remove the hooks and let go of the kept outputs."""
        for handle in self._handles:
            handle.remove()
        self._handles, self._g_outputs = [], []
        self._reset()
