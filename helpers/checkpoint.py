"""Save and resume training (notebook step "The training loop").

A checkpoint holds everything a rerun of ``train`` needs to continue where it stopped:
both networks, both optimizers, the fixed noise, the losses and the per-epoch samples.
It is written with ``torch.save`` to a temporary file and then renamed, so an
interrupted save never leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch


class CheckpointMismatch(RuntimeError):
    """The checkpoint on disk was saved from different networks than the ones passed in."""


def save_checkpoint(path, *, epoch, D, G, d_optimizer, g_optimizer, fixed_z, losses, samples):
    """Write the training state after `epoch` epochs (an int, 1-based count of finished epochs)."""
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "epoch": epoch,
        "D": D.state_dict(),
        "G": G.state_dict(),
        "d_optimizer": d_optimizer.state_dict(),
        "g_optimizer": g_optimizer.state_dict(),
        "fixed_z": fixed_z.detach().cpu(),
        "losses": list(losses),
        "samples": [s.detach().cpu() for s in samples],
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, D, G, d_optimizer, g_optimizer, device):
    """Restore a checkpoint into D, G and their optimizers, if one exists at `path`.

    Returns None when there is nothing to resume (no path, or no file yet); otherwise a dict
    with ``epoch`` (finished epochs), ``fixed_z`` (on `device`), ``losses`` and ``samples``.
    Raises CheckpointMismatch, with what to do, when the saved networks differ from D and G.
    """
    if path is None or not Path(path).is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a file cut short by a crash, or not a checkpoint at all
        raise CheckpointMismatch(
            f"Could not read the checkpoint {path} ({type(err).__name__}: {err}). "
            f"Delete it to start training from scratch."
        ) from err
    try:
        D.load_state_dict(state["D"])
        G.load_state_dict(state["G"])
        d_optimizer.load_state_dict(state["d_optimizer"])
        g_optimizer.load_state_dict(state["g_optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointMismatch(
            f"The checkpoint {path} was saved from networks of a different shape than the "
            f"ones you are training now (did you change conv_dim or z_size?). Delete it, or "
            f"pass another checkpoint_path, to start from scratch.\nDetails: {err}"
        ) from err
    return {
        "epoch": int(state["epoch"]),
        "fixed_z": state["fixed_z"].to(device),
        "losses": [tuple(x) for x in state["losses"]],
        "samples": [s.cpu() for s in state["samples"]],
    }
