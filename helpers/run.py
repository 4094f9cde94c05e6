"""Run the whole notebook headless: the kit's main job (README.md, command 1).

    python -m helpers run                     # full run on the built-in faces (or your CelebA)
    python -m helpers run --quick             # a short smoke run (DCGAN_QUICK=1)
    python -m helpers run --update-notebook   # also store the run's outputs in the notebook

It executes the solution notebook top to bottom in a fresh kernel of this Python environment and
leaves in its own output folder (finished_run/, or finished_run/quick/; never the learner's
outputs/): the executed notebook, samples.png (the last epoch's faces), progress.png, losses.png,
checkpoint.pt and train_samples.pt. While it runs it prints the section being run, what the cells
print, and training progress (epoch k/n, batches, images/s, time left), at least every
PROGRESS_EVERY seconds; when a cell fails, that cell and its whole error message. Ctrl-C stops
it in a few lines that say where, what is saved and how to go on (the same command resumes).
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import os
import re
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from helpers.files import (
    NoSpaceError,
    NotWritableError,
    check_writable_folder,
    write_text_atomic,
)
from helpers.notebook import (
    NOTEBOOK,
    PART2_NOTEBOOK,
    ROOT,
    headings,
    numbered_cells,
    read_notebook,
    run_cells,
    set_notebook_env,
)

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = [
    "ANSI",
    "ARTEFACTS",
    "BAR_COUNT",
    "BAR_LEFT",
    "CELL_LINE",
    "EPOCH",
    "PART2_ARTEFACTS",
    "PROGRESS_EVERY",
    "RUN_OUT",
    "TRAIN_IMAGES",
    "WIDGET",
    "Progress",
    "artefacts_for",
    "clean_for_commit",
    "main",
    "report_failure",
    "run_notebook",
    "run_plain",
    "strip_ansi",
]

# Command 1's own folder: the learner's notebook writes to outputs/ (and outputs/quick/), and a
# run of the finished notebook must not set their checkpoint aside or overwrite their pictures.
RUN_OUT = Path("finished_run")
# Off a terminal, a running bar prints its state at least this often (seconds); with no bar, a
# cell that prints nothing for twice as long gets a line that says it is still running.
PROGRESS_EVERY = 10.0
ARTEFACTS = ("samples.png", "progress.png", "losses.png", "checkpoint.pt", "train_samples.pt")
# Part 2's results, in the part2/ folder of the output folder (its hyperparameters cell)
PART2_ARTEFACTS = tuple(
    f"part2/{name}"
    for name in (
        "dcgan64_samples.png",
        "wgan_losses.png",
        "wgan_samples.png",
        "interpolation.png",
        "walk.png",
        "wgan_generator.pt",
    )
)


def artefacts_for(notebook: str | Path) -> tuple[str, ...]:
    """The files a run of `notebook` must leave in the output folder: part 2's or part 1's."""
    return PART2_ARTEFACTS if Path(notebook).name == PART2_NOTEBOOK.name else ARTEFACTS


WIDGET = "application/vnd.jupyter.widget-view+json"
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # colour and cursor codes in tracebacks
# tqdm's text, as its notebook widget sends it: " 31/70 [00:02<00:03, 13.1it/s]", "Epoch 3/30:  45%"
BAR_COUNT = re.compile(
    r"(?P<done>\d+)/(?P<total>\d+) \[(?P<elapsed>[\d:]+)<(?P<left>[\d:?]+),\s*(?P<rate>[\d.?]+)\s*"
    r"(?:(?P<unit_s>[^\s/\]]+)/s|s/(?P<unit_per>[^\s\]]+))\]"
)
TRAIN_IMAGES = re.compile(r"([\d,]+) training images")  # the fast loader's line in the Train cell
BAR_LEFT = re.compile(r"^\s*(.*?):?\s+\d+%\s*$")  # "Epoch 3/30:  45%", "Drawing faces:   2%"
EPOCH = re.compile(r"\bEpoch\s+(\d+)\s*/\s*(\d+)", re.IGNORECASE)
CELL_LINE = re.compile(r"Cell In\[(\d+)\], line (\d+)")  # IPython's traceback frame header


def strip_ansi(text: str) -> str:
    """`text` without terminal colour codes (IPython colours its tracebacks)."""
    return ANSI.sub("", text)


def _clock(seconds):
    seconds = max(0, int(seconds + 0.5))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _seconds(text):
    """'01:23' or '1:02:03' as seconds; None for '?'."""
    try:
        value = 0
        for part in text.split(":"):
            value = value * 60 + int(part)
        return value
    except ValueError:
        return None


class Progress:
    """What `python -m helpers run` prints while the notebook runs.

    `section` for each markdown heading, `output` for what a cell prints, `bar` for each update
    of a tqdm progress widget's text and `bar_closed` when it goes away. On a terminal the
    running bar is one line redrawn in place; elsewhere (a log file, CI) a bar prints one line
    when it ends, and a bar that counts epochs one line per epoch. Training progress comes from
    either kind of bar the training loop may have: one over the epochs (unit "epoch"), or one
    over the batches of each epoch whose description says "Epoch k/n". Images per second come
    from the images per epoch (the fast loader's "N training images" line) or the batch size.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        batch_size: int | None = None,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out or sys.stdout
        self.batch_size = batch_size
        self.images_per_epoch: int | None = None
        self.live = self.out.isatty() if live is None else live
        self.clock = clock
        self.start = clock()
        self.drawn = False  # a live bar line is on screen
        self.desc: str | None = None  # the running bar's description; None when no bar runs
        self.count: Any = None  # its last counter (BAR_COUNT's groups dict), None before one
        self.reported: str | None = None  # the count of an epoch bar last printed (not live)
        self.bar_started: float | None = None
        # how long each finished epoch took, sampling and saving included
        self.epoch_seconds: list[float] = []
        self.last_section: str | None = None
        self.last_line = self.start  # when the last line was printed (clock())
        self._lock = threading.Lock()

    def heartbeat(self) -> None:
        """Called every second or so while a cell runs: after 2 * PROGRESS_EVERY seconds without
        a line, one that says the run goes on, and where."""
        quiet = self.clock() - self.last_line
        if quiet >= 2 * PROGRESS_EVERY:
            where = self.where() or "starting"
            self._print(f"    (still running, {where}: {_clock(quiet)} since the last line)")

    def _print(self, text):
        with self._lock:  # the heartbeat prints from its own thread
            if self.drawn:
                self.out.write("\r\x1b[K")
                self.drawn = False
            self.out.write(text + "\n")
            self.out.flush()
            self.last_line = self.clock()

    def section(self, title: str) -> None:
        self.end_bar()
        self.last_section = title
        elapsed = int(self.clock() - self.start)
        self._print(f"[{elapsed // 60}:{elapsed % 60:02d}] {title}")

    def output(self, text: str) -> None:
        """What a cell printed: each line indented, colour codes removed."""
        if self.count and self.count["done"] == self.count["total"] and not self._counts_epochs():
            self.end_bar()  # a bar that reached its end is over once the cell prints on
        text = strip_ansi(text)
        found = TRAIN_IMAGES.search(text)
        if found:
            self.images_per_epoch = int(found.group(1).replace(",", ""))
        for line in text.rstrip("\n").split("\n"):
            line = line.rsplit("\r", 1)[-1]  # a text progress bar: only its last state
            self._print(f"    {line}".rstrip())

    def bar(self, text: str) -> None:
        """One update of a progress widget's text: its description or its counter."""
        text = html.unescape(text).replace("\u2007", " ").replace("\xa0", " ")
        count = BAR_COUNT.search(text)
        if count is None:
            left = BAR_LEFT.match(text)
            desc = left.group(1) if left else text.strip() if EPOCH.search(text) else None
            if desc is not None and desc != self.desc:
                self.end_bar()
                self.desc, self.bar_started = desc, self.clock()
            return
        if self.desc is None:
            self.desc, self.bar_started = "", self.clock()
        self.count = count.groupdict()
        if self.live:
            with self._lock:
                self.out.write(f"\r\x1b[K    {self._status()}")
                self.out.flush()
                self.drawn = True
                self.last_line = self.clock()  # on screen now: no heartbeat needed
        elif self._counts_epochs() and self.count["done"] not in ("0", self.reported):
            self.reported = self.count["done"]
            self._print(f"    {self._status()}")
        elif self.clock() - self.last_line >= PROGRESS_EVERY and self.count["done"] != "0":
            self._print(f"    {self._status()}")  # a long bar in a log: its state now and then

    def where(self) -> str:
        """Where the run is now, for a message: the section and the running bar's count."""
        words = [f"in '{self.last_section}'"] if self.last_section else []
        if self.count:
            epoch = EPOCH.search(self.desc or "")
            if epoch:
                words.append(f"epoch {epoch.group(1)}/{epoch.group(2)}")
                words.append(f"batch {self.count['done']}/{self.count['total']}")
            else:
                label = self.desc or "progress"
                words.append(f"{label} {self.count['done']}/{self.count['total']}")
        return ", ".join(words)

    def bar_closed(self) -> None:
        """The bar's widget was closed (tqdm with leave=False): its loop is done."""
        if self.count:
            self.count.update(done=self.count["total"], left="0")
        self.end_bar()

    def _counts_epochs(self):
        return bool(self.count) and "epoch" in (self.count["unit_s"], self.count["unit_per"])

    def _per_second(self):
        rate = self.count["rate"]
        if rate == "?" or float(rate) == 0:
            return None
        return float(rate) if self.count["unit_s"] else 1 / float(rate)

    def _status(self, ended=False):
        c = self.count
        per_second = self._per_second()
        left = None if ended or c["done"] == c["total"] else _seconds(c["left"])
        epoch = EPOCH.search(self.desc or "")  # a bar runs: desc is set (maybe "")
        if self._counts_epochs():  # one bar over all epochs
            words = [f"epoch {c['done']}/{c['total']}"]
            if ended:
                words = [f"{c['done']}/{c['total']} epochs in {_clock(_seconds(c['elapsed']))}"]
            if per_second and self.images_per_epoch:
                words.append(f"{per_second * self.images_per_epoch:,.0f} images/s")
            if left is not None:
                words.append(f"about {_clock(left)} left")
            return ", ".join(words)
        if not epoch:  # any other bar: drawing the faces, decoding the images
            words = [f"{self.desc or 'progress'}: {c['done']}/{c['total']}"]
            if per_second:
                words.append(f"{per_second:,.1f} {c['unit_s'] or c['unit_per']}/s")
            if left is not None:
                words.append(f"about {_clock(left)} left")
            return ", ".join(words)
        # a bar over the batches of epoch k of n
        k, n = int(epoch.group(1)), int(epoch.group(2))
        words = [f"epoch {k}/{n}", f"{c['done']}/{c['total']} batches"]
        if ended:
            words[0] = f"epoch {k}/{n} done in {_clock(self.epoch_seconds[-1])}"
        if per_second:
            if self.batch_size:
                words.append(f"{per_second * self.batch_size:,.0f} images/s")
            else:
                words.append(f"{per_second:.1f} batches/s")
        # the rest of this epoch, then the epochs still to come at the pace measured so far
        if ended:
            this_epoch = 0 if k < n else None
        else:
            this_epoch = left if per_second else None
        if this_epoch is not None:
            per_epoch = self.epoch_seconds or [int(c["total"]) / per_second]
            rest = this_epoch + (n - k) * sum(per_epoch) / len(per_epoch)
            words.append(f"about {_clock(rest)} left")
        return ", ".join(words)

    def end_bar(self) -> None:
        """The running bar ended (it closed, a new one started, or the cell ended): print its
        last state once."""
        if self.desc is None:
            return
        if EPOCH.search(self.desc) and self.bar_started is not None:
            self.epoch_seconds.append(self.clock() - self.bar_started)
        if self.count and (
            self.live or not self._counts_epochs() or self.reported != self.count["done"]
        ):
            self._print(f"    {self._status(ended=True)}")
        self.desc, self.count, self.reported, self.bar_started = None, None, None, None


def _batch_size(nb):
    """The notebook's `batch_size = N` (its hyperparameters cell), for images per second."""
    for _, source in numbered_cells(nb):
        found = re.search(r"^batch_size\s*=\s*(\d+)", source, re.MULTILINE)
        if found:
            return int(found.group(1))
    return None


def _sections(cells):
    """{index of a code cell: the headings of the markdown cells just above it}."""
    found, pending = {}, []
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            pending += headings("".join(cell["source"]))
        elif cell["cell_type"] == "code" and pending:
            found[index], pending = pending, []
    return found


def clean_for_commit(nb: NotebookNode) -> NotebookNode:
    """A copy of an executed notebook fit for a reviewable commit.

    Drops what changes on every run without telling a reader anything: per-cell timing
    metadata, progress-bar widget views (their text version stays) and stored widget state.
    """
    nb = copy.deepcopy(nb)
    widgets = nb.metadata.pop("widgets", None) or {}
    state = widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and WIDGET in data:
                view = data.pop(WIDGET)
                # The text version is the bar as it was first drawn ("0%| | 0/30"): redraw it
                # from the widget's final state, so the record shows where training ended.
                text = _final_bar_text(view.get("model_id"), state)
                if text:
                    data["text/plain"] = text
    return nb


def _final_bar_text(model_id, state):
    """tqdm's notebook bar (an HBox of text, progress, text) as text, from its saved state;
    None when `model_id` is not such a bar."""
    box = state.get(model_id, {}).get("state", {})
    children = [
        state.get(str(c).removeprefix("IPY_MODEL_"), {}).get("state", {})
        for c in box.get("children", ())
    ]
    if box.get("_model_name") != "HBoxModel" or len(children) != 3:
        return None
    left, progress, right = children
    value, total = progress.get("value"), progress.get("max")
    if not isinstance(value, (int, float)) or not isinstance(total, (int, float)) or total <= 0:
        return None
    filled = max(0, min(10, round(10 * value / total)))
    left, right = (html.unescape(str(part.get("value", ""))) for part in (left, right))  # HTML
    return f"{left}|{'█' * filled}{' ' * (10 - filled)}|{right}"


def _client(nb, progress, **kwargs):
    """An nbclient NotebookClient that tells `progress` about sections, prints and bars."""
    from nbclient import NotebookClient

    sections = _sections(nb.cells)
    bars = set()  # the comm ids of progress-bar widgets
    running = {}  # the index of the cell running now, for a failure that records no error

    class Client(NotebookClient):
        running: dict[str, int]  # set below: the enclosing function's `running`

        def process_message(self, msg, cell, cell_index):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                progress.output(content.get("text", ""))
            elif kind.startswith("comm"):
                state = content.get("data", {}).get("state", {})
                if isinstance(state.get("value"), str):
                    progress.bar(state["value"])
                if state.get("_model_name") == "HBoxModel":  # tqdm's widget: text, bar, text
                    bars.add(content["comm_id"])
                if kind == "comm_close" and content.get("comm_id") in bars:
                    progress.bar_closed()
            return super().process_message(msg, cell, cell_index)

        async def _async_cleanup_kernel(self):
            # Ctrl-C: nbclient's own signal handler shuts the kernel down at once, and the
            # cleanup at the end would then fail on the missing kernel manager.
            if self.km is not None:
                await super()._async_cleanup_kernel()

    def on_cell_start(cell, cell_index):
        running["cell"] = cell_index
        for title in sections.get(cell_index, ()):
            progress.section(title)

    def on_cell_executed(cell, cell_index, execute_reply):
        progress.end_bar()

    client = Client(nb, on_cell_start=on_cell_start, on_cell_executed=on_cell_executed, **kwargs)
    client.running = running
    return client


def _kernel_manager(folder):
    """The asynchronous kernel manager nbclient expects (a blocking one would stall its timeouts);
    on Linux over local sockets (IPC) in `folder`, so the kernel does not warn that it runs over
    TCP without encryption."""
    from jupyter_client.manager import AsyncKernelManager

    if not sys.platform.startswith("linux"):
        return AsyncKernelManager(kernel_name="python3")
    km = AsyncKernelManager(kernel_name="python3", transport="ipc")
    km.ip = str(Path(folder) / "kernel")
    return km


def run_notebook(
    notebook: str | Path = NOTEBOOK,
    out_dir: str | Path = "outputs",
    quick: bool = False,
    timeout: int | None = None,
    progress: Progress | None = None,
) -> tuple[NotebookNode, float, dict[str, Any] | None]:
    """Execute `notebook` in a fresh kernel with DCGAN_OUT=out_dir.

    Returns (executed notebook, seconds, failure): failure is None, or a dict with the failed
    cell's number, source, section, ename, evalue, traceback (plain text) and line.
    """
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(str(notebook), as_version=4)
    progress = progress or Progress(batch_size=_batch_size(nb))
    set_notebook_env(out_dir, quick)  # the kernel inherits it
    # The kernel starts in the notebook's folder (solution/); it must import this kit's helpers
    # and problem_unittests, not another copy that happens to be installed.
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in paths if p])
    start = time.perf_counter()
    failure = None
    with tempfile.TemporaryDirectory(prefix="kit-kernel-") as sockets:
        client = _client(
            nb,
            progress,
            km=_kernel_manager(sockets),
            timeout=timeout,
            kernel_name="python3",
            # Stop the kernel outright at the end: a graceful shutdown of a kernel still busy
            # with a timed-out cell prints a ZMQError traceback, and there is nothing to save.
            shutdown_kernel="immediate",
            resources={"metadata": {"path": str(Path(notebook).resolve().parent)}},
        )
        client.owns_km = True  # shut the kernel down at the end, as when nbclient makes it
        beating = threading.Event()
        threading.Thread(target=_beat, args=(progress, beating), daemon=True).start()
        try:
            client.execute()
        except CellExecutionError as err:
            failure = _failure(nb) or _failure(
                nb, client.running.get("cell"), type(err).__name__, strip_ansi(str(err))
            )
        except CellTimeoutError:
            failure = _failure(
                nb,
                client.running.get("cell"),
                "Timeout",
                f"The cell ran for more than --timeout {timeout} s and was stopped.",
            )
        except DeadKernelError as err:
            if _stopped_by_a_signal(client):
                raise KeyboardInterrupt from None
            failure = _failure(
                nb,
                client.running.get("cell"),
                "DeadKernelError",
                f"The kernel died while the cell ran (out of memory?): {err}",
            )
        finally:
            beating.set()
    progress.end_bar()
    return nb, time.perf_counter() - start, failure


