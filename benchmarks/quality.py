"""Which recipe draws better faces for the same budget: the original course's or the kit's?

    python -m benchmarks.quality --budget 120                 # built-in faces, 2 wall-minutes each
    python -m benchmarks.quality --data /path/to/prepared --cpu-budget 300 --seeds 0 1 2
    python -m benchmarks.quality --data processed_celeba_small --device cuda --budget 300

Both recipes train the notebook's own networks and losses (helpers.notebook.load_solution) on
the same images, for the same budget, with every held-out image kept out of both:

* **course**: the original Udacity project. Its notebook leaves the hyperparameters to the
  learner; we use the values of the course's DCGAN lesson (SVHN) that the project builds on:
  batch 128, conv_dim 32, z_size 100, Adam lr 0.0002, betas (0.5, 0.999). Its loader
  (ImageFolder + Resize + ToTensor, decoded every batch, num_workers=0), float32, and its
  training step (see benchmarks.throughput.course_step).
* **kit**: the notebook's hyperparameters cell, its get_dataloader decoded once by
  helpers.fastdata (that decoding is charged to the kit's budget), helpers.gpu.prepare_models
  and the notebook's ``train``. ``--kit-set KEY=VALUE`` tries another setting.

The budget is wall-clock seconds (``--budget``) or CPU seconds (``--cpu-budget``: user + system
time of the recipe's own process from ``resource.getrusage``, data decoding included). With a
CPU budget each recipe runs in its own process pinned to its own core (``os.sched_setaffinity``),
one torch thread each, both at once, so that other work on a shared machine slows both alike
and costs neither any of its budget. The held-out images are the last 2 x ``--n-eval`` of the
folder in file order (the notebook holds out the last ``n_eval``), the same for every seed and
recipe. Each seed's generator draws ``--n-eval`` faces, and the multi-scale sliced Wasserstein
distance (helpers.metrics, lower is better) compares them with the last ``--n-eval`` images.
The real-vs-real line, the other held-out half against them, is the floor: sampling noise alone
gives that much. The notebook's memorisation check runs on every generator. Saves each
recipe's grid per seed and a real one to ``--out``; prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import time
import types
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from benchmarks import print_result
from benchmarks.throughput import (
    add_device_argument,
    build_models,
    course_loader,
    course_step,
    device_name,
    endless,
    kit_images,
    load_notebook,
    pick_device,
    sources_are_square,
)
from helpers.data import find_data_dir
from helpers.gpu import autocast_forward
from helpers.metrics import memorisation_report, sliced_wasserstein_distance
from helpers.training import EMA_DECAY, averaged

# The course's DCGAN lesson (SVHN), which the face project starts from. The face project's
# notebook leaves these blank for the learner, so this is our stated assumption. Its z_size
# (100) and Adam settings (lr 0.0002, betas 0.5, 0.999) are the paper's, as in the notebook's
# hyperparameters cell, which both recipes read.
COURSE = {"batch_size": 128, "conv_dim": 32}
IMAGE_SIZE = 32  # both the course's networks and the notebook's expect 32x32
SAMPLE_BATCH = 500  # generator batch when drawing the evaluation samples
# Settings of the notebook's hyperparameters cell that --kit-set may change, with their types.
KIT_KEYS = {
    "batch_size": int,
    "d_conv_dim": int,
    "g_conv_dim": int,
    "lr": float,
    "beta1": float,
    "beta2": float,
    "d_lr": float,
    "g_lr": float,
    "ema": float,
    "bf16": "flag",
    "channels_last": "flag",
}


def flag(value):
    """'0' or '1' -> False or True (a --kit-set switch); ValueError otherwise."""
    if value not in ("0", "1"):
        raise ValueError(value)
    return value == "1"


KIT_KEYS = {key: flag if kind == "flag" else kind for key, kind in KIT_KEYS.items()}


def cpu_seconds():
    """User + system CPU seconds of this process (all its threads) and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


