"""Specification of helpers.instructor.grade: the
autograder's verdicts, messages, isolation and exit codes.

Each notebook is graded once (module-scoped fixtures); the tests read that one report. The
variants are the solution notebook with cells edited here, with nbformat.
"""

import ast
import contextlib
import io
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
import torch

from helpers.instructor import grade, sandbox
from helpers.instructor.cells import (
    _without_test_calls,
    definition_cells,
    kit_tests,
    leave_out_skipped_reads,
    original_format,
)
from helpers.instructor.release import make_release
from helpers.notebook import NOTEBOOK, ROOT, read_notebook, strip_magics
from helpers.sandboxed import tests_process
from helpers.sandboxed.job import Cell
from tests.original_format import original_notebook

TESTS = [t.name for t in kit_tests()]


def edited(tmp_path, name, **edits):
    """The solution notebook with `old -> new` replaced in the cell holding `old`; (path, cells)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    numbers = {}
    for key, (old, new) in edits.items():
        index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and old in c.source)
        nb.cells[index].source = nb.cells[index].source.replace(old, new, 1)
        numbers[key] = index + 1
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path, numbers


# These tests are about verdicts and messages; the sandbox's own guarantees are in
# test_attacks.py. Without bubblewrap they run unsandboxed, except in CI, where it must be there.
NO_SANDBOX = (
    [] if sandbox.available() is None or os.environ.get("CI") == "true" else ["--no-sandbox"]
)


def run_cli(*args):
    """(exit status, printed rubric) of `python -m helpers grade ARGS`, run in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = grade.main([str(a) for a in args] + NO_SANDBOX)
    return status, out.getvalue()


def by_name(report):
    return {t["name"]: t for t in report["tests"]}


@pytest.fixture(scope="module")
def solution(tmp_path_factory):
    """The solution notebook graded from the command line, as an instructor runs it."""
    report = tmp_path_factory.mktemp("solution") / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers",
            "grade",
            str(NOTEBOOK),
            "--json",
            str(report),
            *NO_SANDBOX,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, json.loads(report.read_text())


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The learner release (nothing written yet), graded."""
    path, _, _ = make_release(NOTEBOOK, tmp_path_factory.mktemp("release"))
    report = path.parent / "report.json"
    status, text = run_cli(path, "--json", report)
    return status, text, json.loads(report.read_text())


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A syntax error in the get_dataloader cell and Generator renamed to Generatr."""
    path, cells = edited(
        tmp_path_factory.mktemp("broken"),
        "broken",
        syntax=("    dataset = datasets.ImageFolder(", "    dataset = datasets.ImageFolder(("),
        renamed=("class Generator(", "class Generatr("),
    )
    report = path.parent / "report.json"
    status, text = run_cli(path, "--json", report)
    return status, text, json.loads(report.read_text()), cells


@pytest.fixture(scope="module")
def misbehaving(tmp_path_factory):
    """scale loops forever, fake_loss calls os._exit(3), weights_init_normal segfaults (and with
    it the setup cell that builds D and G); graded with a short time limit."""
    path, cells = edited(
        tmp_path_factory.mktemp("misbehaving"),
        "misbehaving",
        loop=("    low, high = feature_range\n", "    while True:\n        pass\n"),
        exit=("    labels = torch.zeros_like(D_out)\n", "    os._exit(3)\n"),
        segfault=(
            "    if isinstance(m, (nn.Conv2d,",
            "    __import__('ctypes').string_at(0)\n    if isinstance(m, (nn.Conv2d,",
        ),
        build=("D, G = build_network(", "D, G = build_network("),
    )
    report = path.parent / "report.json"
    status, text = run_cli(path, "--json", report, "--timeout", 10, "--workers", 3)
    return status, text, json.loads(report.read_text()), cells


def test_solution_passes_every_graded_test_with_exit_status_0(solution):
    done, report = solution
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(TESTS)}/{len(TESTS)} tests passed" in done.stdout
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr


def test_json_report_lists_each_test_with_verdict_message_and_seconds(solution):
    _, report = solution
    assert (report["passed"], report["total"]) == (len(TESTS), len(TESTS))
    assert [t["name"] for t in report["tests"]] == TESTS
    assert not any("decided inside the sandbox" in n for n in report["notes"])  # all judged here
    for t in report["tests"]:
        assert t["passed"] is True and t["message"] == "Tests Passed"
        assert isinstance(t["seconds"], float) and 0 < t["seconds"] < 300
    assert report["definition_errors"] == [] and report["notes"] == []


def test_rubric_has_one_row_per_test(solution):
    done, _ = solution
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("test_")]
    assert [(r[0], r[1]) for r in rows] == [(name, "PASSED") for name in TESTS]


def test_release_fails_every_test_with_not_implemented_yet(released):
    status, text, report = released
    assert status == 1 and f"0/{len(TESTS)} tests passed" in text
    for t in report["tests"]:
        assert not t["passed"] and "not implemented yet" in t["message"], t
    assert "Traceback" not in text


def test_release_reports_why_D_could_not_be_built(released):
    _, _, report = released
    message = by_name(report)["test_optimizers"]["message"]
    assert message.startswith(
        "`D` could not be built: Discriminator.__init__ is not implemented yet"
    )


def test_syntax_error_is_reported_with_its_cell_and_line(broken):
    status, text, report, cells = broken
    assert status == 1
    message = by_name(report)["test_get_dataloader"]["message"]
    assert f"cell {cells['syntax']} raised SyntaxError at line " in message
    assert any(
        e["cell"] == cells["syntax"] and e["error"] == "SyntaxError"
        for e in report["definition_errors"]
    )
    assert "Traceback" not in text


def test_missing_function_fails_its_test_as_not_defined(broken):
    _, _, report, _ = broken
    assert by_name(report)["test_generator"]["message"].startswith(
        "`Generator` is not defined in your notebook"
    )


def test_tests_that_do_not_need_a_broken_cell_still_pass(broken):
    _, _, report, _ = broken
    results = by_name(report)
    # test_optimizers needs D and G, which the setup cell could not build without Generator.
    failing = {"test_get_dataloader", "test_generator", "test_optimizers"}
    assert "Generator" in results["test_optimizers"]["message"]
    assert all(results[name]["passed"] for name in set(TESTS) - failing)
    assert report["passed"] == len(TESTS) - len(failing)


def test_endless_loop_fails_its_tests_as_timed_out_at_its_line(misbehaving):
    _, _, report, cells = misbehaving
    results = by_name(report)
    for name in ("test_scale", "test_train"):  # the notebook's train calls scale
        assert results[name]["message"].startswith("Timed out after 10 s"), results[name]
        assert f"cell {cells['loop']}, line" in results[name]["message"]


def test_os_exit_fails_only_its_test(misbehaving):
    _, _, report, _ = misbehaving
    assert "ended with status 3" in by_name(report)["test_fake_loss"]["message"]


def test_segfault_fails_its_test_and_the_cell_that_called_it(misbehaving):
    _, _, report, cells = misbehaving
    results = by_name(report)
    assert "crashed (SIGSEGV)" in results["test_weights_init"]["message"]
    assert results["test_optimizers"]["message"].startswith(
        f"`D` is not defined because cell {cells['build']} crashed"
    )


def test_other_tests_pass_beside_loops_and_crashes(misbehaving):
    status, _, report, _ = misbehaving
    results = by_name(report)
    broken = {"test_scale", "test_train", "test_fake_loss", "test_weights_init", "test_optimizers"}
    assert status == 1
    assert all(results[name]["passed"] for name in set(TESTS) - broken), results


def test_notebook_without_tags_runs_the_same_cells():
    nb = read_notebook(NOTEBOOK)
    needs = [n for t in kit_tests() for n in t.needs]
    tagged, used_tags = definition_cells(nb, needs)
    for cell in nb["cells"]:
        cell["metadata"] = {}
    untagged, used = definition_cells(nb, needs)
    assert used_tags and not used
    assert [c.number for c in untagged] == [c.number for c in tagged]


