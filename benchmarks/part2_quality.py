"""Which part-2 settings draw the best faces for a CPU budget? (solution/part2_dcgan64_wgan.ipynb)

    python -m benchmarks.part2_quality --cpu-budget 300 \\
        --recipe dcgan --recipe dcgan:batch_size=32 --recipe wgan:n_critic=2,lr=0.0002

Each recipe trains one of part 2's models on the built-in faces at 64x64 (or ``--data``) for the
same budget of CPU seconds (user + system time of its own process, ``resource.getrusage``), in its
own process pinned to one core with one torch thread, as ``benchmarks.quality`` does for part 1:

* ``dcgan``: the paper's ``Discriminator64``/``Generator64`` trained by part 1's ``train`` with
  part 1's Adam settings (the notebook's section 4);
* ``wgan``: the ``Critic`` and a ``Generator64`` trained by ``train_wgan`` (section 5).

Both read every definition from the solution notebooks (no copy); ``KEY=VALUE`` after the colon
changes one of the part-2 hyperparameters cell's CPU settings (``--help`` lists the keys), or:

* ``ema=DECAY``: the decay of the average of G's weights that draws the samples (0: G itself;
  default ``helpers.training.EMA_DECAY``, as the notebook). Averaging does not change training, so
  a recipe with an average also scores G itself from the same run, as ``RECIPE (G itself)``: the
  pair differs only by the average;
* ``bf16=1``: bf16 autocast inside D's and G's forward (``benchmarks.quality.cpu_levers``).

``--extra-ema DECAY ...`` also scores averages of G with those decays, each kept from the same
run's G steps, as ``RECIPE (ema DECAY)``: decays compared on one training run.

The
images are decoded once, before the clock starts, through part 1's ``get_dataloader`` (the same for
every recipe). As in the notebook, the last ``--n-eval`` images are never trained on, G draws
``--n-eval`` faces with the z it was trained with (uniform for the DCGAN, normal for WGAN-GP), and
the sliced Wasserstein distance (lower is better) compares them with those held-out images; the
floor is the first ``--n-eval`` real images against them. Saves a grid per recipe and seed to
``--out``; prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from benchmarks import print_result
from benchmarks.quality import Budget, cpu_levers, cpu_seconds, flag, parse_setting, pick_cores
from benchmarks.throughput import endless, load_notebook
from helpers.files import positive_int
from helpers.training import EMA_DECAY, Average, averaged

KINDS = ("dcgan", "wgan")
# Settings of part 2's hyperparameters cell a recipe may change, with their types. lr, beta1 and
# beta2 are part 1's for the DCGAN and wgan_lr, wgan_betas for WGAN-GP; batch_size is
# wgan_batch_size for WGAN-GP.
KEYS = {
    "conv_dim": int,
    "batch_size": int,
    "lr": float,
    "beta1": float,
    "beta2": float,
    "n_critic": int,
    "gp_weight": float,
    "ema": float,
    "bf16": flag,
}
IMAGE_SIZE = 64


def parse_recipe(text):
    """'wgan:n_critic=2,lr=0.0002' -> ('wgan', {'n_critic': 2, 'lr': 0.0002}); SystemExit when
    the kind, a key or a value is not valid."""
    kind, _, rest = text.partition(":")
    if kind not in KINDS:
        raise SystemExit(f"--recipe {text!r}: starts with one of {', '.join(KINDS)}.")
    out = dict(parse_setting(item, KEYS, f"--recipe {text!r}") for item in rest.split(",") if item)
    if kind == "dcgan" and {"n_critic", "gp_weight"} & out.keys():
        raise SystemExit(f"--recipe {text!r}: n_critic and gp_weight are WGAN-GP settings.")
    if out.get("ema", 0) >= 1:
        raise SystemExit(f"--recipe {text!r}: ema is a decay in [0, 1).")
    return kind, out


def load_notebooks():
    """Part 1's and part 2's solution namespaces (CPU settings, not quick mode), quietly."""
    from helpers.notebook import PART2_NOTEBOOK, load_solution

    os.environ.pop("DCGAN_QUICK", None)
    with contextlib.redirect_stdout(io.StringIO()):
        return load_notebook(), load_solution(PART2_NOTEBOOK)


def settings(kind, part1, part2, overrides):
    """The recipe's settings: the part-2 hyperparameters cell's, then `overrides`."""
    if kind == "dcgan":
        lr, (beta1, beta2) = part1["lr"], (part1["beta1"], part1["beta2"])
        batch_size = part2["batch_size"]
    else:
        lr, (beta1, beta2) = part2["wgan_lr"], part2["wgan_betas"]
        batch_size = part2["wgan_batch_size"]
    s = {
        "conv_dim": part2["conv_dim"],
        "batch_size": batch_size,
        "lr": lr,
        "beta1": beta1,
        "beta2": beta2,
        "ema": EMA_DECAY,
        "bf16": False,
    }
    if kind == "wgan":
        s.update(n_critic=part2["n_critic"], gp_weight=part2["gp_weight"])
    return {**s, **overrides}


def pin_worker(counter, cores):
    """Pool initializer: each worker process takes the next core, so two never share one."""
    with counter.get_lock():
        core = cores[counter.value % len(cores)]
        counter.value += 1
    if core is not None:
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)


def run_job(job):
    """Train one recipe for one seed in this (pinned) process; returns its numbers and samples."""
    from helpers.fastdata import FastLoader

    part1, part2 = load_notebooks()
    s = settings(job["kind"], part1, part2, job["overrides"])
    images = torch.load(job["images"])[: job["n_train"]]
    device = torch.device("cpu")
    torch.manual_seed(job["seed"])
    z_size = part2["z_size"]
    betas = (s["beta1"], s["beta2"])
    G = part2["Generator64"](z_size, s["conv_dim"])
    if job["kind"] == "dcgan":  # as the notebook's section 4; section 5 keeps PyTorch's init
        D = part2["Discriminator64"](s["conv_dim"])
        D.apply(part1["weights_init_normal"])
        G.apply(part1["weights_init_normal"])
    else:
        D = part2["Critic"](s["conv_dim"])
    D, G = cpu_levers(D, G, bf16=s["bf16"])
    d_opt = torch.optim.Adam(D.parameters(), lr=s["lr"], betas=betas)
    g_opt = torch.optim.Adam(G.parameters(), lr=s["lr"], betas=betas)
    loader = FastLoader(images, s["batch_size"], device, flips=job["flips"])
    # --extra-ema: more averages of the same run's G, each updated after every G step, so decays
    # are compared on one training run (they do not change it)
    extra = {d: Average(G, d) for d in job["extra_ema"]}
    if extra:
        g_opt.register_step_post_hook(lambda *_: [a.update() for a in extra.values()])
    wall = time.perf_counter()
    batches = Budget(endless(loader), job["budget"], cpu_seconds(), device, cpu_seconds)
    part1["ema_decay"] = s["ema"]  # what part 1's train reads (helpers.training.Session)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if job["kind"] == "dcgan":
            part1["train"](D, G, d_opt, g_opt, batches, 1, z_size, device, checkpoint_path=None)
        else:
            part2["train_wgan"](
                D,
                G,
                d_opt,
                g_opt,
                batches,
                1,
                z_size,
                device,
                n_critic=s["n_critic"],
                gp_weight=s["gp_weight"],
                print_every=10**9,
                ema_decay=s["ema"],
            )
    spent, wall = batches.spent(), time.perf_counter() - wall
    torch.manual_seed(job["seed"] + 1)
    n = job["n_eval"]
    # the z each model was trained with: part 1's train draws it uniform in [-1, 1]
    z = torch.rand(n, z_size) * 2 - 1 if job["kind"] == "dcgan" else torch.randn(n, z_size)
    generate = part2["helpers"].latent.generate
    fakes = {job["recipe"]: generate(averaged(G), z).numpy()}  # G itself when ema is 0
    if s["ema"]:
        fakes[f"{job['recipe']} (G itself)"] = generate(G, z).numpy()
    for d, average in extra.items():
        fakes[f"{job['recipe']} (ema {d:g})"] = generate(average.network(), z).numpy()
    n_critic = s.get("n_critic", 1)
    return {
        "recipe": job["recipe"],
        "seed": job["seed"],
        "settings": s,
        "steps": batches.steps,
        "g_steps": batches.steps // n_critic,
        "epochs": round(batches.images / job["n_train"], 2),
        "cpu_s": round(spent, 1),
        "wall_s": round(wall, 1),
        "core": sorted(os.sched_getaffinity(0)),
        "fakes": fakes,
    }


def parse_args(argv=None):
    """The command line; see --help."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.part2_quality",
        description="Train part-2 recipes for the same CPU budget and compare their samples "
        "with held-out real faces (sliced Wasserstein distance, lower is better).",
    )
    p.add_argument(
        "--recipe",
        dest="recipes",
        action="append",
        required=True,
        help="KIND[:KEY=VALUE,...], KIND one of dcgan, wgan; keys: "
        + ", ".join(KEYS)
        + " (ema: decay of the average of G's weights that draws the samples, 0 = G itself; "
        "default helpers.training.EMA_DECAY, and G itself is scored too; bf16=1: bf16 autocast)",
    )
    p.add_argument(
        "--cpu-budget", type=float, required=True, help="CPU seconds per recipe and seed"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default: 0)")
    p.add_argument("--parallel", type=positive_int, default=2, help="recipes at once (default: 2)")
    p.add_argument("--data", help="image folder (default: the built-in faces)")
    p.add_argument(
        "--n-eval", type=positive_int, default=1000, help="held-out images (default: 1000)"
    )
    p.add_argument(
        "--extra-ema",
        type=float,
        nargs="+",
        default=[],
        metavar="DECAY",
        help="also score averages of G with these decays, from the same runs",
    )
    p.add_argument("--out", default="outputs/part2_quality", help="where the grids go")
    p.add_argument("--json", help="also write the JSON line to this file")
    args = p.parse_args(argv)
    if args.cpu_budget <= 0:
        p.error("--cpu-budget must be positive.")
    args.parsed = [parse_recipe(r) for r in args.recipes]
    if any(not 0 < d < 1 for d in args.extra_ema):
        p.error("--extra-ema: each decay must be in (0, 1).")
    return args


