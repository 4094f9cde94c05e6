"""GPU speed-ups that leave the learner's code as it is (notebook steps "Train on a GPU
when there is one" and "Train").

    D, G = helpers.gpu.prepare_models(device, D, G)                   # what the notebook does

On CUDA ``prepare_models`` turns on three things; on the CPU and on Apple GPUs (MPS) it changes
nothing, so a CPU run gives exactly the numbers it gave before:

* **channels_last** weights: cuDNN's fastest convolution kernels (tensor cores) read images
  stored as (B, H, W, C); batches from ``FastLoader(..., channels_last=True)`` match.
* **bf16 autocast** inside each model's ``forward`` (when the GPU supports bfloat16): convolutions
  and linear layers run in bfloat16, which has float32's range, so GAN losses need no gradient
  scaling. The models' outputs are cast back to float32, so the losses, the samples the
  notebook plots and the checkpoints stay float32.
* ``torch.backends.cudnn.benchmark = True``: cuDNN times its algorithms once for the fixed
  32x32 shapes and keeps the fastest.

This path is measured on an H100 (docs/performance.md). The opt-in extras, not yet measured on
a GPU, are in ``helpers/scale/``: ``torch.compile`` of the forwards
(``helpers.scale.compile.compile_models``) and fused Adam
(``helpers.scale.fused_adam.prepare_optimizers``).

The notebook's ``train`` reads the GPU (``.item()``, a host-device sync) only on logging steps
and at the end of an epoch; ``tests/test_gpu.py`` checks that on a GPU.
"""

from __future__ import annotations

import contextlib
import types
from typing import Any

import torch
from torch import nn

__all__ = ["autocast", "autocast_forward", "bf16_supported", "on_cuda", "prepare_models"]


def bf16_supported(device: torch.device | str) -> bool:
    """True when ``device`` is a CUDA GPU that computes in bfloat16 (Ampere or newer)."""
    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def on_cuda(device: torch.device | str) -> bool:
    """True when ``device`` is a CUDA device and PyTorch sees a CUDA GPU: the GPU path's check."""
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def autocast(device: torch.device | str) -> contextlib.AbstractContextManager[Any]:
    """Context manager: bfloat16 autocast on a CUDA GPU that supports it, else a no-op.

    Serves the notebook's "Train" step. The CPU stays float32 (CPU autocast is slower for
    these small convolutions and would change the CPU numbers), and so does MPS.
    """
    if bf16_supported(device):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def autocast_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """A model's own forward under bf16 autocast on its weights' device (CUDA here, the CPU in
    ``benchmarks.quality.cpu_levers``), with float outputs cast back to float32."""
    weight = next(self.parameters(), None)
    device_type = "cpu" if weight is None else weight.device.type
    with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
        out = type(self).forward(self, *args, **kwargs)
    if isinstance(out, torch.Tensor) and out.is_floating_point():
        return out.float()
    return out


def prepare_models(
    device: torch.device | str, *models: nn.Module, mixed_precision: bool = True
) -> tuple[nn.Module, ...]:
    """Make models train faster on CUDA without changing their code; returns them as a tuple.

    Serves the notebook's "Train on a GPU when there is one" step:
    ``D, G = prepare_models(device, D, G)``.
    Each model is moved to ``device``. On CUDA: weights in ``torch.channels_last``, each
    ``forward`` run under bf16 autocast with float32 outputs (``mixed_precision``, where the GPU
    supports bfloat16) and ``cudnn.benchmark`` on. Elsewhere the models are returned as they
    are (moved to ``device``): the same outputs, bit for bit.
    """
    device = torch.device(device)
    models = tuple(m.to(device) for m in models)
    if device.type != "cuda":
        return models
    torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels once
    for model in models:
        model.to(memory_format=torch.channels_last)
        # An instance forward is one of ours already: this autocast, or helpers.scale.compile's
        # compiled forward (which runs this autocast inside). Wrapping it again would replace it.
        wrapped = "forward" in model.__dict__
        if mixed_precision and bf16_supported(device) and not wrapped:
            # A bound method on the instance shadows the class's forward: state_dict, printing
            # and copy.deepcopy (which rebinds it to the copy) are unaffected, and
            # `del model.forward` undoes it.
            model.forward = types.MethodType(autocast_forward, model)
    return models
