"""The grader's code that runs inside the sandbox (the learner side): it runs the learner's
definition cells and the graded tests, each test in its own process, and answers the trusted
grader (helpers.instructor.grade) in JSON lines.

- ``job``: what both sides share: the job's data types (Cell, GradedTest) and the caps on what
  comes back;
- ``tests_process``: one test's process: the definition cells, then the graded test;
- ``scheduler``: the learner side's entry point (``learner_side``) and the scheduler of the test
  processes.

Ships into the sandbox, never to learners. Nothing here imports ``helpers.instructor``: the
sandbox does not have it.
"""

__all__: list[str] = []
