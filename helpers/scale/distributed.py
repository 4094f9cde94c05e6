"""Train the notebook's DCGAN on several processes, GPUs or machines (torchrun + DDP).

    torchrun --standalone --nproc_per_node=2 -m helpers distributed --quick --out outputs/ddp
    torchrun --standalone --nproc_per_node=8 -m helpers distributed --sync-bn   # 8 GPUs

Serves the notebook's "Train" step at scale, as the command ``python -m helpers distributed``.
Its GPU path is not yet measured on a GPU (docs/performance.md will hold the numbers when it is);
it is tested on CPU processes (gloo). Every process runs the notebook's own setup and
solution cells (``helpers.notebook.load_solution``: its D, G, optimizers, losses and ``train``;
no copy of the model code), wraps D and G in ``DistributedDataParallel`` and calls the
notebook's ``train`` unchanged with a loader that serves this process's share of the images.
Gradients are averaged over the processes after each backward pass, so N processes with
``batch/N`` images each take the steps one process takes with ``batch`` images.

Why ``train`` itself and not a copy of its step: the D and G steps are what the learner wrote,
and ``train`` is the only place they exist. It calls D, G and the optimizers through the names it
is given, so DDP-wrapped networks and a sharded loader are all it needs. Three things it does are
rank-0 jobs or need all ranks to agree, and they go through names ``train`` looks up in the
notebook's namespace, which this module replaces there: ``save_checkpoint`` (rank 0 writes the
unwrapped networks; losses are averaged over ranks first), ``load_checkpoint`` (rank 0 reads, the
others receive the state: works without a shared disk) and ``tqdm`` (a bar on rank 0 only).

Rank 0 writes everything: checkpoint.pt, samples.png, train_samples.pt and metrics.json
(losses, images per second, SWD against held-out images). A checkpoint holds the plain
networks (no DDP ``module.`` prefix) and the global batch size is the same at any world size, so
a run saved with N processes resumes with M.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from helpers.files import atomic_write, positive_int
from helpers.notebook import NOTEBOOK
from helpers.scale.batchnorm import sync_batchnorm
from helpers.scale.compile import COMPILE_MODES, compile_models
from helpers.scale.fused_adam import prepare_optimizers
from helpers.scale.loaders import SampledLoader, ShardedLoader

__all__ = [
    "NOTEBOOK_NAMES",
    "OUT",
    "QUICK_OUT",
    "RankZeroCheckpoints",
    "Run",
    "evaluate",
    "finish",
    "main",
    "parse_args",
    "setup",
    "train",
    "unwrap",
    "watch_agent",
    "wrap",
]

# What --quick trains on, and where outputs go by default.
OUT = Path("outputs/distributed")
QUICK_OUT = Path("outputs/quick/distributed")
NOTEBOOK_NAMES = (
    "get_dataloader",
    "print_every",
    "D",
    "G",
    "d_optimizer",
    "g_optimizer",
    "train",
    "img_size",
    "batch_size",
    "z_size",
    "n_epochs",
    "n_eval",
    "n_builtin_images",
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of ``python -m helpers distributed`` (run under torchrun)."""
    parser = argparse.ArgumentParser(
        prog="torchrun --standalone --nproc_per_node=N -m helpers distributed",
        description="Train the notebook's D and G with DistributedDataParallel on N processes "
        "(GPUs, or CPU processes with the gloo backend). Without torchrun it runs as one process.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: the notebook's quick settings (DCGAN_QUICK=1: 512 "
        "built-in faces, 128 held out, 1 epoch)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"folder for checkpoint.pt, samples.png, train_samples.pt and "
        f"metrics.json (default {OUT}, with --quick {QUICK_OUT}); rerunning with "
        f"the same folder resumes from its checkpoint",
    )
    parser.add_argument(
        "--notebook",
        type=Path,
        default=NOTEBOOK,
        help="notebook whose setup and solution cells define D, G, the "
        "optimizers and train (default: the solution notebook; pass a learner's)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="image folder (ImageFolder layout); default: processed_celeba_small/ "
        "when it holds images, else the built-in faces, as in the notebook",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="total epochs, counting those a resumed checkpoint already did "
        "(default: the notebook's n_epochs)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="global batch size, split evenly over the processes, so the recipe "
        "is the same at any process count (default: the notebook's batch_size)",
    )
    parser.add_argument(
        "--sync-bn",
        action="store_true",
        help="batch norm statistics over the global batch instead of each "
        "process's share (SyncBatchNorm; helps when the per-process batch is "
        "small)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cuda", "cpu"),
        default="auto",
        help="auto: one GPU per process when CUDA is available (nccl), else the CPU (gloo)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the shuffling and the noise (each process adds its rank); "
        "the starting weights come from the notebook's own seed",
    )
    parser.add_argument(
        "--print-every",
        type=positive_int,
        default=None,
        help="log the losses every this many batches, a host sync on GPUs (default: the "
        "notebook's print_every)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start afresh even when --out holds a checkpoint of this run (it is kept under "
        "another name), as train(..., fresh=True) does",
    )
    parser.add_argument(
        "--no-shuffle",
        action="store_true",
        help="serve each process's share in folder order (to check that N processes follow 1)",
    )
    parser.add_argument(
        "--no-eval",
        action="store_true",
        help="skip the SWD evaluation against the held-out images at the end",
    )
    parser.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default="off",
        help="CUDA only: torch.compile D's and G's forward in this mode (helpers.scale.compile; "
        "reduce-overhead also replays them as CUDA graphs). Costs compile time at the "
        "first steps (default: %(default)s)",
    )
    parser.add_argument(
        "--fused-adam",
        action="store_true",
        help="CUDA only: switch the notebook's Adam optimizers to PyTorch's fused kernel "
        "(helpers.scale.fused_adam; same maths, hyperparameters and state)",
    )
    return parser.parse_args(argv)


