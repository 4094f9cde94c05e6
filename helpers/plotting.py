"""Pictures for the notebook: a batch of training faces, the loss curves, generated samples.

Serves the notebook steps "The data loader" (``show_batch``: look at a batch of real faces),
"Build the networks" (``plot_architecture``: D and G layer by layer, with shapes), "Training
losses" (``plot_losses``) and "Generated samples" (``view_samples``, ``view_progress``);
``imshow`` draws one image on an axes of your own.

Every function returns the matplotlib Figure it drew and, given ``path``, also writes a PNG.

Where the figures appear:

* Jupyter (inline backend): each figure is shown exactly once, however the line is written: as a
  statement, ending in ``;`` (what the notebook does), or as the cell's last expression. The
  figures are a small Figure subclass whose Jupyter display shows the picture and then closes the
  figure, so the inline backend's own end-of-cell display cannot draw it a second time.
* Headless (scripts, CI, ``MPLBACKEND=Agg``): nothing is shown and nothing is warned; each figure
  is closed once drawn (and saved), so a long run does not pile up open figures. The returned
  Figure can still be saved with ``fig.savefig``.
* A desktop window backend (Qt, Tk, macOS): figures stay open; call ``plt.show()`` as usual.
"""

from __future__ import annotations

import io
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torchvision.utils import make_grid, save_image

from helpers.files import write_bytes_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage
    from torch import nn

__all__ = [
    "FEW_POINTS",
    "INCHES_PER_PIXEL",
    "MAX_FIGURE_INCHES",
    "PAD_VALUE",
    "PADDING",
    "RECORDS",
    "SAVE_DPI",
    "TOLERANCE",
    "Images",
    "Losses",
    "imshow",
    "plot_architecture",
    "plot_losses",
    "show_batch",
    "view_progress",
    "view_samples",
]

# A batch (or one image) as a tensor on any device, or a numpy array
Images = torch.Tensor | np.ndarray
# What train returns, records of (d_loss, g_loss[, D(x), D(G(z))]), or {name: [loss, ...]}
Losses = Iterable[Sequence[float | torch.Tensor]] | Mapping[str, Iterable[float | torch.Tensor]]

PADDING = 2  # pixels between images in a grid (torchvision's default)
PAD_VALUE = 1.0  # white gaps: the grid reads as separate faces on a white page
SAVE_DPI = 100  # saved figure PNGs are (figure inches x 100) pixels
TOLERANCE = 0.01  # values this far outside the expected range are rounding, not a mistake
MAX_FIGURE_INCHES = 12
INCHES_PER_PIXEL = 1 / 50  # a 32x32 face is drawn about 0.6 inch wide
FEW_POINTS = 50  # plot_losses marks each point when a curve has at most this many

# Backends that draw to files only; figures made under them are closed after use.
_FILE_ONLY_BACKENDS = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


class _ShowOnceFigure(Figure):
    """A Figure that a Jupyter notebook displays once, however it is reached.

    Why: the inline backend shows every open figure at the end of a cell, and IPython also
    displays a Figure that is the cell's last expression; a plain Figure would appear twice.
    Both routes call this hook, which shows the picture and closes the figure so that the
    other route finds nothing left to show.
    """

    def _ipython_display_(self):
        from IPython.display import Image, display

        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        display(Image(data=buffer.getvalue(), format="png"))
        plt.close(self)


def _backend():
    return matplotlib.get_backend().lower()


def _new_figure(**kwargs):
    figure_class = _ShowOnceFigure if "inline" in _backend() else Figure
    return plt.figure(FigureClass=figure_class, layout="constrained", **kwargs)


def _finish(fig, path=None):
    if path is not None:
        # in memory, then a temp file renamed over `path`: a full disk or a kill never leaves
        # a half-written PNG (docs/samples.png is a copy of one)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=SAVE_DPI, facecolor="white")
        write_bytes_atomic(path, buffer.getvalue())
    if _backend() in _FILE_ONLY_BACKENDS:
        plt.close(fig)
    return fig


def _save_grid(images, path, **options):
    """torchvision's save_image, written whole or not at all (see ``_finish``)."""
    buffer = io.BytesIO()
    save_image(images, buffer, format="png", **options)
    write_bytes_atomic(path, buffer.getvalue())


