"""Save and resume training (notebook step "The training loop").

A checkpoint holds everything a rerun of ``train`` needs to continue where it stopped: both
networks, both optimizers, the averaged G (``helpers.training.Average``), the fixed noise, the
losses, the per-epoch samples, and a record of
what the run was trained with (``describe_run``: the settings and a fingerprint of the learner's
code). A rerun resumes only when that record matches today's (the data included: which folder, how
many images of which size, and a fingerprint of their content); otherwise training starts
afresh and the old checkpoint is set aside under a new name, never deleted.
``train(..., fresh=True)`` starts afresh on purpose, the same way.

What can go wrong, and what happens:

* A crash or a full disk while saving: the file is written with ``helpers.files.atomic_write``,
  so the previous checkpoint stays as it was and no temporary file is left. A full disk is named
  as such ("no space left on device ..., needs about N MB"), before training when it can be.
* A damaged file: a SHA-256 of every value is saved inside and checked on loading.
* A file that is no checkpoint (the samples file, a bare ``G.state_dict()``, a folder): the
  message says what the file is and what to do, before any training.
* Two runs saving to one folder: each run remembers the file it last wrote or read; when the
  file changed in between, another run wrote it, and this run stops instead of overwriting it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import math
import os
import re
import shutil
import sys
import time
import types
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from helpers.files import atomic_write

__all__ = [
    "FORMAT",
    "LEARNER_CODE",
    "VERSION",
    "CheckpointError",
    "CheckpointMismatch",
    "describe_run",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "dcgan-face-kit checkpoint"
VERSION = 2
# The learner's code that shapes training (the functions and classes of the notebook's solution
# cells). get_dataloader is not here: the training cell feeds train through helpers.fastdata.
LEARNER_CODE = (
    "scale",
    "conv",
    "deconv",
    "Discriminator",
    "Generator",
    "weights_init_normal",
    "real_loss",
    "fake_loss",
    "train",
)
# Optimizer options that change how fast the code runs, not what it computes.
_SPEED_ONLY_OPTIONS = {"params", "foreach", "fused", "capturable", "differentiable"}
_OLD_KIT_KEYS = {"epoch", "D", "G", "d_optimizer", "g_optimizer", "fixed_z", "losses", "samples"}
_START_AFRESH = (
    "call train(..., fresh=True) to start afresh (the file is then kept under another name)"
)

# Per process: the file each checkpoint path held when this process last read or wrote it
# (None: there was none). A different file at save time means another run wrote it.
_last_seen: dict[str, tuple | None] = {}
# Networks that a checkpoint was saved from or loaded into in this process: already trained.
_trained: weakref.WeakSet[nn.Module] = weakref.WeakSet()


class CheckpointError(RuntimeError):
    """The checkpoint cannot be used as it is; the message says what it is and what to do."""

    def _render_traceback_(self):
        # IPython shows this instead of a traceback: the message is the whole story.
        return [f"{type(self).__name__}: {self}"]


class CheckpointMismatch(CheckpointError):
    """The checkpoint on disk was saved from different networks than the ones passed in."""


# ---------------------------------------------------------------- what a run is trained with


def describe_run(
    namespace: Mapping[str, Any],
    D: nn.Module,
    G: nn.Module,
    d_optimizer: torch.optim.Optimizer,
    g_optimizer: torch.optim.Optimizer,
    dataloader: Any,
    z_size: int,
) -> dict[str, Any]:
    """What a training run is trained with: ``{"settings": {...}, "code": {...}, "data": {...}}``.

    Serves the notebook's ``train``, which passes its ``globals()`` as ``namespace``.
    settings: z_size, the batch size and batches per epoch, and every optimizer option that
        changes the maths (lr, betas, eps, weight decay...), read from the optimizers themselves.
    code: a short fingerprint of each function and class in LEARNER_CODE, of the notebook
        functions and classes they use, and of D's and G's layers as built.
    data: which data ``dataloader`` serves (``helpers.fastdata.data_identity``: folder, number
        of images, image size, fingerprint), when it says.
    A checkpoint resumes only a run whose description is equal (see ``load_checkpoint``).
    """
    settings: dict[str, Any] = {"z_size": z_size}
    batch_size = getattr(dataloader, "batch_size", None)
    if isinstance(batch_size, int):
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # each process's loader serves its share: the maths sees the global batch, so a
            # run saved with N processes resumes with M (helpers.scale.distributed)
            batch_size *= torch.distributed.get_world_size()
        settings["batch_size"] = batch_size
    with contextlib.suppress(TypeError):  # a loader without a length has no such setting
        settings["batches per epoch"] = len(dataloader)
    for name, optimizer in (("d_optimizer", d_optimizer), ("g_optimizer", g_optimizer)):
        settings[f"{name} type"] = type(optimizer).__name__
        for i, group in enumerate(optimizer.param_groups):
            prefix = name if len(optimizer.param_groups) == 1 else f"{name} group {i}"
            for key in sorted(group):
                if key not in _SPEED_ONLY_OPTIONS:
                    settings[f"{prefix} {key}"] = _plain(group[key])
    code = {name: _fingerprint(namespace.get(name), namespace) for name in LEARNER_CODE}
    for name in _notebook_names_used(namespace):
        code.setdefault(name, _fingerprint(namespace[name], namespace))
    code["D's layers"] = _digest(repr(_unwrap(D)).encode())
    code["G's layers"] = _digest(repr(_unwrap(G)).encode())
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    described = {"settings": settings, "code": code, "python": python}
    from helpers.fastdata import data_identity  # late: it imports torchvision's loaders

    data = data_identity(dataloader)
    if data is not None:
        described["data"] = data
    return described


_DATA_KEYS = ("images", "held out", "image size", "fingerprint")  # what makes data the same


def _data_words(data):
    size = f" of {data['image size']}" if data.get("image size") else ""
    images = data.get("images")
    count = f"{images:,} images" if isinstance(images, int) else "images"
    return f"{count}{size} from {data.get('folder')}"


def _data_change(saved, now):
    """'' when both runs train on the same data, else the change in words."""
    old, new = saved.get("data"), now.get("data")
    if not old or not new or all(old.get(k) == new.get(k) for k in _DATA_KEYS):
        return ""
    before, after = _data_words(old), _data_words(new)
    if before == after:
        after += " (other content)"
    return f"{before} -> {after}"


def _unwrap(net):
    """The network inside a DistributedDataParallel / DataParallel / torch.compile wrapper."""
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    while True:
        if isinstance(net, wrappers):
            net = net.module
        elif isinstance(getattr(net, "_orig_mod", None), torch.nn.Module):
            net = net._orig_mod
        else:
            return net


def _plain(value):
    """A value a checkpoint can store and compare: numbers, text, tuples of them."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    # "<object at 0x7f...>" changes from one run to the next; what the object is does not
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _defined_in(obj, namespace):
    """True for a function or class that the notebook (namespace) itself defines."""
    if isinstance(obj, types.FunctionType):
        return obj.__globals__ is namespace
    if isinstance(obj, type):
        return obj.__module__ == namespace.get("__name__")
    return False


