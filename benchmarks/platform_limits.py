"""What grading one submission costs, against the platforms' default limits (issue 22).

    python -m benchmarks.platform_limits [--parts 1 2] [--timeout 60] [--workers 2] [--json PATH]

Grades the solution and the bare learner release of each part with ``python -m helpers grade``
(in the bubblewrap sandbox, as an instructor grades) and prints, per submission:

- CPU-seconds of the whole process tree (user + system, children included: the difference of
  ``resource.getrusage(RUSAGE_CHILDREN)`` around the grade, which counts every descendant that
  was waited for), and, where a cpuacct (v1) or cpu (v2) cgroup can be made for the grade, that
  cgroup's total, which also counts processes no parent waited for (those killed with the
  sandbox's PID namespace);
- wall time;
- peak memory of the tree: ``memory.peak`` (cgroup v2) or ``memory.max_usage_in_bytes``
  (cgroup v1) of a memory cgroup made for the grade, when this process may make one (as root);
  both count the page cache the tree reads into memory (torch's libraries), as the platforms'
  limits do; and the peak of the cgroup's anonymous memory alone (``total_rss`` in v1's
  ``memory.stat``, ``anon`` in v2's), sampled every 20 ms, which leaves the page cache out (the
  kernel evicts cache before it kills a process at the limit). Without a cgroup, the largest
  single process's max RSS is printed instead, and the table says which.

Gradescope's defaults: 300 CPU-seconds (10 min x 0.5 vCPU), 768 MB. PrairieLearn's: 30 s of
wall time. The numbers depend on the machine: say which one gave them. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import print_result
from helpers.notebook import NOTEBOOK, PART2_NOTEBOOK, ROOT

__all__ = ["cpu_cgroup", "main", "measure", "memory_cgroup"]

GRADESCOPE_CPU_S = 300.0
GRADESCOPE_MEMORY_MB = 768.0


def memory_cgroup() -> tuple[Path, str] | None:
    """A fresh memory cgroup under this process's own, and the file holding its peak; None
    when none can be made here (not root, no memory controller)."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and "memory" in _read(Path("/sys/fs/cgroup/cgroup.controllers")):
            candidates.append((Path("/sys/fs/cgroup") / path.lstrip("/"), "memory.peak"))
        elif "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            candidates.append((base, "memory.max_usage_in_bytes"))
    for parent, peak in candidates:
        group = parent / f"platform_limits_{os.getpid()}_{time.monotonic_ns()}"
        try:
            group.mkdir()
        except OSError:
            continue
        if (group / peak).exists():
            return group, peak
        group.rmdir()
    return None