def _png_path(path, function):
    if path is None:
        return None
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{function} saves PNG files: path should end in .png, got {str(path)!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _check_positive_int(value, name, function, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{function}: {name} must be a whole number >= {minimum}, got {value!r}.")


def _as_cpu_float(images: object, function: str, expected: str) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"{function} expects a tensor of images shaped {expected}, got {type(images).__name__}."
        )
    # Quietly bring GPU tensors (and ones that need grad) over for drawing.
    return images.detach().to("cpu", torch.float32)


def _check_batch(images: object, function: str) -> torch.Tensor:
    """Return images as a CPU float tensor (B, 3, H, W), or explain plainly what is wrong."""
    images = _as_cpu_float(images, function, "(B, 3, H, W)")
    shape = tuple(images.shape)
    if images.dim() == 3 and shape[0] == 3:
        raise ValueError(
            f"{function} expects a batch of images shaped (B, 3, H, W), got one image shaped "
            f"{shape}. Add the batch dimension with images.unsqueeze(0)."
        )
    if images.dim() != 4:
        raise ValueError(
            f"{function} expects a batch of images shaped (B, 3, H, W), "
            f"got a tensor shaped {shape}."
        )
    if shape[1] != 3:
        hint = (
            " It looks channels-last; reorder it with images.permute(0, 3, 1, 2)."
            if shape[3] == 3
            else " The faces are RGB images with 3 channels."
        )
        raise ValueError(
            f"{function} expects 3 colour channels in dimension 1, (B, 3, H, W); "
            f"got shape {shape}.{hint}"
        )
    if shape[0] == 0:
        raise ValueError(f"{function} got an empty batch (0 images); there is nothing to draw.")
    if not torch.isfinite(images).all():
        raise ValueError(
            f"{function} got images containing NaN or infinite values. If they come from the "
            "generator, training has diverged: check the losses and the learning rate."
        )
    return images


def _check_unit_range(images: torch.Tensor, function: str) -> torch.Tensor:
    """Images meant to be in [0, 1]: catch [-1, 1] and 0-255 inputs, then clamp rounding."""
    low, high = images.min().item(), images.max().item()
    if low < -TOLERANCE:
        raise ValueError(
            f"{function} expects images in [0, 1] (what the dataloader yields), but the values go "
            f"down to {low:.2f}: they look already scaled to [-1, 1]. Use view_samples for "
            "images in [-1, 1], or map them back with (images + 1) / 2."
        )
    if high > 1 + TOLERANCE:
        cause = (
            "they look like 0-255 pixel values; transforms.ToTensor() gives [0, 1]"
            if high > 2
            else "check the transforms"
        )
        raise ValueError(
            f"{function} expects images in [0, 1], but the values go up to {high:.2f}: {cause}."
        )
    return images.clamp(0, 1)


def _check_tanh_range(samples: torch.Tensor, function: str) -> torch.Tensor:
    low, high = samples.min().item(), samples.max().item()
    if low < -1 - TOLERANCE or high > 1 + TOLERANCE:
        raise ValueError(
            f"{function} expects generator output in [-1, 1], got values from {low:.2f} to "
            f"{high:.2f}. The generator's last layer should be followed by nn.Tanh()."
        )
    return samples


def _grid(images01, nrow):
    return make_grid(images01, nrow=nrow, padding=PADDING, pad_value=PAD_VALUE)


def _figure_inches(grid_width, grid_height, rows=1):
    """Width and height in inches for `rows` grids of this pixel size, stacked."""
    width = min(max(grid_width * INCHES_PER_PIXEL, 3), MAX_FIGURE_INCHES)
    height = width * grid_height / grid_width * rows
    if height > MAX_FIGURE_INCHES:
        width, height = width * MAX_FIGURE_INCHES / height, MAX_FIGURE_INCHES
    return width, height


def _grid_figure(grid, title):
    width, height = _figure_inches(grid.shape[2], grid.shape[1])
    fig = _new_figure(figsize=(width, height + (0.4 if title else 0)))
    ax = fig.add_subplot()
    imshow(grid, ax=ax)
    if title:
        ax.set_title(title)
    return fig


def _number(value):
    # A loss appended without .item() is a tensor; detach so float() does not warn about grad.
    if isinstance(value, torch.Tensor):
        value = value.detach()
    return float(value)


def _describe(value):
    return f"{reprlib.repr(value)} ({type(value).__name__})"


def imshow(img: Images, ax: Axes | None = None) -> AxesImage:
    """Draw one RGB image on ``ax`` (default: the current axes), without axis ticks.

    img: tensor (3, H, W) float in [0, 1], or a numpy array (H, W, 3) (float in [0, 1] or uint8).
    Used by every other function here; handy for your own subplot layouts.
    Returns the matplotlib AxesImage.
    """
    if isinstance(img, np.ndarray):
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f"imshow expects a numpy image shaped (H, W, 3), got shape {img.shape}."
            )
        array = img
        if array.dtype != np.uint8:
            unit = _check_unit_range(torch.from_numpy(np.asarray(img, np.float32)), "imshow")
            array = unit.numpy()
    else:
        tensor = _as_cpu_float(img, "imshow", "(3, H, W)")
        if tensor.dim() != 3 or tensor.shape[0] != 3:
            hint = (
                " For a batch use show_batch, or pick one image with images[0]."
                if tensor.dim() == 4
                else ""
            )
            raise ValueError(
                f"imshow expects one image shaped (3, H, W), got shape {tuple(tensor.shape)}.{hint}"
            )
        array = _check_unit_range(tensor, "imshow").permute(1, 2, 0).numpy()
    ax = ax if ax is not None else plt.gca()
    # Nearest: a 32x32 face drawn larger keeps its real pixels instead of a blur.
    image = ax.imshow(array, interpolation="nearest")
    ax.set_axis_off()
    return image


