"""`python -m helpers COMMAND`: every command listed, each with its own help."""

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


def test_a_command_missing_from_this_copy_is_named(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "grade", ("helpers.not_here", "gone"))
    assert cli.main(["grade", "x.ipynb"]) == 2
    assert "no helpers/not_here.py" in capsys.readouterr().err


def test_modules_have_no_entry_points_of_their_own():
    # One way in: a module's `if __name__ == "__main__"` would be a second, untested one.
    offenders = [
        p.name
        for p in (ROOT / "helpers").glob("*.py")
        if p.name != "__main__.py" and re.search(r"^if __name__ ==", p.read_text(), re.MULTILINE)
    ]
    assert not offenders