def _code_objects(obj):
    """The code objects of a function, or of every method of a class."""
    if isinstance(obj, types.FunctionType):
        yield obj.__code__
    elif isinstance(obj, type):
        for value in vars(obj).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, types.FunctionType):
                yield value.__code__


def _names_in(code):
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names_in(const)


def _notebook_names_used(namespace):
    """Functions and classes of the notebook that LEARNER_CODE uses, directly or not."""
    todo = [namespace.get(name) for name in LEARNER_CODE]
    found = set()
    while todo:
        obj = todo.pop()
        for code in _code_objects(obj):
            for name in _names_in(code):
                value = namespace.get(name)
                if name not in found and name not in LEARNER_CODE and _defined_in(value, namespace):
                    found.add(name)
                    todo.append(value)
    return sorted(found)


def _fingerprint(obj, namespace):
    """A short hash of what a function or class computes.

    It covers the compiled code (instructions, constants, the names used), default arguments,
    and the values of plain settings it reads from the notebook (numbers, text); not
    docstrings, comments or line numbers, so tidying up code does not throw away a trained model.
    """
    hasher = hashlib.sha256()

    def feed(*parts):
        for part in parts:
            hasher.update(repr(part).encode() + b"\0")

    def feed_code(code, docstring=None):
        consts = list(code.co_consts)
        if docstring is not None and consts and consts[0] == docstring:
            consts = consts[1:]
        feed(code.co_code, code.co_names, code.co_varnames, code.co_freevars, code.co_argcount)
        # The low 16 bits say what kind of code it is (generator, *args...); higher bits are
        # __future__ imports of wherever the cell was compiled.
        feed(code.co_kwonlyargcount, code.co_flags & 0xFFFF)
        for const in consts:
            if isinstance(const, types.CodeType):
                feed_code(const)
            elif isinstance(const, frozenset):
                feed(sorted(map(repr, const)))  # set order changes from one Python run to the next
            else:
                feed(const)
        for name in code.co_names:  # e.g. a label-smoothing constant defined in another cell
            value = namespace.get(name)
            if isinstance(value, (bool, int, float, str)) or (
                isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value)
            ):
                feed(name, value)

    def feed_function(fn):
        feed_code(fn.__code__, fn.__doc__)
        feed(_plain(fn.__defaults__), _plain(fn.__kwdefaults__))

    if obj is None:
        return None
    if isinstance(obj, types.FunctionType):
        feed_function(obj)
    elif isinstance(obj, type):
        feed(obj.__name__, [base.__qualname__ for base in obj.__bases__])
        for name, value in sorted(vars(obj).items()):
            if name in ("__module__", "__doc__", "__dict__", "__weakref__", "__qualname__"):
                continue
            if isinstance(value, (staticmethod, classmethod)):
                feed(type(value).__name__)
                value = value.__func__
            feed(name)
            if isinstance(value, types.FunctionType):
                feed_function(value)
            else:
                feed(_plain(value))
    else:
        feed(type(obj).__name__, _plain(obj))
    return hasher.hexdigest()[:16]


