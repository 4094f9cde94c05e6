"""README command 1: `python -m helpers run` executes the notebook and leaves its results."""
import json
import subprocess
import sys

import nbformat

from helpers.notebook import NOTEBOOK, ROOT
from helpers.run import ARTEFACTS, clean_for_commit


def test_quick_run_leaves_the_executed_notebook_and_every_result(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "helpers", "run", "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ARTEFACTS + ("dlnd_face_generation.ipynb",):
        assert (out / name).stat().st_size > 0, name
    executed = nbformat.read(str(out / "dlnd_face_generation.ipynb"), as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert json.loads((out / "run.json").read_text())["ok"] is True


def test_a_missing_notebook_is_a_command_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "helpers", "run", "--notebook", str(tmp_path / "nope.ipynb")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no notebook at" in proc.stderr


def test_clean_for_commit_drops_timings_and_widget_views_but_keeps_text():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc"}, "text/plain": "Epoch 1/1: 100%"})]
    nb.metadata["widgets"] = {"state": {}}
    clean = clean_for_commit(nb)
    first = next(c for c in clean.cells if c.cell_type == "code")
    assert "execution" not in first.metadata and "widgets" not in clean.metadata
    assert first.outputs[0]["data"] == {"text/plain": "Epoch 1/1: 100%"}
    assert "execution" in cell.metadata  # the original is left alone


def test_plain_mode_runs_the_code_cells_without_jupyter(tmp_path):
    out = tmp_path / "plain"
    proc = subprocess.run([sys.executable, "-m", "helpers", "run", "--quick", "--plain", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ARTEFACTS:
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "run.json").read_text())["plain"] is True