CLOCKS = {"wall": time.perf_counter, "cpu": cpu_seconds}


class Budget:
    """A loader that yields batches from `stream` until `clock()` has advanced `seconds` past
    `start` (and at least one batch, so that a budget spent decoding still trains a step);
    counts steps and images."""

    def __init__(self, stream, seconds, start, device, clock=time.perf_counter):
        self.stream, self.seconds, self.start, self.device = stream, seconds, start, device
        self.clock = clock
        self.steps = self.images = 0

    def spent(self):
        """Budget seconds used so far."""
        return self.clock() - self.start

    def __iter__(self):
        while True:
            if self.steps % 10 == 0 and self.device.type == "cuda":
                torch.cuda.synchronize(self.device)  # else the clock reads queued, not done, work
            if self.spent() >= self.seconds and self.steps:
                return
            images, labels = next(self.stream)
            self.steps += 1
            self.images += images.shape[0]
            yield images, labels


def parse_setting(item, keys, option):
    """'lr=0.0004' -> ('lr', 0.0004) for a key of `keys` ({name: type}); SystemExit naming
    `option` when the key is unknown or the value is not a valid, positive one."""
    key, sep, value = item.partition("=")
    if not sep or key not in keys:
        raise SystemExit(f"{option}: {item!r} is not KEY=VALUE with KEY one of {', '.join(keys)}.")
    try:
        parsed = keys[key](value)
    except ValueError:
        raise SystemExit(f"{option}: {value!r} is not a valid {keys[key].__name__}.") from None
    if parsed < 0 or (keys[key] is int and parsed < 1):
        raise SystemExit(f"{option}: {key} out of range.")
    return key, parsed


def parse_kit_set(items):
    """['lr=0.0004', 'ema=0.999'] -> {'lr': 0.0004, 'ema': 0.999}; SystemExit on a bad item."""
    out = {}
    for item in items or []:
        key, out[key] = parse_setting(item, KIT_KEYS, f"--kit-set {item!r}")
        if key == "ema" and out[key] >= 1:
            raise SystemExit(f"--kit-set {item!r}: out of range.")
    return out


def course_settings(ns):
    """COURSE plus the paper's z_size and Adam settings, read from the notebook."""
    return {**COURSE, "z_size": ns["z_size"], "lr": ns["lr"], "betas": (ns["beta1"], ns["beta2"])}


def kit_settings(ns, overrides=None):
    """The notebook's hyperparameters cell, as read from the notebook, with `overrides`."""
    o = overrides or {}
    lr = o.get("lr", ns["lr"])
    return {
        "batch_size": o.get("batch_size", ns["batch_size"]),
        "d_conv_dim": o.get("d_conv_dim", ns["d_conv_dim"]),
        "g_conv_dim": o.get("g_conv_dim", ns["g_conv_dim"]),
        "z_size": ns["z_size"],
        "d_lr": o.get("d_lr", lr),
        "g_lr": o.get("g_lr", lr),
        "betas": (o.get("beta1", ns["beta1"]), o.get("beta2", ns["beta2"])),
        "ema": o.get("ema", EMA_DECAY),
        # CPU levers (benchmarks.cpu_levers measures their speed; this race, their faces)
        "bf16": o.get("bf16", False),
        "channels_last": o.get("channels_last", False),
    }


