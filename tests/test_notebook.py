"""helpers.notebook: the one runner of notebook cells, and the environment the notebook reads."""

import re
import traceback

import nbformat
import pytest

from helpers.notebook import (
    NOTEBOOK,
    ROOT,
    load_solution,
    read_notebook,
    run_cells,
    section_names,
    set_notebook_env,
)


def test_cells_run_in_order_past_a_failure_and_each_failure_names_its_cell_and_line():
    namespace = {}
    errors = run_cells(
        [(2, "a = 1"), (4, "b = a + 1\nc = undefined_name\nd = 4"), (5, "e = b * 10")], namespace
    )
    assert (namespace["a"], namespace["b"], namespace["e"]) == (1, 2, 20)
    assert (
        "c" not in namespace and "d" not in namespace
    )  # as in Jupyter: the rest of the cell is lost
    [error] = errors
    assert (error.cell, error.error, error.line) == (4, "NameError", 2)
    assert "undefined_name" in error.message
    assert str(error) == "cell 4, line 2: NameError: name 'undefined_name' is not defined"


def test_an_error_inside_a_function_from_another_cell_names_both_places():
    cells = [(3, "def f(x):\n    return 1 / x"), (7, "y = 2\nz = f(0)")]
    [error] = run_cells(cells, {})
    assert (error.cell, error.line, error.origin) == (7, 2, (3, 2))
    assert str(error) == "cell 7, line 2 (from cell 3, line 2): ZeroDivisionError: division by zero"


def test_tracebacks_show_the_cells_own_lines():
    [error] = run_cells([(9, "x = 1\nraise ValueError('the real cause')")], {})
    text = "".join(traceback.format_exception(error.exception))
    assert 'File "<cell 9>", line 2' in text and "raise ValueError('the real cause')" in text


def test_syntax_errors_magics_and_exit_fail_only_their_cell():
    namespace = {}
    errors = run_cells(
        [
            (1, "%matplotlib inline\nx = 1"),
            (2, "def broken(:\n    pass"),
            (3, "exit()"),
            (4, "y = x"),
        ],
        namespace,
    )
    assert namespace["y"] == 1  # the magic line was blanked, not run
    assert [(e.cell, e.error, e.line) for e in errors] == [
        (2, "SyntaxError", 1),
        (3, "SystemExit", 1),
    ]
    assert errors[1].message == "exit() or sys.exit() was called"


def test_keyboard_interrupt_stops_the_run():
    with pytest.raises(KeyboardInterrupt):
        run_cells([(1, "raise KeyboardInterrupt"), (2, "never = True")], {})


def test_on_cell_is_told_each_cell_before_it_runs():
    seen = []
    run_cells([(1, "pass"), (3, "1 / 0"), (4, "pass")], {}, on_cell=seen.append)
    assert seen == [1, 3, 4]


def test_notebook_environment_sets_and_clears_quick_mode(tmp_path):
    env = {"DCGAN_QUICK": "1", "OTHER": "kept"}
    set_notebook_env(tmp_path / "out", quick=False, environ=env)
    assert env == {"DCGAN_OUT": str((tmp_path / "out").resolve()), "OTHER": "kept"}
    set_notebook_env("rel", quick=True, headless=True, environ=env)
    assert env["DCGAN_QUICK"] == "1" and env["MPLBACKEND"] == "Agg"
    assert env["DCGAN_OUT"].endswith("rel") and env["DCGAN_OUT"] != "rel"  # absolute: kernels move


def test_load_solution_names_the_failing_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["setup"]}),
        nbformat.v4.new_code_cell("y = x +", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("never_run()"),  # untagged: not a definition cell
    ]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    with pytest.raises(RuntimeError, match=r"cell 3, line 1: SyntaxError"):
        load_solution(tmp_path / "nb.ipynb")
    nb.cells[2].source = "y = x + 1"
    nbformat.write(nb, tmp_path / "nb.ipynb")
    assert load_solution(tmp_path / "nb.ipynb")["y"] == 2


# A module says which notebook step it serves: `notebook step "Get the data"`, `notebook steps "A"
# (...) and "B"`, or `the notebook's "Train" step`.
STEP_AFTER = re.compile(
    r'\bsteps?\s+("[^"]+"(?:\s*\([^)]*\))?(?:(?:\s*,\s*|\s+and\s+)"[^"]+"(?:\s*\([^)]*\))?)*)'
)
STEP_BEFORE = re.compile(r'"([^"]+)"\s+step\b')


def cited_steps(text):
    text = " ".join(text.split())  # a name may be wrapped over two lines
    names = [n for m in STEP_AFTER.finditer(text) for n in re.findall(r'"([^"]+)"', m.group(1))]
    return names + STEP_BEFORE.findall(text)


def test_cited_steps_are_read_as_modules_write_them():
    text = 'Serves the notebook steps "A b" (``f``: x), "C"\n(``g``) and "D e". Its "F" step.'
    assert cited_steps(text) == ["A b", "C", "D e", "F"]


def test_every_notebook_step_a_module_cites_is_a_section_of_the_solution_notebook():
    sections = section_names(read_notebook(NOTEBOOK))
    files = [*(ROOT / "helpers").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
    files += [ROOT / "problem_unittests.py", ROOT / "workspace_utils.py"]
    cited = {(p.relative_to(ROOT).as_posix(), n) for p in files for n in cited_steps(p.read_text())}
    assert len({path for path, _ in cited}) >= 8, "the citation pattern no longer finds the modules"
    stale = sorted((path, name) for path, name in cited if name not in sections)
    assert not stale, f"cited steps that are no heading of {NOTEBOOK.name}: {stale}"
