"""What judging costs the grader's trusted side: time and peak memory, per submission.

    python -m benchmarks.judge_bounds [--seed N] [--json PATH]

Observes part 1's graded tests on the solution (in this process, as the sandbox would), sends
the observations through JSON, then judges them twice: in this process, one by one, as the
grader did before it forked its judge (judge_observation), and as the grader does now
(judge_observations: a forked child under a deadline and a memory cap). Then judges the crafted
attacks of tests/attacks/trusted.py the way the grader does now. Prints a table and one JSON
line; asserts nothing.

Peak memory is the process's own (resource.getrusage's ru_maxrss): this process's for the
in-process judging, the largest child's for the forked one.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import problem_unittests as tests
from helpers.files import atomic_write
from helpers.instructor import grade
from tests.attacks import trusted

__all__ = ["main", "measure"]


def _peak(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # MB


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
    args = parser.parse_args(argv)
    result = measure(args.seed)
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
    line = json.dumps(result)
    print(line)
    if args.json:
        with atomic_write(args.json, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
