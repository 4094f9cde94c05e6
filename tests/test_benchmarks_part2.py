"""The part-2 settings race (benchmarks/part2_quality.py) on tiny data: recipes parse, read the
notebooks' settings, train for their CPU budget on their own cores and report SWD.

They check what the script runs and prints, never how fast or how good anything was.
"""

import json
import os

import pytest

from benchmarks import part2_quality
from helpers.faces import make_faces
from helpers.training import EMA_DECAY


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return make_faces(tmp_path_factory.mktemp("data") / "faces", n=160, workers=1, progress=False)


def test_recipes_parse_their_settings_and_refuse_bad_ones():
    assert part2_quality.parse_recipe("dcgan") == ("dcgan", {})
    assert part2_quality.parse_recipe("wgan:n_critic=2,lr=0.0002,batch_size=32") == (
        "wgan",
        {"n_critic": 2, "lr": 0.0002, "batch_size": 32},
    )
    assert part2_quality.parse_recipe("dcgan:ema=0.999,bf16=1") == (
        "dcgan",
        {"ema": 0.999, "bf16": True},
    )
    assert part2_quality.parse_recipe("wgan:ema=0,bf16=0") == ("wgan", {"ema": 0.0, "bf16": False})
    for bad, why in (
        ("gan", "starts with one of"),
        ("dcgan:depth=3", "not KEY=VALUE"),
        ("wgan:lr", "not KEY=VALUE"),
        ("wgan:n_critic=two", "not a valid int"),
        ("wgan:batch_size=0", "out of range"),
        ("dcgan:n_critic=2", "WGAN-GP settings"),
        ("wgan:ema=1", "ema is a decay"),
        ("dcgan:ema=-0.5", "out of range"),
        ("dcgan:bf16=2", "not a valid flag"),
    ):
        with pytest.raises(SystemExit, match=why):
            part2_quality.parse_recipe(bad)


def test_settings_are_the_notebooks_own_with_the_recipes_changes():
    part1, part2 = part2_quality.load_notebooks()
    dcgan = part2_quality.settings("dcgan", part1, part2, {})
    assert dcgan["lr"] == part1["lr"] and (dcgan["beta1"], dcgan["beta2"]) == (
        part1["beta1"],
        part1["beta2"],
    )
    assert dcgan["batch_size"] == part2["batch_size"] and dcgan["conv_dim"] == part2["conv_dim"]
    assert "n_critic" not in dcgan
    assert dcgan["ema"] == EMA_DECAY and dcgan["bf16"] is False, "the notebook samples G's average"
    wgan = part2_quality.settings("wgan", part1, part2, {"n_critic": 3})
    assert wgan["lr"] == part2["wgan_lr"] and (wgan["beta1"], wgan["beta2"]) == part2["wgan_betas"]
    assert wgan["n_critic"] == 3 and wgan["gp_weight"] == part2["gp_weight"]
    assert wgan["batch_size"] == part2["wgan_batch_size"]


def test_race_trains_each_recipe_for_its_cpu_budget_and_saves_its_grid(faces, tmp_path, capsys):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores to pin the recipes to")
    out = tmp_path / "grids"
    result = part2_quality.main(
        [
            "--data",
            str(faces),
            "--n-eval",
            "16",
            "--cpu-budget",
            "1",
            "--recipe",
            "dcgan:conv_dim=4,batch_size=8",
            "--recipe",
            "wgan:conv_dim=4,batch_size=8,n_critic=2,ema=0,bf16=1",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert json.loads(printed.strip().splitlines()[-1]) == result
    runs = {r["recipe"]: r for r in result["runs"]}
    dcgan, wgan = (
        runs["dcgan:conv_dim=4,batch_size=8"],
        runs["wgan:conv_dim=4,batch_size=8,n_critic=2,ema=0,bf16=1"],
    )
    assert dcgan["settings"]["conv_dim"] == 4 and wgan["settings"]["n_critic"] == 2
    assert wgan["settings"]["bf16"] is True
    # the average and G itself, scored from the one DCGAN run; ema=0 is G itself alone
    itself = runs.pop("dcgan:conv_dim=4,batch_size=8 (G itself)")
    assert itself["steps"] == dcgan["steps"] and itself["settings"]["ema"] == EMA_DECAY
    assert (out / "dcgan_conv_dim=4_batch_size=8_G_itself_seed0.png").is_file()
    assert len(runs) == 2 and set(result["mean_swd"]) == set(runs) | {itself["recipe"]}
    for r in (dcgan, wgan):
        assert r["steps"] >= 1 and r["swd"] > 0
        assert 1 <= r["cpu_s"] < 10, "the budget is the recipe's own CPU time"
        assert (out / f"{r['recipe'].replace(':', '_').replace(',', '_')}_seed0.png").is_file()
    assert dcgan["g_steps"] == dcgan["steps"] and wgan["g_steps"] == wgan["steps"] // 2
    assert len(dcgan["core"]) == len(wgan["core"]) == 1 and dcgan["core"] != wgan["core"]
    assert result["floor_swd"] > 0 and "floor" in printed
