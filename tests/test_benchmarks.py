"""Smoke tests of the speed and quality benchmarks on tiny data: they finish and report both
recipes.

They check that the scripts run and what they print, never how fast anything was.
"""

import ast
import json
import os
from pathlib import Path

import pytest
import torch

from benchmarks import quality, throughput
from helpers import gpu
from helpers.faces import make_faces


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """160 built-in faces: enough to hold out 2 x 16 and still fill a course batch of 128."""
    return make_faces(tmp_path_factory.mktemp("data") / "faces", n=160, workers=1, progress=False)


@pytest.fixture
def one_thread():
    """--threads 1 keeps the tiny runs quick on a busy machine; the suite's setting is restored."""
    before = torch.get_num_threads()
    yield ["--threads", "1"]
    torch.set_num_threads(before)


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_throughput_reports_both_recipes_in_a_table_and_a_json_line(
    faces, tmp_path, capsys, one_thread
):
    path = tmp_path / "result.json"
    result = throughput.main(
        [
            "--data",
            str(faces),
            "--steps",
            "2",
            "--warmup",
            "1",
            "--conv-dim",
            "8",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--in-process",
            "--json",
            str(path),
            *one_thread,
        ]
    )
    out = capsys.readouterr().out
    printed = last_json(out)
    assert printed == result == json.loads(path.read_text())
    assert set(printed["recipes"]) == {"course", "kit"}
    for name, r in printed["recipes"].items():
        assert r["images"] == 2 * 8, f"{name}: expected 2 timed steps of 8 images"
        assert r["img_per_s"] > 0 and r["peak_rss_mb"] > 0
    assert printed["ratio_kit_over_course"] > 0
    assert printed["threads"] == 1 and printed["torch"] == torch.__version__
    assert "course" in out and "kit / course" in out


def test_throughput_course_loader_adds_center_crop_only_for_non_square_sources(tmp_path):
    from tests import imagefiles

    imagefiles.rgb_image(tmp_path / "wide" / "c" / "a.png", size=(60, 40))
    imagefiles.rgb_image(tmp_path / "square" / "c" / "a.png", size=(40, 40))
    assert throughput.sources_are_square(tmp_path / "square")
    assert not throughput.sources_are_square(tmp_path / "wide")
    wide = throughput.course_loader(tmp_path / "wide", 32, 1, square=False)
    assert next(iter(wide))[0].shape == (1, 3, 32, 32)


def test_course_step_updates_both_networks(faces):
    ns = throughput.load_notebook()
    D, G = throughput.build_models(ns, 4, 4, 8)
    d_opt, g_opt = throughput.adam(ns, D), throughput.adam(ns, G)
    before = [p.detach().clone() for p in list(D.parameters()) + list(G.parameters())]
    real = torch.rand(4, 3, 32, 32)
    d_loss, g_loss = throughput.course_step(ns, D, G, d_opt, g_opt, real, 8, train_on_gpu=False)
    after = list(D.parameters()) + list(G.parameters())
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    assert sum(not torch.equal(a, b) for a, b in zip(before, after)) == len(before)


def quality_run(faces, tmp_path, *extra):
    return quality.main(
        [
            "--data",
            str(faces),
            "--n-eval",
            "16",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "grids"),
            *extra,
        ]
    )


def test_quality_trains_both_recipes_per_seed_and_saves_their_grids(
    faces, tmp_path, capsys, one_thread
):
    result = quality_run(faces, tmp_path, "--budget", "0.5", "--seeds", "0", "1", "--in-process")
    out = capsys.readouterr().out
    printed = last_json(out)
    assert printed == result
    assert [(r["recipe"], r["seed"]) for r in printed["runs"]] == [
        ("course", 0),
        ("kit", 0),
        ("course", 1),
        ("kit", 1),
    ]
    for r in printed["runs"]:
        assert r["steps"] >= 1 and r["swd"] > 0 and r["memorised"] in (True, False)
        assert (tmp_path / "grids" / f"{r['recipe']}_seed{r['seed']}.png").is_file()
    for name in ("course", "kit"):
        swds = [r["swd"] for r in printed["runs"] if r["recipe"] == name]
        assert printed["mean_swd"][name] == pytest.approx(sum(swds) / 2, abs=0.01)
    assert printed["runs"][0]["settings"]["conv_dim"] == 32
    # the kit recipe is the notebook's own hyperparameters cell
    assert printed["runs"][1]["settings"]["d_conv_dim"] == throughput.load_notebook()["d_conv_dim"]
    assert printed["real_vs_real_swd"] > 0 and (tmp_path / "grids" / "real.png").is_file()
    # both recipes train on the same images and are scored against the same held-out ones
    assert printed["n_train"] == 160 - 2 * 16
    assert "real vs real" in out and "kit / course mean SWD" in out


