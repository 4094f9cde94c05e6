"""helpers.notebook: the one runner of notebook cells, and the environment the notebook reads."""

import traceback

import nbformat
import pytest

from helpers.notebook import load_solution, run_cells, set_notebook_env


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
