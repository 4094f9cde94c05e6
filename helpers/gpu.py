"""GPU speed-ups that leave the learner's code as it is (notebook steps "Train on a GPU
when there is one" and "Train").

    D, G = helpers.gpu.prepare_models(device, D, G)                   # what the notebook does
    D, G = helpers.gpu.prepare_models(device, D, G, compile="reduce-overhead")   # opt-in
    helpers.gpu.prepare_optimizers(device, d_optimizer, g_optimizer)  # fused Adam, opt-in

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

Two more are opt-in, CUDA only, and asking for them elsewhere is refused with a message:

* ``compile=MODE`` (``COMPILE_MODES``): each model's forward (and so its backward) goes through
  ``torch.compile``. "default" fuses batch norm and activations into fewer kernels;
  "reduce-overhead" also replays them as CUDA graphs, one launch instead of dozens, which is
  what a step this small needs (its time goes to launching kernels, not to computing);
  "max-autotune" also times many kernel variants first (minutes). Compiling costs seconds to
  minutes at the first steps, so it is off by default and pays off on long runs only.
* fused Adam (``prepare_optimizers``): one kernel updates all of a network's parameters, instead
  of the several ``foreach`` kernels PyTorch's Adam uses on CUDA by default. The same maths,
  hyperparameters and state; checkpoints are saved as a plain Adam's, so they resume anywhere.

The notebook's ``train`` reads the GPU (``.item()``, a host-device sync) only on logging steps
and at the end of an epoch; ``tests/test_gpu.py`` checks that on a GPU.
"""

from __future__ import annotations

import contextlib
import types

import torch

# torch.compile modes, "off" first (the default). The last two also capture CUDA graphs.
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
_CUDA_GRAPH_MODES = {"reduce-overhead", "max-autotune"}


def bf16_supported(device):
    """True when ``device`` is a CUDA GPU that computes in bfloat16 (Ampere or newer)."""
    device = torch.device(device)
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def on_cuda(device):
    """True when ``device`` is a CUDA device and PyTorch sees a CUDA GPU: the GPU path's check."""
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def autocast(device):
    """Context manager: bfloat16 autocast on a CUDA GPU that supports it, else a no-op.

    Serves the notebook's "Train" step. The CPU stays float32 (CPU autocast is slower for
    these small convolutions and would change the CPU numbers), and so does MPS.
    """
    if bf16_supported(device):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_compile_mode(mode):
    """``mode`` if it is one of ``COMPILE_MODES`` (None counts as "off"); else a ValueError."""
    if mode is None:
        return "off"
    if mode not in COMPILE_MODES:
        raise ValueError(
            f"compile={mode!r} is not a torch.compile mode the kit offers; use one of "
            f"{', '.join(repr(m) for m in COMPILE_MODES)}."
        )
    return mode


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


def _forward_body(module, *args, **kwargs):
    """What torch.compile compiles: the class's forward, under bf16 autocast when asked."""
    if module._kit_bf16:
        return _autocast_forward(module, *args, **kwargs)
    return type(module).forward(module, *args, **kwargs)


_compiled = {}  # (mode, backend) -> the compiled _forward_body, shared by all models


def _compiled_forward(self, *args, **kwargs):
    """The instance forward of a compiled model (see ``_compile_forward``)."""
    mode, backend = self._kit_compile
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


def _compile_forward(model, mode, backend="inductor"):
    """Route ``model``'s forward through torch.compile (``backend`` other than inductor: tests).

    Only forward is compiled, not the module call: forward hooks (the D(x) probe) run as
    before, and ``state_dict``, ``repr`` and the checkpoint fingerprint are unchanged. Like the
    autocast wrapper, a bound method on the instance: ``copy.deepcopy`` rebinds it to the copy.
    """
    model._kit_bf16 = _has_autocast_forward(model)
    model._kit_compile = (mode, backend)
    model.forward = types.MethodType(_compiled_forward, model)