def test_cells_that_train_load_data_or_plot_are_never_run():
    nb = read_notebook(NOTEBOOK)
    for cell in nb["cells"]:
        cell["metadata"] = {}
    nb["cells"].append(
        {
            "cell_type": "code",
            "metadata": {},
            "source": "D = D.to(device)\nlosses, samples = train(D, G, d_optimizer, g_optimizer, "
            "loader, 1, z_size, device)",
        }
    )
    cells, _ = definition_cells(nb, [n for t in kit_tests() for n in t.needs])
    chosen = {c.number for c in cells}
    assert len(nb["cells"]) not in chosen
    for number, cell in enumerate(nb["cells"], start=1):
        if any(
            call in cell["source"]
            for call in ("= train(", "find_data_dir(", "helpers.plotting.", "helpers.metrics.")
        ):
            assert number not in chosen, cell["source"]


def test_unreadable_notebook_exits_2_with_a_message(tmp_path, capsys):
    assert grade.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "No notebook at" in capsys.readouterr().err
    (tmp_path / "notes.ipynb").write_text("not json")
    assert grade.main([str(tmp_path / "notes.ipynb")]) == 2
    err = capsys.readouterr().err
    assert "is not a Jupyter notebook" in err and "Traceback" not in err


def test_bad_command_line_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        grade.main([str(NOTEBOOK), "--workers", "0"])
    assert exit_.value.code == 2
    assert "--workers" in capsys.readouterr().err


# ---------------------------------------------------------------- the original course's format


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A notebook in the original course's format (untagged; test calls in the class cells;
    the original train signature), graded."""
    path = original_notebook(tmp_path_factory.mktemp("original") / "original.ipynb")
    report = path.parent / "report.json"
    status, text = run_cli(path, "--json", report)
    return status, text, json.loads(report.read_text())


def test_original_format_passes_every_test(original):
    status, text, report = original
    assert status == 0 and report["definition_errors"] == [], text
    assert f"{len(TESTS)}/{len(TESTS)} tests passed" in text, text
    assert "is not defined" not in text


def test_original_train_signature_is_graded_and_said_once(original):
    _, text, report = original
    assert by_name(report)["test_train"]["passed"], text
    assert text.count("original course's signature") == 1, text
    assert "train(D, G, n_epochs, print_every=50): test_train ran it" in text
    assert "d_optimizer and g_optimizer" in text and "celeba_train_loader" in text


def test_original_format_with_the_kit_train_gets_full_marks(tmp_path):
    path = original_notebook(tmp_path / "kit_train.ipynb", "kit-train")
    status, text = run_cli(path)
    assert status == 0 and f"{len(TESTS)}/{len(TESTS)} tests passed" in text, text


@pytest.mark.parametrize(
    "variant",
    ["template", "helpers-apart", "alias", "kit-train", "check-then-scale", "scale-then-check"],
)
def test_original_format_cells_define_every_name_the_tests_need(tmp_path, variant, capsys):
    nb = read_notebook(original_notebook(tmp_path / f"{variant}.ipynb", variant))
    needs = [n for t in kit_tests() for n in t.needs]
    cells, used_tags = definition_cells(nb, needs)
    leave_out_skipped_reads(nb, cells, needs)
    namespace = {"__name__": "__notebook__"}
    errors = tests_process.run_definitions(cells, namespace)
    assert not used_tags and errors == []
    assert [n for n in needs if n not in namespace] == []
    assert "Tests Passed" not in capsys.readouterr().out  # the graded-test calls were dropped
    for cell in cells:  # never the cells that load data or train
        assert "celeba_train_loader =" not in cell.source and "= train(" not in cell.source


@pytest.mark.parametrize("variant", ["check-then-scale", "scale-then-check"])
def test_a_statement_reading_a_skipped_cells_name_is_left_out_with_a_note(tmp_path, variant):
    """scale's cell holds the course's range check, img = images[0], where images comes from a
    plotting cell the grader does not run: the check is left out, scale kept, a note says so."""
    nb = read_notebook(original_notebook(tmp_path / f"{variant}.ipynb", variant))
    needs = [n for t in kit_tests() for n in t.needs]
    cells, _ = definition_cells(nb, needs)
    (cell,) = [c for c in cells if "scale" in c.binds]
    assert tests_process.run_definitions([cell], {})[0]["detail"] == (
        "name 'images' is not defined"
    )  # what the grader met before the rule
    notes = leave_out_skipped_reads(nb, cells, needs)
    assert len(notes) == 1 and notes[0].startswith(f"Cell {cell.number}: line(s) ")
    assert "`images` (cell 5)" in notes[0] and "definitions were kept" in notes[0]
    namespace: dict = {}
    assert tests_process.run_definitions([cell], namespace) == []
    assert callable(namespace["scale"]) and "img" not in namespace
    assert len(cell.run.split("\n")) == len(strip_magics(cell.source).split("\n"))


def test_a_statement_that_binds_what_a_test_takes_is_never_left_out():
    nb = {
        "cells": [
            {"cell_type": "code", "source": "images = next(iter(loader))"},
            {"cell_type": "code", "source": "scale = images.max\nx = 1"},
        ]
    }
    cells, _ = definition_cells(nb, ["scale"])
    assert leave_out_skipped_reads(nb, cells, ["scale"]) == []
    assert cells[0].run == "scale = images.max\nx = 1"


def test_original_format_with_scale_after_its_check_gets_full_marks_and_a_note(tmp_path):
    path = original_notebook(tmp_path / "check.ipynb", "check-then-scale")
    status, text = run_cli(path)
    assert status == 0 and f"{len(TESTS)}/{len(TESTS)} tests passed" in text, text
    assert text.count("were not run, and its definitions were kept") == 1, text
    assert "Problems while running the definition cells" not in text


def test_the_original_format_is_an_untagged_notebook_without_the_kits_helpers(tmp_path):
    """Only the original course's notebooks get its judges: a kit notebook whose tags an
    editor dropped still imports helpers, so it keeps the kit's spec."""
    original = read_notebook(original_notebook(tmp_path / "original.ipynb"))
    kit = read_notebook(NOTEBOOK)
    untagged = json.loads(json.dumps(kit))
    for cell in untagged["cells"]:
        cell.get("metadata", {}).pop("tags", None)
    assert original_format(original, definition_cells(original, ["scale"])[1])
    assert not original_format(kit, definition_cells(kit, ["scale"])[1])
    assert not original_format(untagged, definition_cells(untagged, ["scale"])[1])


