"""Specification of helpers.instructor.release: the learner
notebook built from the solution notebook.

Every solution region becomes a stub, no solution line survives, the notebook stays valid
Python, the build is reproducible, and in the release every graded test fails with
"not implemented yet" instead of passing.
"""

import ast
import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import problem_unittests
from helpers.instructor import release
from helpers.instructor.cells import definition_cells, kit_tests
from helpers.instructor.release import ReleaseError, make_release, release_notebook, stub_source
from helpers.instructor.shipping import shipped_helpers
from helpers.notebook import BEGIN, END, NOTEBOOK, ROOT, strip_magics
from helpers.sandboxed import tests_process

STUB = re.compile(
    r'raise NotImplementedError\("([\w.]+): not implemented yet, see the TODO above"\)'
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(source notebook, release notebook, release folder) for the kit's solution notebook."""
    out = tmp_path_factory.mktemp("release")
    path, _, _ = make_release(NOTEBOOK, out)
    return nbformat.read(NOTEBOOK, as_version=4), nbformat.read(path, as_version=4), out


def code_pairs(source, released):
    """(source cell, release cell) for each code cell, matched by position."""
    assert [c.cell_type for c in source.cells] == [c.cell_type for c in released.cells]
    return [(s, r) for s, r in zip(source.cells, released.cells) if s.cell_type == "code"]


def region_lines(cell_source):
    """(lines inside solution regions, lines outside them) of one cell, stripped."""
    inside, outside, in_region = [], [], False
    for line in cell_source.split("\n"):
        text = line.strip()
        if text.startswith(BEGIN):
            in_region = True
        elif text.startswith(END):
            in_region = False
        else:
            (inside if in_region else outside).append(text)
    return inside, outside


def test_every_solution_region_becomes_one_stub(built):
    source, released, _ = built
    n_regions = 0
    for s, r in code_pairs(source, released):
        regions = release.solution_regions(s.source)
        n_regions += len(regions)
        assert BEGIN not in r.source and END not in r.source
        in_functions = [b for b, _ in regions if s.source.split("\n")[b].startswith(" ")]
        assert len(STUB.findall(r.source)) == len(in_functions), r.source
    assert n_regions >= 10


def test_stubs_name_the_function_or_method_they_replace(built):
    _, released, _ = built
    names = {
        name for c in released.cells if c.cell_type == "code" for name in STUB.findall(c.source)
    }
    assert {
        "get_dataloader",
        "scale",
        "Discriminator.__init__",
        "Discriminator.forward",
        "Generator.__init__",
        "train",
    } <= names


def test_module_level_region_becomes_none_for_each_assigned_name(built):
    _, released, _ = built
    cell = next(c for c in released.cells if "d_optimizer =" in c.source)
    assert cell.source.strip().splitlines() == [
        "# TODO: create d_optimizer and g_optimizer.",
        "d_optimizer = None",
        "g_optimizer = None",
    ]


def test_no_solution_line_leaks_into_the_release(built):
    source, released, _ = built
    for s, r in code_pairs(source, released):
        inside, outside = region_lines(s.source)
        released_lines = {line.strip() for line in r.source.split("\n")}
        leaked = [
            line
            for line in inside
            if line and not line.startswith("#") and line not in outside and line in released_lines
        ]
        assert not leaked, f"solution lines left in cell {r.id}: {leaked}"


def test_todo_comments_above_each_region_stay(built):
    source, released, _ = built
    for s, r in code_pairs(source, released):
        todos = [line for line in region_lines(s.source)[1] if line.startswith("# TODO")]
        assert all(todo in r.source for todo in todos)
        assert len(todos) >= len(release.solution_regions(s.source))


def test_release_code_cells_are_valid_python(built):
    _, released, _ = built
    for cell in released.cells:
        if cell.cell_type == "code":
            ast.parse(strip_magics(cell.source))


def test_release_is_byte_for_byte_reproducible(tmp_path):
    first, _, _ = make_release(NOTEBOOK, tmp_path / "a")
    second, _, _ = make_release(NOTEBOOK, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()


def test_outputs_and_execution_counts_are_cleared_ids_and_tags_kept(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:  # a notebook that has been run, by a front end that adds metadata
        if cell.cell_type == "code":
            cell.execution_count = 7
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="Tests Passed\n")]
            cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
    nb.metadata["widgets"] = {"state": {}}
    nbformat.write(nb, tmp_path / "run.ipynb")
    path, _, _ = make_release(tmp_path / "run.ipynb", tmp_path / "out")
    released = nbformat.read(path, as_version=4)
    for before, after in zip(nb.cells, released.cells):
        assert after.id == before.id
        assert after.metadata.get("tags", []) == before.metadata.get("tags", [])
        assert "execution" not in after.metadata
        if after.cell_type == "code":
            assert after.outputs == [] and after.execution_count is None
    assert set(released.metadata) == {"kernelspec", "language_info"}


def helpers_imported(path):
    """The kit modules a file imports, dotted ('helpers.graded.training'): for `from X import y`,
    X and, when the kit has a module of that name, X.y."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "helpers"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "helpers":
            found.append(node.module)
            found += [
                f"{node.module}.{a.name}"
                for a in node.names
                if shipped_module(ROOT, f"{node.module}.{a.name}")
            ]
    return found


def shipped_module(folder, dotted):
    """Whether `folder` holds module `dotted` ('helpers.graded.training'), as a file or package."""
    path = folder.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_release_folder_holds_what_the_notebook_imports(built):
    _, _, out = built
    for name in (
        "problem_unittests.py",
        "workspace_utils.py",
        "helpers/__init__.py",
        "helpers/notebook.py",
        "helpers/checkpoint.py",
        *(p.relative_to(ROOT).as_posix() for p in (ROOT / "helpers" / "graded").glob("*.py")),
    ):
        assert (out / name).read_bytes() == (ROOT / name).read_bytes(), name
    # the instructor's tools (release, grading, its sandbox, the classroom gradebook) and the
    # grader's sandbox side stay home
    assert not (out / "helpers" / "instructor").exists()
    assert not (out / "helpers" / "sandboxed").exists()
    # what the learner's notebook imports is all there: nothing shipped imports a module left out
    for module in (out / "helpers").rglob("*.py"):
        missing = [m for m in helpers_imported(module) if not shipped_module(out, m)]
        assert not missing, (str(module.relative_to(out)), missing)
    assert not list(out.rglob("__pycache__"))


def test_release_folder_imports_the_graded_tests_on_its_own(built):
    """problem_unittests.py and the machinery it imports (helpers/graded/) ship together."""
    import subprocess
    import sys

    _, _, out = built
    probe = (
        "import problem_unittests as t, helpers.graded.training as c; print(t.__file__, c.__file__)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=out, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert all(path.startswith(str(out)) for path in done.stdout.split()), done.stdout


def test_release_ships_the_learner_readme_and_runtime_requirements(built):
    _, _, out = built
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert readme == release.LEARNER_README.read_text(encoding="utf-8")
    for topic in (
        "## How to run a test",
        "## Real CelebA",
        "non-commercial",
        "outputs/checkpoint.pt",
        "DCGAN_OUT",
        "jupyter notebook dlnd_face_generation.ipynb",
    ):
        assert topic in readme, topic
    requirements = (out / "requirements.txt").read_text(encoding="utf-8").splitlines()
    # the kit's own requirements.txt is `-e .[dev]`, which needs the kit's pyproject.toml
    assert not any(line.startswith("-e") for line in requirements)
    names = {
        re.split(r"[<>=!~ ]", line)[0] for line in requirements if line and not line.startswith("#")
    }
    assert {"torch", "torchvision", "jupyter", "tqdm"} <= names and "pytest" not in names


def test_committed_learner_edition_is_what_the_release_makes_today():
    """The learner edition is a build artefact: never edited by hand, never behind the solution."""
    text, _, _ = release.learner_text(NOTEBOOK)
    committed = release.LEARNER_NOTEBOOK.read_text(encoding="utf-8")
    assert committed == text, (
        f"{release.LEARNER_NOTEBOOK.name} differs from the learner edition of "
        f"{NOTEBOOK.relative_to(ROOT)}: run `python -m helpers release --update-kit` and commit "
        "the result (do not edit it by hand)."
    )


def test_learner_edition_opens_at_the_top_and_the_solution_in_its_own_folder():
    assert release.LEARNER_NOTEBOOK == ROOT / "dlnd_face_generation.ipynb"
    assert NOTEBOOK.parent != ROOT and NOTEBOOK.is_file()
    learner = nbformat.read(release.LEARNER_NOTEBOOK, as_version=4)
    sources = "\n".join(c.source for c in learner.cells if c.cell_type == "code")
    assert BEGIN not in sources and STUB.search(sources)


def test_update_kit_rewrites_a_stale_learner_edition_and_refuses_the_solution(tmp_path, capsys):
    stale = tmp_path / "learner.ipynb"
    stale.write_text("{}", encoding="utf-8")
    path, n_regions, _, changed = release.update_kit(NOTEBOOK, stale)
    assert changed and n_regions >= 10
    assert stale.read_text(encoding="utf-8") == release.learner_text(NOTEBOOK)[0]
    assert release.update_kit(NOTEBOOK, stale)[3] is False  # a second run changes nothing
    with pytest.raises(ReleaseError, match="solution notebook itself"):
        release.update_kit(NOTEBOOK, NOTEBOOK)


def run_release_definitions(released, tmp_path):
    """Namespace and errors after running the release's setup and solution cells, as the grader
    does."""
    nb = {
        "cells": [
            {"cell_type": c.cell_type, "source": c.source, "metadata": dict(c.metadata)}
            for c in released.cells
        ]
    }
    cells, used_tags = definition_cells(nb, [n for t in kit_tests() for n in t.needs])
    assert used_tags
    namespace = {"__name__": "__notebook__"}
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):
        mp.setenv("DCGAN_OUT", str(tmp_path))
        mp.setenv("DCGAN_QUICK", "1")
        errors = tests_process.run_definitions(cells, namespace)
    return cells, namespace, errors


def test_each_graded_test_raises_not_implemented_yet_on_the_release(built, tmp_path):
    _, released, _ = built
    _, namespace, _ = run_release_definitions(released, tmp_path)
    callable_tests = [t for t in kit_tests() if all(n in namespace for n in t.needs)]
    assert len(callable_tests) >= 9
    for test in callable_tests:
        args = [eval(arg, namespace) for arg in test.args]
        with (
            pytest.raises(AssertionError, match="not implemented yet"),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            getattr(problem_unittests, test.name)(*args)


def test_grader_fails_every_release_test_with_not_implemented_yet(built, tmp_path):
    _, released, _ = built
    cells, _, _ = run_release_definitions(released, tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCGAN_OUT", str(tmp_path))
        results, errors = tests_process.run_graded_tests(cells, kit_tests())
    assert len(results) == len(kit_tests())
    for result in results:
        assert not result["passed"] and "not implemented yet" in result["message"], result
    optimizers = next(r for r in results if r["name"] == "test_optimizers")
    assert optimizers["message"].startswith(
        "`D` could not be built: Discriminator.__init__ is not implemented yet"
    )
    assert any(e["error"] == "NotImplementedError" for e in errors)


def notebook_with(*sources):
    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# t")]
        + [nbformat.v4.new_code_cell(s) for s in sources]
    )


@pytest.mark.parametrize(
    "source, problem",
    [
        ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "no matching"),
        ("def f():\n    return 1\n    ### END SOLUTION\n", "has no '### BEGIN SOLUTION' above"),
        (
            "def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    return 1\n"
            "    ### END SOLUTION\n",
            "cannot nest",
        ),
    ],
)
def test_unbalanced_markers_are_an_error_naming_the_cell(source, problem):
    with pytest.raises(ReleaseError, match=problem) as err:
        release_notebook(notebook_with("x = 1", source))
    assert "Cell 3" in str(err.value)


def test_region_in_a_nested_block_keeps_its_indentation_and_the_code_after_it():
    source = (
        "class Net:\n    def step(self, batch):\n        for x in batch:\n"
        "            # TODO: learn\n"
        "            ### BEGIN SOLUTION\n            y = x * 2\n            ### END SOLUTION\n"
        "            print(y)\n"
    )
    stubbed, n = stub_source(source)
    assert n == 1
    assert stubbed.split("\n")[4] == (
        '            raise NotImplementedError("Net.step: not implemented yet, see the TODO above")'
    )
    assert "            print(y)" in stubbed and "y = x * 2" not in stubbed
    ast.parse(stubbed)


def test_module_level_region_without_assignments_becomes_pass():
    stubbed, _ = stub_source("### BEGIN SOLUTION\nprint('hi')\n### END SOLUTION\n")
    assert stubbed == "pass\n"


@pytest.mark.parametrize("folder", [ROOT, NOTEBOOK.parent])
def test_out_folder_must_not_be_the_kit_itself_or_the_solution_folder(folder):
    with pytest.raises(ReleaseError, match="overwrite the kit"):
        make_release(NOTEBOOK, folder)


def test_command_line_prints_the_summary(tmp_path, capsys):
    assert release.main(["--notebook", str(NOTEBOOK), "--out", str(tmp_path / "rel")]) == 0
    nb = nbformat.read(NOTEBOOK, as_version=4)
    n_regions = sum(
        len(release.solution_regions(c.source)) for c in nb.cells if c.cell_type == "code"
    )
    n_cells = sum(
        bool(release.solution_regions(c.source)) for c in nb.cells if c.cell_type == "code"
    )
    out = capsys.readouterr().out
    assert f"Stubbed {n_regions} solution regions in {n_cells} cells" in out
    assert os.path.join(str(tmp_path / "rel"), NOTEBOOK.name) in out


def test_command_line_reports_a_broken_notebook_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.ipynb"
    nbformat.write(notebook_with("def f():\n    ### BEGIN SOLUTION\n    return 1\n"), bad)
    assert release.main(["--notebook", str(bad), "--out", str(tmp_path / "rel")]) == 1
    err = capsys.readouterr().err
    assert "Cell 2" in err and "Traceback" not in err


def run_nbval(notebook, tmp_path):
    """`pytest --nbval` on `notebook` in quick mode, as CI runs notebooks; the finished process."""
    env = {
        **os.environ,
        "DCGAN_QUICK": "1",
        "DCGAN_OUT": str(tmp_path / "out"),
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-current-env",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(notebook),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_learner_edition_under_nbval_stops_at_its_first_graded_test(tmp_path):
    learner = nbformat.read(release.LEARNER_NOTEBOOK, as_version=4)
    check = release.first_failure_check(learner)
    first_test = check.cells[-1]
    assert (
        "graded-test" in first_test.metadata["tags"]
        and "raises-exception" in first_test.metadata["tags"]
    )
    assert "raises-exception" not in str(learner)  # Run All in Jupyter must still stop there
    nbformat.write(check, tmp_path / "check.ipynb")
    proc = run_nbval(tmp_path / "check.ipynb", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Without the tag the same cell fails, with the stub's message: the check above is not empty.
    first_test.metadata["tags"].remove("raises-exception")
    nbformat.write(check, tmp_path / "check.ipynb")
    proc = run_nbval(tmp_path / "check.ipynb", tmp_path)
    assert proc.returncode == 1 and "get_dataloader: not implemented yet" in proc.stdout, (
        proc.stdout[-3000:]
    )


def test_what_ships_to_learners_and_into_the_sandbox_follows_the_layout():
    learner, boxed = set(shipped_helpers("learner")), set(shipped_helpers("sandbox"))
    every = {p.relative_to(ROOT / "helpers") for p in (ROOT / "helpers").rglob("*.py")}
    assert {Path("notebook.py"), Path("graded/failures.py"), Path("__init__.py")} <= learner
    # the sandbox gets what a learner has, plus the grader's side that runs inside it
    assert boxed - learner == {p for p in every if p.parts[0] == "sandboxed"} != set()
    assert learner < boxed
    # neither ever gets the instructor's tools
    assert {p for p in every if p.parts[0] == "instructor"} & boxed == set()
    with pytest.raises(ValueError, match="audience"):
        shipped_helpers("teacher")


def test_a_new_module_ships_by_where_it_is_put(tmp_path):
    for rel in ("plotting.py", "graded/new.py", "sandboxed/new.py", "instructor/new.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert shipped_helpers("learner", tmp_path) == [Path("graded/new.py"), Path("plotting.py")]
    assert shipped_helpers("sandbox", tmp_path) == [
        Path("graded/new.py"),
        Path("plotting.py"),
        Path("sandboxed/new.py"),
    ]
