"""How many images per second does DCGAN training get through: the course's recipe vs the kit's?

    python -m benchmarks.throughput                         # built-in faces, auto device
    python -m benchmarks.throughput --data processed_celeba_small --device cuda --steps 300

Both recipes train the notebook's own Discriminator, Generator and losses (read from the
notebook with helpers.notebook.load_solution, never copied) at the same size, batch size and
learning rate, for the same number of steps on the same image folder:

* **course**: the original Udacity project as learners wrote it: ``datasets.ImageFolder`` with
  ``Compose([Resize(S), ToTensor()])``, every image decoded again in every batch by a default
  ``DataLoader(batch_size, shuffle=True)`` (``num_workers=0``), float32, ``.cuda()`` when
  ``train_on_gpu``, noise from ``np.random.uniform``, and the course's step: the fakes for D's
  loss are not detached, and G's step draws new noise and runs G again.
* **kit**: the notebook's ``get_dataloader`` through ``helpers.fastdata`` (its dataset decoded
  once, cached, batches indexed on the device),
  ``helpers.gpu.prepare_models`` (channels_last + bf16 autocast on CUDA; nothing on the CPU) and
  the notebook's ``train``.
* **kit+OPTIONS** (CUDA only, ``--variants``): the kit with the GPU options that the notebook
  leaves off: ``fused`` (fused Adam, ``helpers.scale.fused_adam``), ``compile=MODE``
  (``torch.compile`` of both networks' forward, ``helpers.scale.compile``), ``fp32`` (no bf16
  autocast); joined with ``+``, e.g. ``fused+compile=reduce-overhead``.

``--image-size 64`` trains the paper's 64x64 DCGAN instead, built in this file from the
notebook's own ``conv`` and ``deconv`` (the notebook's networks are 32x32 only).

Times are end to end (data loading included), after ``--warmup`` steps, with
``torch.cuda.synchronize`` on CUDA. The warm-up's own time is reported as ``startup_s``; what it
took beyond ``warmup`` steady steps is ``compile_s`` (torch.compile and CUDA graph capture: near
0 for the recipes that compile nothing). ``--swd-steps N`` then trains each kit recipe afresh
for N steps from the same seed, on all images but ``--n-eval`` held out, and scores it with the
sliced Wasserstein distance (helpers.metrics; lower is better) against the held-out ones: the
speed-ups must not cost quality at an equal number of steps.

Each recipe runs in its own fresh process, so its peak memory (CPU: the process's peak resident
set; CUDA: ``torch.cuda.max_memory_allocated``) is its own. Prints a table (img/s, times the
course recipe's, compile time, memory), the SWD table, and finally one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing the kit
    sys.path.insert(0, str(ROOT))

from benchmarks import print_result  # noqa: E402
from helpers.data import find_data_dir  # noqa: E402
from helpers.files import positive_int  # noqa: E402
from helpers.notebook import load_solution  # noqa: E402

PRINT_EVERY = 50  # both recipes read the losses (a device sync) this often, as in the course
# The kit variants measured on CUDA when --variants is not given: each option alone, then all
# together. fp32: what bf16 gives, in speed and in SWD. The other compile modes are measured
# when asked for (max-autotune takes minutes to compile).
DEFAULT_VARIANTS = ("fp32", "fused", "compile=reduce-overhead", "fused+compile=reduce-overhead")
IMAGE_SIZES = (32, 64)  # the notebook's networks; the paper's 64x64 DCGAN below


def load_notebook():
    """The notebook's setup + solution namespace, without its printout of the networks."""
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution()


def add_device_argument(parser):
    """--device for the benchmarks that train: auto (CUDA when there is one), cpu or cuda."""
    parser.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where to train (default: auto = cuda when available, else cpu)",
    )


