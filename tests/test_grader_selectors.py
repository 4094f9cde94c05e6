"""The facts that pick which checks a judge runs are read from the notebook's source on the
grader's side (issue 20, item 4; helpers/instructor/selectors.py, docs/threat-model.md).

Three judges take a lenient branch on a fact about the learner's code: test_real_loss skips its
label-smoothing checks for a real_loss without `smooth`, test_train skips the return value,
checkpoint and resuming for the original course's train(D, G, n_epochs, print_every=50), and
test_discriminator accepts a sigmoid at D's end in an original-format notebook whose losses take
probabilities. Those facts used to be reported by the learner side, so a patch of the kit's
observers could pick the lenient branch for code that fails the checks it skips.

Each attack below observes a submission that fails, forges the observation as such a patch
would, and shows the forgery working where nothing is derived (the notebook's own judge, as in
the notebook) and failing through the grader's judging (grade._collect, with the definition
cells the grader picked from the notebook). The honest cases, kit and original format, pass
through the same path with the same notes as before.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import io
import json

import nbformat
import pytest
import torch

import problem_unittests as tests
from helpers.graded.failures import GradedTestFailure
from helpers.graded.losses import probabilities
from helpers.graded.verdicts import Observation, encode
from helpers.instructor import grade, selectors
from helpers.notebook import DEFINITION_TAGS, NOTEBOOK, read_notebook, strip_magics, tags
from helpers.sandboxed import tests_process
from helpers.sandboxed.job import Cell
from tests.attacks.trusted import over_the_wire
from tests.mutants import MUTANTS, M, apply
from tests.original_format import course_pieces_provided, original_cells
from tests.variants import ORIGINAL_VARIANTS, VARIANTS

SEED = 4242  # the grader's seed


def kit_notebook(path, *edited):
    """The kit's solution notebook with the edits of the mutants or variants `edited` applied to
    its definition cells, written to `path`."""
    nb = read_notebook(NOTEBOOK)
    code = [c for c in nb["cells"] if set(tags(c)) & set(DEFINITION_TAGS)]
    sources = [c["source"] for c in code]
    for e in edited:
        sources = apply(e, sources)
    for cell, source in zip(code, sources):
        cell["source"] = source
    path.write_text(json.dumps(nb))
    return path


def original_notebook(path, *edited):
    """The original-format notebook (tests/original_format.py) with the edits of `edited`."""
    cells = [strip_magics(c) for c in original_cells()]
    for e in edited:
        cells = apply(e, cells)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)
    return path


def observed(path, test):
    """(plan, observation): the grader's plan for notebook `path` (every test's definition
    cells, as the grader runs them, and only `test` to judge), and `test`'s observation at SEED
    as the learner side sends it (the definition cells run in this process, the course's pieces
    provided to test_train as the sandbox provides them)."""
    plan = grade.read(path)
    plan = dataclasses.replace(plan, tests=[t for t in plan.tests if t.name == test])
    namespace = {"__name__": "__notebook__"}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        tests_process.run_definitions(plan.cells, namespace)
        observe = tests.VERDICTS[test][0]
        (graded,) = plan.tests
        with course_pieces_provided(test):
            obs = observe(*[eval(a, namespace) for a in graded.args], seed=SEED)
    return plan, over_the_wire(obs)


def in_the_notebook(plan, obs):
    """The judge's verdict where nothing is derived (derived=None, as in the notebook): its
    note, or the GradedTestFailure it raised."""
    (graded,) = plan.tests
    judge = tests.VERDICTS[graded.name][1]
    try:
        return judge(obs, SEED, original=plan.original)
    except GradedTestFailure as failure:
        return failure


def by_the_grader(plan, obs):
    """(passed, message, note) of the grader's judging of `obs` for the plan's test: the
    learner side's answer read and judged by grade._collect, with the plan's cells."""
    line = {"test": {"name": plan.tests[0].name, "observation": encode(obs), "seconds": 1.0}}
    stdout = b"\n".join(json.dumps(x).encode() for x in ({"started": True}, line, {"done": True}))
    judged = grade._collect(stdout + b"\n", plan.tests, plan.cells, SEED, plan.original)
    result = judged.results[plan.tests[0].name]
    return result["passed"], result["message"], result.get("note", "")


# ---------------------------------------------------------------- 1. real_loss without smooth

SMOOTH_IGNORED = next(
    m for m in MUTANTS if (m.test, m.name) == ("test_real_loss", "smooth-ignored")
)
COURSE_SIGNATURE = next(
    v for v in VARIANTS if (v.test, v.name) == ("test_real_loss", "course-signature")
)


def without_smooth(obs):
    """What a patch of the observer sends for a real_loss that takes smooth: "no smooth"."""
    forged = Observation(obs)
    forged["takes_smooth"] = False
    forged.pop("smooth", None)
    return forged


def test_a_real_loss_that_ignores_smooth_reported_without_smooth_gains_no_point(tmp_path):
    plan, obs = observed(kit_notebook(tmp_path / "nb.ipynb", SMOOTH_IGNORED), "test_real_loss")
    assert isinstance(in_the_notebook(plan, obs), GradedTestFailure)
    assert by_the_grader(plan, obs)[0] is False  # the honest observation fails
    forged = without_smooth(obs)
    assert "no smooth argument" in in_the_notebook(plan, forged)  # the attack, where reported
    passed, message, _ = by_the_grader(plan, forged)
    assert passed is False, message
    assert "is not what the notebook's source defines" in message, message


def test_a_real_loss_without_smooth_passes_with_its_note(tmp_path):
    plan, obs = observed(kit_notebook(tmp_path / "nb.ipynb", COURSE_SIGNATURE), "test_real_loss")
    assert obs["takes_smooth"] is False
    passed, message, note = by_the_grader(plan, obs)
    assert passed is True and "no smooth argument" in note, message


def test_a_real_loss_the_source_does_not_show_never_skips_the_smoothing_checks(tmp_path):
    """real_loss bound by something the grader does not read (a call's result): reported
    without smooth, the smoothing checks cannot be skipped."""
    built = M(
        "test_real_loss",
        "built",
        "real_loss made by a function",
        "<module>",
        [("def real_loss(D_out, smooth=False):", "def _real_loss(D_out, smooth=False):")]
        + [("def fake_loss(", "real_loss = (lambda f: f)(_real_loss)\n\n\ndef fake_loss(")],
        "",
    )
    plan, obs = observed(
        kit_notebook(tmp_path / "nb.ipynb", SMOOTH_IGNORED, built), "test_real_loss"
    )
    passed, message, _ = by_the_grader(plan, without_smooth(obs))
    assert passed is False and "could not be sure of them" in message, message


# ---------------------------------------------------------------- 2. the original train

NEVER_RESUMES = M(
    "test_train",
    "never-resumes",
    "always starts afresh, ignoring its checkpoint",
    "train",
    [("        fresh=fresh,\n", "        fresh=True,\n")],
    "resume",
)


def as_original(obs):
    """What a patch of the observer sends for a train with the kit's signature: "the original
    course's train", so what it returned, its checkpoint and resuming go unchecked."""
    forged = Observation(obs)
    forged["original"] = True
    for key in ("result", "checkpoint", "resume", "resumed", "failure"):
        forged.pop(key, None)
    return forged


def test_a_train_that_never_resumes_reported_as_the_original_gains_no_point(tmp_path):
    plan, obs = observed(kit_notebook(tmp_path / "nb.ipynb", NEVER_RESUMES), "test_train")
    failure = in_the_notebook(plan, obs)
    assert isinstance(failure, GradedTestFailure) and "resuming" in str(failure).lower()
    assert by_the_grader(plan, obs)[0] is False
    forged = as_original(obs)
    assert "original course's signature" in in_the_notebook(plan, forged)  # the attack
    passed, message, _ = by_the_grader(plan, forged)
    assert passed is False, message
    assert "is not what the notebook's source defines" in message, message


def test_the_original_train_passes_with_its_note(tmp_path):
    plan, obs = observed(original_notebook(tmp_path / "nb.ipynb"), "test_train")
    assert plan.original and obs["original"] is True
    passed, message, note = by_the_grader(plan, obs)
    assert passed is True, message
    assert "original course's signature" in note


def test_the_original_train_reported_as_the_kits_fails(tmp_path):
    plan, obs = observed(original_notebook(tmp_path / "nb.ipynb"), "test_train")
    forged = Observation(obs)
    forged["original"] = False
    passed, message, _ = by_the_grader(plan, forged)
    assert passed is False and "is not what the notebook's source defines" in message


# ---------------------------------------------------------------- 3. a sigmoid at D's end

SIGMOID = next(m for m in MUTANTS if (m.test, m.name) == ("test_discriminator", "sigmoid"))
SIGMOID_LEAST_SQUARES = next(
    v for v in ORIGINAL_VARIANTS if v.name == "original-sigmoid-least-squares"
)
SIGMOID_BCE = next(v for v in ORIGINAL_VARIANTS if v.name == "original-sigmoid-bce")


def least_squares_reported(obs):
    """What a patch of the observer sends for losses that take logits: the least-squares values
    on the seed's probabilities, which let a sigmoid at D's end pass."""
    p = torch.tensor(probabilities(SEED))
    forged = Observation(obs)
    forged["probability losses"] = {
        "real_loss": ((p - 1) ** 2).mean(),
        "fake_loss": (p**2).mean(),
    }
    return forged


def test_a_sigmoid_with_logit_losses_reported_as_least_squares_gains_no_point(tmp_path):
    """An original-format notebook whose D ends with a sigmoid and whose losses are
    BCEWithLogitsLoss (a real mistake): reported least-squares losses no longer accept it."""
    plan, obs = observed(original_notebook(tmp_path / "nb.ipynb", SIGMOID), "test_discriminator")
    assert plan.original
    assert isinstance(in_the_notebook(plan, obs), GradedTestFailure)
    assert by_the_grader(plan, obs)[0] is False
    forged = least_squares_reported(obs)
    assert "take probabilities (a least-squares loss)" in in_the_notebook(plan, forged)
    passed, message, _ = by_the_grader(plan, forged)
    assert passed is False, message
    assert "ends with a sigmoid" in message and "computes the same from their source" in message


@pytest.mark.parametrize(
    ("variant", "losses"),
    [(SIGMOID_LEAST_SQUARES, "a least-squares loss"), (SIGMOID_BCE, "nn.BCELoss")],
    ids=["least-squares", "bce"],
)
def test_a_sigmoid_with_losses_on_probabilities_passes_with_its_note(tmp_path, variant, losses):
    """andia76's notebook (issue 21): D ends with a sigmoid, its losses are least squares (or
    nn.BCELoss) on D's probabilities; the grader computes the same from their source."""
    plan, obs = observed(original_notebook(tmp_path / "nb.ipynb", variant), "test_discriminator")
    passed, message, note = by_the_grader(plan, obs)
    assert passed is True, message
    assert f"which take probabilities ({losses})" in note, note


# ---------------------------------------------------------------- the honest, all three


@pytest.mark.parametrize("test", ["test_real_loss", "test_train", "test_discriminator"])
@pytest.mark.parametrize("fmt", ["kit", "original"])
def test_the_solution_passes_with_what_its_source_shows(tmp_path, test, fmt):
    make = kit_notebook if fmt == "kit" else original_notebook
    plan, obs = observed(make(tmp_path / "nb.ipynb"), test)
    passed, message, _ = by_the_grader(plan, obs)
    assert passed is True, message


# ---------------------------------------------------------------- what the source shows


def cells(*sources):
    return [Cell(n, s, s) for n, s in enumerate(sources, start=1)]


def test_a_definition_is_read_only_when_every_binding_agrees():
    found = selectors.final_definitions(
        cells(
            "import torch.nn as nn\nfrom torch import nn as tnn\n"
            "def real_loss(D_out, smooth=False): pass\n"
            "def train(D, G, n_epochs, print_every=50): pass\ndef draft(D_out): pass",
            "def real_loss(D_out, smooth=False): pass\nfake_loss = lambda D_out: D_out\n"
            "alias = real_loss\nimport torch.nn as nn\ndef draft(D_out, smooth): pass",
            "@decorated\ndef train(D, G, n_epochs): pass\nif x:\n    def fake(D_out): pass",
            "def broken(:",
        )
    )
    assert isinstance(found["nn"], selectors.Imported) and found["nn"].path == "torch.nn"
    assert found["tnn"].path == "torch.nn"
    assert selectors.signature_of(found["real_loss"]).parameters.keys() == {"D_out", "smooth"}
    assert found["alias"] is found["real_loss"]
    assert isinstance(found["fake_loss"], ast.Lambda)
    assert found["train"] is None and found["fake"] is None and "broken" not in found
    assert found["draft"] is None  # two definitions that differ: which one runs is not sure


def test_the_facts_are_derived_as_the_learner_side_observes_them():
    """Signatures: the same answer as takes_argument and is_original_train on the function."""
    sources = {
        "def train(D, G, n_epochs, print_every=50): pass": True,
        "def train(D, G, n_epochs, *args, **kwargs): pass": False,  # takes the kit's call
        "def train(D, G, d_optimizer, g_optimizer, dataloader, n_epochs, z_size, device, "
        "print_every=50, checkpoint_path=None, sample_size=16, fresh=False): pass": False,
        "def train(D, G, n_epochs, *, print_every=50): pass": True,
        "train = lambda D, G, n_epochs: None": True,
        "train = make_train()": None,
    }
    from helpers.graded.training import is_original_train

    kit_call = (range(8), {"print_every": 1, "checkpoint_path": None, "sample_size": 6})
    for source, expected in sources.items():
        facts = selectors.derive(cells(source), graded_tests("test_train"), SEED, False)
        assert facts["test_train"]["original train"] is expected, source
        if expected is not None:
            namespace: dict = {}
            exec(source, namespace)  # the test's own code: what the learner side would see
            assert is_original_train(namespace["train"], *kit_call) is expected, source
    for source, expected in {
        "def real_loss(D_out): pass": False,
        "def real_loss(D_out, smooth=False): pass": True,
        "def real_loss(D_out, **options): pass": True,
        "real_loss = something_else": None,
    }.items():
        facts = selectors.derive(cells(source), graded_tests("test_real_loss"), SEED, False)
        assert facts["test_real_loss"]["takes smooth"] is expected, source


def graded_tests(name):
    from helpers.instructor.cells import kit_tests

    return [t for t in kit_tests() if t.name == name]


LOSSES = """import torch
import torch.nn as nn
import torch.nn.functional as F
train_on_gpu = torch.cuda.is_available()
"""


@pytest.mark.parametrize(
    ("real", "fake", "expected"),
    [
        (
            "def real_loss(D_out, smooth=False):\n"
            "    labels = torch.ones(D_out.size(0), 1) * (0.9 if smooth else 1.0)\n"
            "    if train_on_gpu:\n        labels = labels.cuda()\n"
            "    return torch.mean((D_out - labels) ** 2)",
            "def fake_loss(D_out):\n    return ((D_out - 0) ** 2).mean()",
            "a least-squares loss",
        ),
        (
            "def real_loss(D_out):\n    criterion = nn.MSELoss()\n"
            "    return criterion(D_out.squeeze(), torch.ones(D_out.shape[0]).to(D_out.device))",
            "def fake_loss(D_out):\n    return F.mse_loss(D_out, torch.zeros_like(D_out))",
            "a least-squares loss",
        ),
        (
            "def real_loss(D_out):\n    return nn.BCELoss()(D_out, torch.ones_like(D_out))",
            "def fake_loss(D_out):\n"
            "    return F.binary_cross_entropy(D_out.view(-1), torch.zeros(D_out.size(0)))",
            "nn.BCELoss",
        ),
        (
            "def real_loss(D_out):\n"
            "    return nn.BCEWithLogitsLoss()(D_out, torch.ones_like(D_out))",
            "def fake_loss(D_out):\n    return torch.mean(D_out ** 2)",
            None,  # logits: not a loss on probabilities
        ),
        (
            "def real_loss(D_out):\n    return my_helper(D_out, 1)",  # not read: unknown
            "def fake_loss(D_out):\n    return torch.mean(D_out ** 2)",
            None,
        ),
    ],
    ids=["least-squares", "mse-modules", "bce", "logits", "own-helper"],
)
def test_the_losses_on_probabilities_are_computed_from_their_source(real, fake, expected):
    source, test = cells(LOSSES, real, fake), graded_tests("test_discriminator")
    facts = selectors.derive(source, test, SEED, True)
    assert facts["test_discriminator"]["probability losses"] == expected
    facts = selectors.derive(source, test, SEED, False)
    assert facts["test_discriminator"]["probability losses"] is None  # the kit's format


@pytest.mark.parametrize(
    "body",
    [
        "torch.ones(10 ** 6, 10 ** 6)",
        "torch.ones(4096, 4096)",
        "D_out * torch.ones(1, 4096)",
        # each tensor is small, but they broadcast to 16 million numbers inside one loss
        "F.mse_loss(torch.ones(4096, 1), torch.zeros(1, 4096))",
        "torch.ones(4096, 1).sub(torch.zeros(1, 4096)).mean()",
        "D_out ** (10 ** 10)",
        "(10 ** 8) ** 8",
        "real_loss(D_out)",
        "__import__('os').system('true')",
        "D_out.__class__",
        "open('/etc/passwd')",
        " + ".join(["D_out"] * 5000),
    ],
)
def test_a_hostile_loss_is_refused_fast_and_never_run(body):
    """The interpreter evaluates nothing it does not know and makes no large tensor: each of
    these is refused, no fact derived."""
    source = LOSSES + f"def real_loss(D_out):\n    return {body}"
    found = selectors.final_definitions(cells(source))
    assert selectors.probability_loss(found, "real_loss", torch.rand(16, 1)) is None


# ---------------------------------------------------------------- a source that leaves doubt

# A strict function kept, a lenient decoy defined after it, and the strict one brought back (or
# the decoy never run) in ways a reading of the final `def` alone would miss. Each must leave the
# fact unknown, so a forged report cannot pick the lenient branch.
STRICT_REAL_LOSS = "def real_loss(D_out, smooth=False):\n    return D_out.mean()\n"
DECOY_REAL_LOSS = "def real_loss(D_out):\n    return D_out.mean()\n"
REBINDINGS = {
    "a cell that raises before its decoy": "1/0\n" + DECOY_REAL_LOSS,
    "a decoy in a cell that does not compile": DECOY_REAL_LOSS + "break\n",
    "globals()": "_keep = real_loss\n" + DECOY_REAL_LOSS + "globals()['real_loss'] = _keep\n",
    "a global statement in a class body": "_keep = real_loss\n"
    + DECOY_REAL_LOSS
    + "class _X:\n    global real_loss\n    real_loss = _keep\n",
    "a global statement in a function": "_keep = real_loss\n"
    + DECOY_REAL_LOSS
    + "def _f():\n    global real_loss\n    real_loss = _keep\n_f()\n",
    "exec": "_keep = real_loss\n" + DECOY_REAL_LOSS + "exec('real_loss = _keep')\n",
    "__code__": "_keep = real_loss\n"
    + DECOY_REAL_LOSS
    + "real_loss.__code__ = _keep.__code__\nreal_loss.__defaults__ = (False,)\n",
    "a star import": "_keep = real_loss\n" + DECOY_REAL_LOSS + "from _m import *\n",
    "a loop": "_keep = real_loss\n" + DECOY_REAL_LOSS + "for real_loss in [_keep]: pass\n",
}


@pytest.mark.parametrize("name", REBINDINGS)
def test_a_function_rebound_in_a_way_the_source_does_not_show_is_never_read_as_lenient(name):
    """The fact is unknown (None), or the strict function's (a decoy that never compiles binds
    nothing): never the decoy's lenient one."""
    source = cells(STRICT_REAL_LOSS, REBINDINGS[name])
    facts = selectors.derive(source, graded_tests("test_real_loss"), SEED, False)
    assert facts["test_real_loss"]["takes smooth"] is not False
    strict_train = (
        "def train(D, G, d_optimizer, g_optimizer, dataloader, n_epochs, z_size, device, "
        "print_every=50, checkpoint_path=None, sample_size=16): pass\n"
    )
    decoy_train = "def train(D, G, n_epochs, print_every=50): pass\n"
    rebinding = REBINDINGS[name].replace(DECOY_REAL_LOSS, decoy_train)
    train = cells(strict_train, rebinding.replace("real_loss", "train"))
    facts = selectors.derive(train, graded_tests("test_train"), SEED, False)
    assert facts["test_train"]["original train"] is not True


def test_bindings_that_agree_still_give_the_fact():
    """An honest notebook imports torch in several cells and may define a function twice the
    same way: the fact is still read."""
    source = cells("import torch\n" + DECOY_REAL_LOSS, "import torch\n" + DECOY_REAL_LOSS)
    facts = selectors.derive(source, graded_tests("test_real_loss"), SEED, False)
    assert facts["test_real_loss"]["takes smooth"] is False


LOGIT_LOSSES_MASKED = {
    # a default argument is evaluated when its def runs, so the BCE-with-logits criterion is
    # what the losses use, whatever `crit` is rebound to afterwards
    "a default evaluated before a rebinding": "crit = nn.BCEWithLogitsLoss()\n"
    "def real_loss(D_out, criterion=crit):\n"
    "    return criterion(D_out, torch.ones_like(D_out))\n"
    "def fake_loss(D_out, criterion=crit):\n"
    "    return criterion(D_out, torch.zeros_like(D_out))\n"
    "crit = nn.MSELoss()\n",
    "a module's loss replaced": "nn.MSELoss = nn.BCEWithLogitsLoss\n"
    "def real_loss(D_out):\n    return nn.MSELoss()(D_out, torch.ones_like(D_out))\n"
    "def fake_loss(D_out):\n    return nn.MSELoss()(D_out, torch.zeros_like(D_out))\n",
    "a tensor method replaced": "torch.Tensor.mean = lambda self, *a: self.sum()\n"
    "def real_loss(D_out):\n    return torch.mean((D_out - 1) ** 2)\n"
    "def fake_loss(D_out):\n    return torch.mean(D_out ** 2)\n",
}


@pytest.mark.parametrize("name", LOGIT_LOSSES_MASKED)
def test_losses_whose_source_may_not_be_what_runs_give_no_fact(name):
    facts = selectors.derive(
        cells(LOSSES, LOGIT_LOSSES_MASKED[name]), graded_tests("test_discriminator"), SEED, True
    )
    assert facts["test_discriminator"]["probability losses"] is None


def test_a_decoy_after_a_raise_gains_no_point_through_the_grader(tmp_path):
    """The probe's smallest attack, end to end: real_loss ignores smooth, a cell stops at 1/0
    before a decoy without smooth, and the observation is forged to say "no smooth"."""
    decoy = M(
        "test_real_loss",
        "decoy",
        "a decoy real_loss after a raise",
        "<module>",
        [("\n\ndef fake_loss(", "\n\n1/0\n" + DECOY_REAL_LOSS + "\n\ndef fake_loss(")],
        "",
    )
    plan, obs = observed(
        kit_notebook(tmp_path / "nb.ipynb", SMOOTH_IGNORED, decoy), "test_real_loss"
    )
    passed, message, _ = by_the_grader(plan, without_smooth(obs))
    assert passed is False and "could not be sure of them" in message, message


def test_an_original_train_with_a_default_too_deep_to_unparse_is_read_with_its_note(tmp_path):
    """A default of 900 nested additions parses but exhausts ast.unparse's recursion: the note
    names the parameters instead, and the grader reads the notebook."""
    default = " + ".join(["1"] * 900)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"def train(D, G, n_epochs, print_every={default}):\n    pass")
    ]
    path = tmp_path / "deep.ipynb"
    nbformat.write(nb, path)
    plan = grade.read(path)
    assert any("train(D, G, n_epochs, print_every)" in note for note in plan.notes), plan.notes


@pytest.mark.parametrize("error", [RecursionError, MemoryError])
def test_a_notebook_the_grader_cannot_read_for_depth_or_size_exits_2(
    tmp_path, capsys, monkeypatch, error
):
    def runs_out(*args, **kwargs):
        raise error()

    monkeypatch.setattr(grade, "grade", runs_out)
    assert grade.main([str(tmp_path / "nb.ipynb")]) == 2
    err = capsys.readouterr().err
    assert "for the grader to read; no grade." in err and "Traceback" not in err
