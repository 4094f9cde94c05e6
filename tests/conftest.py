"""Shared pytest setup for the kit's own test suite."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Kernels and subprocesses the tests start import this checkout too, not another installed copy
# (the solution notebook's kernel runs in solution/, where only an install would find the kit).
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
)
os.environ.setdefault("MPLBACKEND", "Agg")  # plots render headless in tests


@pytest.fixture(scope="module")
def needs_sandbox():
    """The attack suites run in the real bubblewrap sandbox: under CI a missing one is a failure,
    elsewhere the module is skipped with the reason."""
    from helpers.instructor import sandbox

    unavailable = sandbox.available()
    if unavailable:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the attack suite in the sandbox: {unavailable}")
        pytest.skip(f"no sandbox here: {unavailable}")


def pytest_terminal_summary(terminalreporter):
    """Print the mutation suite's catch-rate table when it ran."""
    module = sys.modules.get("tests.test_mutants")
    results = getattr(module, "RESULTS", None)
    if not results:
        return
    from collections import defaultdict

    table = defaultdict(lambda: [0, 0])
    for test, _, caught in results:
        table[test][0] += caught
        table[test][1] += 1
    write = terminalreporter.write_line
    write("")
    write("Mutation suite: realistic learner mistakes rejected by each graded test")
    write(f"| {'graded test':<22} | mutants | caught | catch rate |")
    write(f"|{'-' * 24}|---------|--------|------------|")
    for test in sorted(table):
        caught, total = table[test]
        write(f"| {test:<22} | {total:7d} | {caught:6d} | {caught / total:10.0%} |")
    caught = sum(c for c, _ in table.values())
    total = sum(t for _, t in table.values())
    write(f"| {'total':<22} | {total:7d} | {caught:6d} | {caught / total:10.0%} |")