def pick_device(name):
    """'auto' -> cuda when available, else cpu; otherwise torch.device(name)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible to PyTorch here; use --device cpu.")
    return device


def device_name(device):
    """'NVIDIA H100 80GB HBM3', or the CPU model from /proc/cpuinfo where there is one."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sources_are_square(data_dir, sample=256):
    """True when the images (an even sample of up to `sample`, headers only) are all square."""
    from PIL import Image
    from torchvision import datasets

    paths = [p for p, _ in datasets.ImageFolder(str(data_dir)).samples]
    step = max(1, len(paths) // sample)
    for path in paths[::step]:
        with Image.open(path) as im:
            if im.width != im.height:
                return False
    return True


def course_loader(data_dir, image_size, batch_size, square, indices=None):
    """The course's DataLoader: ImageFolder + Resize(S) + ToTensor, shuffled, num_workers=0.

    The original used Resize alone, which is only square for square sources (the 64x64
    processed_celeba_small); for non-square sources CenterCrop(S) is added, as the kit does,
    since otherwise the batches could not be stacked. `indices` picks a subset (held-out split).
    """
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    steps = [transforms.Resize(image_size)]
    if not square:
        steps.append(transforms.CenterCrop(image_size))
    dataset = datasets.ImageFolder(
        str(data_dir), transform=transforms.Compose(steps + [transforms.ToTensor()])
    )
    if indices is not None:
        dataset = Subset(dataset, list(indices))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)


def course_step(ns, D, G, d_optimizer, g_optimizer, real_images, z_size, train_on_gpu):
    """One training step as the course's train() did it; returns (d_loss, g_loss) tensors.

    Uses the notebook's scale, real_loss and fake_loss. Faithful to the original: the batch is
    moved with .cuda(), z comes from numpy, D(fake) is not detached in D's step (so its
    backward also runs through G, whose gradients G's zero_grad later discards), and G's step
    draws fresh noise and runs G once more.
    """
    batch_size = real_images.size(0)
    real_images = ns["scale"](real_images)

    d_optimizer.zero_grad()
    if train_on_gpu:
        real_images = real_images.cuda()
    d_real_loss = ns["real_loss"](D(real_images))
    z = torch.from_numpy(np.random.uniform(-1, 1, size=(batch_size, z_size))).float()
    if train_on_gpu:
        z = z.cuda()
    d_fake_loss = ns["fake_loss"](D(G(z)))
    d_loss = d_real_loss + d_fake_loss
    d_loss.backward()
    d_optimizer.step()

    g_optimizer.zero_grad()
    z = torch.from_numpy(np.random.uniform(-1, 1, size=(batch_size, z_size))).float()
    if train_on_gpu:
        z = z.cuda()
    g_loss = ns["real_loss"](D(G(z)))
    g_loss.backward()
    g_optimizer.step()
    return d_loss, g_loss


class Discriminator64(torch.nn.Module):
    """The paper's 64x64 DCGAN discriminator from the notebook's ``conv``: (B, 3, 64, 64) ->
    (B, 1) logits. The notebook's Discriminator with one more stride-2 stage."""

    def __init__(self, conv, conv_dim):
        super().__init__()
        self.conv1 = conv(3, conv_dim, 4, batch_norm=False)
        self.conv2 = conv(conv_dim, conv_dim * 2, 4)
        self.conv3 = conv(conv_dim * 2, conv_dim * 4, 4)
        self.conv4 = conv(conv_dim * 4, conv_dim * 8, 4)
        self.fc = torch.nn.Linear(conv_dim * 8 * 4 * 4, 1)

    def forward(self, x):
        leaky = torch.nn.functional.leaky_relu
        x = leaky(self.conv1(x), 0.2)  # (B, d, 32, 32)
        x = leaky(self.conv2(x), 0.2)  # (B, 2d, 16, 16)
        x = leaky(self.conv3(x), 0.2)  # (B, 4d, 8, 8)
        x = leaky(self.conv4(x), 0.2)  # (B, 8d, 4, 4)
        return self.fc(x.flatten(start_dim=1))  # (B, 1)