def test_original_format_choices_pass_with_the_kits_recommendation_in_the_notes(tmp_path):
    """Choices the original course left open (Adam's settings, biases left alone) pass in an
    original-format notebook; the report's notes say what the kit's notebook asks and why."""
    from tests.mutants import apply
    from tests.original_format import original_cells
    from tests.variants import ORIGINAL_VARIANTS

    chosen = {"original-own-settings", "original-bias-left"}
    cells = [strip_magics(c) for c in original_cells()]
    for variant in ORIGINAL_VARIANTS:
        if variant.name in chosen:
            cells = apply(variant, cells)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    path = tmp_path / "choices.ipynb"
    nbformat.write(nb, path)
    report = grade.grade(
        path, sandbox=not NO_SANDBOX, only=["test_optimizers", "test_weights_init"]
    )
    text = grade.format_report(report)
    assert "2/2 tests passed" in text, text
    assert "Note: test_optimizers: your optimizers use their own settings" in text, text
    assert "lr 0.0002 and betas (0.5, 0.999)" in text
    assert "Note: test_weights_init: weights_init_normal leaves the biases" in text, text


def test_a_cuda_call_without_a_gpu_is_named_where_it_stops_later_cells():
    """A .cuda() in weights_init_normal stops the cell that builds D on the grader's CPU; a
    later cell that reads D fails with NameError. The reason names the .cuda() call."""
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "source": "import torch\ndef weights_init_normal(m):\n    torch.zeros(1).cuda()",
            },
            {"cell_type": "code", "source": "weights_init_normal(None)\nD = 1"},
            {"cell_type": "code", "source": "D.load = 1\ndef train(D, G, n_epochs):\n    pass"},
        ]
    }
    cells, _ = definition_cells(nb, ["train", "D"])
    with contextlib.redirect_stdout(io.StringIO()):
        errors = tests_process.run_definitions(cells, {})
    if torch.cuda.is_available():
        pytest.skip("with a GPU, .cuda() works")
    reason = tests_process._missing_reason("train", cells, errors)
    assert reason.startswith("`train` is not defined because cell 3 raised NameError"), reason
    assert "`D` is not defined because cell 2 raised" in reason, reason
    assert "Likely cause: .cuda() called where there is no GPU" in reason
    assert "if train_on_gpu:" in reason


