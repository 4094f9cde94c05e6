"""How fast does the built-in face dataset draw? (helpers/faces.py, "Get the data" step)

    python benchmarks/faces_speed.py                 # 10,000 faces of 64x64, one worker per core
    python benchmarks/faces_speed.py --n 2000 --workers 1

Draws into a fresh temporary folder (deleted afterwards), so a cached set never makes the time
look short. Prints images/s and total seconds, then one JSON line for scripts to read. It also
reports the CPU seconds used by this process and its workers: on a busy shared machine the wall
time grows, but CPU seconds / cores still tells what an idle machine would take.
"""

import argparse
import os
import pathlib
import platform
import resource
import sys
import tempfile
import time

# Run from a checkout without installing the kit: make `helpers` importable.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import print_result
from helpers.faces import DEFAULT_N, DEFAULT_SIZE, FACES_VERSION, make_faces


def _cpu_seconds():
    """User + system CPU time of this process and its finished children (the pool workers)."""
    usages = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usages)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time helpers.faces.make_faces.")
    parser.add_argument(
        "--n", type=int, default=DEFAULT_N, help=f"number of faces to draw (default: {DEFAULT_N})"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=DEFAULT_SIZE,
        help=f"image width and height in pixels (default: {DEFAULT_SIZE})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes to draw with (default: one per CPU core)",
    )
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="also write the JSON result to this file (default: print only)",
    )
    args = parser.parse_args(argv)

    workers = args.workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="faces_speed_") as tmp:
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        make_faces(tmp, n=args.n, size=args.size, workers=workers, progress=False)
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
        written = len(list(pathlib.Path(tmp, "faces").glob("*.png")))
    if written != args.n:
        sys.exit(f"expected {args.n} images, found {written}")

    result = {
        "benchmark": "faces_speed",
        "n": args.n,
        "size": args.size,
        "workers": workers,
        "seconds": round(seconds, 3),
        "images_per_s": round(args.n / seconds, 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_ms_per_image": round(1000 * cpu / args.n, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "faces_version": FACES_VERSION,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(
        f"{args.n} faces of {args.size}x{args.size} with {workers} worker(s): "
        f"{seconds:.2f} s total, {args.n / seconds:.0f} images/s "
        f"({cpu:.1f} CPU s, {1000 * cpu / args.n:.2f} ms of CPU per image)"
    )
    print_result(result, args.out)


if __name__ == "__main__":
    main()