def _beat(progress, stop):
    """Progress.heartbeat every second until `stop` is set (a thread beside nbclient's loop)."""
    while not stop.wait(1.0):
        progress.heartbeat()


def _stopped_by_a_signal(client):
    """Whether nbclient's handler for Ctrl-C (SIGINT) or SIGTERM shut the kernel down."""
    return getattr(client, "_async_cleanup_kernel_future", None) is not None


def _report_interrupt(
    progress: Progress, out_dir: Path, command: str, out: TextIO | None = None
) -> None:
    """After Ctrl-C: where the run stopped, what is saved, how to go on; three lines."""
    from helpers.training import saved_epochs

    out = out or sys.stderr
    where = progress.where()
    elapsed = _clock(progress.clock() - progress.start)
    checkpoint = out_dir / "checkpoint.pt"
    epochs = saved_epochs(checkpoint) if checkpoint.is_file() else None
    if epochs:
        saved = f"Saved: {checkpoint}, after epoch {epochs}; later batches are not saved."
        again = f"To go on, run the same command again; training resumes from epoch {epochs + 1}:"
    else:
        saved = f"No training checkpoint is saved in {out_dir}/ yet."
        again = "To go on, run the same command again:"
    lines = [
        "",
        f"Stopped by Ctrl-C after {elapsed}" + (f", {where}." if where else "."),
        saved,
        f"{again} {command}",
    ]
    if progress.drawn:
        out.write("\r\x1b[K")
    print("\n".join(lines), file=out, flush=True)