def prepare_models(device, *models, mixed_precision=True, compile="off"):
    """Make models train faster on CUDA without changing their code; returns them as a tuple.

    Serves the notebook's "Train on a GPU when there is one" step:
    ``D, G = prepare_models(device, D, G)``.
    Each model is moved to ``device``. On CUDA: weights in ``torch.channels_last``, each
    ``forward`` run under bf16 autocast with float32 outputs (``mixed_precision``, where the GPU
    supports bfloat16), ``cudnn.benchmark`` on, and with ``compile`` (one of ``COMPILE_MODES``)
    the forward compiled by ``torch.compile``. Elsewhere the models are returned as they are
    (moved to ``device``): the same outputs, bit for bit; a ``compile`` mode is refused there.
    """
    mode = check_compile_mode(compile)
    device = torch.device(device)
    if mode != "off" and not on_cuda(device):
        raise ValueError(
            f"compile={mode!r} is a speed-up for CUDA GPUs, and the models go to {device}"
            f"{'' if device.type != 'cuda' else ' (PyTorch sees no CUDA GPU here)'}. "
            f"Leave compile out (it is off by default) when training on a {device.type}."
        )
    models = tuple(m.to(device) for m in models)
    if device.type != "cuda":
        return models
    torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels once
    for model in models:
        model.to(memory_format=torch.channels_last)
        compiled = "_kit_compile" in model.__dict__
        wrapped = compiled or _has_autocast_forward(model)
        if mixed_precision and bf16_supported(device) and not wrapped:
            # A bound method on the instance shadows the class's forward: state_dict, printing
            # and copy.deepcopy (which rebinds it to the copy) are unaffected, and
            # `del model.forward` undoes it.
            model.forward = types.MethodType(_autocast_forward, model)
        if mode != "off" and not compiled:
            _compile_forward(model, mode)
    return models


def _supports_fused(optimizer):
    """Why ``optimizer`` cannot switch to its fused kernel, or None when it can."""
    if "fused" not in optimizer.defaults:
        return f"{type(optimizer).__name__} has no fused implementation in PyTorch"
    for group in optimizer.param_groups:
        if group.get("differentiable"):
            return "it was made with differentiable=True, which the fused kernel does not support"
        for p in group["params"]:
            if not p.is_floating_point():
                return f"it holds a {p.dtype} parameter"
            if p.device.type not in ("cuda", "cpu"):
                return f"it holds a parameter on {p.device}"
    return None


def _move_steps(optimizer):
    # The fused kernel reads Adam's step counts on the parameters' device, as float32
    # (PyTorch's own rule for fused optimizers; a plain Adam keeps them on the CPU).
    for p, state in optimizer.state.items():
        step = state.get("step")
        if isinstance(step, torch.Tensor) and step.device != p.device:
            state["step"] = step.to(device=p.device, dtype=torch.float32)


def _as_saved_plain(optimizer, state_dict):
    """A state_dict post-hook: the checkpoint records the optimizer as it was made (not fused)."""
    originals = optimizer._kit_fused_from
    for group, (fused, foreach) in zip(state_dict["param_groups"], originals):
        group["fused"], group["foreach"] = fused, foreach
    for key, state in state_dict["state"].items():
        step = state.get("step")
        if isinstance(step, torch.Tensor) and step.device.type != "cpu":
            # a new dict: state_dict's entries are the live state's own dicts
            state_dict["state"][key] = {**state, "step": step.cpu()}
    return state_dict


def _use_fused(optimizer):
    """Switch ``optimizer`` (made without fused) to its fused kernel, in place.

    The hyperparameters and the state (moments, step counts) stay; after a ``load_state_dict``
    it switches again, and its ``state_dict`` records the options it was made with.
    """
    if not hasattr(optimizer, "_kit_fused_from"):
        optimizer._kit_fused_from = [(g["fused"], g["foreach"]) for g in optimizer.param_groups]
        optimizer.register_state_dict_post_hook(_as_saved_plain)
        optimizer.register_load_state_dict_post_hook(_use_fused)
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = True, False  # the fused kernel and foreach exclude
    _move_steps(optimizer)


def prepare_optimizers(device, *optimizers, fused=None):
    """Switch optimizers to fused kernels on CUDA, in place; returns them as a tuple.

    Serves the "Train" step, after the learner made ``d_optimizer`` and ``g_optimizer``.
    ``fused``: None (default) switches every optimizer that has a fused kernel (Adam does) when
    ``device`` is a CUDA GPU and changes nothing elsewhere; True asks for it and is refused off
    CUDA or for an optimizer without one; False changes nothing. The hyperparameters, the
    state and the maths stay the same (fused Adam differs from foreach Adam only by float
    rounding); checkpoints are saved as the plain optimizer's.
    """
    if fused not in (None, True, False):
        raise ValueError(f"fused must be None, True or False; got {fused!r}.")
    if fused is False:
        return optimizers
    if not on_cuda(device):
        if fused:
            raise ValueError(
                f"fused=True is a speed-up for CUDA GPUs, and training runs on "
                f"{torch.device(device)}. Leave fused out there: the optimizers then stay "
                f"exactly as you made them."
            )
        return optimizers
    for optimizer in optimizers:
        problem = _supports_fused(optimizer)
        if problem is None and any(
            p.device.type != "cuda" for g in optimizer.param_groups for p in g["params"]
        ):
            problem = "some of its parameters are not on the GPU (call prepare_models first)"
        if problem is not None:
            if fused:
                raise ValueError(f"fused=True: cannot switch this optimizer, since {problem}.")
            continue
        _use_fused(optimizer)
    return optimizers