def _differences(saved, now):
    """What changed between two run descriptions, in words ("d_optimizer lr 0.0002 -> 0.001")."""
    changes = []
    old, new = saved.get("settings", {}), now["settings"]
    for key in list(new) + [k for k in old if k not in new]:
        if old.get(key) != new.get(key):
            changes.append(f"{key} {old.get(key)} -> {new.get(key)}")
    old_code, new_code = saved.get("code", {}), now["code"]
    changed = [
        k
        for k in list(new_code) + [k for k in old_code if k not in new_code]
        if old_code.get(k) != new_code.get(k)
    ]
    if changed:
        if saved.get("python") != now["python"]:
            changes.append(
                f"Python {saved.get('python')} -> {now['python']}, which compiles code differently"
            )
        else:
            changes.append(f"code of {', '.join(changed)} changed")
    return changes


# ---------------------------------------------------------------- the checksum


def _checksum(value):
    """SHA-256 of every value in a checkpoint's state (tensors by dtype, shape and bytes)."""
    hasher = hashlib.sha256()

    def feed(x):
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            hasher.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            hasher.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(x, dict):
            hasher.update(f"D{len(x)}".encode())
            for key in sorted(x, key=repr):
                feed(key)
                feed(x[key])
        elif isinstance(x, (list, tuple)):
            hasher.update(f"L{len(x)}".encode())
            for item in x:
                feed(item)
        else:
            hasher.update(f"V{type(x).__name__}:{x!r};".encode())

    feed(value)
    return hasher.hexdigest()


