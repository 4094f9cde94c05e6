"""Run the whole notebook headless: the kit's main job (README, Quick start, command 1).

    python -m helpers run                  # full run on the built-in faces (or your CelebA)
    python -m helpers run --quick          # a one-minute smoke run (DCGAN_QUICK=1)
    python -m helpers run --update-notebook   # also store the run's outputs in the notebook

It executes dlnd_face_generation.ipynb top to bottom in a fresh kernel of this Python
environment and leaves in the output folder: the executed notebook, samples.png (the last
epoch's faces), progress.png, losses.png, checkpoint.pt and train_samples.pt.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

from helpers.notebook import NOTEBOOK, ROOT

ARTEFACTS = ("samples.png", "progress.png", "losses.png", "checkpoint.pt", "train_samples.pt")
WIDGET = "application/vnd.jupyter.widget-view+json"


def clean_for_commit(nb):
    """A copy of an executed notebook fit for a reviewable commit.

    Drops what changes on every run without telling a reader anything: per-cell timing
    metadata, progress-bar widget views (their text version stays) and stored widget state.
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and WIDGET in data:
                del data[WIDGET]
    return nb


def run_notebook(notebook=NOTEBOOK, out_dir="outputs", quick=False, timeout=None):
    """Execute `notebook` with DCGAN_OUT=out_dir; return (executed notebook, seconds, error or None)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(str(notebook), as_version=4)
    # the kernel inherits these: the notebook reads them in its hyperparameters cell
    os.environ["DCGAN_OUT"] = str(out_dir)
    if quick:
        os.environ["DCGAN_QUICK"] = "1"
    else:
        os.environ.pop("DCGAN_QUICK", None)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(notebook).resolve().parent)}})
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except CellExecutionError as err:
        error = err
    return nb, time.perf_counter() - start, error


def run_plain(notebook=NOTEBOOK, out_dir="outputs", quick=False):
    """Execute every code cell of `notebook` as plain Python, in one namespace, without Jupyter.

    For machines that have torch but no Jupyter (a rented GPU box): the same code runs top to
    bottom, figures are only saved (Agg backend). Returns (seconds, error or None).
    """
    from helpers.notebook import read_notebook, strip_magics

    os.environ["DCGAN_OUT"] = str(Path(out_dir).resolve())
    if quick:
        os.environ["DCGAN_QUICK"] = "1"
    else:
        os.environ.pop("DCGAN_QUICK", None)
    os.environ["MPLBACKEND"] = "Agg"
    namespace = {"__name__": "__main__"}
    start = time.perf_counter()
    for number, cell in enumerate(read_notebook(notebook)["cells"], 1):
        if cell["cell_type"] != "code":
            continue
        try:
            exec(compile(strip_magics(cell["source"]), f"<cell {number}>", "exec"), namespace)
        except Exception as err:  # report which cell failed, like Jupyter would
            return time.perf_counter() - start, f"cell {number}: {type(err).__name__}: {err}"
    return time.perf_counter() - start, None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m helpers run",
        description="Execute dlnd_face_generation.ipynb top to bottom, headless, and collect its results.")
    parser.add_argument("--out", default=None,
                        help="folder for the executed notebook, images and checkpoint "
                             "(default: outputs/, or outputs/quick/ with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="quick mode (DCGAN_QUICK=1): 512 built-in images and one epoch, about a minute")
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds any one cell may run before the run is stopped (default: no limit)")
    parser.add_argument("--notebook", default=str(NOTEBOOK), help="the notebook to run (default: the solution notebook)")
    parser.add_argument("--plain", action="store_true",
                        help="run the code cells as plain Python, without Jupyter (for a machine that has "
                             "torch but no Jupyter); saves the images and checkpoint but no executed notebook")
    parser.add_argument("--update-notebook", action="store_true",
                        help="instructors: write the run's outputs back into --notebook, cleaned for a "
                             "reviewable commit (timings and widget state dropped)")
    args = parser.parse_args(argv)

    out_dir = Path(args.out or ("outputs/quick" if args.quick else "outputs"))
    notebook = Path(args.notebook)
    if not notebook.is_file():
        parser.error(f"no notebook at {notebook}")
    print(f"Running {notebook.name} ({'quick' if args.quick else 'full'} mode); results go to {out_dir}/ ...",
          flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.plain:
        seconds, error = run_plain(notebook, out_dir, args.quick)
        executed = notebook
    else:
        nb, seconds, error = run_notebook(notebook, out_dir, args.quick, args.timeout)
        import nbformat
        executed = out_dir / notebook.name
        nbformat.write(nb, str(executed))
    summary = {"mode": "quick" if args.quick else "full", "plain": args.plain, "seconds": round(seconds, 1),
               "ok": error is None}
    (out_dir / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
    if error is not None and args.plain:
        print(f"\nThe notebook's code stopped after {seconds:.0f} s in {error}", file=sys.stderr)
        return 1
    if error is not None:
        print(f"\nThe notebook stopped with an error after {seconds:.0f} s. The executed notebook, with the "
              f"error in its cell, is {executed}.\n{str(error).strip().splitlines()[-1]}", file=sys.stderr)
        return 1
    missing = [name for name in ARTEFACTS if not (out_dir / name).is_file()]
    print(f"Done in {seconds / 60:.1f} min." + ("" if args.plain else f" Executed notebook: {executed}"))
    for name in ARTEFACTS:
        if name not in missing:
            print(f"  {out_dir / name}")
    if missing:
        print(f"Missing results: {', '.join(missing)}", file=sys.stderr)
        return 1
    if args.update_notebook and not args.plain:
        nbformat.write(clean_for_commit(nb), str(notebook))
        print(f"Stored this run's outputs in {notebook}.")
    return 0