def show_batch(
    images: Images, nrow: int = 8, title: str | None = None, path: str | Path | None = None
) -> Figure:
    """Show a batch of real training images as a grid ("The data loader" step).

    images: tensor (B, 3, H, W), float in [0, 1], as the dataloader yields it (any device).
    nrow: images per grid row. title: optional figure title.
    path: also save the grid itself as a PNG (one pixel per image pixel, 2-pixel white gaps).
    Returns the Figure; in a notebook it is shown once (see the module docstring).
    """
    _check_positive_int(nrow, "nrow", "show_batch")
    images = _check_unit_range(_check_batch(images, "show_batch"), "show_batch")
    path = _png_path(path, "show_batch")
    if path is not None:
        _save_grid(images, path, nrow=nrow, padding=PADDING, pad_value=PAD_VALUE)
    return _finish(_grid_figure(_grid(images, nrow), title))


def view_samples(
    samples: Images, nrow: int = 8, title: str | None = None, path: str | Path | None = None
) -> Figure:
    """Show generated images as a grid ("Generated samples" step).

    samples: generator output, tensor (B, 3, H, W) in [-1, 1] (tanh), any device.
    nrow: images per grid row. title: optional figure title.
    path: also save the grid as a PNG, -1 -> black (0) and +1 -> white (255).
    Returns the Figure; in a notebook it is shown once (see the module docstring).
    """
    _check_positive_int(nrow, "nrow", "view_samples")
    samples = _check_tanh_range(_check_batch(samples, "view_samples"), "view_samples")
    path = _png_path(path, "view_samples")
    if path is not None:
        _save_grid(
            samples,
            path,
            nrow=nrow,
            padding=PADDING,
            pad_value=PAD_VALUE,
            normalize=True,
            value_range=(-1, 1),
        )
    images = ((samples + 1) / 2).clamp(0, 1)
    return _finish(_grid_figure(_grid(images, nrow), title))


def view_progress(
    samples_per_epoch: Sequence[Images],
    max_rows: int = 8,
    n_per_row: int = 8,
    path: str | Path | None = None,
) -> Figure:
    """Show the fixed-noise samples epoch by epoch, one row per epoch ("Generated samples" step).

    samples_per_epoch: list of tensors (B, 3, H, W) in [-1, 1], one per epoch, in order
        (what the training loop collects); row labels count epochs from 1.
    max_rows: most rows to draw; with more epochs, evenly spaced ones are chosen, always
        including the first and the last (>= 2).
    n_per_row: the first n_per_row samples of each epoch are drawn.
    path: also save the figure as a PNG (SAVE_DPI dots per inch).
    Returns the Figure; in a notebook it is shown once (see the module docstring).
    """
    _check_positive_int(max_rows, "max_rows", "view_progress", minimum=2)
    _check_positive_int(n_per_row, "n_per_row", "view_progress")
    path = _png_path(path, "view_progress")
    if isinstance(samples_per_epoch, (torch.Tensor, np.ndarray)) and samples_per_epoch.ndim == 4:
        raise ValueError(
            "view_progress expects a list of sample batches, one per epoch; got a single batch "
            f"shaped {tuple(samples_per_epoch.shape)}. For one batch use view_samples."
        )
    epochs = list(samples_per_epoch)
    if not epochs:
        raise ValueError(
            "view_progress got no epochs (an empty list). The training loop should append "
            "G(fixed_z) to it once per epoch."
        )
    if len(epochs) <= max_rows:
        chosen = list(range(len(epochs)))
    else:
        # linspace keeps both ends; with more epochs than rows the rounded picks are distinct.
        chosen = np.linspace(0, len(epochs) - 1, max_rows).round().astype(int).tolist()

    rows = []
    for index in chosen:
        function = f"view_progress (epoch {index + 1})"
        samples = _check_tanh_range(_check_batch(epochs[index], function), function)
        rows.append(_grid(((samples[:n_per_row] + 1) / 2).clamp(0, 1), n_per_row))

    width, height = _figure_inches(rows[0].shape[2], rows[0].shape[1], rows=len(rows))
    fig = _new_figure(figsize=(width + 0.8, height))  # + room for the row labels
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, index, grid in zip(axes, chosen, rows):
        imshow(grid, ax=ax)
        # Axis back on for the label only: no ticks, no frame.
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(f"epoch {index + 1}", rotation=0, ha="right", va="center")
    return _finish(fig, path)


