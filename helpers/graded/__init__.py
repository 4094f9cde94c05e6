"""The graded tests' machinery: what ``problem_unittests.py`` and ``part2_unittests.py`` are built
on (failure messages, network and training checks, replay, the observe/judge split).

Ships to learners (their notebook's graded-test cells run it) and into the grader's sandbox.
"""

__all__: list[str] = []  # import the modules themselves: helpers.graded.failures, ...
