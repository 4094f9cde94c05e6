"""Specification of helpers.instructor.sandbox: its mount order (what the sandbox binds stays
visible), its cgroups, and the caps on its writable space and memory."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.instructor import grade, sandbox
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


def test_each_pids_cgroup_is_new_and_removing_it_kills_what_is_left():
    # A sandbox's group must never be reused: after a fork bomb its dying tasks can keep it full
    # for seconds, and the next sandbox's bwrap could not even start (a CI failure once).
    first = sandbox._pids_cgroup(8)
    if first is None:
        pytest.skip("no writable pids cgroup here (not root, or cgroups read-only)")
    second = sandbox._pids_cgroup(8)
    try:
        assert second != first
        left = subprocess.Popen(
            ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec sleep 60', str(first)]
        )
        for _ in range(50):  # until the shell has joined the group
            if (first / "cgroup.procs").read_text().split():
                break
            time.sleep(0.1)
        sandbox._remove_cgroup(first)
        assert not first.exists()
        assert left.wait(timeout=10) == -signal.SIGKILL
    finally:
        sandbox._remove_cgroup(first)
        sandbox._remove_cgroup(second)


def test_every_tmpfs_of_the_sandbox_has_a_size():
    # At the kernel's default a tmpfs may grow to half the machine's memory, each of them.
    cmd = sandbox.command("/bundle", ["true"], sandbox.Limits(tmp_mb=7, scratch_mb=9), {})
    sized = {cmd[i + 3]: int(cmd[i + 1]) >> 20 for i in range(len(cmd) - 3) if cmd[i] == "--size"}
    assert sized == {"/tmp": 7, "/dev/shm": 7, sandbox.SCRATCH: 9}
    assert cmd.count("--tmpfs") == 3


def test_a_report_names_the_caps_and_says_when_memory_is_not_capped(monkeypatch):
    # Without a memory cgroup (not root, no delegation) the sandbox still runs, but the report's
    # sandbox line must say that its memory is capped per process only.
    monkeypatch.setattr(sandbox, "_memory_cgroup", lambda limit_mb: None)
    text = sandbox.mode(0, sandbox.Limits())
    assert "256 MB (/tmp)" in text and "memory NOT capped" in text


def test_the_sandbox_joins_its_memory_cgroup_before_dropping_its_uid():
    # Every process of the sandbox must be counted from its first, and a shell started under the
    # unprivileged uid could not move itself into a cgroup v2: join as root, then drop.
    group = sandbox._memory_cgroup(64)
    if group is None:
        pytest.skip("no memory cgroup can be made here (not root, no delegated cgroup v2)")
    try:
        uid = sandbox.OUTSIDE_UID + 7
        drop = {"user": uid, "group": uid, "extra_groups": []}
        cmd, popen = sandbox._joining(
            [group], ["/bin/sh", "-c", "id -u; cat /proc/self/cgroup"], drop
        )
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, **popen).stdout
        assert popen == {} and out.splitlines()[0] == str(uid)
        assert group.name in out, out
    finally:
        sandbox._remove_cgroup(group)


def test_the_kit_stays_hidden_when_it_lies_inside_a_folder_the_sandbox_shows(monkeypatch, tmp_path):
    # Installed as a system package (/usr/local/share/...), the kit would lie inside the sandbox's
    # read-only /usr: the learner's code could read the solution notebook and score full marks.
    # Here `shown` stands for such a folder, bound as the Python environment's folders are.
    shown = tmp_path / "share"
    kit = shown / "kit"
    (kit / "solution").mkdir(parents=True)
    (kit / "solution" / "answers.ipynb").write_text("{}")
    (kit / ".venv").mkdir()  # what the environment needs from inside the kit stays visible
    (kit / ".venv" / "marker").write_text("env")
    (shown / "neighbour").write_text("seen")
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    python = sandbox._python_paths()
    binds = [*python, str(shown), str(kit / ".venv")]
    monkeypatch.setattr(sandbox, "_python_paths", lambda: binds)
    monkeypatch.setattr(sandbox, "_kit_folders", lambda: [kit])
    look = (
        "import os, sys; a, b, c, kit = sys.argv[1:]; "
        "print(os.path.exists(a), open(b).read(), open(c).read(), *os.listdir(kit))"
    )
    paths = [str(kit / "solution" / "answers.ipynb"), str(kit / ".venv" / "marker")]
    outcome = sandbox.run_in_sandbox(
        [sys.executable, "-c", look, *paths, str(shown / "neighbour"), str(kit)], b"", 60, 10_000
    )
    assert outcome.returncode == 0 and not outcome.timed_out, outcome.stderr[-500:]
    # the kit's folder is empty but for the environment's folder bound again inside it
    assert outcome.stdout.decode().split() == ["False", "env", "seen", ".venv"], outcome.stdout


def test_a_kit_under_usr_is_hidden_and_one_under_tmp_needs_no_mask(monkeypatch, tmp_path):
    monkeypatch.setattr(
        sandbox, "_python_paths", lambda: ["/opt/env", "/usr/local/share/kit/.venv"]
    )
    monkeypatch.setattr(sandbox, "_kit_folders", lambda: [Path("/usr/local/share/kit")])
    cmd = sandbox.command(tmp_path, ["true"], sandbox.Limits(), {})
    pairs = list(zip(cmd, cmd[1:]))
    mask = pairs.index(("--tmpfs", "/usr/local/share/kit"))
    assert (
        pairs.index(("--ro-bind", "/usr"))
        < mask
        < pairs.index(("--ro-bind", "/usr/local/share/kit/.venv"))
    )
    monkeypatch.setattr(sandbox, "_kit_folders", lambda: [Path("/tmp/ci-clone")])
    cmd = sandbox.command(tmp_path, ["true"], sandbox.Limits(), {})
    assert "/tmp/ci-clone" not in cmd  # the empty /tmp already hides a clone under /tmp