def _failure(nb, index=None, ename=None, evalue=None):
    """The first cell with an error output, described for `report_failure`; or, given `index`,
    that cell, which failed with `ename`: `evalue` but recorded no error (a timeout)."""
    section: str | None = None
    for number, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "markdown":
            titles = headings(cell.source)
            section = titles[-1] if titles else section
            continue
        if index is not None and number == index + 1:
            return {
                "cell": number,
                "source": cell.source,
                "section": section,
                "ename": ename,
                "evalue": evalue,
                "traceback": "",
                "line": None,
            }
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            trace = strip_ansi("\n".join(output.get("traceback", [])))
            lines = [
                int(line)
                for count, line in CELL_LINE.findall(trace)
                if int(count) == cell.get("execution_count")
            ]
            return {
                "cell": number,
                "source": cell.source,
                "section": section,
                "ename": output.get("ename", "Error"),
                "evalue": strip_ansi(output.get("evalue", "")),
                "traceback": trace,
                "line": lines[0] if lines else None,
            }
    if ename:  # the cell is not known: say what happened all the same
        return {
            "cell": "?",
            "source": "",
            "section": None,
            "ename": ename,
            "evalue": evalue,
            "traceback": "",
            "line": None,
        }
    return None


def report_failure(
    failure: dict[str, Any],
    seconds: float,
    executed: str | Path | None = None,
    out: TextIO | None = None,
) -> None:
    """Print a failed cell: the error first, in full, then the cell with its failing line marked."""
    out = out or sys.stderr
    where = f" (section '{failure['section']}')" if failure.get("section") else ""
    lines = [
        "",
        f"The notebook stopped after {_clock(seconds)}: cell {failure['cell']}{where} raised "
        f"{failure['ename']}:",
        "",
    ]
    lines += [f"    {line}" for line in (failure["evalue"] or "(no message)").splitlines()]
    source = failure["source"].splitlines()
    if source:
        lines += ["", f"Cell {failure['cell']}:"]
        for number, text in enumerate(source, 1):
            mark = "->" if number == failure.get("line") else "  "
            lines.append(f" {mark} {number:3d}  {text}".rstrip())
    if executed and failure.get("traceback"):
        lines += ["", f"The whole traceback is in the executed notebook: {executed}"]
    elif executed:
        lines += ["", f"The executed notebook, up to that cell: {executed}"]
    elif failure.get("traceback"):
        lines += ["", "Traceback:", failure["traceback"].rstrip()]
    print("\n".join(lines), file=out, flush=True)


