"""GPU speed-ups that leave the learner's code as it is (notebook steps "Train on a GPU
when there is one" and "Train").

    D, G = helpers.gpu.prepare_models(device, D, G)

On CUDA this turns on three things; on the CPU and on Apple GPUs (MPS) it changes nothing, so
a CPU run gives exactly the numbers it gave before:

* **channels_last** weights: cuDNN's fastest convolution kernels (tensor cores) read images
  stored as (B, H, W, C); batches from ``FastLoader(..., channels_last=True)`` match.
* **bf16 autocast** inside each model's ``forward`` (when the GPU supports bfloat16): convolutions
  and linear layers run in bfloat16, which has float32's range, so GAN losses need no gradient
  scaling. The models' outputs are cast back to float32, so the losses, the samples the
  notebook plots and the checkpoints stay float32.
* ``torch.backends.cudnn.benchmark = True``: cuDNN times its algorithms once for the fixed
  32x32 shapes and keeps the fastest.

Nothing to do for the optimizers: on CUDA ``torch.optim.Adam`` already uses its ``foreach``
implementation (a few fused kernels for all parameters instead of several per tensor), and the
notebook's ``train`` reads ``.item()`` (a host-device sync) only on logging steps.
"""

from __future__ import annotations

import contextlib
import types

import torch


def bf16_supported(device):
    """True when ``device`` is a CUDA GPU that computes in bfloat16 (Ampere or newer)."""
    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def autocast(device):
    """Context manager: bfloat16 autocast on a CUDA GPU that supports it, else a no-op.

    Serves the notebook's "Train" step. The CPU stays float32 (CPU autocast is slower for
    these small convolutions and would change the CPU numbers), and so does MPS.
    """
    if bf16_supported(device):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _autocast_forward(self, *args, **kwargs):
    """A model's own forward under bf16 autocast, with float outputs cast back to float32."""
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        out = type(self).forward(self, *args, **kwargs)
    if isinstance(out, torch.Tensor) and out.is_floating_point():
        return out.float()
    return out


def _has_autocast_forward(model):
    forward = model.__dict__.get("forward")
    return isinstance(forward, types.MethodType) and forward.__func__ is _autocast_forward


def prepare_models(device, *models, mixed_precision=True):
    """Make models train faster on CUDA without changing their code; returns them as a tuple.

    Serves the notebook's "Train on a GPU when there is one" step:
    ``D, G = prepare_models(device, D, G)``.
    Each model is moved to ``device``. On CUDA: weights in ``torch.channels_last``, each
    ``forward`` run under bf16 autocast with float32 outputs (``mixed_precision``, where the GPU
    supports bfloat16), and ``cudnn.benchmark`` on. Elsewhere the models are returned as they
    are (moved to ``device``): the same outputs, bit for bit.
    """
    device = torch.device(device)
    models = tuple(m.to(device) for m in models)
    if device.type != "cuda":
        return models
    torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels once
    for model in models:
        model.to(memory_format=torch.channels_last)
        if mixed_precision and bf16_supported(device) and not _has_autocast_forward(model):
            # A bound method on the instance shadows the class's forward: state_dict, printing
            # and copy.deepcopy (which rebinds it to the copy) are unaffected, and
            # `del model.forward` undoes it.
            model.forward = types.MethodType(_autocast_forward, model)
    return models
