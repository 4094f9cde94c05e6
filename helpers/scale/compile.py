"""``torch.compile`` of D's and G's forward, opt-in and CUDA only: serves the notebook's "Train"
step, ``python -m helpers distributed --compile MODE`` and ``benchmarks.throughput --variants``.
Its GPU path is not yet measured on a GPU (docs/performance.md will hold the numbers when it is).

    D, G = compile_models(device, D, G, mode="reduce-overhead")   # prepare_models, then compile

"default" fuses batch norm and activations into fewer kernels; "reduce-overhead" also replays
them as CUDA graphs, one launch instead of dozens, which is what a step this small needs (its
time goes to launching kernels, not to computing); "max-autotune" also times many kernel
variants first (minutes). Compiling costs seconds to minutes at the first steps, so it is off by
default and pays off on long runs only. Off CUDA it is refused with a message.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

from helpers.gpu import autocast_forward, on_cuda, prepare_models

__all__ = ["COMPILE_MODES", "check_compile_mode", "compile_models"]

# torch.compile modes, "off" first (the default). The last two also capture CUDA graphs.
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
_CUDA_GRAPH_MODES = {"reduce-overhead", "max-autotune"}


def check_compile_mode(mode: str | None) -> str:
    """``mode`` if it is one of ``COMPILE_MODES`` (None counts as "off"); else a ValueError."""
    if mode is None:
        return "off"
    if mode not in COMPILE_MODES:
        raise ValueError(
            f"compile={mode!r} is not a torch.compile mode the kit offers; use one of "
            f"{', '.join(repr(m) for m in COMPILE_MODES)}."
        )
    return mode


def _has_autocast_forward(model: nn.Module) -> bool:
    forward = model.__dict__.get("forward")
    return isinstance(forward, types.MethodType) and forward.__func__ is autocast_forward


def _forward_body(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """What torch.compile compiles: the class's forward, under bf16 autocast when asked."""
    if module._kit_bf16:
        return autocast_forward(module, *args, **kwargs)
    return type(module).forward(module, *args, **kwargs)


_compiled: dict[tuple[str, str], Any] = {}  # (mode, backend) -> the compiled _forward_body


def _compiled_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """The instance forward of a compiled model (see ``_compile_forward``)."""
    mode, backend = vars(self)["_kit_compile"]
    key = (mode, backend)
    if key not in _compiled:
        # torch.compile keeps (and caps, at 8) its compiled graphs per code object: a copy of
        # _forward_body's code per mode keeps one mode's graphs from using up another's room.
        name = f"_forward_body_{mode}_{backend}".replace("-", "_")
        code = _forward_body.__code__.replace(co_name=name)
        body = types.FunctionType(code, _forward_body.__globals__, name)
        options = {"mode": mode} if backend == "inductor" else {}
        _compiled[key] = torch.compile(body, backend=backend, **options)
    out = _compiled[key](self, *args, **kwargs)
    if mode in _CUDA_GRAPH_MODES and isinstance(out, torch.Tensor):
        # A CUDA graph writes each replay's output into the same memory: a copy keeps what
        # train and the D(x) probe hold on to from being overwritten by the next step.
        out = out.clone()
    return out


def _compile_forward(model: nn.Module, mode: str, backend: str = "inductor") -> None:
    """Route ``model``'s forward through torch.compile (``backend`` other than inductor: tests).

    Only forward is compiled, not the module call: forward hooks (the D(x) probe) run as
    before, and ``state_dict``, ``repr`` and the checkpoint fingerprint are unchanged. Like the
    autocast wrapper, a bound method on the instance: ``copy.deepcopy`` rebinds it to the copy.
    """
    # In the instance's __dict__, where nn.Module's own setattr puts a plain value (and where
    # copy.deepcopy copies it from); vars() keeps the type checker from expecting a Tensor.
    vars(model)["_kit_bf16"] = _has_autocast_forward(model)
    vars(model)["_kit_compile"] = (mode, backend)
    model.forward = types.MethodType(_compiled_forward, model)


def compile_models(
    device: torch.device | str,
    *models: nn.Module,
    mode: str | None,
    mixed_precision: bool = True,
) -> tuple[nn.Module, ...]:
    """``helpers.gpu.prepare_models``, then each forward compiled by ``torch.compile``.

    ``mode`` is one of ``COMPILE_MODES``; "off" (or None) is ``prepare_models`` alone, on any
    device. Any other mode is refused unless ``device`` is a CUDA GPU, before a model moves. A
    model compiled already keeps its mode. Returns the models as a tuple.
    """
    mode = check_compile_mode(mode)
    device = torch.device(device)
    if mode != "off" and not on_cuda(device):
        raise ValueError(
            f"compile={mode!r} is a speed-up for CUDA GPUs, and the models go to {device}"
            f"{'' if device.type != 'cuda' else ' (PyTorch sees no CUDA GPU here)'}. "
            f"Leave compile out (it is off by default) when training on a {device.type}."
        )
    models = prepare_models(device, *models, mixed_precision=mixed_precision)
    if mode != "off":
        for model in models:
            if "_kit_compile" not in model.__dict__:
                _compile_forward(model, mode)
    return models