def _check_gpu_options(args: argparse.Namespace, device: torch.device) -> None:
    """Refuse the CUDA-only options on a CPU run, before any process group starts."""
    asked = ([f"--compile {args.compile}"] if args.compile != "off" else []) + (
        ["--fused-adam"] if args.fused_adam else []
    )
    if asked and device.type != "cuda":
        raise SystemExit(
            f"{' and '.join(asked)}: GPU speed-ups for CUDA, and this run is on the CPU. "
            f"Leave them out there; the CPU run is the same without them."
        )


# ---------------------------------------------------------------------------------------------
# The networks in DistributedDataParallel


def wrap(model: nn.Module, device: torch.device, sync_bn: bool = False) -> DistributedDataParallel:
    """`model` in DistributedDataParallel, set up for a GAN's D and G.

    ``broadcast_buffers=False``: by default DDP copies rank 0's buffers (batch norm's running
    statistics) to every rank at each forward pass. D runs forward twice (real, then fake)
    before one backward, and that in-place copy would change buffers the first pass saved for
    its backward ("modified by an inplace operation"). Training uses batch statistics, so the
    copy is not needed: with SyncBatchNorm every rank's running statistics are the same anyway;
    without it each rank keeps its own and rank 0's are the ones saved and sampled with.
    ``find_unused_parameters`` stays off: every parameter of D and G gets a gradient in each
    backward pass, and the search would cost a graph traversal per step.
    """
    if sync_bn:
        model = sync_batchnorm(model, device)
    device_ids = [device.index] if device.type == "cuda" else None
    # Newer PyTorch renames the switch; both still copy rank 0's buffers once, at the start.
    no_buffer_copy: dict[str, Any] = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in _DDP_OPTIONS
        else {"broadcast_buffers": False}
    )
    return DistributedDataParallel(model, device_ids=device_ids, **no_buffer_copy)


_DDP_OPTIONS = inspect.signature(DistributedDataParallel.__init__).parameters