def train_course(ns, job, device):
    """The course recipe for the job's budget; returns (G, steps, images seen, budget spent)."""
    c = course_settings(ns)
    D, G = build_models(ns, c["conv_dim"], c["conv_dim"], c["z_size"])
    train_on_gpu = device.type == "cuda"
    if train_on_gpu:
        D.cuda()
        G.cuda()
    d_optimizer = torch.optim.Adam(D.parameters(), lr=c["lr"], betas=c["betas"])
    g_optimizer = torch.optim.Adam(G.parameters(), lr=c["lr"], betas=c["betas"])
    clock = CLOCKS[job["clock"]]
    start = clock()
    loader = course_loader(
        job["data"], IMAGE_SIZE, c["batch_size"], job["square"], indices=range(job["n_train"])
    )
    batches = Budget(endless(loader), job["budget"], start, device, clock)
    D.train()
    G.train()
    for real_images, _ in batches:
        d_loss, g_loss = course_step(
            ns, D, G, d_optimizer, g_optimizer, real_images, c["z_size"], train_on_gpu
        )
        if batches.steps % 50 == 1:
            d_loss.item()  # the course's loss logging, a device sync, kept for fairness
    if train_on_gpu:
        torch.cuda.synchronize(device)
    return G, batches.steps, batches.images, batches.spent()


def train_kit(ns, job, device):
    """The kit recipe for the job's budget, decoding included; returns (G, steps, images seen,
    budget spent). G is the averaged G the notebook's train kept (helpers.training.averaged),
    with the decay `ema` (0: G itself), as the notebook samples from it."""
    from helpers.fastdata import FastLoader, load_dataset
    from helpers.gpu import prepare_models

    k = kit_settings(ns, job["kit_set"])
    D, G = build_models(ns, k["d_conv_dim"], k["g_conv_dim"], k["z_size"])
    D, G = prepare_models(device, D, G)
    if device.type == "cpu":
        D, G = cpu_levers(D, G, bf16=k["bf16"], channels_last=k["channels_last"])
    d_optimizer = torch.optim.Adam(D.parameters(), lr=k["d_lr"], betas=k["betas"])
    g_optimizer = torch.optim.Adam(G.parameters(), lr=k["g_lr"], betas=k["betas"])
    ns["ema_decay"] = k["ema"]  # what the notebook's train reads (helpers.training.Session)
    clock = CLOCKS[job["clock"]]
    start = clock()
    # The kit's one-off decoding is part of its budget: no cache, in this process.
    dataset = ns["get_dataloader"](k["batch_size"], IMAGE_SIZE, str(job["data"])).dataset
    decoded = load_dataset(dataset, cache=False, progress=False, workers=0)
    if decoded.random:
        raise SystemExit(f"The notebook's get_dataloader cannot be cached: {decoded.random}.")
    loader = FastLoader(
        decoded.images[: job["n_train"]],
        k["batch_size"],
        device,
        channels_last=device.type == "cuda" or k["channels_last"],
        flips=decoded.flips,
    )
    batches = Budget(endless(loader), job["budget"], start, device, clock)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ns["train"](
            D, G, d_optimizer, g_optimizer, batches, 1, k["z_size"], device, checkpoint_path=None
        )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    spent = batches.spent()
    return averaged(G), batches.steps, batches.images, spent


def cpu_levers(*models, bf16=False, channels_last=False):
    """The CPU levers of --kit-set: bf16 autocast inside each forward (helpers.gpu's, float32
    outputs, so the losses and the averaged G stay float32), channels_last weights."""
    for model in models:
        if channels_last:
            model.to(memory_format=torch.channels_last)
        if bf16:
            model.forward = types.MethodType(autocast_forward, model)
    return models


@torch.no_grad()
def draw(G, n, device):
    """n samples of G for z uniform in [-1, 1] (as both recipes train): (n, 3, 32, 32), CPU."""
    G.eval()
    out = []
    for i in range(0, n, SAMPLE_BATCH):
        z = torch.rand(min(SAMPLE_BATCH, n - i), G.z_size, device=device) * 2 - 1
        out.append(G(z).float().cpu())
    return torch.cat(out)