# ---------------------------------------------------------------- saving


def _signature(st):
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _current_signature(path):
    try:
        return _signature(path.stat())
    except FileNotFoundError:
        return None


def _megabytes(n_bytes):
    return max(1, math.ceil(n_bytes / 1e6))


def _free_bytes(folder):
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _no_space_message(folder, needed_bytes):
    free = _free_bytes(folder)
    free_text = "" if free is None else f", {free / 1e6:.0f} MB are free"
    return (
        f"No space left on device: saving the checkpoint in {folder} needs about "
        f"{_megabytes(needed_bytes)} MB{free_text}. Free some space there (or set DCGAN_OUT to a "
        f"folder on another disk) and run the training cell again. Nothing was lost: the "
        f"previous checkpoint, if any, is unchanged, and no partial file was left."
    )


def save_checkpoint(
    path: str | Path | None,
    *,
    epoch: int,
    D: nn.Module,
    G: nn.Module,
    d_optimizer: torch.optim.Optimizer,
    g_optimizer: torch.optim.Optimizer,
    fixed_z: torch.Tensor,
    losses: Iterable[Iterable[float]],
    samples: Iterable[torch.Tensor],
    run: dict[str, Any] | None = None,
    ema: Mapping[str, Any] | None = None,
) -> None:
    """Write the training state after `epoch` epochs (an int, 1-based count of finished epochs).

    run: what the run is trained with (``describe_run``), so that a rerun resumes only the same
    run. ema: the averaged G's state (``helpers.training.Average.state``), or None. Raises
    CheckpointError on a full disk (the previous checkpoint is kept, no temporary file is left)
    and when another run wrote this checkpoint since this run last read or wrote it.
    """
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(_folder_message(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    if key in _last_seen and _current_signature(path) != _last_seen[key]:
        raise CheckpointError(
            f"Another training run is using {path.parent}: it wrote {path.name} while this run "
            f"was training, and saving now would overwrite its work. Give each run a folder of "
            f"its own (checkpoint_path, or the DCGAN_OUT environment variable), or wait for the "
            f"other run to finish and run this one again. Nothing was overwritten."
        )
    state = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "D": D.state_dict(),
        "G": G.state_dict(),
        "d_optimizer": d_optimizer.state_dict(),
        "g_optimizer": g_optimizer.state_dict(),
        "fixed_z": fixed_z.detach().cpu(),
        "losses": [tuple(float(v) for v in record) for record in losses],
        "samples": [s.detach().cpu() for s in samples],
        "run": run,
    }
    if ema is not None:
        state["ema"] = {
            "decay": float(ema["decay"]),
            "updates": int(ema["updates"]),
            "weights": {k: t.detach().cpu() for k, t in ema["weights"].items()},
        }
    state["checksum"] = _checksum(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)  # in memory first: the size is known, the disk sees one write
    data = buffer.getbuffer()
    try:
        with atomic_write(path) as f:
            f.write(data)
            f.flush()
            signature = _signature(os.fstat(f.fileno()))  # the rename keeps inode and times
    except OSError as err:
        if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise CheckpointError(_no_space_message(path.parent, len(data))) from err
        raise CheckpointError(
            f"Could not save the checkpoint {path} ({type(err).__name__}: {err}). The previous "
            f"checkpoint, if any, is unchanged. Check that the folder is writable, or pass "
            f"another checkpoint_path."
        ) from err
    _last_seen[key] = signature
    _trained.add(D)
    _trained.add(G)


# ---------------------------------------------------------------- loading


def _folder_message(path):
    return (
        f"The checkpoint path {path} is a folder, not a file. Pass a file inside it instead, "
        f"e.g. checkpoint_path={str(Path(path) / 'checkpoint.pt')!r}."
    )


def _what_is(state, D, G):
    """In words, what a file that is not a checkpoint holds."""
    if isinstance(state, (list, tuple)):
        shapes = {tuple(x.shape) for x in state if isinstance(x, torch.Tensor)}
        if state and len(shapes) == 1 and all(isinstance(x, torch.Tensor) for x in state):
            (shape,) = shapes
            looks = (
                " It looks like train_samples.pt (the training cell's samples)."
                if len(shape) == 4
                else ""
            )
            return f"a list of {len(state)} tensors of shape {shape}, not a checkpoint.{looks}"
        return f"a list of {len(state)} items, not a checkpoint."
    if isinstance(state, torch.Tensor):
        return f"a single tensor of shape {tuple(state.shape)}, not a checkpoint."
    if isinstance(state, dict):
        if state and all(isinstance(v, torch.Tensor) for v in state.values()):
            keys = set(state)
            whose = (
                "G's weights (G.state_dict())"
                if keys == set(G.state_dict())
                else "D's weights (D.state_dict())"
                if keys == set(D.state_dict())
                else "the weights of one network (a state_dict)"
            )
            return (
                f"{whose}: {len(state)} tensors such as {next(iter(state))!r}. That is not a "
                f"training checkpoint: without both networks, both optimizers and the epoch "
                f"count, training cannot resume from it."
            )
        listed = ", ".join(repr(k) for k in list(state)[:6])
        return f"a dict with the keys {listed}, not those of a checkpoint."
    return f"a {type(state).__name__}, not a checkpoint."


def _read(path, D, G):
    """The checkpoint's state (tensors on the CPU), checked; raises CheckpointError."""
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"The checkpoint {path} is empty (0 bytes): a save was cut short, by a crash or a "
            f"full disk. Nothing was changed; {_START_AFRESH}."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch.save file, cut short, or Python objects
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(
            f"Could not read the checkpoint {path}: it is not a file that torch.save wrote, or "
            f"it was cut short or changed ({type(err).__name__}: {first_line[:200]}). Nothing "
            f"was changed; {_START_AFRESH}."
        ) from err
    if isinstance(state, dict) and state.get("format") == FORMAT:
        saved_sum = state.pop("checksum", None)
        if saved_sum != _checksum(state):
            raise CheckpointError(
                f"The checkpoint {path} is damaged: its contents no longer match the checksum "
                f"saved in it, so some of its numbers changed after it was written (a disk or "
                f"copy error). Resuming from it would continue from wrong weights. Nothing was "
                f"changed; {_START_AFRESH}."
            )
        return state
    if isinstance(state, dict) and set(state) >= _OLD_KIT_KEYS:
        return state  # saved by an older kit: no checksum and no run record
    raise CheckpointError(
        f"The file {path} is not a training checkpoint. It holds {_what_is(state, D, G)} "
        f"Nothing was changed; {_START_AFRESH}, or move it away yourself."
    )


def _set_aside(path):
    """Rename path beside itself (never delete it); returns the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        suffix = f".set-aside-{stamp}" + ("" if n == 1 else f"-{n}")
        target = path.with_name(f"{path.stem}{suffix}{path.suffix}")
        if not target.exists():
            os.replace(path, target)
            return target
    raise CheckpointError(f"Could not find a free name to set {path} aside; move it away yourself.")


def _check_networks_are_fresh(D, G, why):
    if D in _trained or G in _trained:
        raise CheckpointError(
            f"{why}, so training must start afresh, but D and G have already been trained in "
            f"this session: training them again would not be a fresh start. Run the notebook "
            f"again from the cell that builds the networks (build_network) down to this one; "
            f"that makes new D, G and optimizers. Nothing was changed."
        )


def _check_space(path, D, G):
    """Raise before training when the folder has no room for the next checkpoint."""
    if path.is_file():
        need = path.stat().st_size
    else:  # weights, about twice that in Adam's state, and the samples: a rough upper bound
        n_bytes = sum(
            t.numel() * t.element_size() for net in (D, G) for t in net.state_dict().values()
        )
        need = 3 * n_bytes
    free = _free_bytes(path.parent)
    if free is not None and free < need:
        raise CheckpointError(_no_space_message(path.parent, need))


def load_checkpoint(
    path: str | Path | None,
    D: nn.Module,
    G: nn.Module,
    d_optimizer: torch.optim.Optimizer,
    g_optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    run: dict[str, Any] | None = None,
    fresh: bool = False,
) -> dict[str, Any] | None:
    """Restore a checkpoint into D, G and their optimizers, if one of this same run exists.

    Returns None when training starts from scratch: no path, no file yet, ``fresh=True``, or a
    checkpoint trained on other data or with other settings or code than ``run``
    (``describe_run``); an existing
    file is then set aside (renamed, never deleted) and one line says so. Otherwise returns a
    dict with ``epoch`` (finished epochs), ``fixed_z`` (on `device`), ``losses``, ``samples`` and
    ``ema`` (the averaged G's state, weights on the CPU; None in a checkpoint without one).
    Raises CheckpointError, before any training, for a path that is a folder, a file that is not
    a checkpoint or is damaged, a full disk, and for a fresh start with networks that were
    already trained in this session.
    """
    if path is None:
        return None
    path = Path(path)
    key = str(path.resolve())
    if path.is_dir():
        raise CheckpointError(_folder_message(path))
    if not path.exists():
        _check_networks_are_fresh(D, G, f"There is no checkpoint at {path} to resume from")
        _check_space(path, D, G)
        _last_seen[key] = None
        return None
    if fresh:
        _check_networks_are_fresh(D, G, "fresh=True was passed")
        kept = _set_aside(path)
        print(f"Starting afresh (fresh=True): the old checkpoint is kept as {kept}.")
        _check_space(path, D, G)
        _last_seen[key] = None
        return None

    signature = _current_signature(path)  # before reading: a later change is another run's
    state = _read(path, D, G)
    saved_run = state.get("run")
    if saved_run is None:
        print(
            f"Note: {path} was saved by an older version of the kit, which did not record the "
            f"code and settings it was trained with; if you changed them since, call "
            f"train(..., fresh=True) to start afresh."
        )
    elif run is not None:
        if run.get("data") and not saved_run.get("data"):
            print(
                f"Note: {path} was saved by an older version of the kit, which did not record "
                f"the data it was trained on; if you changed the data since, call "
                f"train(..., fresh=True) to start afresh."
            )
        data_change = _data_change(saved_run, run)
        changes = _differences(saved_run, run)
        if data_change or changes:
            reasons = [f"on other data ({data_change})"] if data_change else []
            if changes:
                reasons.append(f"with other settings or code ({'; '.join(changes)})")
            why = f"{path} was trained {' and '.join(reasons)}"
            # "The checkpoint" starts the sentence: a path is spelled as it is, never capitalised.
            _check_networks_are_fresh(D, G, f"The checkpoint {why}")
            kept = _set_aside(path)
            print(f"Starting afresh: the checkpoint {why}. It is kept as {kept.name}.")
            _check_space(path, D, G)
            _last_seen[key] = None
            return None
    try:
        D.load_state_dict(state["D"])
        G.load_state_dict(state["G"])
        d_optimizer.load_state_dict(state["d_optimizer"])
        g_optimizer.load_state_dict(state["g_optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointMismatch(
            f"The checkpoint {path} was saved from networks of a different shape than the "
            f"ones you are training now (did you change conv_dim or z_size?). Nothing was "
            f"changed; {_START_AFRESH}.\nDetails: {err}"
        ) from err
    _check_space(path, D, G)
    _last_seen[key] = signature
    _trained.add(D)
    _trained.add(G)
    return {
        "epoch": int(state["epoch"]),
        "fixed_z": state["fixed_z"].to(device),
        "losses": [tuple(x) for x in state["losses"]],
        "samples": [s.cpu() for s in state["samples"]],
        "ema": state.get("ema"),
    }
