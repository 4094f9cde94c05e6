"""Specification of helpers.plotting: the right pictures, the right files, clear errors, no
warnings, no figures left open headless, and exactly one picture per call in Jupyter."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=True)  # headless, as in CI (MPLBACKEND=Agg)

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from helpers import plotting
from helpers.plotting import (
    imshow,
    plot_architecture,
    plot_losses,
    show_batch,
    view_progress,
    view_samples,
)

REPO = Path(__file__).resolve().parents[1]
PAD = plotting.PADDING


def grid_size(n_images, nrow, height, width):
    """Pixel size (width, height) of a torchvision grid with PAD-pixel gaps and border."""
    if n_images == 1:
        return width, height  # make_grid returns a lone image as it is, without a border
    cols = min(nrow, n_images)
    rows = -(-n_images // nrow)
    return cols * (width + PAD) + PAD, rows * (height + PAD) + PAD


def png_size(path):
    with Image.open(path) as image:
        return image.size


def png_pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def figure_pixels(fig):
    return tuple(int(round(v)) for v in fig.get_size_inches() * plotting.SAVE_DPI)


def real_batch(n=10, size=16, seed=0):
    """Non-constant images in [0, 1], as a dataloader yields them."""
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def generated_batch(n=10, size=16, seed=0):
    """Non-constant images in [-1, 1], as a tanh generator outputs them."""
    return real_batch(n, size, seed) * 2 - 1


@pytest.fixture(autouse=True)
def no_figures_left_open():
    """Every test must leave pyplot as it found it: headless figures are closed after use."""
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a figure was left open under the Agg backend"


# --- show_batch ---------------------------------------------------------------------------------


def test_show_batch_saves_the_grid_at_image_pixel_size(tmp_path):
    path = tmp_path / "batch.png"
    show_batch(real_batch(n=10), nrow=4, path=path)
    assert png_size(path) == grid_size(10, 4, 16, 16)


def test_show_batch_saved_pixels_are_the_image_values(tmp_path):
    images = real_batch(n=2)
    path = tmp_path / "batch.png"
    show_batch(images, nrow=2, path=path)
    first = png_pixels(path)[PAD : PAD + 16, PAD : PAD + 16]  # the first image's cell
    expected = (images[0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(first.astype(float) - expected).max() <= 1


def test_show_batch_returns_a_figure_showing_the_grid_and_title():
    fig = show_batch(real_batch(n=10), nrow=4, title="Real training images")
    assert isinstance(fig, matplotlib.figure.Figure)
    (ax,) = fig.axes
    assert ax.get_title() == "Real training images"
    width, height = grid_size(10, 4, 16, 16)
    assert ax.images[0].get_array().shape[:2] == (height, width)


def test_show_batch_accepts_images_that_need_grad():
    show_batch(real_batch(n=4).requires_grad_())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_show_batch_moves_gpu_images_to_the_cpu_quietly(tmp_path):
    show_batch(real_batch(n=4).cuda(), path=tmp_path / "gpu.png")
    view_samples(generated_batch(n=4).cuda(), path=tmp_path / "gpu_samples.png")
    assert png_size(tmp_path / "gpu.png") == grid_size(4, 8, 16, 16)


def test_show_batch_accepts_tiny_rounding_overshoot():
    images = real_batch(n=4)
    images[0, 0, 0, 0] = 1.004
    images[0, 0, 0, 1] = -0.004
    show_batch(images)


def test_show_batch_says_images_in_minus_one_to_one_belong_to_view_samples():
    with pytest.raises(ValueError, match=r"already scaled to \[-1, 1\].*view_samples"):
        show_batch(generated_batch(n=4))


def test_show_batch_says_0_to_255_values_need_to_tensor():
    with pytest.raises(ValueError, match="0-255 pixel values"):
        show_batch(real_batch(n=4) * 255)


@pytest.mark.parametrize(
    "images, message",
    [
        (torch.rand(3, 16, 16), r"got one image shaped \(3, 16, 16\).*unsqueeze\(0\)"),
        (torch.rand(4, 16, 16, 3), r"channels-last.*permute\(0, 3, 1, 2\)"),
        (torch.rand(4, 1, 16, 16), r"3 colour channels"),
        (torch.rand(2, 4, 3, 16, 16), r"got a tensor shaped \(2, 4, 3, 16, 16\)"),
        (torch.rand(0, 3, 16, 16), r"empty batch"),
        (torch.full((2, 3, 4, 4), float("nan")), r"NaN or infinite"),
    ],
    ids=["single-image", "channels-last", "one-channel", "rank-5", "empty", "nan"],
)
def test_show_batch_rejects_wrong_shapes_with_a_plain_message(images, message):
    with pytest.raises(ValueError, match=message):
        show_batch(images)


def test_show_batch_rejects_a_list_with_a_type_error():
    with pytest.raises(
        TypeError, match=r"expects a tensor of images shaped \(B, 3, H, W\), got list"
    ):
        show_batch([real_batch(n=1)[0]])


def test_show_batch_rejects_a_path_that_is_not_png(tmp_path):
    with pytest.raises(ValueError, match=r"should end in \.png"):
        show_batch(real_batch(n=4), path=tmp_path / "batch")


def test_saving_creates_missing_folders(tmp_path):
    path = tmp_path / "outputs" / "run1" / "batch.png"
    show_batch(real_batch(n=4), path=path)
    assert path.stat().st_size > 0


# --- view_samples -------------------------------------------------------------------------------


def test_view_samples_saved_grid_maps_minus_one_to_0_and_plus_one_to_255(tmp_path):
    samples = generated_batch(n=3)
    samples[0] = -1.0
    samples[1] = 1.0
    path = tmp_path / "samples.png"
    view_samples(samples, nrow=3, path=path)
    pixels = png_pixels(path)
    cell = 16 + PAD
    black = pixels[PAD : PAD + 16, PAD : PAD + 16]
    white = pixels[PAD : PAD + 16, PAD + cell : PAD + cell + 16]
    assert (black == 0).all()
    assert (white == 255).all()
    assert png_size(path) == grid_size(3, 3, 16, 16)


def test_view_samples_saved_grid_uses_the_fixed_range_not_the_batch_range(tmp_path):
    # A dull batch must stay dull: 0 is mid-grey however small the batch's own range is.
    samples = generated_batch(n=2) * 0.3 + 0.5  # the batch spans [0, 0.8], not [-1, 1]
    samples[0] = 0.0
    path = tmp_path / "samples.png"
    view_samples(samples, nrow=2, path=path)
    assert (png_pixels(path)[PAD : PAD + 16, PAD : PAD + 16] == 128).all()


def test_view_samples_displays_the_samples_mapped_to_zero_one():
    samples = generated_batch(n=2)
    fig = view_samples(samples, nrow=2)
    shown = fig.axes[0].images[0].get_array()
    expected = ((samples[0] + 1) / 2).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(shown[PAD : PAD + 16, PAD : PAD + 16], expected, atol=1e-6)


def test_view_samples_says_values_far_outside_minus_one_one_need_a_tanh():
    with pytest.raises(ValueError, match=r"nn\.Tanh\(\)"):
        view_samples(generated_batch(n=4) * 3)


# --- view_progress ------------------------------------------------------------------------------


def epoch_labels(fig):
    return [ax.get_ylabel() for ax in fig.axes]


def test_view_progress_picks_evenly_spaced_epochs_including_first_and_last():
    epochs = [generated_batch(n=8, seed=i) for i in range(20)]
    fig = view_progress(epochs, max_rows=5)
    labels = epoch_labels(fig)
    numbers = [int(label.split()[1]) for label in labels]
    assert len(numbers) == 5
    assert numbers[0] == 1 and numbers[-1] == 20
    assert numbers == sorted(set(numbers))
    gaps = np.diff(numbers)
    assert gaps.max() - gaps.min() <= 1  # evenly spread


def test_view_progress_shows_every_epoch_when_there_are_few():
    fig = view_progress([generated_batch(n=8, seed=i) for i in range(3)])
    assert epoch_labels(fig) == ["epoch 1", "epoch 2", "epoch 3"]


def test_view_progress_draws_n_per_row_samples_per_row():
    fig = view_progress([generated_batch(n=16, seed=i) for i in range(2)], n_per_row=5)
    for ax in fig.axes:
        height, width = ax.images[0].get_array().shape[:2]
        assert (width, height) == grid_size(5, 5, 16, 16)


def test_view_progress_saves_a_png_of_the_figure_size(tmp_path):
    path = tmp_path / "progress.png"
    fig = view_progress([generated_batch(n=8, seed=i) for i in range(4)], path=path)
    assert png_size(path) == figure_pixels(fig)


def test_view_progress_rejects_an_empty_list():
    with pytest.raises(ValueError, match="no epochs"):
        view_progress([])


def test_view_progress_points_a_single_batch_to_view_samples():
    with pytest.raises(ValueError, match="single batch.*view_samples"):
        view_progress(generated_batch(n=8))


def test_view_progress_names_the_epoch_with_bad_samples():
    epochs = [generated_batch(n=8), generated_batch(n=8) * 5]
    with pytest.raises(ValueError, match=r"epoch 2.*nn\.Tanh"):
        view_progress(epochs)


# --- plot_architecture ----------------------------------------------------------------------------


def test_plot_architecture_draws_every_layer_of_g_and_d_with_its_shape(tmp_path):
    from torch import nn

    class TinyG(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(10, 8 * 4 * 4)
            self.deconv = nn.ConvTranspose2d(8, 3, 4, 2, 1)

        def forward(self, z):
            return torch.tanh(self.deconv(self.fc(z).view(-1, 8, 4, 4)))

    D = nn.Sequential(nn.Conv2d(3, 6, 4, 2, 1), nn.Flatten(), nn.Linear(6 * 4 * 4, 1))
    path = tmp_path / "arch.png"
    fig = plot_architecture(D, TinyG(), z_size=10, image_size=8, path=path)
    texts = [t.get_text() for t in fig.axes[0].texts]
    for expected in (
        "z",
        "10",
        "fc",
        "128",
        "deconv",
        "3 x 8 x 8",
        "image",
        "6 x 4 x 4",
        "96",
        "1",
    ):
        assert expected in texts, expected
    assert png_size(path) == figure_pixels(fig)


# --- plot_losses --------------------------------------------------------------------------------


def lines_by_label(fig):
    return {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].get_lines()}


def test_plot_losses_draws_a_list_of_pairs_as_two_labelled_lines():
    losses = [(1.2, 0.7), (1.0, 0.9), (0.8, 1.4)]
    fig = plot_losses(losses)
    assert lines_by_label(fig) == {"Discriminator": [1.2, 1.0, 0.8], "Generator": [0.7, 0.9, 1.4]}
    ax = fig.axes[0]
    assert ax.get_xlabel() == "logged step"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Discriminator", "Generator"]


def test_plot_losses_takes_the_losses_from_records_with_d_of_x_and_d_of_g_of_z():
    fig = plot_losses([(1.2, 0.7, 0.6, 0.4), (1.0, 0.9, 0.55, 0.45)])
    assert lines_by_label(fig)["Discriminator"] == [1.2, 1.0]
    assert lines_by_label(fig)["Generator"] == [0.7, 0.9]


def test_plot_losses_draws_a_dict_of_lists():
    fig = plot_losses({"Discriminator": [1.3, 1.1], "Generator": [0.6, 0.8]})
    assert lines_by_label(fig) == {"Discriminator": [1.3, 1.1], "Generator": [0.6, 0.8]}


def test_plot_losses_accepts_loss_tensors_appended_without_item():
    d_loss = torch.tensor(1.5, requires_grad=True) * 1
    fig = plot_losses([(d_loss, torch.tensor(0.5))])
    assert lines_by_label(fig)["Discriminator"] == [pytest.approx(1.5)]


@pytest.mark.parametrize("steps", [1, 3])
def test_plot_losses_marks_each_point_of_a_short_run_so_the_axes_are_not_empty(steps):
    fig = plot_losses([(1.0 + i, 0.5) for i in range(steps)])
    for line in fig.axes[0].get_lines():
        assert line.get_marker() == "o" and len(line.get_xdata()) == steps


def test_plot_losses_labels_logged_steps_with_whole_numbers():
    fig = plot_losses([(1.0, 0.5), (0.9, 0.6), (0.8, 0.7)])
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 0 <= t <= 2]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_plot_losses_draws_a_long_run_as_plain_lines():
    fig = plot_losses([(1.0, 0.5)] * (plotting.FEW_POINTS + 1))
    assert {line.get_marker() for line in fig.axes[0].get_lines()} == {"None"}


def test_plot_losses_saves_an_800_by_400_png(tmp_path):
    path = tmp_path / "losses.png"
    fig = plot_losses([(1.0, 0.5), (0.9, 0.6)], path=path)
    assert png_size(path) == figure_pixels(fig) == (800, 400)


def test_plot_losses_draws_d_x_and_d_g_z_in_a_second_panel_from_0_to_1():
    losses = [(1.3, 0.7, 0.9, 0.2), (1.1, 0.8, 0.7, 0.35), (1.0, 0.9, 0.55, 0.45)]
    fig = plot_losses(losses)
    top, bottom = fig.axes
    assert lines_by_label(fig) == {"Discriminator": [1.3, 1.1, 1.0], "Generator": [0.7, 0.8, 0.9]}
    curves = {line.get_label(): list(line.get_ydata()) for line in bottom.get_lines()}
    assert curves["D(x)"] == [0.9, 0.7, 0.55] and curves["D(G(z))"] == [0.2, 0.35, 0.45]
    # the line where D cannot tell real from fake
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in bottom.get_lines())
    assert bottom.get_ylim() == (0, 1) and bottom.get_xlabel() == "logged step"
    assert [t.get_text() for t in bottom.get_legend().get_texts()] == ["D(x)", "D(G(z))"]


def test_plot_losses_reads_pairs_of_an_older_checkpoint_followed_by_records():
    fig = plot_losses([(1.2, 0.7), (1.0, 0.9, 0.6, 0.4)])
    curves = {line.get_label(): line.get_ydata() for line in fig.axes[1].get_lines()}
    assert np.isnan(curves["D(x)"][0]) and curves["D(x)"][1] == 0.6


def test_plot_losses_without_probabilities_has_one_panel():
    assert len(plot_losses([(1.0, 0.5, float("nan"), float("nan"))]).axes) == 1


def test_plot_losses_with_probabilities_saves_an_800_by_650_png(tmp_path):
    path = tmp_path / "losses.png"
    fig = plot_losses([(1.0, 0.5, 0.7, 0.3), (0.9, 0.6, 0.6, 0.4)], path=path)
    assert png_size(path) == figure_pixels(fig) == (800, 650)


RECORDS = (
    r"expected a list of \(d_loss, g_loss\) or \(d_loss, g_loss, D\(x\), D\(G\(z\)\)\) records"
)


@pytest.mark.parametrize(
    "losses, message",
    [
        ([], RECORDS + r", got an empty list"),
        ([0.5, 0.6], RECORDS + r", got 0\.5 \(float\) at index 0"),
        ([(1.0, 0.5), (1.0, 0.5, 0.1)], r"records, got \(1\.0, 0\.5, 0\.1\) \(tuple\) at index 1"),
        ([(1.0, 0.5, 0.6, 0.4, 0.1)], r"records, got \(1\.0, 0\.5, 0\.6, 0\.4, 0\.1\) \(tuple\)"),
        ([("a", "b")], r"records, got \('a', 'b'\) \(tuple\) at index 0"),
        (0.5, r"records, got 0\.5 \(float\)"),
        ({}, r"empty dict"),
        ({"Discriminator": []}, r"'Discriminator' list is empty"),
        ({"Generator": 0.5}, r"'Generator' losses should be a list of numbers"),
    ],
    ids=[
        "empty",
        "flat-list",
        "triple",
        "five",
        "strings",
        "number",
        "empty-dict",
        "empty-series",
        "dict-number",
    ],
)
def test_plot_losses_rejects_bad_input_with_a_plain_message(losses, message):
    with pytest.raises(ValueError, match=message):
        plot_losses(losses)


# --- imshow -------------------------------------------------------------------------------------


def test_imshow_draws_a_tensor_image_on_the_given_axes_without_axis():
    fig, ax = plt.subplots()
    try:
        img = real_batch(n=1)[0]
        imshow(img, ax=ax)
        np.testing.assert_allclose(ax.images[0].get_array(), img.permute(1, 2, 0).numpy())
        assert not ax.axison
    finally:
        plt.close(fig)


def test_imshow_draws_a_numpy_hwc_image():
    fig, ax = plt.subplots()
    try:
        array = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
        imshow(array, ax=ax)
        np.testing.assert_allclose(ax.images[0].get_array(), array)
    finally:
        plt.close(fig)


def test_imshow_points_a_batch_to_show_batch():
    with pytest.raises(ValueError, match="show_batch"):
        imshow(real_batch(n=2))


# --- headless behaviour -------------------------------------------------------------------------


def draw_everything(tmp_path):
    show_batch(real_batch(n=8), title="batch", path=tmp_path / "a.png")
    show_batch(real_batch(n=8))
    view_samples(generated_batch(n=8), title="samples", path=tmp_path / "b.png")
    view_samples(generated_batch(n=8))
    view_progress([generated_batch(n=8, seed=i) for i in range(12)], path=tmp_path / "c.png")
    plot_losses([(1.0, 0.5), (0.8, 0.7)], path=tmp_path / "d.png")
    plot_losses({"Discriminator": [1.0], "Generator": [0.5]})


def test_headless_use_emits_no_warnings(tmp_path, recwarn):
    draw_everything(tmp_path)
    assert [str(w.message) for w in recwarn] == []


def test_headless_figures_are_closed_so_a_long_run_does_not_pile_them_up(tmp_path):
    before = len(plt.get_fignums())
    for _ in range(3):
        draw_everything(tmp_path)
    assert len(plt.get_fignums()) == before


def test_a_closed_figure_can_still_be_saved(tmp_path):
    fig = plot_losses([(1.0, 0.5)])
    fig.savefig(tmp_path / "later.png")
    assert (tmp_path / "later.png").stat().st_size > 0


# --- Jupyter ------------------------------------------------------------------------------------

JUPYTER_SCRIPT = textwrap.dedent(
    """
    import json
    from ipykernel.inprocess.manager import InProcessKernelManager

    manager = InProcessKernelManager()
    manager.start_kernel()
    client = manager.client()
    client.start_channels()

    def run(code):
        client.execute(code)
        images, errors = 0, []
        while True:
            msg = client.get_iopub_msg(timeout=60)
            kind, content = msg["msg_type"], msg["content"]
            if kind in ("display_data", "execute_result") and "image/png" in content["data"]:
                images += 1
            elif kind == "error":
                errors.append(content["evalue"])
            elif kind == "status" and content["execution_state"] == "idle":
                return {"images": images, "errors": errors}

    setup = run("%matplotlib inline\\nimport torch\\nfrom helpers import plotting")
    cells = {
        "statement": "plotting.plot_losses([(1.0, 0.5)])\\nx = 1",
        "semicolon": "plotting.show_batch(torch.rand(4, 3, 8, 8));",
        "last expression": "plotting.view_samples(torch.rand(4, 3, 8, 8) * 2 - 1)",
        "two in one cell": "plotting.plot_losses([(1.0, 0.5)])\\n"
                           "fig = plotting.view_progress([torch.rand(4, 3, 8, 8) * 2 - 1] * 2)",
        "shown again on request": "fig",
        "nothing left open": "import matplotlib.pyplot as plt\\nassert plt.get_fignums() == []",
    }
    print(json.dumps({"setup": setup, **{name: run(code) for name, code in cells.items()}}))
    """
)


def test_jupyter_shows_each_figure_exactly_once():
    pytest.importorskip("ipykernel")
    env = dict(os.environ, PYTHONPATH=str(REPO), PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)
    done = subprocess.run(
        [sys.executable, "-Xfrozen_modules=off", "-c", JUPYTER_SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {
        "setup": {"images": 0, "errors": []},
        "statement": {"images": 1, "errors": []},
        "semicolon": {"images": 1, "errors": []},
        "last expression": {"images": 1, "errors": []},
        "two in one cell": {"images": 2, "errors": []},
        "shown again on request": {"images": 1, "errors": []},
        "nothing left open": {"images": 0, "errors": []},
    }