def run_job(job):
    """Train one recipe for one seed (in this process); returns its numbers and its samples.

    job: recipe ('course' or 'kit'), seed, data, n_train (train on images [0, n_train)), square,
    device, budget, clock ('wall' or 'cpu'), core (pin this process to it, or None), threads,
    n_eval, kit_set. The samples come back as a numpy array (it pickles between processes).
    """
    if job["core"] is not None:
        os.sched_setaffinity(0, {job["core"]})
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    device = torch.device(job["device"])
    ns = load_notebook()
    torch.manual_seed(job["seed"])
    np.random.seed(job["seed"])
    wall = time.perf_counter()
    train = train_course if job["recipe"] == "course" else train_kit
    G, steps, seen, spent = train(ns, job, device)
    wall = time.perf_counter() - wall
    torch.manual_seed(job["seed"] + 1)
    fake = draw(G, job["n_eval"], device)
    if job["recipe"] == "course":
        settings = {**course_settings(ns), "loader": "ImageFolder+DataLoader, decoded every batch"}
    else:
        settings = {**kit_settings(ns, job["kit_set"]), "loader": "helpers.fastdata.FastLoader"}
    return {
        "recipe": job["recipe"],
        "seed": job["seed"],
        "steps": steps,
        "images_seen": seen,
        "epochs": round(seen / job["n_train"], 2),
        "budget_spent": round(spent, 1),
        "wall_s": round(wall, 1),
        "images_per_budget_s": round(seen / max(spent, 1e-9), 1),
        "core": job["core"],
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "fake": fake.numpy(),
    }


