"""README command 1: `python -m helpers run` executes the notebook, shows its progress and leaves
its results; a failing cell is shown with its whole error."""

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from helpers.notebook import NOTEBOOK, ROOT, headings
from helpers.run import ARTEFACTS, PROGRESS_EVERY, RUN_OUT, Progress, clean_for_commit, strip_ansi

RED = "\x1b[31m"


def run_cli(*args, timeout=900, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "helpers", "run", *map(str, args)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this kit, from any folder
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(folder):
    """{path: SHA-256} of every file under `folder`; None when there is no such folder."""
    if not folder.exists():
        return None
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


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
    assert re.search(r"\n    epoch 1/1 done in [^\n]*, [\d,]+ images/s\n", proc.stdout)
    assert "Tests Passed" in proc.stdout
    assert "without encryption" not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_by_default_results_go_to_its_own_folder_and_the_learners_outputs_stay_as_they_were(
    tmp_path,
):
    learners = [ROOT / "outputs", ROOT / "outputs" / "quick"]  # the notebook's own folders
    before = [snapshot(folder) for folder in learners]
    proc = run_cli("--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    assert f"results go to {RUN_OUT / 'quick'}/ (your own outputs/ is not touched)" in first
    assert [snapshot(folder) for folder in learners] == before
    for name in ARTEFACTS:
        assert (tmp_path / RUN_OUT / "quick" / name).is_file(), name


def ctrl_c_after(notebook, ready, *args):
    """Run command 1 on `notebook`, send it Ctrl-C (SIGINT) once a line contains `ready`; returns
    (exit status, what it printed after that line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers", "run", "--notebook", str(notebook), *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in proc.stdout:
            if ready in line:
                break
        time.sleep(2)  # into the loop
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, rest


def looping_notebook(path):
    """A notebook whose training cell runs for minutes under a progress bar."""
    nb = nbformat.read(tiny_notebook(path, failing=False), as_version=4)
    nb.cells[3].source = (
        "import time\nfrom tqdm.auto import tqdm\n"
        "for batch in tqdm(range(1000), desc='Epoch 1/2'):\n"
        "    time.sleep(0.2)"
    )
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("mode", [(), ("--plain",)], ids=["kernel", "plain"])
def test_ctrl_c_ends_in_a_few_lines_that_say_where_what_is_saved_and_how_to_go_on(tmp_path, mode):
    notebook = looping_notebook(tmp_path / "loop.ipynb")
    out = tmp_path / "out"
    status, rest = ctrl_c_after(notebook, "] 2. Train", "--out", out, *mode)
    # after the bar's last state (plain mode: tqdm's own text bar, each redraw a line here)
    lines = [line for line in rest.splitlines() if line.strip()]
    lines = lines[
        max((i + 1 for i, x in enumerate(lines) if x.startswith("Epoch 1/2:")), default=0) :
    ]
    assert status == 130
    assert "Traceback" not in rest and len(lines) <= 5, rest
    assert "Stopped by Ctrl-C after" in rest and "in '2. Train'" in rest
    if not mode:  # the kernel's progress bar comes through command 1 (plain: tqdm's own, above)
        assert "in '2. Train', epoch 1/2, batch " in rest
    assert f"No training checkpoint is saved in {out}/ yet." in rest
    assert lines[-1].startswith("To go on, run the same command again: python -m helpers run")
    assert lines[-1].endswith(f"--notebook {notebook} --out {out}" + " --plain" * bool(mode))


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


def test_progress_in_a_log_prints_a_running_bar_every_few_seconds():
    log, now = io.StringIO(), [0.0]
    progress = Progress(log, live=False, clock=lambda: now[0])
    progress.bar("Drawing faces:   0%")
    for done in range(0, 1000, 10):  # 100 updates, one a second
        now[0] += 1
        progress.bar(f"\u2007{done}/1000\u2007[00:01&lt;00:04,\u200710.0img/s]")
    lines = log.getvalue().splitlines()
    # a line every PROGRESS_EVERY seconds of the 100, each with the count at that time
    assert len(lines) == 100 // PROGRESS_EVERY
    assert lines[0] == "    Drawing faces: 90/1000, 10.0 img/s, about 4 s left"


def test_a_cell_silent_for_long_gets_a_line_that_says_the_run_goes_on():
    log, now = io.StringIO(), [0.0]
    progress = Progress(log, live=False, clock=lambda: now[0])
    progress.section("5. The discriminator")
    for second in range(1, 61):  # a minute without a line from the cell
        now[0] = second
        progress.heartbeat()
    lines = log.getvalue().splitlines()[1:]
    assert lines == [
        "    (still running, in '5. The discriminator': 20 s since the last line)"
    ] * int(60 // (2 * PROGRESS_EVERY))


def test_progress_says_where_a_run_stopped():
    progress = Progress(io.StringIO(), live=False)
    progress.section("11. The training loop")
    progress.bar("Epoch 3/12:  45%")
    progress.bar("\u2007127/281\u2007[00:10&lt;00:12,\u200712.7batch/s]")
    assert progress.where() == "in '11. The training loop', epoch 3/12, batch 127/281"


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


def test_update_notebook_trains_from_scratch_never_resumes(tmp_path, monkeypatch, capsys):
    """--update-notebook sets an earlier run's checkpoint aside (kept, not deleted) before it
    runs, so the committed outputs show a whole training."""
    import helpers.run as run

    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"an earlier run")
    seen = {}

    def fake_run(notebook, out_dir, quick, timeout, progress):
        seen["checkpoint there"] = (out_dir / "checkpoint.pt").exists()
        raise KeyboardInterrupt  # stop before anything is written back

    monkeypatch.setattr(run, "run_notebook", fake_run)
    monkeypatch.setattr(run, "_report_interrupt", lambda *a: None)
    run.main(["--out", str(out), "--update-notebook"])
    assert seen == {"checkpoint there": False}
    assert (out / "checkpoint.before-update.pt").read_bytes() == b"an earlier run"
    assert "trains from scratch" in capsys.readouterr().out
