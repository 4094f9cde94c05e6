"""How long do the kit's quality metrics take? Prints seconds; asserts nothing.

    python -m benchmarks.metrics_speed                      # 1,000 vs 1,000 images at 32x32
    python -m benchmarks.metrics_speed --size 64 --device cuda

The images are random smooth colour fields with a little noise: the timing depends only on
their number and size, not on what they show.
"""

import argparse
import time

import torch
import torch.nn.functional as F

from helpers.metrics import nearest_neighbour_distance, sliced_wasserstein_distance


def smooth_images(n, size, seed):
    """(n, 3, size, size) in [-1, 1]: 4x4 random colours upsampled, plus noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    images = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return (images + 0.1 * torch.randn(images.shape, generator=g)).clamp(-1, 1)


def timed(label, function, device):
    start = time.perf_counter()
    result = function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    print(f"{label}: {time.perf_counter() - start:.2f} s")
    return result


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--images",
        type=int,
        default=1000,
        help="images per set for the SWD, and generated images for the "
        "nearest-neighbour search (default 1000)",
    )
    parser.add_argument(
        "--training",
        type=int,
        default=20000,
        help="training images for the nearest-neighbour search (default 20000)",
    )
    parser.add_argument(
        "--size", type=int, default=32, help="image height and width in pixels (default 32)"
    )
    parser.add_argument(
        "--device", default="cpu", help="torch device to run on, e.g. cpu or cuda (default cpu)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="times to run each metric; the first run includes warm-up (default 2)",
    )
    args = parser.parse_args()

    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, "
        f"{args.images} images of {args.size}x{args.size}"
    )
    real = smooth_images(args.images, args.size, seed=0).to(device)
    fake = smooth_images(args.images, args.size, seed=1).to(device)
    training = smooth_images(args.training, args.size, seed=2).to(device)
    for run in range(args.repeat):
        result = timed(
            f"run {run + 1}: SWD {args.images} vs {args.images}",
            lambda: sliced_wasserstein_distance(real, fake),
            device,
        )
        levels = ", ".join(f"{res}: {value:.1f}" for res, value in result["levels"].items())
        print(f"    SWD x1e3 by level {{{levels}}}, average {result['average']:.2f}")
        result = timed(
            f"run {run + 1}: nearest neighbour {args.images} vs {args.training}",
            lambda: nearest_neighbour_distance(fake, training),
            device,
        )
        print(f"    mean distance {result['mean']:.3f}")


if __name__ == "__main__":
    main()