def test_graded_test_calls_are_dropped_and_line_numbers_kept():
    source = (
        "class D:\n    pass\ntests.test_discriminator(D)\ny = 1; t.test_x(\n    D); z = 2\n"
        "r = tests.test_generator(G)\nfor f in (a, b):\n    tests.test_conv(f)\n"
        "def check():\n    tests.test_scale(check)\n"
    )
    run, dropped = _without_test_calls(source, ast.parse(source), {"tests", "t"})
    assert dropped == 4
    assert run.split("\n") == [
        "class D:",
        "    pass",
        "pass",
        "y = 1; pass; z = 2",
        "",
        "r = None",
        "pass",
        "",
        "def check():",
        "    tests.test_scale(check)",
        "",
    ]


# ---------------------------------------------------------------- trusted side: what it accepts


@pytest.mark.parametrize(
    "content, reason",
    [
        ("not json", "it is not valid JSON"),
        ('{"nbformat": 3, "worksheets": []}', "version 3 notebook"),
        ('{"nbformat": 4, "cells": {"a": 1}}', "'cells' should be a list"),
        (
            '{"nbformat": 4, "cells": [{"cell_type": "code", "source": 42}]}',
            "the source of cell 1 is not text",
        ),
        ('{"nbformat": 4, "cells": [7]}', "cell 1 is not a notebook cell"),
        ("[1, 2]", "its JSON is not an object"),
    ],
)
def test_malformed_notebook_exits_2_with_the_reason(tmp_path, capsys, content, reason):
    path = tmp_path / "bad.ipynb"
    path.write_text(content)
    assert grade.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err


def test_learner_side_lines_are_validated_capped_and_cleaned():
    tests = kit_tests()[:2]
    cells = [Cell(3, "x = 1"), Cell(5, "y = 2")]
    lines = [
        {
            "test": {
                "name": "test_scale",
                "passed": False,
                "message": "\x1b[31mred\r" + "m" * 5000,
                "seconds": 1,
            }
        },
        {
            "test": {"name": "test_scale", "passed": True, "message": "Tests Passed"}
        },  # a second verdict
        {"test": {"name": "test_nonexistent", "passed": True, "message": "Tests Passed"}},
        {"test": {"name": "test_get_dataloader", "passed": "yes", "message": "Tests Passed"}},
        {"error": {"cell": 99, "error": "NameError", "line": 1, "text": "a cell that did not run"}},
        {"error": {"cell": 5, "error": "Name Error; rm -rf", "line": 1, "text": "bad error name"}},
        {"error": {"cell": 3, "error": "NameError", "line": 2, "text": "Cell 3 raised NameError"}},
        {"done": True},
    ]
    stdout = b"\n".join(json.dumps(line).encode() for line in lines) + b"\n\x80garbage\n"
    results, errors, done, problems = grade._collect(stdout, tests, cells)
    assert done and len(problems) == 6
    assert list(results) == ["test_scale"] and results["test_scale"]["passed"] is False
    message = results["test_scale"]["message"]
    assert (
        len(message.encode()) <= grade.MAX_MESSAGE and "\x1b" not in message and "\r" not in message
    )
    assert [e["cell"] for e in errors] == [3] and errors[0]["cell_starts"] == "x = 1"


def test_clean_text_redacts_the_graders_environment(monkeypatch):
    monkeypatch.setenv("SOME_TOKEN", "tok-1234567890abcdef")
    text = grade.clean_text("found tok-1234567890abcdef here", secrets=grade._environment_secrets())
    assert "tok-1234567890abcdef" not in text and "[redacted]" in text


