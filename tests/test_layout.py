"""The README's layout table matches the kit's tree."""

import re

from helpers.__main__ import COMMANDS
from helpers.notebook import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
# Made by the kit or brought by the user, never committed (.gitignore)
NOT_COMMITTED = {
    "data",
    "outputs",
    "release",
    "processed_celeba_small",
    "artifacts",
    "build",
    "__pycache__",
}


def layout_rows():
    section = README.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \|$", section, re.MULTILINE)
    assert len(rows) >= 8, "no layout table found under '## Layout'"
    return dict(rows)


def test_every_path_in_the_layout_table_exists():
    for path in layout_rows():
        assert (ROOT / path).exists(), f"README layout lists {path}, which is not in the kit"


def test_every_top_level_file_and_folder_is_in_the_layout_table():
    rows = layout_rows()
    listed = {path.rstrip("/").split("/")[0] for path in rows}
    present = {
        p.name
        for p in ROOT.iterdir()
        if (not p.name.startswith(".") or p.name == ".ci")
        and p.name != "README.md"
        and p.name not in NOT_COMMITTED
        and not p.name.endswith(".egg-info")
    }
    assert present <= listed, f"not in the README's layout table: {sorted(present - listed)}"


def test_every_helpers_module_is_named_in_the_layout_table():
    row = layout_rows()["helpers/"]
    modules = sorted(p.name for p in (ROOT / "helpers").glob("*.py") if p.name != "__init__.py")
    missing = [name for name in modules if f"`{name}`" not in row]
    assert not missing, f"helpers/ modules the README's layout table does not name: {missing}"


def test_every_command_is_a_module_of_helpers():
    for name, (module, _) in COMMANDS.items():
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), name
