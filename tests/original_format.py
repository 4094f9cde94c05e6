"""Notebooks in the original Udacity course's format, for the grader's tests.

The original template has no cell tags, calls ``tests.test_discriminator(Discriminator)`` in the
cell that defines the class, builds D and G with ``build_network``, sets ``train_on_gpu`` and
moves tensors with ``.cuda()``, and its ``train(D, G, n_epochs, print_every=50)`` reads the
optimizers and the data loader from globals. The model code comes from the kit's solution
notebook (one source of truth); the glue around it is written here in the original's style.
"""

import ast
import contextlib

import nbformat

from helpers.notebook import NOTEBOOK, read_notebook, strip_magics, tags


def solution_code(*names):
    """Source of the named top-level functions and classes of the solution notebook, in order."""
    found = {}
    for cell in read_notebook(NOTEBOOK)["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = strip_magics(cell["source"])
        for node in ast.parse(source).body:
            if getattr(node, "name", None) in names:
                found[node.name] = ast.get_source_segment(source, node)
    return "\n\n\n".join(found[n] for n in names)


def solution_imports():
    """The import statements of the solution notebook's setup cells (what its train relies on)."""
    lines = []
    for cell in read_notebook(NOTEBOOK)["cells"]:
        if cell["cell_type"] == "code" and "setup" in tags(cell):
            tree = ast.parse(strip_magics(cell["source"]))
            lines += [
                ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
            ]
    return "\n".join(lines)


IMPORTS = """data_dir = 'processed_celeba_small/'

import pickle as pkl
import matplotlib.pyplot as plt
import numpy as np
import problem_unittests as tests

%matplotlib inline"""

LOADER_IMPORTS = """import torch
from torchvision import datasets
from torchvision import transforms
from torch.utils.data import DataLoader

"""

LOAD = """batch_size = 128
img_size = 32

celeba_train_loader = get_dataloader(batch_size, img_size)"""

SHOW = """def imshow(img):
    npimg = img.numpy()
    plt.imshow(np.transpose(npimg, (1, 2, 0)))

dataiter = iter(celeba_train_loader)
images, _ = next(dataiter)
fig = plt.figure(figsize=(20, 4))
for idx in np.arange(20):
    ax = fig.add_subplot(2, 10, idx + 1, xticks=[], yticks=[])
    imshow(images[idx])"""

CHECK_SCALE = """img = images[0]
scaled_img = scale(img)
print('Min: ', scaled_img.min())
print('Max: ', scaled_img.max())"""

NN_IMPORTS = """import torch.nn as nn
import torch.nn.functional as F"""

HYPER = """d_conv_dim = 32
g_conv_dim = 32
z_size = 100

D, G = build_network(d_conv_dim, g_conv_dim, z_size)"""

GPU = """import torch

# Check for a GPU
train_on_gpu = torch.cuda.is_available()
if not train_on_gpu:
    print('No GPU found. Please use a GPU to train your neural network.')
else:
    print('Training on GPU!')"""

LOSSES = """def real_loss(D_out, smooth=False):
    batch_size = D_out.size(0)
    labels = torch.ones(batch_size, 1) * (0.9 if smooth else 1.0)
    if train_on_gpu:
        labels = labels.cuda()
    criterion = nn.BCEWithLogitsLoss()
    return criterion(D_out, labels)

def fake_loss(D_out):
    batch_size = D_out.size(0)
    labels = torch.zeros(batch_size, 1)
    if train_on_gpu:
        labels = labels.cuda()
    criterion = nn.BCEWithLogitsLoss()
    return criterion(D_out, labels)"""

OPTIMIZERS = """import torch.optim as optim

lr = 0.0002
beta1 = 0.5
beta2 = 0.999

d_optimizer = optim.Adam(D.parameters(), lr, [beta1, beta2])
g_optimizer = optim.Adam(G.parameters(), lr, [beta1, beta2])"""

ORIGINAL_TRAIN = """def train(D, G, n_epochs, print_every=50):
    if train_on_gpu:
        D.cuda()
        G.cuda()
    samples = []
    losses = []
    sample_size = 16
    fixed_z = np.random.uniform(-1, 1, size=(sample_size, z_size))
    fixed_z = torch.from_numpy(fixed_z).float()
    if train_on_gpu:
        fixed_z = fixed_z.cuda()
    for epoch in range(n_epochs):
        for batch_i, (real_images, _) in enumerate(celeba_train_loader):
            batch_size = real_images.size(0)
            real_images = scale(real_images)
            if train_on_gpu:
                real_images = real_images.cuda()

            d_optimizer.zero_grad()
            z = torch.from_numpy(np.random.uniform(-1, 1, size=(batch_size, z_size))).float()
            if train_on_gpu:
                z = z.cuda()
            fake_images = G(z)
            d_loss = real_loss(D(real_images)) + fake_loss(D(fake_images.detach()))
            d_loss.backward()
            d_optimizer.step()

            g_optimizer.zero_grad()
            g_loss = real_loss(D(fake_images))
            g_loss.backward()
            g_optimizer.step()

            if batch_i % print_every == 0:
                losses.append((d_loss.item(), g_loss.item()))
                print('Epoch [{:5d}/{:5d}] | d_loss: {:6.4f} | g_loss: {:6.4f}'.format(
                    epoch + 1, n_epochs, d_loss.item(), g_loss.item()))
        G.eval()
        samples.append(G(fixed_z))
        G.train()
    with open('train_samples.pkl', 'wb') as f:
        pkl.dump(samples, f)
    return losses"""

RUN_TRAIN = """n_epochs = 1

losses = train(D, G, n_epochs=n_epochs)"""

PLOT = """fig, ax = plt.subplots()
losses = np.array(losses)
plt.plot(losses.T[0], label='Discriminator', alpha=0.5)
plt.plot(losses.T[1], label='Generator', alpha=0.5)
plt.legend()"""

SAMPLES = """with open('train_samples.pkl', 'rb') as f:
    samples = pkl.load(f)"""


def original_cells(variant="template", train=ORIGINAL_TRAIN):
    """The code cells' sources of a notebook in the original course's format (variants as for
    original_notebook), with `train` as its train cell unless the variant is ``kit-train``."""
    imports, call = IMPORTS, "tests"
    if variant == "alias":
        imports, call = IMPORTS.replace("as tests", "as t"), "t"
    d_cell = f"{solution_code('conv', 'Discriminator')}\n\n{call}.test_discriminator(Discriminator)"
    g_cell = f"{solution_code('deconv', 'Generator')}\n\n{call}.test_generator(Generator)"
    cells = [
        imports,
        LOADER_IMPORTS + solution_code("get_dataloader"),
        LOAD,
        SHOW,
        solution_code("scale"),
        CHECK_SCALE,
        NN_IMPORTS,
    ]
    if variant == "check-then-scale":  # the range check first, then scale, in one cell
        cells[4:6] = [f"{CHECK_SCALE}\n\n{solution_code('scale')}"]
    elif variant == "scale-then-check":  # scale, then its range check, in one cell
        cells[4:6] = [f"{solution_code('scale')}\n\n{CHECK_SCALE}"]
    if variant == "helpers-apart":
        d_call = "print('D defined'); tests.test_discriminator(\n    Discriminator)"
        d_cell = f"{solution_code('Discriminator')}\n\n{d_call}"
        g_call = "result = tests.test_generator(Generator); print(result)"
        g_cell = f"{solution_code('Generator')}\n\n{g_call}"
        cells.append(solution_code("conv", "deconv"))
    cells += [
        d_cell,
        g_cell,
        solution_code("weights_init_normal"),
        solution_code("build_network"),
        HYPER,
        GPU,
        LOSSES,
        OPTIMIZERS,
    ]
    if variant == "kit-train":
        cells += [
            solution_imports() + "\n\n\n" + solution_code("train"),
            "device = torch.device('cuda' if train_on_gpu else 'cpu')\n"
            "losses, samples = train(D, G, d_optimizer, g_optimizer, celeba_train_loader, 1,\n"
            "                        z_size, device)",
        ]
    else:
        cells += [train, RUN_TRAIN]
    return cells + [PLOT, SAMPLES]


def original_notebook(path, variant="template", train=ORIGINAL_TRAIN):
    """Write a notebook in the original course's format to `path`; return the path.

    Variants: ``template`` (the layout above, helpers inside the D and G cells),
    ``helpers-apart`` (conv/deconv in their own cell; test calls on one line with other
    statements, or spread over several lines), ``alias`` (problem_unittests imported as ``t``),
    ``kit-train`` (the original layout with the kit's train signature), ``check-then-scale`` and
    ``scale-then-check`` (scale and its range check ``img = images[0]`` in one cell, ``images``
    coming from the plotting cell the grader does not run). `train` is the source of the train
    cell (an original-format mutant or variant).
    """
    cells = original_cells(variant, train)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Face Generation")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)
    return path


def edited_original(edited):
    """The original-format notebook's cells (magics blanked) with the edits of `edited`, a mutant
    or variant of tests/mutants.py or tests/variants.py (its train cell is scope "train")."""
    from tests.mutants import apply

    return apply(edited, [strip_magics(c) for c in original_cells()])


def original_definitions(cells, strict=True):
    """Run the definition cells of an original-format notebook with these code `cells`, picked
    and edited as the grader does an untagged notebook's (by what they do; statements that read
    what only skipped cells define left out); return their namespace. A cell that fails raises
    AssertionError when `strict` (else the others run on, as in the grader)."""
    import contextlib
    import io

    from helpers.instructor.cells import definition_cells, kit_tests, leave_out_skipped_reads
    from helpers.sandboxed import tests_process

    nb = {"cells": [{"cell_type": "code", "source": c} for c in cells]}
    needs = [n for t in kit_tests() for n in t.needs]
    cells, _ = definition_cells(nb, needs)
    leave_out_skipped_reads(nb, cells, needs)
    namespace = {"__name__": "__notebook__"}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        errors = tests_process.run_definitions(cells, namespace)
    assert not (strict and errors), errors
    return namespace


@contextlib.contextmanager
def course_pieces_provided(test="test_train"):
    """The course's own losses and scale provided while `test` runs, as the grader's sandbox
    does in test_train's process only (helpers.sandboxed.course); removed afterwards."""
    from helpers.graded import verdicts
    from helpers.sandboxed import course

    if test != "test_train":
        yield
        return
    before = dict(verdicts._REFERENCES)
    course.install()
    try:
        yield
    finally:
        verdicts._REFERENCES.clear()
        verdicts._REFERENCES.update(before)


def judge_original(test, namespace, seed=0):
    """Grade graded test `test` on an original-format notebook's `namespace` as the grader does
    an untagged notebook: observe the learner's code, then judge with the original format's
    judge (original=True); returns the judge's note, or None. Raises AssertionError on a
    failure."""
    import contextlib
    import io

    import problem_unittests
    from helpers.instructor.cells import kit_tests

    args = next(t.args for t in kit_tests() if t.name == test)
    import inspect

    observe, judge = problem_unittests.VERDICTS[test]
    with contextlib.redirect_stdout(io.StringIO()), course_pieces_provided(test):
        obs = observe(*[eval(a, namespace) for a in args], seed=seed)
    if "original" in inspect.signature(judge).parameters:
        return judge(obs, seed, original=True)
    return judge(obs, seed)
