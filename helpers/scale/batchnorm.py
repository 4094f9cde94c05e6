"""Batch norm over the global batch of all processes, for ``python -m helpers distributed
--sync-bn`` (the notebook's "Train" step on several processes, GPUs or machines).
Its GPU path is not yet measured on a GPU (docs/performance.md will hold the numbers when it is).

On GPUs it is PyTorch's ``nn.SyncBatchNorm``; PyTorch's own accepts GPU inputs only, so CPU
processes (gloo) get ``CPUSyncBatchNorm``, the same statistics with one all-reduce per layer.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["CPUSyncBatchNorm", "sync_batchnorm"]


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks, differentiable: the gradient of a sum over ranks is the summed gradient."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """``nn.SyncBatchNorm`` for CPU processes (PyTorch's own accepts GPU inputs only).

    In training, the mean and variance are those of the global batch: per-rank sums of x and
    x**2 (in float64) are summed over ranks with one all-reduce, in the forward and in the
    backward pass. Eval mode, and a single process, is plain batch norm. Same parameters,
    buffers and state_dict keys as ``nn.BatchNorm2d``.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        channels = x.shape[1]
        x64 = x.double()
        count = x64.new_tensor([x.numel() // channels])
        total = _AllReduceSum.apply(torch.cat([x64.sum(dims), (x64 * x64).sum(dims), count]))
        n = total[-1]
        mean = total[:channels] / n
        var = total[channels:-1] / n - mean * mean  # biased, as batch norm normalises with
        y = (x - mean.to(x.dtype).view(shape)) * torch.rsqrt(var + self.eps).to(x.dtype).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            # the buffers track_running_stats registers (typed Optional in _BatchNorm)
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                unbiased = var * n / (n - 1)  # running_var is unbiased, as in nn.BatchNorm2d
                self.running_mean.mul_(1 - factor).add_(mean.to(x.dtype), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased.to(x.dtype), alpha=factor)
        return y


def _cpu_sync_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with every batch norm layer replaced by CPUSyncBatchNorm sharing its tensors."""
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, (CPUSyncBatchNorm, nn.SyncBatchNorm)
    ):
        out = CPUSyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        if module.affine:  # the same Parameter objects: the optimizers keep working
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _cpu_sync_batchnorm(child))
    return out


def sync_batchnorm(module: nn.Module, device: torch.device | str) -> nn.Module:
    """`module` with batch norm over all ranks (``nn.SyncBatchNorm``; CPUSyncBatchNorm on CPU).

    The parameters stay the same objects (optimizers built on them still work) and the
    state_dict keys stay those of BatchNorm, so checkpoints load either way.
    """
    if torch.device(device).type == "cpu":
        return _cpu_sync_batchnorm(module)
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)
