"""What the trusted grader and the learner side share: the job's data types and the caps on what
crosses back.

The trusted side (helpers.instructor.grade) builds the job from the submission and the kit; the
learner side (helpers.sandboxed.scheduler) reads it as JSON, never as a pickle.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

__all__ = [
    "LOG_TAIL",
    "MAX_CHILD_REPLY",
    "MAX_JOB",
    "MAX_LINE",
    "Cell",
    "GradedTest",
    "how_it_ended",
]

# Caps on what crosses from the learner side (bytes).
MAX_LINE = 24 * 1024 * 1024  # one line: one test's observation
MAX_CHILD_REPLY = MAX_LINE  # one test process's reply to the learner-side scheduler
MAX_JOB = 64 * 1024 * 1024  # the job the trusted side sends in
LOG_TAIL = 256 * 1024  # read from the end of a test process's log


@dataclass
class GradedTest:
    """One graded test as the kit's notebook calls it: ``tests.<name>(<args>)``."""

    name: str  # "test_optimizers"
    args: list[str]  # argument expressions: ["D", "G", "d_optimizer", ...]
    module: str  # the kit's tests module that holds it (helpers.instructor.cells.TESTS_MODULES)
    needs: list[str] = field(default_factory=list)  # names the arguments read
    signature: str = ""  # "train(D, G, ...)" when the kit checks the call first

    @property
    def call(self) -> str:
        """The call as the notebook writes it: ``tests.test_scale(scale)``."""
        return f"tests.{self.name}({', '.join(self.args)})"


@dataclass
class Cell:
    """A code cell of the submission: its 1-based position among all the notebook's cells.

    `run` is what the grader executes: the cell as plain Python with its top-level statements
    that call the graded tests replaced by ``pass`` (same line numbers). The original course
    puts ``tests.test_discriminator(Discriminator)`` in the cell that defines the class.
    `binds` are the names the trusted side read that it defines, so the learner side can say
    which cell should have defined a missing name without reading the cells itself.
    """

    number: int
    source: str
    run: str = ""
    binds: list[str] = field(default_factory=list)

    @property
    def excerpt(self) -> str:
        """The cell's first non-blank line, at most 40 characters."""
        first = next((line.strip() for line in self.source.splitlines() if line.strip()), "")
        return first if len(first) <= 40 else first[:37] + "..."


def how_it_ended(exitcode: object) -> str:
    """A process's exit status in words: 'crashed (SIGSEGV)', 'ended with status 3', ..."""
    if not isinstance(exitcode, int) or not -128 < exitcode < 256:  # a status the learner forged
        return f"ended with a status the grader cannot read ({str(exitcode)[:20]})"
    if exitcode < 0:
        try:
            return f"crashed ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"crashed (signal {-exitcode})"
    return f"ended with status {exitcode}"
