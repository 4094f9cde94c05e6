"""Make the learner's notebook from the solution notebook (instructor tool).

    python -m helpers release                  # the learner's folder: release/
    python -m helpers release --update-kit     # the learner edition at the kit's top level

The solution lives in solution/dlnd_face_generation.ipynb. The kit's top-level
dlnd_face_generation.ipynb, what a learner opens, is this tool's output; a test fails when it
differs from what the tool makes from the solution today.

The solution notebook is the one source of truth; the release is a build artefact, never
edited by hand. In every code cell each region between a ``### BEGIN SOLUTION`` line and its
``### END SOLUTION`` line becomes a stub at the region's indentation:

- inside a function or method: ``raise NotImplementedError("Discriminator.__init__: not
  implemented yet, see the TODO above")``, so the graded test says which piece is missing;
- at module level (the optimizers cell): one ``name = None`` line per name the region assigns.

The ``# TODO`` lines above each region stay. Outputs and execution counts are cleared; cell ids
and tags stay (the grader finds the definition cells by their tags). The output folder also
gets the learner README (docs/learner_README.md), what the notebook imports
(problem_unittests.py, workspace_utils.py, helpers/ without the instructor tools) and a
requirements.txt of the runtime dependencies, so it stands on its own. Same input, same bytes.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import hashlib
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from helpers.files import (
    NoSpaceError,
    NotWritableError,
    check_writable_folder,
    is_no_space,
    no_space_message,
    write_bytes_atomic,
    write_text_atomic,
)
from helpers.instructor.shipping import TOP_LEVEL_FILES, copy_helpers
from helpers.notebook import BEGIN, END, NOTEBOOK, PART2_NOTEBOOK, ROOT, strip_magics

__all__ = [
    "KIT_NOTEBOOKS",
    "LEARNER_NOTEBOOK",
    "LEARNER_README",
    "PART2_LEARNER_NOTEBOOK",
    "STUB_MESSAGE",
    "ReleaseError",
    "INCOMPLETE",
    "first_failure_check",
    "learner_text",
    "main",
    "make_release",
    "release_notebook",
    "runtime_requirements",
    "solution_regions",
    "stub_source",
    "update_kit",
]

# What a learner opens: the learner edition at the kit's top level (`jupyter notebook
# dlnd_face_generation.ipynb`), made by `python -m helpers release --update-kit`.
LEARNER_NOTEBOOK = ROOT / NOTEBOOK.name
PART2_LEARNER_NOTEBOOK = ROOT / PART2_NOTEBOOK.name  # part 2's learner edition, beside part 1's
# The solution notebooks released when --notebook is not given: part 1, then part 2.
KIT_NOTEBOOKS = (NOTEBOOK, PART2_NOTEBOOK)
# What a learner needs beside the notebooks; helpers/ is copied without the instructor tools.
LEARNER_README = ROOT / "docs" / "learner_README.md"  # shipped as the release's README.md
# Written with one fixed format so the release is byte-for-byte reproducible.
NBFORMAT, NBFORMAT_MINOR = 4, 5
DEFAULT_KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
STUB_MESSAGE = "{}: not implemented yet, see the TODO above"


class ReleaseError(ValueError):
    """The solution notebook cannot be made into a release (the message names the cell and why)."""


def solution_regions(source: str, where: str = "the cell") -> list[tuple[int, int]]:
    """Marker lines of each solution region in `source`: a list of (begin, end) 0-based indexes.

    Raises ReleaseError naming `where` for a BEGIN without END, an END without BEGIN, or a
    BEGIN inside another region.
    """
    regions, begin = [], None
    for i, line in enumerate(source.split("\n")):
        text = line.strip()
        if text.startswith(BEGIN):
            if begin is not None:
                raise ReleaseError(
                    f"{where}: '{BEGIN}' at line {i + 1} starts inside the region opened at "
                    f"line {begin + 1}; regions cannot nest. Close the first with '{END}'."
                )
            begin = i
        elif text.startswith(END):
            if begin is None:
                raise ReleaseError(f"{where}: '{END}' at line {i + 1} has no '{BEGIN}' above it.")
            regions.append((begin, i))
            begin = None
    if begin is not None:
        raise ReleaseError(
            f"{where}: '{BEGIN}' at line {begin + 1} has no matching '{END}' below it."
        )
    return regions


def _parse(source, where):
    try:
        return ast.parse(strip_magics(source))
    except SyntaxError as err:
        raise ReleaseError(
            f"{where} is not valid Python (line {err.lineno}: {err.msg}); fix the solution "
            f"notebook first."
        ) from None


def _enclosing_function(tree, line, indent):
    """Qualified name ('Discriminator.__init__') of the innermost def around 1-based `line`."""
    best = None

    def visit(node, prefix):
        nonlocal best
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                is_def = not isinstance(child, ast.ClassDef)
                if is_def and child.lineno < line <= child.end_lineno and child.col_offset < indent:
                    best = name  # deeper matches overwrite shallower ones
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return best


def _bound_names(tree, first, last):
    """Names bound by the statements on 1-based lines first..last, in order (not in their defs)."""
    names = []

    def add(target):
        for node in ast.walk(target):
            if isinstance(node, ast.Name) and node.id not in names:
                names.append(node.id)

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt) and first <= child.lineno <= last:
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    add(ast.Name(child.name))
                    continue  # names bound inside a def are its own
                if isinstance(child, ast.Assign):
                    for target in child.targets:
                        add(target)
                elif isinstance(child, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
                    add(child.target)
                elif isinstance(child, (ast.With, ast.AsyncWith)):
                    for item in child.items:
                        if item.optional_vars is not None:
                            add(item.optional_vars)
                elif isinstance(child, (ast.Import, ast.ImportFrom)):
                    for alias in child.names:
                        add(ast.Name(alias.asname or alias.name.split(".")[0]))
            if not isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
            ):
                visit(child)

    visit(tree)
    return names


def stub_source(source: str, where: str = "the cell") -> tuple[str, int]:
    """Replace every solution region of one cell's source by its stub.

    Returns (new source, number of regions). Regions inside a function become a
    ``raise NotImplementedError("<qualified name>: not implemented yet, ...")``; regions at module
    level become ``name = None`` for each name they assign (``pass`` when they assign none).
    """
    regions = solution_regions(source, where)
    if not regions:
        return source, 0
    lines = source.split("\n")
    tree = _parse(source, where)
    # Work from the last region up, so earlier line indexes stay valid.
    for begin, end in reversed(regions):
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        function = _enclosing_function(tree, begin + 1, len(indent))
        if function is not None:
            stub = [f'{indent}raise NotImplementedError("{STUB_MESSAGE.format(function)}")']
        else:
            names = _bound_names(tree, begin + 1, end + 1)
            stub = [f"{indent}{name} = None" for name in names] or [f"{indent}pass"]
        lines[begin : end + 1] = stub
    return "\n".join(lines), len(regions)


def _cell_id(index, cell):
    # A fixed id for cells from older notebooks that have none, so reruns give the same bytes.
    return cell.get("id") or hashlib.sha1(f"{index}:{cell.source}".encode()).hexdigest()[:8]


def release_notebook(nb: NotebookNode) -> tuple[NotebookNode, int, int]:
    """The learner version of a solution notebook (an nbformat NotebookNode; `nb` is not changed).

    Returns (release, number of regions stubbed, number of cells changed).
    """
    cells, n_regions, n_cells = [], 0, 0
    for index, cell in enumerate(nb.cells):
        tags = list(cell.get("metadata", {}).get("tags", []))
        metadata = {"tags": tags} if tags else {}
        common = {"id": _cell_id(index, cell), "metadata": metadata}
        if cell.cell_type == "code":
            source, n = stub_source(cell.source, f"Cell {index + 1} (id {cell.get('id', '?')})")
            n_regions += n
            n_cells += n > 0
            new = nbformat.v4.new_code_cell(source, **common)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source, **common)
            if cell.get("attachments"):
                new.attachments = cell.attachments
        else:
            new = nbformat.v4.new_raw_cell(cell.source, **common)
        cells.append(new)
    kernelspec = nb.metadata.get("kernelspec") or DEFAULT_KERNELSPEC
    release_metadata = {
        "kernelspec": {
            k: kernelspec[k] for k in ("display_name", "language", "name") if k in kernelspec
        },
        "language_info": {"name": "python"},
    }
    release = nbformat.v4.new_notebook(cells=cells, metadata=release_metadata)
    release.nbformat, release.nbformat_minor = NBFORMAT, NBFORMAT_MINOR
    return release, n_regions, n_cells


def first_failure_check(learner: NotebookNode) -> NotebookNode:
    """The learner edition cut for nbval: its cells up to its first graded test, which carries
    nbval's ``raises-exception`` tag (a learner who runs it unchanged meets that failure first).

    The committed learner edition does not carry the tag: Jupyter honours it too, and "Run All"
    would then go on past the failing test instead of stopping there.
    """
    check = copy.deepcopy(learner)
    for index, cell in enumerate(check.cells):
        if "graded-test" in cell.get("metadata", {}).get("tags", []):
            cell.metadata["tags"] = [*cell.metadata["tags"], "raises-exception"]
            check.cells = check.cells[: index + 1]
            return check
    raise ReleaseError("The notebook has no cell tagged 'graded-test'.")


def learner_text(notebook: Path | str = NOTEBOOK) -> tuple[str, int, int]:
    """The learner edition of `notebook` as the exact text the release writes.

    Returns (text, regions stubbed, cells changed). Raises ReleaseError for a missing or
    unreadable notebook, or one with unbalanced markers.
    """
    notebook = Path(notebook)
    if not notebook.is_file():
        raise ReleaseError(
            f"No notebook at {notebook}. Pass the solution notebook with --notebook."
        )
    try:
        source = nbformat.read(notebook, as_version=NBFORMAT)
    except Exception as err:  # nbformat raises several types for a broken file
        raise ReleaseError(f"{notebook} is not a readable Jupyter notebook ({err}).") from None
    release, n_regions, n_cells = release_notebook(source)
    nbformat.validate(release)
    text = nbformat.writes(release, version=NBFORMAT)
    return (text if text.endswith("\n") else text + "\n"), n_regions, n_cells


def _write_text(path, text):
    # temp file then rename: a full disk or a kill never leaves a half-written notebook
    write_text_atomic(path, text)


INCOMPLETE = "RELEASE_INCOMPLETE.txt"  # in a release folder while it is being written
_writing: set[Path] = set()  # release folders this process is writing now


@contextlib.contextmanager
def _marked_incomplete(out: Path) -> Iterator[None]:
    """Keep INCOMPLETE in ``out`` while it is written: a release that is killed midway, or
    stops on a full disk, never looks finished. Nested uses of one folder share one mark."""
    key = out.resolve()
    if key in _writing:
        yield
        return
    _write_text(
        out / INCOMPLETE,
        "This release folder is incomplete: writing it was interrupted. Run the same\n"
        "python -m helpers release command again; it replaces what is here.\n",
    )
    _writing.add(key)
    try:
        yield
    finally:
        _writing.discard(key)
    (out / INCOMPLETE).unlink()


def _refuse_kit(notebook: Path, out: Path) -> None:
    target = out.resolve()
    if target == ROOT or target in ROOT.parents or (target / notebook.name) == notebook.resolve():
        raise ReleaseError(
            f"--out {out} is the kit folder (or holds it, or holds the solution): the "
            f"release would overwrite the kit. Choose a new folder, e.g. --out release."
        )


def _check_out(out: Path) -> None:
    try:
        check_writable_folder(out, "--out")
    except NotWritableError as err:
        raise ReleaseError(str(err)) from None


def runtime_requirements(pyproject: Path | str = ROOT / "pyproject.toml") -> str:
    """requirements.txt for a learner: pyproject.toml's runtime dependencies, one a line.

    The kit's own requirements.txt installs the kit with its test tools (``-e .[dev]``); a
    release folder has no pyproject.toml and needs only what the notebook imports.
    """
    text = Path(pyproject).read_text(encoding="utf-8")
    if sys.version_info >= (3, 11):
        import tomllib

        dependencies = tomllib.loads(text)["project"]["dependencies"]
    else:  # Python 3.10 has no tomllib: read the one list we need
        block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
        if block is None:
            raise ReleaseError(f"{pyproject} has no `dependencies = [...]` list.") from None
        dependencies = re.findall(r'^\s*"([^"]+)"', block.group(1), re.M)
    return "# What the notebook needs: pip install -r requirements.txt\n" + "".join(
        f"{d}\n" for d in dependencies
    )


def make_release(
    notebook: Path | str = NOTEBOOK, out: Path | str = "release"
) -> tuple[Path, int, int]:
    """Write the learner's folder: the learner edition of `notebook` in `out`, with its README and
    the files it needs beside it.

    Returns (path of the release notebook, regions stubbed, cells changed). Raises ReleaseError
    for a notebook with unbalanced markers, or an `out` that would overwrite the kit itself, is a
    file or cannot be written. While it writes, `out` holds RELEASE_INCOMPLETE.txt, so a release
    cut short (killed, a full disk: ``NoSpaceError``) never looks finished; a rerun completes it.
    """
    notebook, out = Path(notebook), Path(out)
    _refuse_kit(notebook, out)
    text, n_regions, n_cells = learner_text(notebook)
    _check_out(out)
    path = out / notebook.name
    with _marked_incomplete(out):
        for name in TOP_LEVEL_FILES:
            write_bytes_atomic(out / name, (ROOT / name).read_bytes())
        write_bytes_atomic(out / "README.md", LEARNER_README.read_bytes())
        _write_text(out / "requirements.txt", runtime_requirements())
        copy_helpers(out / "helpers", "learner")  # the learner runtime and graded/, no instructor/
        _write_text(path, text)  # the notebook last
    return path, n_regions, n_cells


def update_kit(
    notebook: Path | str = NOTEBOOK, learner: Path | str | None = None
) -> tuple[Path, int, int, bool]:
    """Rewrite the kit's top-level learner edition of a solution notebook (by default the one
    of the same name at the kit's top level).

    Returns (path, regions stubbed, cells changed, whether the file changed).
    """
    text, n_regions, n_cells = learner_text(notebook)
    learner = Path(learner) if learner is not None else ROOT / Path(notebook).name
    if learner.resolve() == Path(notebook).resolve():
        raise ReleaseError(
            f"{learner} is the solution notebook itself; the learner edition must be another file."
        )
    changed = not learner.is_file() or learner.read_text(encoding="utf-8") != text
    if changed:
        _write_text(learner, text)
    return learner, n_regions, n_cells, changed


def main(argv: list[str] | None = None) -> int:
    """Command line: build the release and print a one-line summary; exit 1 on a problem."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers release",
        description="Build the learner version of the solution notebook: every region between "
        f"'{BEGIN}' and '{END}' becomes a stub, outputs are cleared, and the learner "
        "README and the files the notebook imports are copied beside it.",
        epilog="Exit status: 0 when the release was written, 1 when the notebook cannot be "
        "released (unbalanced markers, not valid Python, unreadable; the message names the cell).",
    )
    parser.add_argument(
        "--notebook",
        default=None,
        help="the solution notebook to release (default: both of the kit's, "
        + " and ".join(str(n.relative_to(ROOT)) for n in KIT_NOTEBOOKS)
        + ")",
    )
    parser.add_argument(
        "--out",
        default="release",
        help="folder to write the learner's folder into; created if missing, the "
        "notebook and kit files in it are replaced (default: %(default)s)",
    )
    parser.add_argument(
        "--update-kit",
        action="store_true",
        help="instead, rewrite the kit's own learner editions at the kit's top level (what a "
        "learner who clones the kit opens): "
        + " and ".join(n.name for n in KIT_NOTEBOOKS)
        + ", or the one of --notebook; run it after every change to the solution",
    )
    args = parser.parse_args(argv)
    notebooks = [args.notebook] if args.notebook else KIT_NOTEBOOKS
    try:
        return _release(args, notebooks)
    except (ReleaseError, NoSpaceError) as err:
        print(f"release: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        if not is_no_space(err):
            raise
        # a copy (shutil) filled the disk: the same one line as every other write
        where = err.filename2 or err.filename or args.out
        print(f"release: error: {no_space_message(where, _release_bytes())}", file=sys.stderr)
        return 1


def _release_bytes() -> int:
    """About how much a release folder takes: the helpers and the notebooks, at most."""
    files = [*(ROOT / "helpers").rglob("*.py"), *KIT_NOTEBOOKS]
    return sum(p.stat().st_size for p in files if p.is_file())


def _release(args: argparse.Namespace, notebooks: Sequence[Path | str]) -> int:
    if not args.update_kit:
        for notebook in notebooks:
            _refuse_kit(Path(notebook), Path(args.out))
        _check_out(Path(args.out))
    whole = contextlib.nullcontext() if args.update_kit else _marked_incomplete(Path(args.out))
    with whole:  # every notebook's release, or the folder stays marked incomplete
        for notebook in notebooks:
            _release_one(args, notebook)
    if not args.update_kit:
        print(
            "Beside it: README.md (the learner README), requirements.txt, "
            f"{', '.join(TOP_LEVEL_FILES)}, "
            "helpers/ (without the instructor's tools, helpers/instructor/, nor the grader's "
            "sandbox side, helpers/sandboxed/)"
        )
    return 0


def _release_one(args: argparse.Namespace, notebook: Path | str) -> None:
    if args.update_kit:
        path, n_regions, n_cells, changed = update_kit(notebook)
    else:
        path, n_regions, n_cells = make_release(notebook, args.out)
    print(f"Stubbed {n_regions} solution regions in {n_cells} cells -> {path}")
    if args.update_kit:
        print(
            "The learner edition was up to date." if not changed else "Updated the learner edition."
        )
