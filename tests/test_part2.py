"""Part 2 (solution/part2_dcgan64_wgan.ipynb): its graded tests accept the solution, its learner
edition is the release tool's output, and its plumbing (part-1 loading, face attributes, latent
helpers) does what the notebook says.

The graded tests' ability to reject mistakes is tested by test_part2_mutants.py.
"""

import contextlib
import io
import json

import numpy as np
import pytest
import torch

import part2_unittests
from helpers import faces, latent
from helpers.instructor import release
from helpers.notebook import (
    DEFINITION_TAGS,
    PART2_NOTEBOOK,
    ROOT,
    graded_test_calls,
    load_solution,
    numbered_cells,
    read_notebook,
    run_cells,
    tags,
)
from helpers.part2 import Part1Error, load_part1

NB = read_notebook(PART2_NOTEBOOK)
CALLS = graded_test_calls(NB)


@pytest.fixture(scope="module")
def solution():
    with contextlib.redirect_stdout(io.StringIO()):
        return load_solution(PART2_NOTEBOOK)


def test_every_public_part2_test_is_called_by_the_notebook():
    assert sorted(CALLS) == sorted(part2_unittests.__all__)
    assert {"test_gradient_penalty", "test_slerp"} <= set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_solution_passes(name, solution, capsys):
    args = [solution[arg] for arg in CALLS[name]]
    getattr(part2_unittests, name)(*args)
    assert capsys.readouterr().out.strip().splitlines()[-1] == "Tests Passed"


def test_learner_edition_is_up_to_date():
    text, n_regions, _ = release.learner_text(PART2_NOTEBOOK)
    committed = release.PART2_LEARNER_NOTEBOOK.read_text(encoding="utf-8")
    assert committed == text, (
        f"{release.PART2_LEARNER_NOTEBOOK.name} differs from the learner edition of "
        f"{PART2_NOTEBOOK.relative_to(ROOT)}: run `python -m helpers release --update-kit` and "
        "commit both notebooks."
    )
    assert n_regions >= 10
    assert "### BEGIN SOLUTION" not in committed


def test_learner_edition_stubs_fail_their_graded_tests_by_name():
    learner = {"__name__": "__notebook__"}
    cells = numbered_cells(read_notebook(release.PART2_LEARNER_NOTEBOOK), *DEFINITION_TAGS)
    with contextlib.redirect_stdout(io.StringIO()):
        run_cells(cells, learner)  # the cell that builds the critic fails, as for a learner
    for name in ("test_gradient_penalty", "test_slerp", "test_discriminator64"):
        args = [learner[arg] for arg in CALLS[name]]
        with pytest.raises(AssertionError, match="not implemented yet"):
            getattr(part2_unittests, name)(*args)


def test_training_and_data_cells_are_not_run_by_the_tools_and_nbval_ignores_them():
    for cell in NB["cells"]:
        if cell["cell_type"] != "code":
            continue
        source, cell_tags = cell["source"], tags(cell)
        if "= train_wgan(" in source or "load_part1(" in source or "arithmetic_rates" in source:
            assert "nbval-ignore-output" in cell_tags and "setup" not in cell_tags, source[:80]


def test_release_folder_holds_both_notebooks_and_both_test_modules(tmp_path, capsys):
    assert release.main(["--out", str(tmp_path / "rel")]) == 0
    for name in ("dlnd_face_generation.ipynb", "part2_dcgan64_wgan.ipynb", "part2_unittests.py"):
        assert (tmp_path / "rel" / name).is_file(), name
    assert (tmp_path / "rel" / "helpers" / "graded" / "part2.py").is_file()
    part2 = json.loads((tmp_path / "rel" / "part2_dcgan64_wgan.ipynb").read_text())
    assert all(not c.get("outputs") for c in part2["cells"] if c["cell_type"] == "code")


# ---------------------------------------------------------------- part-1 loading