class Generator64(torch.nn.Module):
    """The paper's 64x64 DCGAN generator from the notebook's ``deconv``: z (B, z_size) ->
    (B, 3, 64, 64) in [-1, 1]. The notebook's Generator with one more stride-2 stage."""

    def __init__(self, deconv, z_size, conv_dim):
        super().__init__()
        self.conv_dim = conv_dim
        self.fc = torch.nn.Linear(z_size, conv_dim * 8 * 4 * 4)
        self.bn0 = torch.nn.BatchNorm2d(conv_dim * 8)
        self.deconv1 = deconv(conv_dim * 8, conv_dim * 4, 4)
        self.deconv2 = deconv(conv_dim * 4, conv_dim * 2, 4)
        self.deconv3 = deconv(conv_dim * 2, conv_dim, 4)
        self.deconv4 = deconv(conv_dim, 3, 4, batch_norm=False)

    def forward(self, z):
        relu = torch.nn.functional.relu
        x = relu(self.bn0(self.fc(z).view(-1, self.conv_dim * 8, 4, 4)))  # (B, 8d, 4, 4)
        x = relu(self.deconv1(x))  # (B, 4d, 8, 8)
        x = relu(self.deconv2(x))  # (B, 2d, 16, 16)
        x = relu(self.deconv3(x))  # (B, d, 32, 32)
        return torch.tanh(self.deconv4(x))  # (B, 3, 64, 64)


def build_models(ns, d_conv_dim, g_conv_dim, z_size, image_size=32):
    """D and G for ``image_size`` (the notebook's at 32, ``Discriminator64``/``Generator64``
    at 64), initialised with the notebook's weights_init_normal."""
    if image_size == 32:
        D = ns["Discriminator"](d_conv_dim)
        G = ns["Generator"](z_size=z_size, conv_dim=g_conv_dim)
    elif image_size == 64:
        D = Discriminator64(ns["conv"], d_conv_dim)
        G = Generator64(ns["deconv"], z_size, g_conv_dim)
    else:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}, not {image_size}.")
    D.apply(ns["weights_init_normal"])
    G.apply(ns["weights_init_normal"])
    return D, G


def parse_variant(text):
    """``"fused+compile=reduce-overhead"`` -> the kit options it names; ValueError if unknown.

    Returns ``{"fused": bool, "compile": mode, "bf16": bool}``; an empty text is the kit as
    the notebook runs it (no fused Adam, no compile, bf16 on).
    """
    from helpers.scale.compile import check_compile_mode

    options = {"fused": False, "compile": "off", "bf16": True}
    for part in filter(None, text.split("+")):
        if part == "fused":
            options["fused"] = True
        elif part == "fp32":
            options["bf16"] = False
        elif part.startswith("compile="):
            options["compile"] = check_compile_mode(part.split("=", 1)[1])
        else:
            raise ValueError(
                f"unknown kit option {part!r} in {text!r}: use fused, fp32 or compile=MODE, "
                f"joined with '+' (e.g. fused+compile=reduce-overhead)."
            )
    return options


def variant_name(text):
    """The recipe name of a --variants entry: 'kit+' and the options in a fixed order."""
    o = parse_variant(text)
    parts = (["fused"] if o["fused"] else []) + (["fp32"] if not o["bf16"] else [])
    parts += [f"compile={o['compile']}"] if o["compile"] != "off" else []
    return "+".join(["kit", *parts])


def adam(ns, model):
    """Adam as the notebook's hyperparameters cell (and the DCGAN paper) configure it; both
    recipes use it."""
    return torch.optim.Adam(model.parameters(), lr=ns["lr"], betas=(ns["beta1"], ns["beta2"]))


def kit_images(ns, data, image_size, batch_size, progress=True):
    """The notebook's own get_dataloader's dataset, decoded once by helpers.fastdata."""
    from helpers.fastdata import load_dataset

    dataset = ns["get_dataloader"](batch_size, image_size, str(data)).dataset
    decoded = load_dataset(dataset, progress=progress)
    if decoded.random:
        raise SystemExit(f"The notebook's get_dataloader cannot be cached: {decoded.random}.")
    return decoded


def endless(loader):
    """Batches from `loader` forever, starting a new (reshuffled) epoch whenever one ends."""
    if len(loader) == 0:
        raise ValueError("The loader yields no batch: fewer images than one batch.")
    while True:
        yield from loader