RECORDS = "(d_loss, g_loss) or (d_loss, g_loss, D(x), D(G(z))) records"


def _loss_series(losses):
    """({'name': [float, ...]}, probabilities) from train's records or a dict of loss lists.

    probabilities is {'D(x)': [...], 'D(G(z))': [...]} when some records carry them (nan where a
    record does not, e.g. the pairs of an older checkpoint), else None.
    """
    records_message = f"plot_losses expected a list of {RECORDS}"
    if isinstance(losses, dict):
        if not losses:
            raise ValueError(
                "plot_losses got an empty dict; expected {'Discriminator': [...], "
                "'Generator': [...]}."
            )
        series = {}
        for name, values in losses.items():
            try:
                series[str(name)] = [_number(v) for v in values]
            except (TypeError, ValueError, RuntimeError):
                raise ValueError(
                    f"plot_losses: the {name!r} losses should be a list of numbers, "
                    f"got {_describe(values)}."
                ) from None
            if not series[str(name)]:
                raise ValueError(f"plot_losses: the {name!r} list is empty; nothing to plot yet.")
        return series, None

    if isinstance(losses, (str, bytes)) or not hasattr(losses, "__iter__"):
        raise ValueError(f"{records_message}, got {_describe(losses)}.")
    losses = list(losses)
    if not losses:
        raise ValueError(
            f"{records_message}, got an empty list: nothing was logged. The training loop should "
            "append (d_loss.item(), g_loss.item(), ...) every print_every batches."
        )
    columns: list[list[float]] = [[], [], [], []]  # d_loss, g_loss, D(x), D(G(z))
    for index, record in enumerate(losses):
        try:
            values = [_number(v) for v in record]
            if len(values) not in (2, 4):
                raise ValueError
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"{records_message}, got {_describe(record)} at index {index}."
            ) from None
        for column, value in zip(columns, values + [float("nan")] * (4 - len(values))):
            column.append(value)
    series = {"Discriminator": columns[0], "Generator": columns[1]}
    if all(np.isnan(columns[2])) and all(np.isnan(columns[3])):
        return series, None
    return series, {"D(x)": columns[2], "D(G(z))": columns[3]}


def plot_losses(
    losses: Losses, path: str | Path | None = None, title: str = "Training losses"
) -> Figure:
    """Plot the losses and, when logged, D(x) and D(G(z)) ("Training losses" step).

    losses: what train returns, a list of (d_loss, g_loss, D(x), D(G(z))) records of floats (or
        (d_loss, g_loss) pairs), one per logged step; or a dict of lists, e.g.
        {'Discriminator': [...], 'Generator': [...]}.
    Draws the losses; with D(x) and D(G(z)), a second panel below shows these mean
    probabilities on a 0..1 axis with the 0.5 line where D can no longer tell real from fake.
    path: also save the figure as a PNG (800 x 400 pixels, 800 x 650 with the second panel).
    Returns the Figure; in a notebook it is shown once (see the module docstring).
    """
    series, probabilities = _loss_series(losses)
    path = _png_path(path, "plot_losses")
    if probabilities is None:
        fig = _new_figure(figsize=(8, 4))
        ax = fig.add_subplot()
    else:
        fig = _new_figure(figsize=(8, 6.5))
        ax, ax_p = fig.subplots(2, 1, sharex=True, height_ratios=(1.4, 1))
    for name, values in series.items():
        # Markers while there are few points (quick mode logs a handful): a line alone between
        # one or two points is invisible, and the axes would look empty.
        marker = "o" if len(values) <= FEW_POINTS else None
        ax.plot(values, label=name, alpha=0.8, marker=marker)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "step 0.25" in a short run
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    if probabilities is None:
        ax.set_xlabel("logged step")
        return _finish(fig, path)
    for name, values in probabilities.items():
        marker = "o" if len(values) <= FEW_POINTS else None
        ax_p.plot(values, label=name, alpha=0.8, marker=marker)
    # Where D outputs 0.5 for everything it can no longer tell real from fake.
    ax_p.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax_p.set_ylim(0, 1)
    ax_p.set_xlabel("logged step")
    ax_p.set_ylabel("mean probability")
    ax_p.set_title("What D says in its step: D(x) on real images, D(G(z)) on fakes", fontsize=10)
    ax_p.legend()
    return _finish(fig, path)


