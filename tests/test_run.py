"""README command 1: `python -m helpers run` executes the notebook, shows its progress and leaves
its results; a failing cell is shown with its whole error."""

import io
import json
import re
import subprocess
import sys

import nbformat
import pytest

from helpers.notebook import NOTEBOOK, ROOT, headings
from helpers.run import ARTEFACTS, Progress, clean_for_commit, strip_ansi

RED = "\x1b[31m"


def run_cli(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "helpers", "run", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tiny_notebook(path, failing=True):
    """A notebook in the kit's shape: headed sections, a training loop with tqdm, a failing cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A tiny notebook\n\n## 1. Hyperparameters"),
        nbformat.v4.new_code_cell(f"batch_size = 4\nprint('{RED}set up\\x1b[0m')"),
        nbformat.v4.new_markdown_cell("## 2. Train"),
        nbformat.v4.new_code_cell(
            "import time\nfrom tqdm.auto import tqdm\n"
            "for epoch in range(2):\n"
            "    for batch in tqdm(range(5), desc=f'Epoch {epoch + 1}/2', leave=False):\n"
            "        time.sleep(0.02)\n"
            "    print(f'Epoch {epoch + 1}/2 | d_loss 0.5')"
        ),
        nbformat.v4.new_markdown_cell("## 3. Resume"),
    ]
    if failing:
        nb.cells.append(
            nbformat.v4.new_code_cell(
                "def load():\n"
                "    raise RuntimeError('Saved from networks of another shape.\\n'\n"
                "                       'Delete outputs/checkpoint.pt to start afresh.')\n"
                "\n"
                "load()\n"
            )
        )
        nb.cells.append(nbformat.v4.new_code_cell("print('after the failure')"))
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_quick_run_leaves_the_executed_notebook_and_every_result(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("--quick", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ARTEFACTS + (NOTEBOOK.name,):
        assert (out / name).stat().st_size > 0, name
    executed = nbformat.read(str(out / NOTEBOOK.name), as_version=4)
    errors = [
        o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
    assert json.loads((out / "run.json").read_text())["ok"] is True
    # it told us where it was: the notebook's own sections and the epochs of training
    section_titles = [
        t for c in executed.cells if c.cell_type == "markdown" for t in headings(c.source)
    ]
    for title in section_titles[:-1]:  # the last one, a question, has no code cell under it
        assert f"] {title}\n" in proc.stdout, title
    assert re.search(r"\n    epoch 1/1, [\d,]+ images/s\n", proc.stdout)
    assert "Tests Passed" in proc.stdout
    assert "without encryption" not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_a_failing_cell_is_shown_with_its_whole_error_and_progress_before_it(tmp_path):
    notebook = tiny_notebook(tmp_path / "tiny.ipynb")
    proc = run_cli("--notebook", notebook, "--out", tmp_path / "out", timeout=300)
    assert proc.returncode == 1
    out, err = proc.stdout, proc.stderr
    assert "] 1. Hyperparameters\n    set up\n" in out  # what cells print, without colour codes
    assert "] 2. Train\n" in out
    assert "epoch 1/2 done in" in out and "5/5 batches" in out and "images/s" in out
    assert "Epoch 2/2 | d_loss 0.5" in out
    assert "cell 6 (section '3. Resume') raised RuntimeError:" in err
    # the kit's advice survives in full, before the cell, and the failing line is marked
    assert "another shape.\n    Delete outputs/checkpoint.pt to start afresh." in err
    assert err.index("Delete outputs") < err.index("Cell 6:")
    assert " ->   5  load()" in err
    assert "after the failure" not in out
    assert "\x1b[" not in out + err
    assert "without encryption" not in out + err
    assert json.loads((tmp_path / "out" / "run.json").read_text())["ok"] is False


@pytest.mark.slow
def test_a_cell_past_the_timeout_is_named_and_the_run_stops(tmp_path):
    notebook = tiny_notebook(tmp_path / "tiny.ipynb", failing=False)
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import time\ntime.sleep(600)"))
    nbformat.write(nb, notebook)
    proc = run_cli("--notebook", notebook, "--out", tmp_path / "out", "--timeout", 5, timeout=300)
    assert proc.returncode == 1
    assert "cell 6 (section '3. Resume') raised Timeout:" in proc.stderr
    assert "more than --timeout 5 s" in proc.stderr and "  2  time.sleep(600)" in proc.stderr


@pytest.mark.slow
def test_plain_mode_shows_a_failing_cell_with_its_traceback(tmp_path):
    notebook = tiny_notebook(tmp_path / "tiny.ipynb")
    proc = run_cli("--plain", "--notebook", notebook, "--out", tmp_path / "out", timeout=300)
    assert proc.returncode == 1
    assert "] 2. Train\n" in proc.stdout and "Epoch 2/2 | d_loss 0.5" in proc.stdout
    err = proc.stderr
    assert "cell 6 (section '3. Resume') raised RuntimeError:" in err
    assert "Delete outputs/checkpoint.pt to start afresh." in err and " ->   5  load()" in err
    assert 'File "<cell 6>", line 2, in load' in err  # the learner's own lines in the traceback
    assert "after the failure" not in proc.stdout


def test_a_missing_notebook_is_a_command_line_error(tmp_path):
    proc = run_cli("--notebook", tmp_path / "nope.ipynb", timeout=120)
    assert proc.returncode == 2 and "no notebook at" in proc.stderr


def test_progress_on_a_terminal_redraws_one_line_and_estimates_the_time_left():
    screen, now = io.StringIO(), [0.0]
    progress = Progress(screen, batch_size=128, live=True, clock=lambda: now[0])
    progress.bar("Epoch 1/3")
    progress.bar("\u200720/70\u2007[00:02&lt;00:05,\u200710.00it/s]")
    progress.bar("\u200740/70\u2007[00:04&lt;00:03,\u200710.00it/s]")
    lines = screen.getvalue().split("\r\x1b[K")
    # 1,280 images/s; 3 s left in this epoch, then two epochs of 70 batches at 10 batches/s
    assert lines[-1] == "    epoch 1/3, 40/70 batches, 1,280 images/s, about 17 s left"
    assert "\n" not in screen.getvalue()
    now[0] = 9.0
    progress.bar_closed()  # the epoch took 9 s in all: two more take 18 s
    assert screen.getvalue().endswith(
        "\r\x1b[K    epoch 1/3 done in 9 s, 70/70 batches, 1,280 images/s, about 18 s left\n"
    )


def test_progress_in_a_log_prints_each_bar_once_when_it_ends():
    log = io.StringIO()
    progress = Progress(log, live=False)
    progress.bar("Drawing faces:   0%")
    progress.bar("\u2007100/512\u2007[00:01&lt;00:04,\u200795.5img/s]")
    progress.bar("\u2007500/512\u2007[00:05&lt;00:00,\u200799.0img/s]")
    assert log.getvalue() == ""
    progress.section("2. The data loader")
    assert log.getvalue().splitlines()[0] == "    Drawing faces: 500/512, 99.0 img/s"
    assert log.getvalue().splitlines()[1].endswith("] 2. The data loader")


def test_progress_in_a_log_prints_a_line_per_epoch_of_an_epoch_bar():
    log = io.StringIO()
    progress = Progress(log, live=False)
    progress.output("Fast loader: 9,000 training images of 3x32x32 (+1000 held out)\n")
    progress.bar("Training:   0%")
    progress.bar("\u20070/30\u2007[00:00&lt;?,\u2007?epoch/s]")
    progress.bar("\u20071/30\u2007[00:09&lt;04:30,\u2007\u20079.00s/epoch]")
    progress.bar("\u20071/30\u2007[00:09&lt;04:30,\u2007\u20079.00s/epoch]")  # the same again
    progress.output("Epoch   2/30 | d_loss 0.5\n")
    progress.bar("\u20072/30\u2007[00:18&lt;04:12,\u2007\u20079.00s/epoch]")
    progress.bar("\u200730/30\u2007[04:30&lt;00:00,\u2007\u20079.00s/epoch]")
    progress.section("12. Training losses")
    assert log.getvalue().splitlines()[1:5] == [
        "    epoch 1/30, 1,000 images/s, about 4 min 30 s left",  # 9,000 images every 9 s
        "    Epoch   2/30 | d_loss 0.5",
        "    epoch 2/30, 1,000 images/s, about 4 min 12 s left",
        "    epoch 30/30, 1,000 images/s",
    ]
    assert log.getvalue().splitlines()[5].endswith("] 12. Training losses")


def test_strip_ansi_and_headings():
    assert strip_ansi(f"{RED}RuntimeError\x1b[0m: \x1b[1;32mboom\x1b[0m") == "RuntimeError: boom"
    assert headings("# Title\ntext\n## 5. The discriminator\n#no heading") == [
        "Title",
        "5. The discriminator",
    ]


def test_clean_for_commit_drops_timings_and_widget_views_but_keeps_text():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "abc"},
                "text/plain": "Epoch 1/1: 100%",
            },
        )
    ]
    nb.metadata["widgets"] = {"state": {}}
    clean = clean_for_commit(nb)
    first = next(c for c in clean.cells if c.cell_type == "code")
    assert "execution" not in first.metadata and "widgets" not in clean.metadata
    assert first.outputs[0]["data"] == {"text/plain": "Epoch 1/1: 100%"}
    assert "execution" in cell.metadata  # the original is left alone


def test_clean_for_commit_redraws_a_progress_bar_as_it_ended():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("train(...)")
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "box"}}
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={**view, "text/plain": "Training:   0%| | 0/30"}
        )
    ]
    nb.cells = [cell]

    def model(name, **state):
        return {"model_name": name, "state": {"_model_name": name, **state}}

    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "state": {
                "box": model("HBoxModel", children=["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]),
                "l": model("HTMLModel", value="Training: 100%"),
                "p": model("FloatProgressModel", value=30, max=30),
                # tqdm's widgets hold HTML: "<" arrives as "&lt;"
                "r": model("HTMLModel", value=" 30/30 [04:12&lt;00:00, 8.40s/epoch]"),
            }
        }
    }
    text = clean_for_commit(nb).cells[0].outputs[0]["data"]["text/plain"]
    assert text == "Training: 100%|██████████| 30/30 [04:12<00:00, 8.40s/epoch]"


@pytest.mark.slow
def test_plain_mode_runs_the_code_cells_without_jupyter(tmp_path):
    out = tmp_path / "plain"
    proc = run_cli("--quick", "--plain", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ARTEFACTS:
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "run.json").read_text())["plain"] is True