def test_quality_cpu_budget_runs_both_recipes_at_once_on_their_own_cores(faces, tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores to pin the recipes to")
    result = quality_run(faces, tmp_path, "--cpu-budget", "0.5", "--recipes", "kit", "course")
    runs = result["runs"]
    assert result["clock"] == "cpu" and result["threads"] == 1
    assert {r["core"] for r in runs} == set(result["cores"]) and len(result["cores"]) == 2
    for r in runs:
        # the budget is the recipe's CPU time: it stops within a step or two of it
        assert 0.5 <= r["budget_spent"] < 5, r


def test_cpu_seconds_counts_this_process_work_not_sleep():
    import time

    before = quality.cpu_seconds()
    time.sleep(0.2)
    assert quality.cpu_seconds() - before < 0.1, "sleeping is not CPU time"
    before, wall = quality.cpu_seconds(), time.perf_counter()
    while quality.cpu_seconds() - before < 0.2 and time.perf_counter() - wall < 60:
        pass  # busy: CPU time advances (however loaded the machine is)
    busy, wall = quality.cpu_seconds() - before, time.perf_counter() - wall
    assert 0.2 <= busy <= wall + 0.05, (busy, wall)


def test_budget_stops_when_its_clock_has_advanced_the_budget():
    ticks = iter(range(100))
    batches = quality.Budget(
        iter([(torch.zeros(2, 3, 1, 1), None)] * 100),
        seconds=3,
        start=0,
        device=torch.device("cpu"),
        clock=lambda: next(ticks),
    )
    assert len(list(batches)) == 3 and batches.steps == 3 and batches.images == 6


def test_kit_set_parses_known_settings_and_refuses_others():
    assert quality.parse_kit_set(["lr=0.0004", "batch_size=64", "ema=0.999"]) == {
        "lr": 0.0004,
        "batch_size": 64,
        "ema": 0.999,
    }
    for bad in ("conv_dim=64", "lr", "batch_size=6.5", "ema=1", "lr=-1", "batch_size=0"):
        with pytest.raises(SystemExit, match="--kit-set"):
            quality.parse_kit_set([bad])
    settings = quality.kit_settings(throughput.load_notebook(), {"d_lr": 0.0004})
    assert settings["d_lr"] == 0.0004 and settings["g_lr"] == throughput.load_notebook()["lr"]


def test_kit_set_cpu_levers_are_switches_that_change_how_the_networks_run():
    assert quality.parse_kit_set(["bf16=1", "channels_last=0"]) == {
        "bf16": True,
        "channels_last": False,
    }
    for bad in ("bf16=2", "bf16=yes", "channels_last=-1"):
        with pytest.raises(SystemExit, match="--kit-set"):
            quality.parse_kit_set([bad])
    ns = throughput.load_notebook()
    D, G = throughput.build_models(ns, 8, 8, ns["z_size"])
    seen = []
    G.fc.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    z = torch.rand(2, ns["z_size"])
    assert G(z).dtype == torch.float32 and seen == [torch.float32]
    quality.cpu_levers(D, G, bf16=True, channels_last=True)
    # one bf16 forward for the CPU and CUDA (helpers.gpu's), reading the device from the weights
    assert G.forward.__func__ is gpu.autocast_forward
    out = G(z)
    # inside the forward the layers ran in bf16; what leaves it is float32 for the losses
    assert seen[-1] == torch.bfloat16 and out.dtype == torch.float32 and out.shape == (2, 3, 32, 32)
    assert D.fc.weight.is_contiguous() and any(
        p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) for p in D.parameters()
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--budget", "10", "--cpu-budget", "10"],
        ["--cpu-budget", "0"],
        ["--budget", "-1"],
        ["--seeds", "0", "0"],
        ["--n-eval", "0"],
    ],
)
def test_quality_refuses_contradictory_or_empty_budgets_and_repeated_seeds(argv):
    with pytest.raises(SystemExit):
        quality.parse_args(argv)


def test_summary_says_whether_every_kit_seed_beats_every_course_seed():
    s = quality.summarise({"course": [20.0, 18.0], "kit": [15.0, 17.0]})
    assert s["mean_swd"] == {"course": 19.0, "kit": 16.0}
    assert s["ratio_kit_over_course"] == pytest.approx(16 / 19, abs=1e-3)
    assert s["every_kit_seed_beats_every_course_seed"] is True
    assert (
        quality.summarise({"course": [20.0], "kit": [15.0, 21.0]})[
            "every_kit_seed_beats_every_course_seed"
        ]
        is False
    )
    assert "ratio_kit_over_course" not in quality.summarise({"course": [], "kit": [15.0]})


def test_quality_refuses_a_folder_too_small_to_hold_out_images(faces, tmp_path):
    with pytest.raises(SystemExit, match="too few"):
        quality.main(
            ["--data", str(faces), "--n-eval", "100", "--device", "cpu", "--out", str(tmp_path)]
        )


@pytest.mark.parametrize("module", [throughput, quality])
def test_every_flag_is_explained_in_help(module, capsys):
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--data", "--device", "--json", "--threads"):
        assert flag in text


@pytest.mark.parametrize("module", [throughput, quality])
def test_benchmarks_use_public_helpers_and_the_notebook_settings(module):
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    private = [
        f"{node.module}.{a.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers")
        for a in node.names
        if a.name.startswith("_")
    ]
    assert private == [], f"{module.__name__} imports private helpers: {private}"
    copied = [
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name) and t.id in {"Z_SIZE", "LR", "BETAS"}
    ]
    assert copied == [], f"{module.__name__} copies settings the notebook defines: {copied}"


def test_budget_spent_before_the_first_batch_still_trains_one_step():
    batches = quality.Budget(
        iter([(torch.zeros(2, 3, 1, 1), None)] * 5),
        seconds=1,
        start=0,
        device=torch.device("cpu"),
        clock=lambda: 10,
    )
    assert len(list(batches)) == 1