class Steps:
    """A loader of exactly `n` batches drawn from an endless stream; counts the images."""

    def __init__(self, stream, n):
        self.stream, self.n, self.images = stream, n, 0

    def __len__(self):
        return self.n

    def __iter__(self):
        for _ in range(self.n):
            images, labels = next(self.stream)
            self.images += images.shape[0]
            yield images, labels


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_course(ns, cfg, device):
    z_size = ns["z_size"]
    D, G = build_models(ns, cfg["conv_dim"], cfg["conv_dim"], z_size, cfg["image_size"])
    train_on_gpu = device.type == "cuda"
    if train_on_gpu:
        D.cuda()
        G.cuda()
    d_optimizer, g_optimizer = adam(ns, D), adam(ns, G)
    loader = course_loader(cfg["data"], cfg["image_size"], cfg["batch_size"], cfg["square"])
    stream = endless(loader)
    losses = []

    def run(n):
        seen = 0
        for batch_i in range(n):
            real_images, _ = next(stream)
            seen += real_images.size(0)
            d_loss, g_loss = course_step(
                ns, D, G, d_optimizer, g_optimizer, real_images, z_size, train_on_gpu
            )
            if batch_i % PRINT_EVERY == 0:
                losses.append((d_loss.item(), g_loss.item()))
        return seen

    start = time.perf_counter()
    run(cfg["warmup"])
    _sync(device)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    seen = run(cfg["steps"])
    _sync(device)
    seconds = time.perf_counter() - start
    return seen, seconds, {"transform": describe_course_transform(cfg), "startup_s": startup}


def kit_models(ns, cfg, device, options):
    """D, G and their Adam optimizers as the kit trains them, with the kit ``options``."""
    from helpers.scale.compile import compile_models  # mode "off": helpers.gpu.prepare_models
    from helpers.scale.fused_adam import prepare_optimizers

    D, G = build_models(ns, cfg["conv_dim"], cfg["conv_dim"], ns["z_size"], cfg["image_size"])
    D, G = compile_models(device, D, G, mode=options["compile"], mixed_precision=options["bf16"])
    d_optimizer, g_optimizer = adam(ns, D), adam(ns, G)
    if options["fused"]:
        prepare_optimizers(device, d_optimizer, g_optimizer, fused=True)
    return D, G, d_optimizer, g_optimizer


def kit_train(ns, D, G, d_optimizer, g_optimizer, stream, n, device):
    """The notebook's train over the next ``n`` batches of ``stream``; returns the images seen."""
    steps = Steps(stream, n)
    with contextlib.redirect_stdout(io.StringIO()):  # train's per-epoch summary line
        ns["train"](
            D,
            G,
            d_optimizer,
            g_optimizer,
            steps,
            1,
            ns["z_size"],
            device,
            print_every=PRINT_EVERY,
            checkpoint_path=None,
        )
    return steps.images