def unwrap(model: nn.Module) -> nn.Module:
    """The plain network inside a DDP wrapper (state_dict keys without ``module.``)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


# ---------------------------------------------------------------------------------------------
# Checkpoints: rank 0 writes and reads, every rank agrees


def _to_cpu(obj: Any) -> Any:
    """A copy of `obj` (nested dicts, lists, tuples) with every tensor moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class RankZeroCheckpoints:
    """``save_checkpoint`` / ``load_checkpoint`` for the notebook's ``train`` under DDP.

    ``train`` calls them on every rank, through its namespace. ``save``: the new loss entries
    are averaged over ranks (each rank logged its own share's losses), then rank 0 writes the
    unwrapped networks with helpers.checkpoint's own function. ``load``: rank 0 reads with
    helpers.checkpoint's own function (its checks included) and sends the state to the other
    ranks, so they need no access to the file. Extra arguments pass through unchanged.
    """

    def __init__(
        self,
        rank: int,
        world_size: int,
        device: torch.device,
        loader: ShardedLoader | SampledLoader,
        save: Callable[..., Any],
        load: Callable[..., Any],
    ) -> None:
        self.rank, self.world_size, self.device, self.loader = rank, world_size, device, loader
        self._save, self._load = save, load
        self.averaged = 0  # loss entries already averaged over ranks

    def _average_new_losses(self, losses: list[Any]) -> None:
        new = losses[self.averaged :]
        if new and self.world_size > 1:
            values = torch.tensor(new, dtype=torch.float64, device=self.device)
            dist.all_reduce(values)
            losses[self.averaged :] = [tuple(row) for row in (values / self.world_size).tolist()]
        self.averaged = len(losses)

    def save(
        self,
        path: Path | str,
        *args: Any,
        D: nn.Module,
        G: nn.Module,
        losses: list[Any],
        **kwargs: Any,
    ) -> None:
        self._average_new_losses(losses)
        if self.rank == 0:
            self._save(path, *args, D=unwrap(D), G=unwrap(G), losses=losses, **kwargs)
        dist.barrier()  # nobody goes on (or reads the file) before it is whole

    def load(
        self,
        path: Path | str,
        D: nn.Module,
        G: nn.Module,
        d_optimizer: torch.optim.Optimizer,
        g_optimizer: torch.optim.Optimizer,
        device: torch.device,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        D, G = unwrap(D), unwrap(G)
        message = [None]
        if self.rank == 0:
            try:
                resumed = self._load(path, D, G, d_optimizer, g_optimizer, device, *args, **kwargs)
                message = [
                    None
                    if resumed is None
                    else _to_cpu(
                        {
                            "resumed": resumed,
                            "D": D.state_dict(),
                            "G": G.state_dict(),
                            "d_optimizer": d_optimizer.state_dict(),
                            "g_optimizer": g_optimizer.state_dict(),
                        }
                    )
                ]
            except Exception:
                dist.broadcast_object_list(["error"], src=0)
                raise
        dist.broadcast_object_list(message, src=0)
        state = message[0]
        if state == "error":
            raise SystemExit(1)  # rank 0 reports why; one message, not one per rank
        if state is None:
            return None
        if self.rank != 0:
            D.load_state_dict(state["D"])
            G.load_state_dict(state["G"])
            d_optimizer.load_state_dict(state["d_optimizer"])
            g_optimizer.load_state_dict(state["g_optimizer"])
        resumed = state["resumed"] if self.rank != 0 else resumed
        self.loader.epoch = resumed["epoch"]  # the next epoch's shuffle, as if never stopped
        self.averaged = len(resumed["losses"])
        if self.rank != 0:
            resumed = dict(resumed, fixed_z=resumed["fixed_z"].to(device))
        return resumed


# ---------------------------------------------------------------------------------------------
# One process of the run


@dataclass
class Run:
    """Everything one process of a distributed run holds."""

    args: argparse.Namespace
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    out: Path
    ns: dict[str, Any]  # the notebook's namespace: its definitions, with train's helpers replaced
    D: nn.Module  # DDP-wrapped
    G: nn.Module
    loader: ShardedLoader | SampledLoader
    heldout: torch.Tensor  # uint8 images never trained on, for the SWD at the end
    reference: torch.Tensor  # as many training images, for the real-vs-real SWD floor
    epochs: int
    batch_size: int  # global


def _pick_device(name: str, local_rank: int) -> torch.device:
    if name == "cpu":
        # Before anything touches CUDA: the notebook's setup cell would otherwise pick the GPU.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return torch.device("cpu")
    if name == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA GPU here. Use --device cpu.")
    if local_rank >= torch.cuda.device_count():
        raise SystemExit(
            f"This machine has {torch.cuda.device_count()} GPU(s) but torchrun started process "
            f"{local_rank + 1} on it. Use --nproc_per_node={torch.cuda.device_count()}."
        )
    torch.cuda.set_device(local_rank)  # so the notebook's torch.device("cuda") is this rank's GPU
    return torch.device("cuda", local_rank)


def watch_agent(interval: float = 1.0) -> threading.Thread:
    """Stop this process when the process that started it (torchrun's agent) dies.

    torchrun stops its ranks when it is stopped with a signal it can catch; a SIGKILL (or an
    out-of-memory kill) of the agent leaves them training and writing the checkpoint with
    nobody to stop them. A daemon thread checks the parent's pid every ``interval`` seconds
    and ends the process when it changes. The checkpoint is written atomically, so a rank
    stopped mid-save leaves the previous one whole: the same torchrun command resumes from it.
    Returns the (started) thread.
    """
    parent = os.getppid()
    rank = os.environ.get("RANK", "?")

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                print(
                    f"Rank {rank}: torchrun's agent (pid {parent}) is gone; stopping. Run the "
                    f"same torchrun command again to resume from the last checkpoint.",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(1)  # no cleanup can reach the other ranks; the checkpoint is whole

    thread = threading.Thread(target=watch, name="torchrun-agent-watchdog", daemon=True)
    thread.start()
    return thread


def _init_process_group(device: torch.device) -> None:
    backend = "nccl" if device.type == "cuda" else "gloo"
    if dist.is_initialized():
        return
    if "RANK" in os.environ:  # started by torchrun: it set RANK, WORLD_SIZE and the rendezvous
        watch_agent()
        dist.init_process_group(backend)
    else:  # plain `python -m`: a group of one, no network needed
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)


def _load_notebook(path: Path, quick: bool, out: Path, quiet: bool) -> dict[str, Any]:
    """The notebook's setup and solution cells, run with its quick switch and output folder."""
    from helpers.notebook import load_solution, set_notebook_env

    set_notebook_env(out, quick)  # what its hyperparameters cell reads, as under helpers.run
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            ns = load_solution(path)
    except RuntimeError as err:  # a cell failed, e.g. a learner's piece not written yet
        raise SystemExit(
            1
            if quiet
            else f"Cannot train from {err}. Fix that cell (its graded test says what "
            f"is missing) and run again."
        ) from None
    missing = [name for name in NOTEBOOK_NAMES if name not in ns]
    if missing:
        raise SystemExit(
            f"{path} does not define {', '.join(missing)} in its setup and solution cells. "
            f"Run the notebook's cells up to the graded test of train and fix what they report."
        )
    return ns


def _load_data(
    args: argparse.Namespace,
    ns: dict[str, Any],
    rank: int,
    local_rank: int,
    world_size: int,
    batch_size: int,
    device: torch.device,
) -> tuple[ShardedLoader | SampledLoader, torch.Tensor, torch.Tensor]:
    """(loader, heldout, reference): this rank's share of the training images, and the
    held-out images (the last n_eval, as in the notebook) with as many training images.

    The images go through the learner's own get_dataloader dataset and transforms, decoded once
    by helpers.fastdata: each machine's first process decodes and caches, the others then read
    the cache.
    """
    from helpers.data import find_data_dir
    from helpers.fastdata import data_identity, describe_images, load_dataset

    leader = local_rank == 0
    found = None
    if leader:
        if args.data_dir is not None:
            found = str(find_data_dir(args.data_dir))
        else:  # as the notebook's data cell does
            builtin = "data/generated_faces_quick" if args.quick else "data/generated_faces"
            default = "processed_celeba_small/"
            found = str(find_data_dir(default, builtin, n_builtin=ns["n_builtin_images"]))
    # Each machine's first process checked (or drew) the images; the rest take its answer.
    everyone: list[str | None] = [None] * world_size
    dist.all_gather_object(everyone, found)
    data_dir = everyone[rank - local_rank]
    learner_loader = ns["get_dataloader"](batch_size, ns["img_size"], data_dir)
    dataset = learner_loader.dataset
    for turn in (True, False):
        if leader == turn:
            decoded = load_dataset(dataset, progress=leader)
        dist.barrier()
    for note in decoded.notes if rank == 0 else ():
        print(note)

    images, n_eval = decoded.images, ns["n_eval"]
    n_train = images.shape[0] - n_eval
    if n_train < batch_size:
        raise SystemExit(
            f"{data_dir} has {images.shape[0]} images; {n_eval} are held out to evaluate G "
            f"(the notebook's n_eval), which leaves {max(n_train, 0)}: fewer than one global "
            f"batch of {batch_size}. Use more images or a smaller --batch-size."
        )
    per_rank = batch_size // world_size
    loader: ShardedLoader | SampledLoader
    if decoded.random:
        from torch.utils.data import Subset

        if rank == 0:
            print(
                f"Fast loader: off, because {decoded.random}. Each process reads its share "
                f"through your get_dataloader's dataset, decoding every image every epoch."
            )
        loader = SampledLoader(
            Subset(dataset, range(n_train)),
            per_rank,
            rank,
            world_size,
            seed=args.seed,
            shuffle=not args.no_shuffle,
            workers=learner_loader.num_workers,
        )
    else:
        loader = ShardedLoader(
            images[:n_train],
            per_rank,
            device,
            rank,
            world_size,
            seed=args.seed,
            shuffle=not args.no_shuffle,
            channels_last=device.type == "cuda",
            flips=decoded.flips,
        )
    # which data this run trains on, for the checkpoint (as the notebook's fast_loader says)
    loader.data_identity = (
        data_identity(learner_loader)
        if decoded.random
        else describe_images(str(data_dir), images, n_eval, decoded.sha256)
    )
    reference = images[: min(n_eval, n_train)].clone()
    return loader, images[n_train:].clone(), reference


def setup(argv: Sequence[str] | None = None) -> Run:
    """Start this process: process group, notebook, data, DDP-wrapped models. Returns a Run."""
    args = parse_args(argv)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = _pick_device(args.device, local_rank)
    _check_gpu_options(args, device)
    _init_process_group(device)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    # The notebook's setup cell moves to the kit's folder: the user's paths are from here.
    out = Path(args.out or (QUICK_OUT if args.quick else OUT)).resolve()
    args.notebook = Path(args.notebook).resolve()
    if args.data_dir is not None:
        args.data_dir = str(Path(args.data_dir).resolve())

    ns = _load_notebook(args.notebook, args.quick, out, quiet=rank != 0)
    batch_size = args.batch_size or ns["batch_size"]
    epochs = args.epochs or ns["n_epochs"]
    if batch_size % world_size:
        raise SystemExit(
            f"--batch-size {batch_size} does not split evenly over {world_size} "
            f"processes; use a multiple of {world_size}."
        )
    loader, heldout, reference = _load_data(
        args, ns, rank, local_rank, world_size, batch_size, device
    )
    # The notebook's setup cell seeded the weights (the same on every rank). From here each rank
    # draws its own noise: the same z on every rank would repeat the fakes in the global batch.
    torch.manual_seed(args.seed + rank)

    D, G = ns["D"], ns["G"]
    if next(D.parameters()).device != device:  # e.g. the notebook picked MPS; DDP runs on CPU
        D.to(device)
        G.to(device)
    if args.compile != "off":  # the notebook's prepare_models ran already; this adds compile
        D, G = compile_models(device, D, G, mode=args.compile)
    if args.fused_adam:
        prepare_optimizers(device, ns["d_optimizer"], ns["g_optimizer"], fused=True)
    D, G = wrap(D, device, args.sync_bn), wrap(G, device, args.sync_bn)

    checkpoints = RankZeroCheckpoints(
        rank, world_size, device, loader, ns["save_checkpoint"], ns["load_checkpoint"]
    )
    ns["save_checkpoint"], ns["load_checkpoint"] = checkpoints.save, checkpoints.load
    if rank != 0:
        ns["tqdm"] = lambda iterable, *args, **kwargs: iterable  # one progress bar, rank 0's
    return Run(
        args,
        rank,
        local_rank,
        world_size,
        device,
        Path(out),
        ns,
        D,
        G,
        loader,
        heldout,
        reference,
        epochs,
        batch_size,
    )


def train(run: Run) -> tuple[list[Any], list[torch.Tensor], float]:
    """The notebook's train on this rank; returns (losses, samples, seconds)."""
    ns = run.ns
    start = time.perf_counter()
    losses, samples = ns["train"](
        run.D,
        run.G,
        ns["d_optimizer"],
        ns["g_optimizer"],
        run.loader,
        run.epochs,
        ns["z_size"],
        run.device,
        print_every=run.args.print_every or ns["print_every"],
        checkpoint_path=run.out / "checkpoint.pt",
        fresh=run.args.fresh,
    )
    return losses, samples, time.perf_counter() - start


def evaluate(run: Run, n: int | None = None) -> dict[str, Any]:
    """SWD x 1e3 of the averaged G's images (helpers.training.averaged, as the notebook scores)
    against the held-out real ones, and the real-vs-real floor."""
    import helpers.metrics
    from helpers.training import averaged

    G = averaged(unwrap(run.G))
    n = n or run.heldout.shape[0]
    G.eval()
    with torch.no_grad():
        z = torch.rand(n, run.ns["z_size"], device=run.device) * 2 - 1
        generated = G(z).float().cpu()
    heldout = run.heldout[:n].float() / 127.5 - 1  # uint8 -> [-1, 1], the range scale() gives
    reference = run.reference[:n].float() / 127.5 - 1
    swd = helpers.metrics.sliced_wasserstein_distance(heldout, generated)
    floor = helpers.metrics.sliced_wasserstein_distance(heldout, reference)
    return {"swd": swd["average"], "swd_levels": swd["levels"], "swd_floor": floor["average"]}


def finish(
    run: Run, losses: list[Any], samples: list[torch.Tensor], seconds: float
) -> dict[str, Any]:
    """Rank 0 writes samples.png, train_samples.pt and metrics.json; returns the metrics."""
    from torchvision.utils import save_image

    steps = run.loader.batches_served
    metrics = {
        "world_size": run.world_size,
        "device": str(run.device) if run.device.type == "cpu" else torch.cuda.get_device_name(),
        "sync_bn": run.args.sync_bn,
        "compile": run.args.compile,
        "fused_adam": run.args.fused_adam,
        "global_batch": run.batch_size,
        "per_process_batch": run.loader.batch_size,
        "epochs": run.epochs,
        "steps_this_run": steps,
        "seconds": round(seconds, 3),
        "images_per_second": round(steps * run.batch_size / seconds, 1) if steps else None,
        "losses": [list(pair) for pair in losses],  # (d_loss, g_loss), mean over processes
    }
    if run.rank != 0:
        return metrics
    if not run.args.no_eval:
        metrics.update(evaluate(run))
    run.out.mkdir(parents=True, exist_ok=True)
    if samples:
        with atomic_write(run.out / "samples.png", "wb") as f:
            save_image(samples[-1], f, format="png", nrow=8, normalize=True, value_range=(-1, 1))
    with atomic_write(run.out / "train_samples.pt", "wb") as f:
        torch.save(samples, f)
    with atomic_write(run.out / "metrics.json", "w") as f:
        json.dump(metrics, f, indent=1)
    swd = ""
    if "swd" in metrics:
        swd = f", SWD {metrics['swd']:.1f} (floor {metrics['swd_floor']:.1f})"
    rate = metrics["images_per_second"]
    print(
        f"{run.world_size} process(es) on {metrics['device']}: {steps} steps of "
        f"{run.batch_size} images in {seconds:.1f} s"
        + (f" ({rate:,.0f} img/s)" if rate else "")
        + f"{swd}. Outputs in {run.out}"
    )
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers distributed``: train on every process torchrun started; 0 on success."""
    run = setup(argv)
    try:
        # Other ranks stay quiet: their progress is rank 0's, their losses go into its average.
        with (
            open(os.devnull, "w") as devnull,
            contextlib.redirect_stdout(devnull) if run.rank else contextlib.nullcontext(),
        ):
            finish(run, *train(run))
    finally:
        dist.destroy_process_group()
    return 0
