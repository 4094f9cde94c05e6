"""Specification of helpers.sandbox's mount order: what the sandbox binds stays visible."""

import pytest

from helpers import grade, sandbox
from helpers.notebook import NOTEBOOK


def test_a_python_environment_under_tmp_is_not_hidden_by_the_empty_tmp(monkeypatch, tmp_path):
    # A CI clone (and its .venv) may live under /tmp. bwrap applies mounts in order, so the empty
    # /tmp must come before the environment's binds, or it hides them (the learner side then
    # fails to start, with exit status 127).
    venv = "/tmp/ci-clone/.venv"
    monkeypatch.setattr(sandbox, "_python_paths", lambda: [venv])
    cmd = sandbox.command(tmp_path, ["python", "-c", "pass"], sandbox.Limits(), {})
    pairs = list(zip(cmd, cmd[1:]))
    tmp_mount = pairs.index(("--tmpfs", "/tmp"))
    venv_bind = pairs.index(("--ro-bind", venv))
    kit_bind = pairs.index(("--ro-bind", str(tmp_path)))
    assert tmp_mount < venv_bind and tmp_mount < kit_bind, cmd


def test_a_sandbox_that_does_not_start_is_a_grader_fault_not_a_zero(monkeypatch):
    # bwrap can fail before the learner side runs (namespaces under load): the submission was
    # never graded, so the grader must say so instead of reporting 0 points.
    def broken(*args, **kwargs):
        return sandbox.Outcome(b"", b"bwrap: Creating new namespace failed", 1, False, False, 0.1)

    monkeypatch.setattr(sandbox, "run_in_sandbox", broken)
    with pytest.raises(sandbox.SandboxUnavailable, match="did not start.*Creating new namespace"):
        grade.grade(NOTEBOOK, sandbox=True)
