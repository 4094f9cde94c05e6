"""The kit's one command line: ``python -m helpers <command> [options]``.

Each command is a module with ``main(argv) -> int``; ``python -m helpers <command> --help``
explains its options. To add a command, add one line to COMMANDS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

__all__ = ["COMMANDS", "PROG", "main"]

# command: (module with main(argv) -> int, one-line description shown by --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("helpers.run", "run the whole notebook headless and collect its results"),
    "release": (
        "helpers.instructor.release",
        "build the learner notebook (stubs) from the solution",
    ),
    "grade": ("helpers.instructor.grade", "grade a learner's notebook with the graded tests"),
    "data": ("helpers.data", "prepare real CelebA (prepare-celeba) or check a data folder (check)"),
    "faces": ("helpers.faces", "draw the built-in face set (or another one)"),
    "classroom": (
        "helpers.instructor.classroom",
        "grade a folder of submissions into one gradebook",
    ),
    "gradescope": (
        "helpers.instructor.gradescope",
        "build a Gradescope autograder bundle (autograder.zip) of the grader",
    ),
    "prairielearn": (
        "helpers.instructor.prairielearn",
        "grade a PrairieLearn external-grading job (/grade/student)",
    ),
    "distributed": (
        "helpers.scale.distributed",
        "train with DDP on several GPUs or machines (torchrun)",
    ),
}

PROG = "python -m helpers"  # each command's parser uses prog="python -m helpers COMMAND"


def _shipped(module: str) -> bool:
    """Whether this copy of the kit has `module`'s file: the learner release has no
    helpers/instructor/, so its --help must not offer grade, release or classroom."""
    here = Path(__file__).resolve().parent  # helpers/ of this copy, wherever it was imported from
    return here.joinpath(*module.split(".")[1:]).with_suffix(".py").is_file()


def _parser() -> argparse.ArgumentParser:
    width = max(map(len, COMMANDS))
    listing = "\n".join(
        f"  {name:<{width}}  {about}"
        for name, (module, about) in COMMANDS.items()
        if _shipped(module)
    )
    if not all(_shipped(module) for module, _ in COMMANDS.values()):
        listing += "\n(the instructor's commands are not part of the learner's copy of the kit)"
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} [-h] COMMAND [OPTIONS]",
        description="The DCGAN face-generation kit's tools.",
        epilog=f"commands:\n{listing}\n\n`{PROG} COMMAND --help` explains a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command", choices=COMMANDS, metavar="COMMAND", help="one of the commands below"
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    if not argv:  # argparse would say "arguments are required"; the list of commands helps more
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    name = COMMANDS[args.command][0]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        # The module itself, or the subpackage holding it, is missing: the learner release
        # ships helpers/ without helpers/instructor/.
        if not err.name or not (name == err.name or name.startswith(err.name + ".")):
            raise
        print(
            f"{PROG} {args.command}: this copy of the kit has no {name.replace('.', '/')}.py "
            "(the learner release leaves the instructor's tools, helpers/instructor/, out).",
            file=sys.stderr,
        )
        return 2
    return int(module.main(args.args) or 0)


if __name__ == "__main__":
    sys.exit(main())
