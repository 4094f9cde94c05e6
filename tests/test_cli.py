"""`python -m helpers COMMAND`: every command listed, each with its own help."""

import os
import re
import subprocess
import sys

import pytest

import helpers.__main__ as cli
from helpers.notebook import ROOT


def test_help_lists_every_command_with_its_description():
    done = subprocess.run(
        [sys.executable, "-m", "helpers", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for name, (_, about) in cli.COMMANDS.items():
        assert re.search(rf"^  {name}\s+{re.escape(about)}$", done.stdout, re.MULTILINE), name


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_each_command_has_its_own_help_under_its_full_name(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    # "python -m helpers CMD", or a launcher in front of it ("torchrun ... -m helpers distributed")
    assert re.match(rf"usage: (python|.+) -m helpers {command}\s", capsys.readouterr().out)


def test_the_commands_exit_status_is_passed_on(tmp_path, capsys):
    assert cli.main(["data", "check", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_no_command_or_an_unknown_one_shows_the_commands(capsys):
    assert cli.main([]) == 2
    assert "release" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["trian"])
    assert exit_.value.code == 2
    assert "invalid choice: 'trian'" in capsys.readouterr().err


def test_help_lists_only_the_commands_this_copy_ships(tmp_path):
    # The learner release has helpers/ without instructor/: its --help offers none of its commands.
    from helpers.instructor.release import make_release

    make_release(ROOT / "solution" / "dlnd_face_generation.ipynb", tmp_path / "rel")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "helpers", "--help"],
        cwd=tmp_path / "rel",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^  (\w+) ", done.stdout.split("commands:")[1], re.MULTILINE)
    assert listed == ["run", "data", "faces", "distributed"], done.stdout
    assert "not part of the learner's copy" in done.stdout


@pytest.mark.slow
def test_run_in_the_learners_copy_runs_their_own_notebook_to_its_first_unwritten_piece(tmp_path):
    # The release has no solution/: command 1 runs the learner's notebook, in its own folder.
    from helpers.instructor.release import make_release

    rel = tmp_path / "rel"
    make_release(ROOT / "solution" / "dlnd_face_generation.ipynb", rel)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DCGAN_OUT")}
    done = subprocess.run(
        [sys.executable, "-m", "helpers", "run", "--quick", "--plain"],
        cwd=rel,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("Running dlnd_face_generation.ipynb (quick mode); results go ")
    assert "get_dataloader: not implemented yet" in done.stderr
    assert not (rel / "outputs" / "quick").exists()  # the learner's own folder: not touched


def test_a_command_missing_from_this_copy_is_named(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "grade", ("helpers.not_here", "gone"))
    assert cli.main(["grade", "x.ipynb"]) == 2
    assert "no helpers/not_here.py" in capsys.readouterr().err


def test_modules_have_no_entry_points_of_their_own():
    # One way in: a module's `if __name__ == "__main__"` would be a second, untested one.
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "helpers").rglob("*.py")
        if p.name != "__main__.py" and re.search(r"^if __name__ ==", p.read_text(), re.MULTILINE)
    ]
    assert not offenders


@pytest.mark.parametrize(
    "module, command",
    [
        ("helpers.grade", "grade"),  # where grade lived before helpers/instructor/
        ("helpers.instructor.grade", "grade"),
        ("helpers.instructor.release", "release"),
        ("helpers.run", "run"),
        ("helpers.data", "data"),
        ("helpers.scale.distributed", "distributed"),
        ("helpers.plotting", None),  # not a command: the list of commands is named instead
    ],
)
def test_running_a_module_says_which_command_to_use_and_fails(module, command, tmp_path):
    # `python -m helpers.<module>` used to import the module and exit 0 without doing anything.
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", module, "--json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    use = f"python -m helpers {command}" if command else "python -m helpers <command>"
    assert use in lines[0] and f"python -m {module}`" in lines[0], lines[0]
    assert not (tmp_path / "r.json").exists()


def test_python_m_helpers_and_imports_still_work():
    done = subprocess.run(
        [sys.executable, "-m", "helpers", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0 and "commands:" in done.stdout, done
    done = subprocess.run(
        [sys.executable, "-c", "import helpers.run, helpers.instructor.grade; print('ok')"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done
