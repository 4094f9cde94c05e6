"""The README stays short and learner-first, its layout table matches the kit's tree, and every
relative link in the kit's Markdown pages leads somewhere."""

import re

import pytest

from helpers.__main__ import COMMANDS
from helpers.notebook import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
# Made by the kit or brought by the user, never committed (.gitignore)
NOT_COMMITTED = {
    "data",
    "outputs",
    "finished_run",
    "release",
    "processed_celeba_small",
    "artifacts",
    "build",
    "__pycache__",
}
README_MAX_BYTES = 12 * 1024  # the anchors' READMEs are 2 to 14 KB; the rest is in docs/
# helpers/ and each of its subpackages, as the layout table's rows name them ("helpers/graded/")
PACKAGES = ["helpers/"] + sorted(
    f"helpers/{p.name}/" for p in (ROOT / "helpers").iterdir() if (p / "__init__.py").is_file()
)
# The pages whose links are checked. docs/learner_README.md is left out: the release ships it as
# its own folder's README.md, so its relative links would resolve from there, not from docs/.
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md"] + sorted(
    p for p in (ROOT / "docs").glob("*.md") if p.name != "learner_README.md"
)


def layout_rows():
    section = README.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \|$", section, re.MULTILINE)
    assert len(rows) >= 8, "no layout table found under '## Layout'"
    return dict(rows)


def test_the_readme_is_short():
    size = len(README.encode("utf-8"))
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail to a page in docs/"


def test_the_readme_gives_the_learners_command_before_the_headless_run():
    notebook = README.find("jupyter notebook dlnd_face_generation.ipynb")
    headless = README.find("python -m helpers run")
    assert notebook != -1 and headless != -1, "the README lacks one of the two commands"
    assert notebook < headless, "the learner's `jupyter notebook` must come first in the README"


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


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_named_in_its_packages_row(package):
    rows = layout_rows()
    assert package in rows, f"the README's layout table has no row for {package}"
    modules = sorted(p.name for p in (ROOT / package).glob("*.py") if p.name != "__init__.py")
    missing = [name for name in modules if f"`{name}`" not in rows[package]]
    assert not missing, f"{package} modules the README's layout table does not name: {missing}"


def test_every_command_is_a_module_of_helpers():
    for name, (module, _) in COMMANDS.items():
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), name


def github_slug(heading):
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped (hyphens and
    underscores kept), each space a hyphen; link and code markup count as their text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page):
    """The anchors of `page`'s headings, outside code blocks, numbered as GitHub numbers repeats."""
    seen = {}
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            slug = github_slug(match.group(1))
            seen[slug] = seen.get(slug, -1) + 1
            yield slug if seen[slug] == 0 else f"{slug}-{seen[slug]}"


def relative_links(page):
    """(line number, target) of each relative Markdown link or image of `page`, outside code."""
    fenced = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`]*`", "", line)):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # not https:, mailto:, ...
                yield number, target


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(page):
    broken = []
    for number, target in relative_links(page):
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"line {number}: {target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in set(anchors(dest)):
            broken.append(f"line {number}: {target} (no heading #{fragment} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_the_slug_rule_matches_githubs():
    assert github_slug("Run the tests (command 2)") == "run-the-tests-command-2"
    assert github_slug("SyncBatchNorm (`--sync-bn`)") == "syncbatchnorm---sync-bn"
    assert github_slug("How good are the faces?") == "how-good-are-the-faces"
    assert github_slug("Where bubblewrap is missing, root, and what") == (
        "where-bubblewrap-is-missing-root-and-what"
    )


def test_anchors_skip_code_blocks_and_number_repeats(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Notes\n```bash\n# a comment, not a heading\n```\n## Notes\n## Notes\n")
    assert list(anchors(page)) == ["notes", "notes-1", "notes-2"]
