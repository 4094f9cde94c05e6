"""The grader against hostile submissions (tests/attacks): no point gained, no harm done.

Each attack is graded in its own bubblewrap sandbox on test_scale (fast; the attacks target it).
After each: the kit's files are unchanged, no process of the attack is left, nothing was written
on the host, and no connection reached the host. At the end the solution still gets full marks.
The in-process forgeries (fake verdicts, replaced test functions, patched checks) gain nothing
because test_scale is judged in the grader's own process from what the sandbox observed. Part 2's
attacks (a forged observation, a patched judge) are graded the same way on its test_slerp.
"""

import hashlib
import os
import socket
import threading
import uuid

import nbformat
import pytest

from helpers.instructor import grade
from helpers.instructor.release import make_release
from helpers.notebook import NOTEBOOK, PART2_NOTEBOOK, ROOT
from tests.attacks import ATTACKS, PART2_SUBMISSIONS, SUBMISSIONS

MARK = f"dcgan-attack-{uuid.uuid4().hex[:12]}"
pytestmark = pytest.mark.usefixtures("needs_sandbox")  # tests/conftest.py


def kit_fingerprint():
    """sha256 of every kit file a learner could want to change, by path."""
    paths = [
        ROOT / "problem_unittests.py",
        ROOT / "part2_unittests.py",
        ROOT / "workspace_utils.py",
        NOTEBOOK,
        PART2_NOTEBOOK,
        ROOT / "tests" / "mutants.py",
    ]
    paths += sorted((ROOT / "helpers").glob("*.py"))
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def processes_with(mark):
    """Pids of live processes whose command line contains `mark`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mark.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


class Listener:
    """A TCP server on the host's loopback that records whether anyone connected."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.sock.settimeout(0.5)
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    path, _, _ = make_release(NOTEBOOK, tmp_path_factory.mktemp("release"))
    return path


@pytest.fixture(scope="module")
def part2_release(tmp_path_factory):
    path, _, _ = make_release(PART2_NOTEBOOK, tmp_path_factory.mktemp("release2"))
    return path


def attack_notebook(release, folder, name, canary, port):
    """The release with the submission's attack cells appended (tagged solution, so the grader
    runs them, each on its own, after the stubs)."""
    nb = nbformat.read(release, as_version=4)
    submissions = {**SUBMISSIONS, **PART2_SUBMISSIONS}
    for attack in submissions.get(name, [name]):  # a submission, or one attack alone
        code = ATTACKS[attack]["code"].replace("{MARK}", MARK).replace("{CANARY}", str(canary))
        nb.cells.append(
            nbformat.v4.new_code_cell(
                code.replace("{PORT}", str(port)), metadata={"tags": ["solution"]}
            )
        )
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def grade_attacks(release, tmp_path_factory, submissions, test):
    """Grade each submission once (sandbox on, `test` only); {name: (report, harm)}."""
    results = {}
    for name in submissions:
        folder = tmp_path_factory.mktemp(name)
        canary = folder / "canary.txt"
        canary.write_text("secret-" + MARK)
        before = kit_fingerprint()
        listener = Listener()
        os.environ["DCGAN_GRADER_SECRET"] = "secret-value-" + MARK  # must never reach a report
        try:
            report = grade.grade(
                attack_notebook(release, folder, name, canary, listener.port),
                timeout=60,
                only=[test],
            )
        finally:
            os.environ.pop("DCGAN_GRADER_SECRET")
            listener.close()
        written = [
            p
            for p in (
                f"{canary}.written",
                f"{canary}.pickled",
                f"/tmp/{MARK}",
                f"/work/{MARK}",
                f"/{MARK}",
                os.path.expanduser(f"~/{MARK}"),
                str(ROOT / MARK),
            )
            if os.path.exists(p)
        ]
        results[name] = (
            report,
            {
                "kit_changed": kit_fingerprint() != before,
                "processes": processes_with(MARK),
                "written": written,
                "connections": listener.connections,
            },
        )
    return results


@pytest.fixture(scope="module")
def attacked(release, tmp_path_factory):
    return grade_attacks(release, tmp_path_factory, SUBMISSIONS, "test_scale")


@pytest.fixture(scope="module")
def part2_attacked(part2_release, tmp_path_factory):
    """Part 2's attacks, on its learner release, graded on test_slerp."""
    return grade_attacks(part2_release, tmp_path_factory, PART2_SUBMISSIONS, "test_slerp")


def test_every_attack_is_stopped():
    assert all(attack["stopped"] for attack in ATTACKS.values())


@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_attack_gains_no_point(attacked, name):
    report, _ = attacked[name]
    assert report["passed"] == 0, report


@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_attack_does_no_harm(attacked, name):
    _, harm = attacked[name]
    assert harm == {"kit_changed": False, "processes": [], "written": [], "connections": 0}


@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_report_stays_small_clean_and_free_of_secrets(attacked, name):
    report, _ = attacked[name]
    text = grade.format_report(report)
    assert MARK not in text and "secret" not in text
    assert all(len(t["message"].encode()) <= grade.MAX_MESSAGE for t in report["tests"])
    assert not any(ch in text for ch in "\x1b\r\x07\x00\u202e")
    assert len(text.encode()) < 16 * 1024


def test_forged_observations_fail_with_a_reason(attacked):
    stale, garbage = (
        attacked[n][0]["tests"][0] for n in ("forge-observation", "forge-observation-garbage")
    )
    assert not stale["passed"] and "scale" in stale["message"]
    assert not garbage["passed"] and "cannot be read" in garbage["message"]


def test_fake_log_lines_and_floods_still_give_a_report(attacked):
    for name in ("fake-log-lines", "floods"):
        report, _ = attacked[name]
        assert [t["name"] for t in report["tests"]] == ["test_scale"]
        assert not report["tests"][0]["passed"]


def test_pickle_on_the_pipe_runs_nothing_without_the_sandbox_either(release, tmp_path):
    canary = tmp_path / "canary.txt"
    report = grade.grade(
        attack_notebook(release, tmp_path, "pickle-on-pipe", canary, 9),
        timeout=60,
        only=["test_scale"],
        sandbox=False,
    )
    assert report["passed"] == 0 and not os.path.exists(f"{canary}.pickled")


def test_without_the_sandbox_learner_code_reads_host_files(release, tmp_path):
    """What --no-sandbox does not protect, stated as a test: the same attack gains its point."""
    canary = tmp_path / "canary.txt"
    canary.write_text("secret")
    report = grade.grade(
        attack_notebook(release, tmp_path, "read-host-files", canary, 9),
        timeout=60,
        only=["test_scale"],
        sandbox=False,
    )
    assert report["passed"] == 1


def test_the_solution_still_gets_full_marks_after_the_attacks(attacked):
    report = grade.grade(NOTEBOOK)
    assert report["passed"] == report["total"], grade.format_report(report)


@pytest.mark.parametrize("name", list(PART2_SUBMISSIONS))
def test_part2_attack_gains_no_point_and_does_no_harm(part2_attacked, name):
    report, harm = part2_attacked[name]
    assert report["passed"] == 0 and report["total"] == 1, report
    assert harm == {"kit_changed": False, "processes": [], "written": [], "connections": 0}


def test_a_part2_observation_forged_for_the_notebooks_seed_fails_on_slerp(part2_attacked):
    (result,) = part2_attacked["forge-part2-observation"][0]["tests"]
    assert not result["passed"] and "should give z0 exactly" in result["message"], result
    (result,) = part2_attacked["patch-part2-judge"][0]["tests"]
    assert not result["passed"] and "slerp" in result["message"], result