def pick_cores(n=2):
    """Two different cores this process may run on, or None when it has fewer than two."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return cores[:n] if len(cores) >= n else None


def run_all(jobs_per_seed, parallel, seeds_at_once=False):
    """Each seed's jobs, both recipes at once in their own processes when `parallel` (and every
    seed's at once with `seeds_at_once`); yields each seed's results in order."""
    if not parallel:
        for jobs in jobs_per_seed:
            yield [run_job(j) for j in jobs]
        return
    workers = sum(map(len, jobs_per_seed)) if seeds_at_once else max(map(len, jobs_per_seed))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        if seeds_at_once:
            futures = [[pool.submit(run_job, j) for j in jobs] for jobs in jobs_per_seed]
            for seed_futures in futures:
                yield [f.result() for f in seed_futures]
            return
        for jobs in jobs_per_seed:
            yield [f.result() for f in [pool.submit(run_job, j) for j in jobs]]


def summarise(per_seed):
    """{'course': [swd per seed], 'kit': [...]} -> means, ratio and whether every kit seed beats
    every course seed (None when a recipe is missing)."""
    means = {name: float(np.mean(v)) for name, v in per_seed.items() if v}
    out = {"mean_swd": {k: round(v, 2) for k, v in means.items()}}
    if per_seed.get("course") and per_seed.get("kit"):
        out["ratio_kit_over_course"] = round(means["kit"] / means["course"], 3)
        out["every_kit_seed_beats_every_course_seed"] = max(per_seed["kit"]) < min(
            per_seed["course"]
        )
    return out


def parse_args(argv=None):
    """The command line; see --help."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.quality",
        description="Train the course recipe and the kit recipe for the same budget (wall-clock "
        "or CPU seconds) and compare their samples with held-out real faces (sliced Wasserstein "
        "distance, lower is better).",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="ImageFolder root (default: what helpers.data.find_data_dir picks: "
        "processed_celeba_small/ if present, else the built-in faces)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--budget",
        type=float,
        default=None,
        help="wall-clock training seconds per recipe, the same for both (default: 120 when "
        "--cpu-budget is not given)",
    )
    budget.add_argument(
        "--cpu-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="CPU seconds (user + system, from getrusage, decoding included) per recipe; each "
        "recipe runs in its own process pinned to its own core, one thread, both at once",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="seeds for the initial weights, the noise and the batch order; one run of each "
        "recipe per seed (default: %(default)s)",
    )
    p.add_argument(
        "--recipes",
        nargs="+",
        choices=["course", "kit"],
        default=["course", "kit"],
        help="which recipes to train (default: both)",
    )
    p.add_argument(
        "--kit-set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="train the kit recipe with another setting than the notebook's: "
        + ", ".join(KIT_KEYS)
        + " (d_lr/g_lr: separate learning rates; ema: decay of an average of G's weights "
        "that draws the samples, 0 = off; default: helpers.training.EMA_DECAY; bf16=1: bf16 "
        "autocast inside D and G on the CPU; channels_last=1: channels_last weights and "
        "batches on the CPU)",
    )
    add_device_argument(p)
    p.add_argument(
        "--n-eval",
        type=int,
        default=500,
        help="generated and held-out real images per SWD; the last 2 x n-eval images of the "
        "folder are held out of training (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        default="outputs/quality",
        metavar="DIR",
        help="folder for the grids course_seedS.png, kit_seedS.png and real.png "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch in each recipe (default: 1 with --cpu-budget, else torch's "
        "own choice, one per core)",
    )
    p.add_argument(
        "--seeds-at-once",
        action="store_true",
        help="train every seed at the same time (2 processes per seed, each recipe's still "
        "pinned to its own core): the same CPU budget each, sooner done on a machine shared "
        "with other work",
    )
    p.add_argument(
        "--in-process",
        action="store_true",
        help="train the recipes one after the other in this process, unpinned (for tests; a "
        "CPU budget is then still each recipe's own CPU time)",
    )
    p.add_argument(
        "--json", default=None, metavar="PATH", help="also write the JSON result to this file"
    )
    args = p.parse_args(argv)
    if args.cpu_budget is None and args.budget is None:
        args.budget = 120.0
    for name in ("budget", "cpu_budget"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            p.error(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if args.n_eval < 1:
        p.error("--n-eval must be at least 1")
    if len(set(args.seeds)) != len(args.seeds):
        p.error(f"--seeds has a repeated seed: {args.seeds}")
    args.kit_overrides = parse_kit_set(args.kit_set)
    return args


def main(argv=None):
    """Run the comparison; returns the result dict (also printed as the last line)."""
    from torchvision.utils import save_image

    args = parse_args(argv)
    device = pick_device(args.device)
    clock = "cpu" if args.cpu_budget is not None else "wall"
    budget = args.cpu_budget if clock == "cpu" else args.budget
    threads = args.threads or (1 if clock == "cpu" else None)
    if args.in_process and threads:
        torch.set_num_threads(threads)
    data = Path(args.data) if args.data else find_data_dir(verbose=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    ns = load_notebook()
    decoded = kit_images(ns, data, IMAGE_SIZE, COURSE["batch_size"], progress=False)
    images = decoded.images
    n = images.shape[0]
    batch = max(COURSE["batch_size"], kit_settings(ns, args.kit_overrides)["batch_size"])
    if n < 2 * args.n_eval + batch:
        raise SystemExit(
            f"{data} has {n} images: too few to hold out 2 x {args.n_eval} for "
            f"evaluation and still train on a batch of {batch}. "
            f"Lower --n-eval or use more images."
        )
    n_train = n - 2 * args.n_eval
    real_b = images[n_train : n - args.n_eval]  # the floor's second set
    real_a = images[n - args.n_eval :]  # what every generator is scored against
    square = sources_are_square(data)
    cores = None if args.in_process else pick_cores()
    if clock == "cpu" and cores is None and not args.in_process:
        print("Fewer than 2 cores to pin the recipes to: they share one core, both at once.")

    print(
        f"torch {torch.__version__} | device {device} ({device_name(device)}) | "
        f"{threads or torch.get_num_threads()} thread(s) per recipe | cores {cores or 'unpinned'}"
        f" | load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"data: {data} ({n:,} images: the first {n_train:,} to train on, the last "
        f"2 x {args.n_eval} held out)"
    )
    unit = "CPU seconds (getrusage)" if clock == "cpu" else "wall-clock seconds"
    print(f"budget: {budget:g} {unit} per recipe and seed, decoding included; seeds {args.seeds}")
    if args.kit_overrides:
        print(f"kit settings changed: {args.kit_overrides}")

    jobs_per_seed = []
    for i, seed in enumerate(args.seeds):
        jobs = []
        for j, name in enumerate(args.recipes):
            core = None if cores is None else cores[(i + j) % 2]  # alternate cores per seed
            jobs.append(
                {
                    "recipe": name,
                    "seed": seed,
                    "data": str(data),
                    "n_train": n_train,
                    "square": square,
                    "device": str(device),
                    "budget": budget,
                    "clock": clock,
                    "core": core,
                    "threads": threads,
                    "n_eval": args.n_eval,
                    "kit_set": args.kit_overrides,
                }
            )
        jobs_per_seed.append(jobs)

    runs = []
    per_seed = {name: [] for name in args.recipes}
    train_images = images[:n_train]
    for results in run_all(jobs_per_seed, not args.in_process, args.seeds_at_once):
        for r in results:
            fake = torch.from_numpy(r.pop("fake"))
            swd = sliced_wasserstein_distance(real_a, fake)
            memo = memorisation_report(fake, train_images, train_holdout=real_a)
            save_image(
                fake[:64],
                out / f"{r['recipe']}_seed{r['seed']}.png",
                nrow=8,
                normalize=True,
                value_range=(-1, 1),
            )
            r["swd"] = round(swd["average"], 2)
            r["swd_levels"] = {str(k): round(v, 2) for k, v in swd["levels"].items()}
            r["memorised"] = bool(memo["memorised"])
            r["nn_ratio"] = round(float(memo["ratio"]), 3)
            per_seed[r["recipe"]].append(swd["average"])
            runs.append(r)
            print(
                f"  seed {r['seed']} {r['recipe']:<6}: {r['steps']} steps, {r['images_seen']:,} "
                f"images ({r['epochs']} epochs) in {r['budget_spent']:.1f} budget-s "
                f"({r['wall_s']:.0f} wall-s, core {r['core']}); SWD {r['swd']:.2f}; "
                f"memorised: {'YES' if r['memorised'] else 'no'}",
                flush=True,
            )
    floor = sliced_wasserstein_distance(real_a, real_b)
    save_image(real_a[:64].float() / 255, out / "real.png", nrow=8)
    summary = summarise(per_seed)

    print(
        f"\n{'SWD x 1e3':<14}"
        + "".join(f"{'seed ' + str(s):>9}" for s in args.seeds)
        + f"{'mean':>9}"
    )
    for name in args.recipes:
        print(
            f"{name:<14}"
            + "".join(f"{v:>9.2f}" for v in per_seed[name])
            + f"{summary['mean_swd'][name]:>9.2f}"
        )
    print(f"{'real vs real':<14}" + " " * 9 * len(args.seeds) + f"{floor['average']:>9.2f}")
    if "ratio_kit_over_course" in summary:
        print(
            f"kit / course mean SWD: {summary['ratio_kit_over_course']:.3f}; every kit seed "
            f"beats every course seed: {summary['every_kit_seed_beats_every_course_seed']}"
        )
    print(f"(against the last {args.n_eval} held-out real faces; lower is better; grids in {out})")

    result = {
        "benchmark": "quality",
        "torch": torch.__version__,
        "device": str(device),
        "device_name": device_name(device),
        "threads": threads or torch.get_num_threads(),
        "cores": cores,
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "data": str(data),
        "n_images": n,
        "n_train": n_train,
        "clock": clock,
        "budget_s": budget,
        "n_eval": args.n_eval,
        "seeds": args.seeds,
        "kit_set": args.kit_overrides,
        "runs": runs,
        **summary,
        "real_vs_real_swd": round(floor["average"], 2),
        "real_vs_real_levels": {str(k): round(v, 2) for k, v in floor["levels"].items()},
    }
    print_result(result, args.json)
    return result


if __name__ == "__main__":
    main()