def compile_counters():
    """What torch.compile reported in this process: graph breaks, CUDA graphs it skipped."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # a torch without torch.compile
        return {}
    return {
        "graph_breaks": sum(counters["graph_break"].values()),
        "cudagraph_skips": counters["inductor"].get("cudagraph_skips", 0),
        "unique_graphs": counters["stats"].get("unique_graphs", 0),
    }


def _time_kit(ns, cfg, device, options):
    from helpers.fastdata import FastLoader

    decoded = kit_images(ns, cfg["data"], cfg["image_size"], cfg["batch_size"], progress=False)
    D, G, d_optimizer, g_optimizer = kit_models(ns, cfg, device, options)
    loader = FastLoader(
        decoded.images,
        cfg["batch_size"],
        device,
        channels_last=device.type == "cuda",
        flips=decoded.flips,
    )
    stream = endless(loader)

    def run(n):
        return kit_train(ns, D, G, d_optimizer, g_optimizer, stream, n, device)

    start = time.perf_counter()
    if cfg["warmup"]:
        run(cfg["warmup"])
    _sync(device)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    seen = run(cfg["steps"])
    _sync(device)
    extra = {
        "startup_s": startup,
        "cache": decoded.cache,
        "load_seconds": round(decoded.seconds, 3),
        "bf16": bool(device.type == "cuda" and options["bf16"] and torch.cuda.is_bf16_supported()),
        "channels_last": device.type == "cuda",
        "fused_adam": options["fused"],
        "compile": options["compile"],
    }
    if options["compile"] != "off":
        extra.update(compile_counters())
    return seen, time.perf_counter() - start, extra


def _swd_kit(ns, cfg, device, options):
    """Train afresh for cfg["swd_steps"] steps without the held-out images; SWD against them."""
    from helpers.fastdata import FastLoader
    from helpers.metrics import sliced_wasserstein_distance

    decoded = kit_images(ns, cfg["data"], cfg["image_size"], cfg["batch_size"], progress=False)
    n_eval = cfg["n_eval"]
    D, G, d_optimizer, g_optimizer = kit_models(ns, cfg, device, options)
    loader = FastLoader(
        decoded.images[:-n_eval],
        cfg["batch_size"],
        device,
        channels_last=device.type == "cuda",
        flips=decoded.flips,
        seed=cfg["seed"],
    )
    start = time.perf_counter()
    seen = kit_train(ns, D, G, d_optimizer, g_optimizer, endless(loader), cfg["swd_steps"], device)
    _sync(device)
    seconds = time.perf_counter() - start
    G.eval()
    with torch.no_grad():
        z = torch.rand(n_eval, ns["z_size"], device=device) * 2 - 1
        generated = G(z).float().cpu()
    heldout = decoded.images[-n_eval:].float() / 127.5 - 1  # uint8 -> [-1, 1], as scale() gives
    swd = sliced_wasserstein_distance(heldout, generated)
    levels = {str(size): value for size, value in swd["levels"].items()}  # JSON keys are text
    return seen, seconds, {"swd": swd["average"], "swd_levels": levels}


def describe_course_transform(cfg):
    """'Resize(32)+ToTensor' or, for non-square sources, with CenterCrop."""
    s = cfg["image_size"]
    return f"Resize({s})+ToTensor" if cfg["square"] else f"Resize({s})+CenterCrop({s})+ToTensor"


def peak_rss_mb():
    """This process's peak resident memory in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def run_recipe(name, cfg, phase="speed"):
    """Run one recipe ('course', 'kit' or 'kit+OPTIONS') with settings `cfg`; returns its
    measurements. ``phase`` "swd": train a kit recipe for cfg["swd_steps"] and score it."""
    device = torch.device(cfg["device"])
    if cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    ns = load_notebook()
    baseline = peak_rss_mb()  # python + torch + the notebook's code, before any training
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if name == "course":
        seen, seconds, extra = _time_course(ns, cfg, device)
    else:
        options = parse_variant(name.removeprefix("kit"))
        timer = _swd_kit if phase == "swd" else _time_kit
        seen, seconds, extra = timer(ns, cfg, device, options)
    if "startup_s" in extra:
        # the warm-up beyond `warmup` steady steps: compiling, capturing CUDA graphs, autotuning
        step = seconds / cfg["steps"]
        extra["compile_s"] = round(max(0.0, extra["startup_s"] - cfg["warmup"] * step), 3)
        extra["startup_s"] = round(extra["startup_s"], 3)
    result = {
        "images": seen,
        "seconds": round(seconds, 3),
        "img_per_s": round(seen / seconds, 1),
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline,
    }
    if device.type == "cuda":
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    result.update(extra)
    return result


def _in_child(name, cfg, phase="speed", cache=None):
    """run_recipe in a fresh process, so its peak memory is its own.

    ``cache``: a folder for torch.compile's caches, one per recipe: empty in the speed phase, so
    compile_s is what a first run pays, and reused by the same recipe's SWD phase.
    """
    # tqdm reads TQDM_DISABLE when it is imported: the child's train() then draws no bar.
    child_env = {"TQDM_DISABLE": "1"}
    if cache is not None:
        child_env["TORCHINDUCTOR_CACHE_DIR"] = str(Path(cache) / name / "inductor")
        child_env["TRITON_CACHE_DIR"] = str(Path(cache) / name / "triton")
    saved = {key: os.environ.get(key) for key in child_env}
    os.environ.update(child_env)
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            return pool.submit(run_recipe, name, cfg, phase).result()
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value