def test_load_part1_gives_the_part1_functions():
    with contextlib.redirect_stdout(io.StringIO()):
        part1 = load_part1(ROOT / "solution" / "dlnd_face_generation.ipynb")
    for name in ("get_dataloader", "weights_init_normal", "train", "lr", "beta1"):
        assert name in part1, name


def test_load_part1_says_where_the_notebook_was_looked_for(tmp_path):
    with pytest.raises(Part1Error, match="there is no .*dlnd_face_generation.ipynb.*folder that"):
        load_part1(tmp_path / "dlnd_face_generation.ipynb")


def test_load_part1_names_a_failing_cell(tmp_path):
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {"tags": ["setup"]}, "source": "x = 1"},
            {"cell_type": "code", "metadata": {"tags": ["solution"]}, "source": "y = 1 / 0"},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "dlnd_face_generation.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(Part1Error, match="cell 2.*ZeroDivisionError.*Fix part 1 first"):
        load_part1(path)


def test_a_failing_part1_shows_its_message_alone_in_jupyter(tmp_path, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell(f"import helpers.part2\nhelpers.part2.load_part1({str(tmp_path / 'x.ipynb')!r})")
    shown = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(shown) == 1 and shown[0].startswith("Part1Error: Part 2 uses your part-1 code")


# ---------------------------------------------------------------- face attributes


def test_face_attributes_do_not_change_the_pictures_and_match_draw_face():
    plain = faces.draw_face(np.random.default_rng([0, 7]), 32)
    found = {}
    labelled = faces.draw_face(np.random.default_rng([0, 7]), 32, attributes=found)
    assert np.array_equal(np.asarray(plain), np.asarray(labelled))
    assert set(found) == set(faces.ATTRIBUTES)
    table = faces.face_attributes([7], size=32)
    assert table.shape == (1, len(faces.ATTRIBUTES))
    assert list(table[0]) == [found[name] for name in faces.ATTRIBUTES]


def test_face_attributes_vary_and_beards_only_on_masculine_faces():
    table = faces.face_attributes(range(1, 121), size=32)
    rates = table.mean(0)
    assert all(0.03 < r < 0.97 for r in rates), rates
    beard, masculine = faces.ATTRIBUTES.index("beard"), faces.ATTRIBUTES.index("masculine")
    assert not (table[:, beard] & ~table[:, masculine]).any()


# ---------------------------------------------------------------- latent helpers


def slerp_reference(z0, z1, t):
    t = torch.as_tensor(t, dtype=z0.dtype).reshape(-1, 1)
    omega = torch.acos(torch.nn.functional.cosine_similarity(z0, z1, dim=1).clamp(-1, 1))[:, None]
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def test_interpolation_and_walk_grid_start_and_end_at_the_given_latents():
    torch.manual_seed(0)
    a, b = torch.randn(2, 5)
    strip = latent.interpolation(a, b, slerp_reference, steps=7)
    assert strip.shape == (7, 5)
    assert torch.allclose(strip[0], a, atol=1e-5) and torch.allclose(strip[-1], b, atol=1e-5)
    corners = torch.randn(4, 5)
    grid = latent.walk_grid(corners, slerp_reference, n=4).view(4, 4, 5)
    for (i, j), k in {(0, 0): 0, (0, 3): 1, (3, 0): 2, (3, 3): 3}.items():
        assert torch.allclose(grid[i, j], corners[k], atol=1e-5)


class SignG(torch.nn.Module):
    """A 'generator' whose image shows attribute k exactly when z[k] > 0 (for the measurement)."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z):
        return torch.tanh(z[:, :3, None, None]).expand(-1, 3, 2, 2)  # (B, 3, 2, 2)


class SignClassifier(torch.nn.Module):
    def forward(self, images):
        return images[:, :, 0, 0][:, [0, 1, 2, 0]]  # attribute 3 copies attribute 0


def test_arithmetic_rates_turn_an_attribute_on_and_off():
    def attribute_vector(z, has):
        return z[has.bool()].mean(0) - z[~has.bool()].mean(0)

    rows = latent.arithmetic_rates(SignG(), SignClassifier(), attribute_vector, 8, n=400)
    assert [r[0] for r in rows] == list(faces.ATTRIBUTES)
    for name, base, on, off in rows:
        assert 0.4 < base < 0.6, (name, base)
        assert on > 0.85 and off < 0.15, (name, on, off)


def test_celeba_attribute_file_gives_the_labels_with_no_beard_inverted(tmp_path):
    names = ["5_o_Clock_Shadow", "Eyeglasses", "Male", "No_Beard", "Smiling"]
    attr = tmp_path / "list_attr_celeba.txt"
    attr.write_text(
        "2\n" + " ".join(names) + "\n000001.jpg  -1  1 -1  1  1\n000002.jpg  1 -1  1 -1 -1\n"
    )
    table = latent.celeba_attributes(attr, ["000002.jpg", "000001.jpg"])
    column = {name: i for i, name in enumerate(faces.ATTRIBUTES)}
    assert table.shape == (2, 4)
    assert table[0, column["beard"]] and not table[1, column["beard"]]  # No_Beard -1 = a beard
    assert table[1, column["glasses"]] and table[1, column["smiling"]]
    assert table[0, column["masculine"]] and not table[1, column["masculine"]]
    with pytest.raises(ValueError, match="no line for the image 000003.jpg"):
        latent.celeba_attributes(attr, ["000003.jpg"])
    (tmp_path / "other.txt").write_text("1\nSmiling\n000001.jpg 1\n")
    with pytest.raises(ValueError, match="no column"):
        latent.celeba_attributes(tmp_path / "other.txt", ["000001.jpg"])


def test_arithmetic_rows_are_minus_as_drawn_and_plus_the_vector():
    def attribute_vector(z, has):
        return z[has.bool()].mean(0) - z[~has.bool()].mean(0)

    images = latent.arithmetic_rows(
        SignG(), SignClassifier(), attribute_vector, 8, "smiling", n=200
    )
    assert images.shape == (24, 3, 2, 2)
    minus, drawn, plus = images[:8, 0, 0, 0], images[8:16, 0, 0, 0], images[16:, 0, 0, 0]
    assert (minus < drawn).all() and (drawn < plus).all()  # smiling is z[0] > 0 for SignG


def test_helpers_run_runs_part2_headless_in_quick_mode(tmp_path, capsys):
    from helpers import run

    assert run.artefacts_for(PART2_NOTEBOOK) == run.PART2_ARTEFACTS
    assert run.artefacts_for(ROOT / "solution" / "dlnd_face_generation.ipynb") == run.ARTEFACTS
    out = tmp_path / "out"
    status = run.main(["--quick", "--plain", "--notebook", str(PART2_NOTEBOOK), "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    for name in run.PART2_ARTEFACTS:
        assert (out / name).is_file(), name
    assert "Latent arithmetic" in printed or "7. Latent arithmetic, measured" in printed


def test_attribute_classifier_learns_a_visible_attribute_and_reports_balanced_accuracy():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 120, (240, 3, 64, 64), dtype=torch.uint8, generator=gen)
    labels = torch.zeros(240, 4, dtype=torch.bool)
    labels[:, 0] = torch.rand(240, generator=gen) < 0.2  # a rare attribute: a bright corner
    images[labels[:, 0], :, :16, :16] = 255
    _, accuracy, base = latent.train_attribute_classifier(images, labels.numpy(), epochs=6)
    assert accuracy[0] > 0.9, accuracy
    assert 0.05 < base[0] < 0.4
    # never present: answering "no" is right on every face without it, and there is none with
    # it, so its balanced accuracy is half: chance, not a misleading 100%
    assert accuracy[1] <= 0.5 + 1e-6