def main(argv=None):
    """Run the race; returns the result dict (also printed as the last line)."""
    from torchvision.utils import save_image

    from helpers.data import find_data_dir
    from helpers.fastdata import load_dataset
    from helpers.metrics import sliced_wasserstein_distance

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    get_dataloader = load_notebook()["get_dataloader"]  # part 1's; part 2 is loaded by the jobs
    data = Path(args.data) if args.data else find_data_dir(verbose=False)
    dataset = get_dataloader(64, IMAGE_SIZE, str(data)).dataset
    decoded = load_dataset(dataset, progress=False)
    images = decoded.images
    n = images.shape[0]
    if n < 2 * args.n_eval + 64:
        raise SystemExit(f"{data} has {n} images: too few to hold out {args.n_eval} and train.")
    n_train = n - args.n_eval
    heldout = images[n_train:].float() / 127.5 - 1
    reference = images[: args.n_eval].float() / 127.5 - 1
    images_file = out / "images.pt"
    torch.save(images, images_file)  # the jobs load the decoded images from here
    cores = pick_cores() or [None]
    print(
        f"torch {torch.__version__} | 1 thread per recipe, pinned to cores {cores} | "
        f"load average {os.getloadavg()[0]:.1f}\ndata: {data} ({n:,} images, the last "
        f"{args.n_eval} held out) | budget {args.cpu_budget:g} CPU-s per recipe and seed",
        flush=True,
    )
    jobs = []
    for seed in args.seeds:
        for recipe, (kind, overrides) in zip(args.recipes, args.parsed):
            jobs.append(
                {
                    "recipe": recipe,
                    "kind": kind,
                    "overrides": overrides,
                    "seed": seed,
                    "images": str(images_file),
                    "n_train": n_train,
                    "n_eval": args.n_eval,
                    "budget": args.cpu_budget,
                    "flips": decoded.flips,
                    "extra_ema": args.extra_ema,
                }
            )
    runs, per_recipe = [], {r: [] for r in args.recipes}
    ctx = get_context("spawn")
    with ProcessPoolExecutor(
        args.parallel, mp_context=ctx, initializer=pin_worker, initargs=(ctx.Value("i", 0), cores)
    ) as pool:
        for r in pool.map(run_job, jobs):
            for recipe, fake in r.pop("fakes").items():
                fake = torch.from_numpy(fake)
                run = {**r, "recipe": recipe}
                run["swd"] = round(sliced_wasserstein_distance(heldout, fake)["average"], 2)
                name = f"{recipe.replace(':', '_').replace(',', '_').replace(' ', '_')}"
                name = f"{name.replace('(', '').replace(')', '')}_seed{r['seed']}.png"
                save_image(fake[:32], out / name, nrow=8, normalize=True, value_range=(-1, 1))
                per_recipe.setdefault(recipe, []).append(run["swd"])
                runs.append(run)
                print(
                    f"  {recipe:<40} seed {r['seed']}: {r['steps']} steps ({r['g_steps']} of "
                    f"G, {r['epochs']} epochs) in {r['cpu_s']} CPU-s, {r['wall_s']:.0f} wall-s; "
                    f"SWD {run['swd']:.1f}",
                    flush=True,
                )
    floor = sliced_wasserstein_distance(heldout, reference)["average"]
    print(f"\nSWD x 1e3 (lower is better; floor {floor:.1f}), mean over seeds {args.seeds}:")
    for recipe, values in per_recipe.items():
        print(f"  {recipe:<40} {np.mean(values):7.1f}")
    print(f"(grids in {out})")
    result = {
        "benchmark": "part2_quality",
        "torch": torch.__version__,
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "data": str(data),
        "cpu_budget_s": args.cpu_budget,
        "seeds": args.seeds,
        "runs": runs,
        "mean_swd": {k: round(float(np.mean(v)), 2) for k, v in per_recipe.items()},
        "floor_swd": round(floor, 2),
    }
    print_result(result, args.json)
    return result


if __name__ == "__main__":
    main()