def parse_args(argv=None):
    """The command line; see --help."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput",
        description="Train the notebook's DCGAN for a fixed number of steps with the original "
        "course recipe and with the kit's fast path; print images/s, seconds and "
        "peak memory of each, their ratio, and one JSON line.",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="ImageFolder root to train on (default: what helpers.data.find_data_dir "
        "picks: processed_celeba_small/ if present, else the built-in faces)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed training steps per recipe (default: 300 on CUDA, 20 on the CPU, "
        "where one step of the full-size model takes seconds)",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed steps before the clock starts (default: 20 on CUDA, 2 on the CPU)",
    )
    add_device_argument(p)
    p.add_argument(
        "--batch-size",
        type=int,
        default=128,
        help="images per step (default: %(default)s, the paper's and notebook's)",
    )
    p.add_argument(
        "--conv-dim",
        type=int,
        default=64,
        help="conv_dim of both D and G (default: %(default)s, the notebook's)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=32,
        choices=IMAGE_SIZES,
        help="side of the training images in pixels (default: %(default)s, the notebook's "
        "networks; 64: the paper's 64x64 DCGAN, built here from the notebook's conv and "
        "deconv)",
    )
    p.add_argument(
        "--variants",
        nargs="*",
        default=None,
        metavar="OPTIONS",
        help="kit variants to measure besides the course recipe and the kit as the notebook "
        "runs it; each is options joined with '+': fused (fused Adam), fp32 (no bf16 "
        "autocast), compile=MODE (torch.compile, MODE one of default, reduce-overhead, "
        "max-autotune). CUDA only. Default on CUDA: " + " ".join(DEFAULT_VARIANTS) + "; on "
        "the CPU none. --variants with nothing after it measures none",
    )
    p.add_argument(
        "--swd-steps",
        type=int,
        default=0,
        metavar="N",
        help="then train each kit recipe (the kit and its variants) afresh for N steps from "
        "the same seed and report its SWD against --n-eval held-out images, to show the "
        "speed-ups keep quality at an equal number of steps (default: 0, skip)",
    )
    p.add_argument(
        "--n-eval",
        type=positive_int,
        default=1000,
        help="held-out images for --swd-steps, never trained on (default: %(default)s)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run the pair of recipes this many times, alternating, and keep each "
        "recipe's fastest run: on a shared machine this filters out slow-downs "
        "caused by other work (default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's own choice, one per core). On a "
        "machine busy with other work, 1 avoids threads waiting for each other",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run both recipes in this process instead of one fresh process each: "
        "faster to start, but the CPU peak memory is then the whole run's",
    )
    p.add_argument(
        "--json", default=None, metavar="PATH", help="also write the JSON result to this file"
    )
    return p.parse_args(argv)


def main(argv=None):
    """Run the benchmark; returns the result dict (also printed as the last line)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kit_compile_cache_") as cache:
        return _main(parse_args(argv), cache)