def cpu_cgroup() -> tuple[Path, str] | None:
    """A fresh cgroup that counts CPU time (v1 cpuacct, or v2), and the file that holds it;
    None when none can be made here."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            parent, usage = Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/"), "cpuacct.usage"
        elif controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            parent, usage = Path("/sys/fs/cgroup") / path.lstrip("/"), "cpu.stat"
        else:
            continue
        group = parent / f"platform_limits_{os.getpid()}_{time.monotonic_ns()}"
        try:
            group.mkdir()
        except OSError:
            continue
        if (group / usage).exists():
            return group, usage
        group.rmdir()
    return None


def _cpu_seconds(group: Path, usage: str) -> float:
    text = (group / usage).read_text()
    if usage == "cpu.stat":  # v2: "usage_usec N" on the first line
        return int(text.split()[1]) / 1e6
    return int(text) / 1e9  # v1 cpuacct.usage: nanoseconds


def _sample_anon(stat: Path, stop: threading.Event, peak: list[int]) -> None:
    """Keep in peak[0] the largest anonymous memory (bytes) memory.stat `stat` shows."""
    keys = ("total_rss", "anon")
    while not stop.wait(0.02):
        for line in _read(stat).splitlines():
            name, _, value = line.partition(" ")
            if name in keys:
                peak[0] = max(peak[0], int(value))
                break


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _join(*groups: Path) -> Callable[[], None]:
    def join() -> None:
        for group in groups:
            (group / "cgroup.procs").write_text(str(os.getpid()))

    return join


def measure(notebook: Path, timeout: float, workers: int) -> dict[str, object]:
    """Grade `notebook` once; its CPU-seconds, wall seconds, peak memory (MB) and score."""
    cgroup, cpu_group = memory_cgroup(), cpu_cgroup()
    groups = [g[0] for g in (cgroup, cpu_group) if g]
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "helpers", "grade", str(notebook)]
        command += ["--json", str(report_path), "--timeout", str(timeout)]
        command += ["--workers", str(workers)]
        stop, anon = threading.Event(), [0]
        if cgroup:
            sampler = threading.Thread(
                target=_sample_anon, args=(cgroup[0] / "memory.stat", stop, anon), daemon=True
            )
            sampler.start()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            preexec_fn=_join(*groups) if groups else None,
        )
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        stop.set()
        report = json.loads(report_path.read_text()) if report_path.exists() else None
    if cgroup:
        group, peak_file = cgroup
        peak_mb = int((group / peak_file).read_text()) / 2**20
        how = f"cgroup {'v2' if peak_file == 'memory.peak' else 'v1'} {peak_file}"
        group.rmdir()
    else:
        peak_mb = after.ru_maxrss / 1024  # kB on Linux; the largest process, not the sum
        how = "largest process's max RSS (no cgroup could be made)"
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu_cgroup_s = None
    if cpu_group:
        cpu_cgroup_s = round(_cpu_seconds(*cpu_group), 1)
        cpu_group[0].rmdir()
    if report is None:
        raise RuntimeError(f"grading {notebook} wrote no report: {done.stderr.decode()[-800:]}")
    return {
        "cpu_s": round(cpu, 1),
        "cpu_s_cgroup": cpu_cgroup_s,
        "wall_s": round(wall, 1),
        "peak_mb": round(peak_mb),
        "peak_anon_mb": round(anon[0] / 2**20) if cgroup else None,
        "memory": how,
        "score": f"{report['passed']}/{report['total']}",
        "sandbox": report.get("sandbox", ""),
    }


def main(argv: list[str] | None = None) -> int:
    """Grade each part's solution and bare release and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.platform_limits",
        description="CPU-seconds, wall time and peak memory of grading one submission.",
    )
    parser.add_argument("--parts", type=int, nargs="+", choices=(1, 2), default=[1, 2])
    parser.add_argument("--timeout", type=float, default=60.0, help="per test (seconds)")
    parser.add_argument("--workers", type=int, default=2, help="tests at once")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON line to PATH")
    args = parser.parse_args(argv)
    kit = {1: NOTEBOOK, 2: PART2_NOTEBOOK}
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"limits: Gradescope {GRADESCOPE_CPU_S:g} CPU-s and {GRADESCOPE_MEMORY_MB:g} MB, "
        "PrairieLearn 30 s wall"
    )
    print(
        f"{'submission':<22} {'score':>6} {'CPU-s':>7} {'cgroup CPU-s':>12} {'wall s':>7} "
        f"{'peak MB':>8} {'anon MB':>8}"
    )
    memory, rows = "", {}
    for part in args.parts:
        # The kit's top-level learner edition is the bare release (a test keeps them equal).
        for label, notebook in (("solution", kit[part]), ("bare release", ROOT / kit[part].name)):
            row = measure(notebook, args.timeout, args.workers)
            rows[f"part {part} {label}"] = row
            memory = str(row["memory"])
            print(
                f"{f'part {part} {label}':<22} {row['score']:>6} {row['cpu_s']:>7} "
                f"{row['cpu_s_cgroup'] or '-':>12} {row['wall_s']:>7} {row['peak_mb']:>8} "
                f"{row['peak_anon_mb'] or '-':>8}",
                flush=True,
            )
    print(f"peak memory: {memory}; sandbox: {row['sandbox']}")
    machine = {"cores": os.cpu_count(), "load": round(os.getloadavg()[0], 1)}
    return print_result({"machine": machine, "submissions": rows}, args.json)


if __name__ == "__main__":
    sys.exit(main())