def run_plain(
    notebook: str | Path = NOTEBOOK,
    out_dir: str | Path = "outputs",
    quick: bool = False,
    progress: Progress | None = None,
) -> tuple[float, dict[str, Any] | None]:
    """Execute every code cell of `notebook` as plain Python, in one namespace, without Jupyter.

    For machines that have torch but no Jupyter (a rented GPU box): the same code runs top to
    bottom, stopping at the first failing cell; figures are only saved (Agg backend).
    Returns (seconds, failure or None), failure as for run_notebook.
    """
    set_notebook_env(out_dir, quick, headless=True)
    progress = progress or Progress()
    nb = read_notebook(notebook)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    start = time.perf_counter()
    # From the notebook's folder, as Jupyter starts a kernel (part 2 finds part 1 beside it).
    previous = os.getcwd()
    os.chdir(Path(notebook).resolve().parent)
    try:
        return _run_plain_cells(nb, namespace, start, progress)
    finally:
        os.chdir(previous)


def _run_plain_cells(nb, namespace, start, progress):
    import traceback

    section = None
    for number, cell in enumerate(nb["cells"], 1):
        if cell["cell_type"] == "markdown":
            for section in headings(cell["source"]):
                progress.section(section)
            continue
        if cell["cell_type"] != "code":
            continue
        errors = run_cells([(number, cell["source"])], namespace)
        if errors:
            error = errors[0]
            return time.perf_counter() - start, {
                "cell": number,
                "source": cell["source"],
                "section": section,
                "ename": error.error,
                "evalue": error.message,
                "traceback": "".join(traceback.format_exception(error.exception)),
                "line": error.line,
            }
    return time.perf_counter() - start, None


