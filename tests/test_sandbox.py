"""Specification of helpers.sandbox's mount order: what the sandbox binds stays visible."""

from helpers import sandbox


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
