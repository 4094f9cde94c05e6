"""Plumbing for the DCGAN face-generation notebooks; the folder tree says who each part serves.

- ``helpers/*.py``: the learner's runtime, what the notebooks import (data, plotting, metrics,
  checkpoints, ...), and the kit's one command line (``python -m helpers <command>``).
- ``helpers/graded/``: the graded tests' machinery (ships to learners and into the sandbox).
- ``helpers/sandboxed/``: the grader's code that runs inside the sandbox.
- ``helpers/instructor/``: grading, the classroom, the release (never ships to learners).
- ``helpers/scale/``: training on several processes, GPUs or machines (DDP).

Each module names the notebook step or the command it serves.
"""

import sys
from pathlib import Path

__all__ = ["KIT_DIR"]

# The kit's folder (the one holding helpers/ and README.md): the notebooks work from here, so
# data/, processed_celeba_small/ and outputs/ are the same folders wherever a notebook is opened.
KIT_DIR = Path(__file__).resolve().parent.parent


def _module_run_as_a_script() -> str | None:
    """The module of ``python -m helpers.<module>`` when that is how Python was started, else None.

    Modules have no entry points of their own (one way in, ``python -m helpers <command>``); an
    older note's ``python -m helpers.grade NB`` would otherwise import the module, do nothing and
    exit 0: a silent success. ``sys.orig_argv`` is Python's own command line (3.10+).
    """
    argv = list(getattr(sys, "orig_argv", ()))
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-m" and i + 1 < len(argv):
            module = argv[i + 1]
        elif arg.startswith("-m") and not arg.startswith("--"):
            module = arg[2:]
        elif arg in ("-W", "-X"):  # the options that take a value of their own
            i += 2
            continue
        elif arg.startswith("-") and arg not in ("-", "-c"):
            i += 1
            continue
        else:
            return None  # a script, -c code or standard input: not -m
        if module.startswith("helpers.") and module != "helpers.__main__":
            return module
        return None
    return None


def _refuse(module: str) -> None:
    from helpers.__main__ import COMMANDS, PROG

    command = module.rsplit(".", 1)[-1]
    use = f"`{PROG} {command} ...`" if command in COMMANDS else f"`{PROG} <command>`"
    print(
        f"`python -m {module}` is not how the kit is run: use {use} "
        f"(`{PROG} --help` lists the commands).",
        file=sys.stderr,
    )
    sys.exit(2)


_module = _module_run_as_a_script()
if _module:
    _refuse(_module)