def _shape_text(shape):
    """'128 x 4 x 4' for (B, 128, 4, 4), '100' for (B, 100): the batch dimension left out."""
    return " x ".join(str(n) for n in shape[1:]) if shape else "?"


def plot_architecture(
    D: nn.Module,
    G: nn.Module,
    z_size: int,
    image_size: int = 32,
    path: str | Path | None = None,
) -> Figure:
    """Draw G and D as rows of layers, each with its output shape ("Build the networks" step).

    D, G: the networks (any device); they run once on a batch of 2 in eval mode, so the figure
    shows the layers and shapes of the actual modules (helpers.summary.layer_shapes).
    z_size: length of G's input noise; image_size: side of D's input images.
    path: also save the figure as a PNG. Returns the Figure.
    """
    from matplotlib.patches import FancyBboxPatch

    from helpers.summary import layer_shapes

    _check_positive_int(z_size, "z_size", "plot_architecture")
    _check_positive_int(image_size, "image_size", "plot_architecture")
    path = _png_path(path, "plot_architecture")
    g_rows, g_out = layer_shapes(G, torch.rand(2, z_size) * 2 - 1)
    d_rows, d_out = layer_shapes(D, torch.rand(2, 3, image_size, image_size) * 2 - 1)
    networks = [
        (
            "Generator G: noise z -> image",
            [("z", "noise", (2, z_size))]
            + [(name, kind, shape) for name, kind, shape, _ in g_rows],
        ),
        (
            "Discriminator D: image -> logit (real or fake?)",
            [("image", "real or G(z)", (2, 3, image_size, image_size))]
            + [(name, kind, shape) for name, kind, shape, _ in d_rows],
        ),
    ]
    width = max(len(layers) for _, layers in networks)
    fig = _new_figure(figsize=(max(2.1 * width, 8), 5.6))
    ax = fig.add_subplot()
    ax.set_xlim(-0.6, width - 0.4)
    ax.set_ylim(-0.2, 5.6)
    ax.set_axis_off()
    for row, (title, layers) in enumerate(networks):
        base = 3.0 - 2.9 * row  # G on top, D below
        ax.text(-0.55, base + 2.25, title, fontsize=11, fontweight="bold", va="bottom")
        for i, (name, kind, shape) in enumerate(layers):
            # Taller boxes for larger pictures: the funnel of the DCGAN at a glance.
            side = shape[-1] if shape and len(shape) == 4 else 1
            height = 0.5 + 1.1 * np.log2(max(side, 1)) / np.log2(max(image_size, 2))
            y = base + (1.7 - height) / 2
            colour = "#dbe9f6" if shape and len(shape) == 4 else "#f3e3c7"
            ax.add_patch(
                FancyBboxPatch(
                    (i - 0.42, y),
                    0.84,
                    height,
                    boxstyle="round,pad=0.02",
                    facecolor=colour,
                    edgecolor="#333333",
                )
            )
            ax.text(i, base + 1.88, name, ha="center", va="bottom", fontsize=9, fontweight="bold")
            ax.text(i, y + height / 2, _shape_text(shape), ha="center", va="center", fontsize=9)
            ax.text(
                i,
                y - 0.08,
                kind.replace(" + ", "\n+ "),
                ha="center",
                va="top",
                fontsize=7,
                color="#555555",
            )
            if i:
                ax.annotate(
                    "",
                    xy=(i - 0.44, base + 0.85),
                    xytext=(i - 0.56, base + 0.85),
                    arrowprops={"arrowstyle": "->", "color": "#333333"},
                )
    return _finish(fig, path)