def test_lines_the_grader_ignores_are_each_described():
    tests = kit_tests()[:1]
    lines = [
        b"\x80garbage",
        b"[1, 2]",
        b'{"test": {}, "done": true}',
        b'{"shout": 1}',
        b'{"done": "yes"}',
        json.dumps({"test": {"name": "test_nonexistent", "passed": True}}).encode(),
        json.dumps({"test": {"name": tests[0].name, "passed": "yes", "message": ""}}).encode(),
        json.dumps({"error": {"cell": 3, "error": "NameError", "line": -1, "text": "x"}}).encode(),
    ]
    _, _, done, problems = grade._collect(b"\n".join(lines), tests, [Cell(3, "x = 1")])
    assert not done and len(problems) == len(lines)
    assert [p.split(":")[0] for p in problems] == [f"line {n}" for n in range(1, 9)]
    for problem, expected in zip(
        problems,
        [
            "not JSON",
            "a JSON list, not an object with one key",
            "a JSON object with 2 keys, not an object with one key",
            "an unknown kind of line, 'shout'",
            "\"done\" is 'yes', not true",
            "'test_nonexistent', which is not a graded test being run",
            "has 'passed' 'yes', not true/false",
            "is at line -1, not a line number",
        ],
    ):
        assert expected in problem, (problem, expected)


def test_the_report_notes_what_was_wrong_with_ignored_lines(monkeypatch):
    outcome = sandbox.Outcome(
        b'{"started": true}\n{"shout": 1}\n{"done": true}\n', b"", 0, False, False, 0.5
    )
    monkeypatch.setattr(sandbox, "run_capped", lambda *args, **kwargs: outcome)
    report = grade.grade(NOTEBOOK, sandbox=False, only=["test_scale"])
    note = next(n for n in report["notes"] if "were not valid results" in n)
    assert note.startswith("1 line(s) from the learner side") and "line 2: an unknown kind" in note


def test_sandbox_bundle_holds_no_solution_tests_or_instructor_tools(tmp_path):
    bundle = sandbox.bundle(tmp_path / "kit")
    names = {str(p.relative_to(bundle)) for p in bundle.rglob("*")}
    # the graded tests, their machinery and the grader's learner side are there ...
    assert {
        "problem_unittests.py",
        "part2_unittests.py",
        "helpers/graded/failures.py",
        "helpers/graded/training.py",
        "helpers/sandboxed/scheduler.py",
        "helpers/sandboxed/tests_process.py",
    } <= names
    # ... the solution, the kit's tests, its mutants and the instructor's tools are not
    assert not [
        n
        for n in names
        if n.endswith(".ipynb")
        or n.startswith(("tests", ".git", "benchmarks", "solution", "helpers/instructor"))
    ]
    code = "\n".join(p.read_text() for p in bundle.rglob("*.py"))
    assert (
        "return x * (high - low) + low" not in code
        and "self.conv1 = conv(3, conv_dim, 4" not in code
    )
    # what runs inside never reaches for what is not there
    assert "helpers.instructor" not in "\n".join(
        line for line in code.splitlines() if re.match(r"\s*(from|import)\s", line)
    )


def test_sandbox_is_available_in_ci():
    if os.environ.get("CI") == "true":
        assert sandbox.available() is None, sandbox.available()
    elif sandbox.available():
        pytest.skip(sandbox.available())
    assert sandbox.available() is None


def test_cells_the_parser_cannot_read_do_not_crash_the_grader():
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": source}
            for source in ("a = 1\x00", "-" * 100000 + "1", "def scale(x): return x")
        ]
    }
    cells, _ = definition_cells(nb, ["scale"])
    assert [c.number for c in cells] == [3]


def test_a_sandbox_without_its_memory_cap_is_named_in_the_reports_notes():
    plan = grade.Plan([t for t in kit_tests() if t.name == "test_scale"], [], [])
    judged = grade.Judged({"test_scale": {"name": "test_scale", "passed": True}}, [], True, [])
    outcome = sandbox.Outcome(b"", b"", 0, False, False, 1.0)
    missing = "bubblewrap; memory NOT capped for the sandbox as a whole (no memory cgroup)"
    for how, noted in ((missing, True), ("bubblewrap; memory of the whole sandbox capped", False)):
        report = grade.build_report("nb.ipynb", plan, grade.LearnerRun(outcome, 1, how), judged, 60)
        assert any("cap missing" in n and "NOT capped" in n for n in report["notes"]) is noted
        assert report["sandbox"] == how
