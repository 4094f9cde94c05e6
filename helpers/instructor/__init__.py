"""The instructor's tools: grade a notebook or a class, build the learner release, the grader's
sandbox host, and the rule for what ships where (``shipping``).

Never ships to learners nor into the sandbox: it is the trusted side.
"""

__all__: list[str] = []
