"""What judging costs the grader's trusted side: time and peak memory, per submission.

    python -m benchmarks.judge_bounds [--seed N] [--json PATH] [--no-part2]

Observes part 1's graded tests on the solution (in this process, as the sandbox would), sends
the observations through JSON, then judges them twice: in this process, one by one, as the
grader did before it forked its judge (judge_observation), and as the grader does now
(judge_observations: a forked child under a deadline and a memory cap). Then judges the crafted
attacks of tests/attacks/trusted.py the way the grader does now. Then, per observation (part 1's
and part 2's solution, and each attack), the grader's time after the sandbox ends and its peak
memory: the whole submission judged as the grader judges it, and each observation judged alone
in a forked child whose own peak is read (os.wait4). Prints tables and one JSON line; asserts
nothing.

Peak memory is a process's resident peak (ru_maxrss): this process's for the in-process
judging, the largest child's for the forked one; per observation, also what judging it added to
the child's resident size (the grader's pages it touched, and what it made).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import part2_unittests as part2
import problem_unittests as tests
from helpers.files import atomic_write
from helpers.instructor import grade
from tests.attacks import reported, trusted

__all__ = ["main", "measure"]


def _peak(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # MB


def _resident_mb() -> float:
    """This process's resident size now, in MB (Linux's /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def judged_alone(judge: Callable[..., Any], wire: Any, seed: int) -> dict[str, Any]:
    """Judge one observation (as sent) in a forked child, as the grader's judge child does:
    {seconds, peak_mb (the child's resident peak), added_mb (that peak less what the child
    held when it started judging: what judging added), passed, message}."""
    read_end, write_end = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            import torch

            torch.set_num_threads(1)
            os.close(read_end)
            resident = _resident_mb()  # what the child holds of the grader's pages, forked
            passed, message = grade.judge_observation(judge, wire, seed)
            added = _peak(resource.RUSAGE_SELF) - resident
            os.write(write_end, json.dumps([passed, message[:90], added]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, _, usage = os.wait4(pid, 0)
    passed, message, added = json.loads(data) if data else (False, "ended without a verdict", 0)
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "peak_mb": round(usage.ru_maxrss / 1024),
        "added_mb": round(max(0.0, added)),
        "passed": passed,
        "message": message,
    }


def per_observation(seed: int = trusted.SEED, part2_too: bool = True) -> dict[str, Any]:
    """The grader's time after the sandbox ends and its peak memory, per submission and per
    observation: the solution's (part 1's, and part 2's with `part2_too`) judged whole as the
    grader judges them (judge_observations) and one by one (judged_alone), and each crafted
    attack of tests/attacks/trusted.py judged alone."""
    parts = {"part 1": tests}
    if part2_too:
        parts["part 2"] = part2
    result: dict[str, Any] = {"submissions": {}, "observations": {}}
    for part, module in parts.items():
        wires = {
            name: trusted.wire(reported.solution_observation(name, seed))
            for name in sorted(module.VERDICTS)
        }
        started = time.perf_counter()
        verdicts = grade.judge_observations(
            [(module.VERDICTS[n][1], w) for n, w in wires.items()], seed
        )
        result["submissions"][f"{part} solution"] = {
            "seconds": round(time.perf_counter() - started, 3),
            "peak_mb": round(_peak(resource.RUSAGE_CHILDREN)),  # the largest child so far
            "passed": sum(p for p, _ in verdicts),
            "total": len(verdicts),
            "json_mb": round(sum(len(json.dumps(w)) for w in wires.values()) / 1e6, 1),
        }
        for name, wire in wires.items():
            row = judged_alone(module.VERDICTS[name][1], wire, seed)
            result["observations"][f"{part}: {name}"] = row
    honest = trusted.solution_observations(["test_discriminator", "test_generator", "test_train"])
    generator = trusted.over_the_wire(honest["test_generator"])
    attacks = {
        "huge stride deconv": ("test_generator", trusted.huge_stride_deconv(generator)),
        "stride 1000, 1x1 kernel": (
            "test_generator",
            trusted.stride_in_odd_forms(trusted.huge_stride_deconv(generator), [1000, 1000]),
        ),
        "one-element stride": ("test_generator", trusted.stride_in_odd_forms(generator, [2])),
        "5-D input": (
            "test_discriminator",
            trusted.odd_rank_input(trusted.over_the_wire(honest["test_discriminator"])),
        ),
        "400 extra events": (
            "test_train",
            trusted.flood_of_noise(trusted.over_the_wire(honest["test_train"])),
        ),
    }
    for label, (name, obs) in attacks.items():
        row = judged_alone(tests.VERDICTS[name][1], trusted.wire(obs), seed)
        result["observations"][f"attack: {label}"] = row
    result["self_mb"] = round(_peak(resource.RUSAGE_SELF))
    return result


def measure(seed: int = trusted.SEED) -> dict[str, Any]:
    """{"solution": per test {seconds, peak_mb} in process and forked, "attacks": per attack
    {seconds, passed, message}, "peak_mb": this process's and its children's}."""
    honest = trusted.solution_observations(seed=seed)
    wires = {name: trusted.wire(obs) for name, obs in honest.items()}
    rows: dict[str, Any] = {}
    for name, obs in wires.items():
        judge = tests.VERDICTS[name][1]
        started = time.perf_counter()
        passed, _ = grade.judge_observation(judge, obs, seed)
        in_process = time.perf_counter() - started
        started = time.perf_counter()
        ((forked_passed, _),) = grade.judge_observations([(judge, obs)], seed)
        rows[name] = {
            "in_process_s": round(in_process, 3),
            "in_process_peak_mb": round(_peak(resource.RUSAGE_SELF)),
            "forked_s": round(time.perf_counter() - started, 3),
            "forked_peak_mb": round(_peak(resource.RUSAGE_CHILDREN)),
            "passed": passed and forked_passed,
        }
    attacks = {
        "huge stride deconv": (
            "test_generator",
            trusted.huge_stride_deconv(trusted.over_the_wire(honest["test_generator"])),
        ),
        "stride 1000, 1x1 kernel": (
            "test_generator",
            trusted.stride_in_odd_forms(
                trusted.huge_stride_deconv(trusted.over_the_wire(honest["test_generator"])),
                [1000, 1000],
            ),
        ),
        "one-element stride": (
            "test_generator",
            trusted.stride_in_odd_forms(trusted.over_the_wire(honest["test_generator"]), [2]),
        ),
        "5-D input": (
            "test_discriminator",
            trusted.odd_rank_input(trusted.over_the_wire(honest["test_discriminator"])),
        ),
        "400 extra events": (
            "test_train",
            trusted.flood_of_noise(trusted.over_the_wire(honest["test_train"])),
        ),
    }
    attacked: dict[str, Any] = {}
    for label, (name, obs) in attacks.items():
        started = time.perf_counter()
        ((passed, message),) = grade.judge_observations(
            [(tests.VERDICTS[name][1], trusted.wire(obs))], seed
        )
        attacked[label] = {
            "seconds": round(time.perf_counter() - started, 3),
            "passed": passed,
            "message": message[:90],
        }
    return {
        "solution": rows,
        "solution_in_process_s": round(sum(r["in_process_s"] for r in rows.values()), 2),
        "solution_forked_s": round(sum(r["forked_s"] for r in rows.values()), 2),
        "attacks": attacked,
        "peak_mb": {
            "self": round(_peak(resource.RUSAGE_SELF)),
            "children": round(_peak(resource.RUSAGE_CHILDREN)),
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: measure, print a table and one JSON line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.judge_bounds",
        description="Time and peak memory of the grader's judging of the solution's "
        "observations (in process, and forked as the grader now does) and of crafted attacks.",
    )
    parser.add_argument("--seed", type=int, default=trusted.SEED, help="the grader's seed")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON line to PATH")
    parser.add_argument(
        "--no-part2",
        action="store_true",
        help="leave part 2's solution out of the per-observation table",
    )
    args = parser.parse_args(argv)
    result = measure(args.seed)
    result["per_observation"] = per_observation(args.seed, part2_too=not args.no_part2)
    print(f"{'test':<26} {'in process s':>12} {'forked s':>9} {'passed':>7}")
    for name, row in result["solution"].items():
        print(f"{name:<26} {row['in_process_s']:>12} {row['forked_s']:>9} {row['passed']!s:>7}")
    print(f"{'total':<26} {result['solution_in_process_s']:>12} {result['solution_forked_s']:>9}")
    print()
    for label, row in result["attacks"].items():
        print(f"{label:<26} {row['seconds']:>8} s  {row['message']}")
    print(
        f"\npeak memory: {result['peak_mb']['self']} MB here, {result['peak_mb']['children']} "
        "MB the largest judging child"
    )
    table = result["per_observation"]
    print(f"\n{'submission, judged whole':<40} {'seconds':>8} {'peak MB':>8} {'passed':>7}")
    for label, row in table["submissions"].items():
        passed = f"{row['passed']}/{row['total']}"
        print(f"{label:<40} {row['seconds']:>8} {row['peak_mb']:>8} {passed:>7}")
    print(
        f"\n{'observation, judged alone':<40} {'seconds':>8} {'peak MB':>8} {'added':>6}  verdict"
    )
    for label, row in table["observations"].items():
        verdict = "passed" if row["passed"] else row["message"][:50]
        print(
            f"{label:<40} {row['seconds']:>8} {row['peak_mb']:>8} {row['added_mb']:>6}  {verdict}"
        )
    worst = max(table["observations"].values(), key=lambda r: r["seconds"])
    heaviest = max(r["peak_mb"] for r in table["observations"].values())
    added = max(r["added_mb"] for r in table["observations"].values())
    print(
        f"\nslowest observation {worst['seconds']} s; highest peak {heaviest} MB (judging one "
        f"added at most {added} MB)"
    )
    line = json.dumps(result)
    print(line)
    if args.json:
        with atomic_write(args.json, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