def _default_notebook():
    """The solution notebook, or in the learner's release (no solution/) the learner's own."""
    return NOTEBOOK if NOTEBOOK.is_file() else ROOT / NOTEBOOK.name


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the notebook, show its progress, list its results; 0 when all went well."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers run",
        description="Execute the solution notebook (in the learner's copy of the kit: your own) "
        "top to bottom, headless, and collect its results in a folder of its own. Prints each "
        "section as it starts, what the cells print, and training progress. Ctrl-C stops it and "
        "says how to go on.",
        epilog="Exit status: 0 when every cell ran and every result was written, 1 when a cell "
        "failed or a result is missing, 2 for a bad command line, 130 when stopped by Ctrl-C.",
    )
    parser.add_argument(
        "--out",
        default=None,
        help=f"folder for the executed notebook, images and checkpoint (default: {RUN_OUT}/, or "
        f"{RUN_OUT}/quick/ with --quick; never your notebook's outputs/)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="quick mode (DCGAN_QUICK=1): 512 built-in images and one epoch, to check that every "
        "cell runs",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="seconds any one cell may run before the run is stopped (default: no limit)",
    )
    parser.add_argument(
        "--notebook",
        default=str(_default_notebook()),
        help="the notebook to run (default: the solution notebook; in the learner's copy of the "
        "kit, which has none, your own dlnd_face_generation.ipynb)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="run the code cells as plain Python, without Jupyter (for a machine that has torch "
        "but no Jupyter); saves the images and checkpoint but no executed notebook",
    )
    parser.add_argument(
        "--update-notebook",
        action="store_true",
        help="instructors: write the run's outputs back into --notebook, cleaned for a "
        "reviewable commit (timings and widget state dropped)",
    )
    args = parser.parse_args(argv)

    out_dir = Path(args.out) if args.out else RUN_OUT / "quick" if args.quick else RUN_OUT
    notebook = Path(args.notebook)
    if not notebook.is_file():
        parser.error(f"no notebook at {notebook}")
    try:  # a file in the way, a read-only kit folder or a full disk: one clear line
        check_writable_folder(out_dir, "--out")
    except (NotWritableError, NoSpaceError) as err:
        parser.error(str(err))
    mode = "quick" if args.quick else "full"
    print(
        f"Running {notebook.name} ({mode} mode); results go to {out_dir}/"
        + ("" if args.out else " (your own outputs/ is not touched)")
        + " ...",
        flush=True,
    )
    if args.update_notebook:
        _set_aside_checkpoint(out_dir)
    progress = Progress(batch_size=_batch_size(read_notebook(notebook)))
    command = shlex.join(
        ["python", "-m", "helpers", "run", *(sys.argv[1:] if argv is None else argv)]
    )
    nb = None
    try:
        if args.plain:
            seconds, failure = run_plain(notebook, out_dir, args.quick, progress)
            executed = None
        else:
            nb, seconds, failure = run_notebook(
                notebook, out_dir, args.quick, args.timeout, progress
            )
            executed = out_dir / notebook.name
    except KeyboardInterrupt:
        _report_interrupt(progress, out_dir, command)
        return 130  # the shell's status for a run stopped by Ctrl-C
    summary = {"mode": mode, "plain": args.plain, "seconds": round(seconds, 1), "ok": not failure}
    unwritten = _write_record(nb, executed, out_dir / "run.json", summary)
    if failure:
        report_failure(failure, seconds, None if unwritten else executed)
    if unwritten:
        print(unwritten, file=sys.stderr)
    if failure or unwritten:
        return 1
    artefacts = artefacts_for(notebook)
    missing = [name for name in artefacts if not (out_dir / name).is_file()]
    print(f"Done in {_clock(seconds)}." + (f" Executed notebook: {executed}" if executed else ""))
    for name in artefacts:
        if name not in missing:
            print(f"  {out_dir / name}")
    if missing:
        print(f"Missing results: {', '.join(missing)}", file=sys.stderr)
        return 1
    if args.update_notebook and nb is not None:
        unwritten = _write_record(clean_for_commit(nb), notebook, None, {})
        if unwritten:
            print(unwritten, file=sys.stderr)
            return 1
        print(f"Stored this run's outputs in {notebook}.")
    return 0


def _set_aside_checkpoint(out_dir: Path) -> None:
    """Before --update-notebook: the committed outputs must show a whole training, never a run
    that resumed from an earlier one's checkpoint, so that checkpoint is set aside (kept)."""
    old = out_dir / "checkpoint.pt"
    if old.exists():
        kept = old.with_name("checkpoint.before-update.pt")
        old.replace(kept)
        print(f"Set aside {old} as {kept.name}: --update-notebook trains from scratch.")


def _write_record(nb, executed, record, summary):
    """Write the run record (run.json), then the executed notebook, each whole or not at all;
    returns None, or the one line to print when the disk is full. What cannot be written is
    removed, so a file of an earlier run never passes for this run's."""
    import nbformat

    writes = []
    if record is not None:
        writes.append((record, json.dumps(summary, indent=2) + "\n"))
    if nb is not None:
        text = nbformat.writes(nb)
        writes.append((executed, text if text.endswith("\n") else text + "\n"))
    for path, text in writes:
        try:
            write_text_atomic(path, text)
        except NoSpaceError as err:
            if record is not None:  # the output folder's files, never the solution notebook
                Path(path).unlink(missing_ok=True)
            return f"error: {err}"
    return None