def _main(args, cache):
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    steps = args.steps if args.steps is not None else (300 if cuda else 20)
    warmup = args.warmup if args.warmup is not None else (20 if cuda else 2)
    data = Path(args.data) if args.data else find_data_dir(verbose=False)
    if args.swd_steps < 0:
        raise SystemExit(f"--swd-steps must be 0 (skip) or more, not {args.swd_steps}.")
    if args.variants is None:
        variants = list(DEFAULT_VARIANTS) if cuda else []
    else:
        variants = args.variants
        if variants and not cuda:
            raise SystemExit(
                f"--variants {' '.join(variants)}: the kit's GPU options are for CUDA GPUs "
                f"and this run is on {device}; leave --variants out (on the CPU the benchmark "
                f"compares the course recipe with the kit as it is)."
            )
    try:
        kit_recipes = list(dict.fromkeys(["kit"] + [variant_name(v) for v in variants]))
    except ValueError as error:
        raise SystemExit(f"--variants: {error}") from None

    # Decode once (or find the cache) before timing: a one-off cost, reported on its own line.
    decoded = kit_images(load_notebook(), data, args.image_size, args.batch_size)
    n_images = decoded.images.shape[0]
    swd_floor = None
    if args.swd_steps:
        if n_images < args.n_eval + args.batch_size + args.n_eval:
            raise SystemExit(
                f"--swd-steps needs {args.n_eval} held-out images, a batch of "
                f"{args.batch_size} and {args.n_eval} more for the real floor; {data} has "
                f"{n_images}. Lower --n-eval or use more images."
            )
        from helpers.metrics import sliced_wasserstein_distance

        # The floor: as many training images against the held-out ones; sampling noise alone.
        heldout = decoded.images[-args.n_eval :].float() / 127.5 - 1
        reference = decoded.images[: args.n_eval].float() / 127.5 - 1
        swd_floor = sliced_wasserstein_distance(heldout, reference)["average"]
        del heldout, reference
    del decoded.images
    cfg = {
        "data": str(data),
        "device": str(device),
        "steps": steps,
        "warmup": warmup,
        "batch_size": args.batch_size,
        "conv_dim": args.conv_dim,
        "image_size": args.image_size,
        "seed": args.seed,
        "threads": args.threads,
        "square": sources_are_square(data),
        "swd_steps": args.swd_steps,
        "n_eval": args.n_eval,
    }

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__} | device {device} ({device_name(device)}) | "
        f"{torch.get_num_threads()} threads | {os.cpu_count()} cores | "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"data: {data} ({n_images:,} images); kit cache {decoded.cache} in "
        f"{decoded.seconds:.1f} s (one-off, not in the timings)"
    )
    print(
        f"DCGAN conv_dim {args.conv_dim}, {args.image_size}x{args.image_size}, batch "
        f"{args.batch_size}: {warmup} warm-up + {steps} timed steps per recipe; course loader "
        f"{describe_course_transform(cfg)}"
        + ("" if cfg["square"] else " (sources are not square, so CenterCrop is added)")
    )

    names = ["course", *kit_recipes]
    results, all_rates = {}, {name: [] for name in names}
    for _ in range(args.repeats):
        for name in names:
            r = run_recipe(name, cfg) if args.in_process else _in_child(name, cfg, cache=cache)
            all_rates[name].append(r["img_per_s"])
            # a recipe's first run compiles with empty caches; later repeats hit them
            r["compile_s"] = (results.get(name) or r)["compile_s"]
            print(
                f"  {name}: {r['img_per_s']:.1f} img/s ({r['images']} images in "
                f"{r['seconds']:.2f} s; warm-up {r['startup_s']:.1f} s)",
                flush=True,
            )
            if name not in results or r["img_per_s"] > results[name]["img_per_s"]:
                results[name] = r
    for name, r in results.items():
        r["img_per_s_all_runs"] = all_rates[name]
    ratio = results["kit"]["img_per_s"] / results["course"]["img_per_s"]

    if cuda:
        memory = "peak CUDA MB"
    elif args.in_process:
        memory = "peak RSS MB (whole run, not per recipe)"
    else:
        memory = "peak RSS MB (process; above its start)"
    best = f" (fastest of {args.repeats} runs)" if args.repeats > 1 else ""
    width = max(len(name) for name in names)
    print(
        f"\n{'recipe':<{width}} {'img/s':>9} {'x course':>8} {'seconds':>8} {'compile s':>9}"
        f"   {memory}{best}"
    )
    for name, r in results.items():
        if cuda:
            mem = f"{r['peak_cuda_mb']:.1f}"
        else:
            mem = f"{r['peak_rss_mb']:.1f} (+{r['peak_rss_mb'] - r['baseline_rss_mb']:.1f})"
        r["x_course"] = round(r["img_per_s"] / results["course"]["img_per_s"], 3)
        print(
            f"{name:<{width}} {r['img_per_s']:>9.1f} {r['x_course']:>7.2f}x {r['seconds']:>8.2f}"
            f" {r['compile_s']:>9.1f}   {mem}"
        )
    print(f"kit / course: {ratio:.2f}x")

    swd = None
    if args.swd_steps:
        print(
            f"\nSWD x 1e3 after {args.swd_steps} steps from seed {args.seed}, against "
            f"{args.n_eval} held-out images (lower is better; real floor {swd_floor:.1f})"
        )
        swd = {"steps": args.swd_steps, "n_eval": args.n_eval, "floor": swd_floor, "recipes": {}}
        for name in kit_recipes:
            if args.in_process:
                r = run_recipe(name, cfg, "swd")
            else:
                r = _in_child(name, cfg, "swd", cache)
            swd["recipes"][name] = r
            print(f"  {name:<{width}} SWD {r['swd']:6.1f}   ({r['img_per_s']:.1f} img/s)")

    result = {
        "benchmark": "throughput",
        "torch": torch.__version__,
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "data": str(data),
        "n_images": n_images,
        **{k: cfg[k] for k in ("steps", "warmup", "batch_size", "conv_dim", "image_size")},
        "repeats": args.repeats,
        "isolated": not args.in_process,
        "recipes": results,
        "ratio_kit_over_course": round(ratio, 3),
        "swd": swd,
    }
    print_result(result, args.json)
    return result


if __name__ == "__main__":
    main()
