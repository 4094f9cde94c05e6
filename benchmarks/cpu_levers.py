"""How many images per CPU-second one training step of the notebook's networks gets through on
one CPU thread: fp32, bf16 autocast, channels_last, both; and what the averaged G costs.

    python -m benchmarks.cpu_levers                  # batch 32, 40 timed steps per round, 3 rounds
    python -m benchmarks.cpu_levers --steps 100 --rounds 5

One step is the notebook's: D on real and detached fakes, then G through D, each with its Adam
step, on the notebook's own Discriminator, Generator and losses (helpers.notebook.load_solution)
at the hyperparameters cell's conv_dim, z_size and batch size. The images are random: content
does not change the speed. One torch thread; time is the process's CPU time (user + system,
``resource.getrusage``), so other work on a shared machine costs no budget (it still shares the
caches). The variants run in turns, round after round, and each one's median round is reported.
Throughput only: what bf16 does to the faces is not measured here (benchmarks.quality does that).
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics

import torch

from benchmarks import print_result
from benchmarks.throughput import build_models, load_notebook
from helpers.training import EMA_DECAY, Average

VARIANTS = {
    "fp32": {"bf16": False, "channels_last": False, "ema": False},
    "fp32 + averaged G": {"bf16": False, "channels_last": False, "ema": True},
    "bf16 autocast": {"bf16": True, "channels_last": False, "ema": False},
    "channels_last": {"bf16": False, "channels_last": True, "ema": False},
    "bf16 + channels_last": {"bf16": True, "channels_last": True, "ema": False},
}


def cpu_seconds() -> float:
    """This process's user + system CPU time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Recipe:
    """One variant's networks, optimizers and batch, ready to step."""

    def __init__(self, ns: dict, options: dict, batch_size: int, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.ns, self.options = ns, options
        self.z_size = ns["z_size"]
        self.D, self.G = build_models(ns, ns["d_conv_dim"], ns["g_conv_dim"], self.z_size)
        betas = (ns["beta1"], ns["beta2"])
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=ns["lr"], betas=betas)
        self.g_opt = torch.optim.Adam(self.G.parameters(), lr=ns["lr"], betas=betas)
        self.real = torch.rand(batch_size, 3, 32, 32)
        if options["channels_last"]:
            self.D.to(memory_format=torch.channels_last)
            self.G.to(memory_format=torch.channels_last)
            self.real = self.real.contiguous(memory_format=torch.channels_last)
        self.average = Average(self.G, EMA_DECAY) if options["ema"] else None

    def autocast(self):
        if self.options["bf16"]:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step(self) -> None:
        ns, D, G = self.ns, self.D, self.G
        real = ns["scale"](self.real)
        z = torch.rand(len(real), self.z_size) * 2 - 1
        with self.autocast():
            fake = G(z)
            d_loss = ns["real_loss"](D(real)) + ns["fake_loss"](D(fake.detach()))
        self.d_opt.zero_grad()
        d_loss.backward()
        self.d_opt.step()
        with self.autocast():
            g_loss = ns["real_loss"](D(fake))
        self.g_opt.zero_grad()
        g_loss.backward()
        self.g_opt.step()
        if self.average is not None:
            self.average.update()


def measure(recipe: Recipe, steps: int) -> float:
    """Images per CPU-second over `steps` steps."""
    start = cpu_seconds()
    for _ in range(steps):
        recipe.step()
    return steps * len(recipe.real) / max(cpu_seconds() - start, 1e-9)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_levers", description=__doc__)
    p.add_argument("--steps", type=int, default=40, help="timed steps per round (default: 40)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of every variant (default: 3)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the notebook's")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    ns = load_notebook()
    batch = args.batch_size or ns["batch_size"]
    bf16_ok = torch.backends.mkldnn.is_available()
    recipes = {name: Recipe(ns, options, batch) for name, options in VARIANTS.items()}
    for recipe in recipes.values():
        for _ in range(args.warmup):
            recipe.step()
    rounds: dict[str, list[float]] = {name: [] for name in recipes}
    for _ in range(args.rounds):
        for name, recipe in recipes.items():
            rounds[name].append(measure(recipe, args.steps))
    median = {name: statistics.median(v) for name, v in rounds.items()}
    base = median["fp32"]
    print(f"One D+G step, batch {batch}, 1 thread, torch {torch.__version__}")
    print(f"{'variant':<22} {'img/CPU-s':>10} {'x fp32':>7}   rounds")
    for name, value in median.items():
        spread = ", ".join(f"{v:.0f}" for v in rounds[name])
        print(f"{name:<22} {value:10.0f} {value / base:7.2f}   {spread}")
    result = {
        "batch_size": batch,
        "threads": 1,
        "torch": torch.__version__,
        "mkldnn": bf16_ok,
        "steps_per_round": args.steps,
        "img_per_cpu_s": {k: round(v, 1) for k, v in median.items()},
        "rounds": {k: [round(x, 1) for x in v] for k, v in rounds.items()},
        "quality": "not measured (throughput only)",
    }
    print_result(result)
    return result


if __name__ == "__main__":
    main()
