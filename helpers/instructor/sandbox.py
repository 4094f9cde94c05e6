"""One bubblewrap sandbox per submission, for helpers.instructor.grade (instructor tool).

The learner's code runs inside ``bwrap`` (Debian's ``bubblewrap``), under a uid that is not
root, with:

- no network (``--unshare-net``) and a new PID namespace whose processes all die with it
  (``--unshare-pid --die-with-parent``: nothing the learner starts outlives the submission);
- a read-only view of the OS (``/usr`` and the loader's cache), the Python environment and a
  grading bundle: the kit's ``problem_unittests.py``, ``part2_unittests.py``,
  ``workspace_utils.py`` and ``helpers/`` without the instructor tools (the rule in
  helpers.instructor.shipping). Not the solution notebook, the mutants, ``.git`` or the tests;
- the learner side's first process (the grader's scheduler) as PID 1 (``--as-pid-1``): no
  bwrap helper process inside holds the result pipe, and the scheduler makes itself
  non-dumpable, so no learner process can open the pipe through ``/proc`` and write results;
- three size-capped tmpfs as its only writable places (``/scratch``, ``/tmp``, ``/dev/shm``), and
  a cleared environment;
- limits (``prlimit``) on address space, processes, file size, open files and CPU time, and,
  where a memory cgroup can be made (root, or a delegated cgroup v2), one memory cap on the whole
  sandbox that also counts its tmpfs pages. Where none can be made, the report's ``sandbox``
  line says that memory is capped per process only.

Running as root (CI): bwrap is started under an unprivileged uid when the Python environment can
be reached by one; when it lives under a folder only root may enter (``/root/.pyenv``), bwrap
runs as root with ``--uid`` and every capability dropped, which keeps the same walls; as the
kernel does not apply the process limit to root, a pids cgroup caps the processes instead where
cgroups can be written. The report says which one ran.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.instructor.shipping import TOP_LEVEL_FILES, copy_helpers
from helpers.notebook import ROOT

__all__ = [
    "BWRAP",
    "INSTALL_HINT",
    "KIT",
    "PRLIMIT",
    "SCRATCH",
    "Limits",
    "Outcome",
    "SandboxUnavailable",
    "available",
    "bundle",
    "command",
    "mode",
    "run_capped",
    "run_in_sandbox",
]

BWRAP = "/usr/bin/bwrap"
PRLIMIT = "/usr/bin/prlimit"
SETPRIV = "/usr/bin/setpriv"  # util-linux, like prlimit: drops the uid after joining a cgroup
INSTALL_HINT = (
    "Install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf "
    "install "
    "bubblewrap`), or run the grader inside a container (for example `docker run --rm -v $PWD:/kit "
    "python:3.11 ...`) and pass --no-sandbox there. --no-sandbox runs learner code with your "
    "rights: use it only for notebooks you trust (your own solution)."
)
# Top-level OS folders the sandbox shows as on the host, beside /usr (_os_binds).
_OS_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
SANDBOX_UID = 1000  # the uid inside; outside, root drops to OUTSIDE_UID + slot
OUTSIDE_UID = 3_500_000  # far above any real account, so it owns no file on the host
KIT = "/kit"
SCRATCH = "/scratch"


@dataclass
class Limits:
    """Resource limits of one sandbox (each process inside gets the per-process ones)."""

    memory_mb: int = 6144  # address space per process; torch alone maps about 1.5 GB
    processes: int = 512  # processes and threads of the sandbox's uid
    file_mb: int = 64  # largest file a process may write (the test logs too)
    scratch_mb: int = 512  # size of the writable tmpfs /scratch
    tmp_mb: int = 256  # size of /tmp, and of /dev/shm (each)
    sandbox_mb: int = 4096  # all the sandbox's memory together, tmpfs pages included (cgroup)
    cpu_s: int = 900  # CPU seconds per process
    open_files: int = 1024


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create a sandbox on this machine."""


def bundle(dest: Path | str) -> Path:
    """Copy the grading bundle into folder `dest` (world-readable); return `dest` as a Path."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # What the learner side may see of the kit: what a learner already has, and the grader's
    # code that runs inside (helpers/sandboxed/); never helpers/instructor/.
    for name in TOP_LEVEL_FILES:
        shutil.copyfile(ROOT / name, dest / name)
    copy_helpers(dest / "helpers", "sandbox")
    (dest / "etc").mkdir(exist_ok=True)
    (dest / "etc" / "passwd").write_text(
        f"learner:x:{SANDBOX_UID}:{SANDBOX_UID}:learner:{SCRATCH}:/bin/false\n"
    )
    (dest / "etc" / "group").write_text(f"learner:x:{SANDBOX_UID}:\n")
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def _python_paths():
    """Folders the Python environment needs (prefixes, site folders, the interpreter's real
    folder), outermost only, without the OS folders that are bound anyway."""
    import site

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths |= {p for p in site.getsitepackages() if os.path.isdir(p)}
    paths |= {os.path.realpath(p) for p in list(paths)}
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    keep: list[str] = []
    for path in sorted(paths):
        if _within(path, "/usr"):
            continue
        if not any(_within(path, k) for k in keep):
            keep.append(path)
    return keep


def _kit_folders() -> list[Path]:
    """The host's folders the learner side must never see: the kit's own (solution, tests)."""
    return [ROOT.resolve()]


def _within(path: str | Path, folder: str | Path) -> bool:
    """Whether `path` is `folder` or lies inside it (paths as given, not resolved)."""
    path, folder = str(path).rstrip("/") or "/", str(folder).rstrip("/") or "/"
    return path == folder or path.startswith(folder if folder == "/" else folder + "/")


def _shown_by_binds(folder: Path, binds: Sequence[str]) -> bool:
    """Whether the sandbox would show `folder`: it lies inside /usr, /bin, /lib... or inside a
    folder of the Python environment bound as it is (a /tmp folder is hidden by the empty /tmp)."""
    shown = ["/usr", *(f"/{name}" for name in _OS_DIRS), *binds]
    return any(_within(folder, s) for s in shown)


def _world_reachable(path):
    """Whether a uid that owns nothing can reach `path`: every folder above it open to others."""
    parts = Path(path).resolve().parents
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in parts)


def _os_binds():
    """bwrap arguments for the OS: /usr read-only, /bin, /lib... as on the host, ld.so's cache."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _OS_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives"):
        if os.path.exists(name):
            args += ["--ro-bind", name, name]
    return args


@functools.cache
def available() -> str | None:
    """None when a sandbox can start here, else the reason (and what to do)."""
    if not os.path.exists(BWRAP):
        return f"bubblewrap ({BWRAP}) is not installed. {INSTALL_HINT}"
    if not os.path.exists(PRLIMIT):
        return f"prlimit ({PRLIMIT}, from util-linux) is not installed. {INSTALL_HINT}"
    helptext = subprocess.run([BWRAP, "--help"], capture_output=True, text=True).stdout
    if "--size" not in helptext:  # bubblewrap 0.5.0 added it: without it no tmpfs has a cap
        return (
            f"this bubblewrap ({BWRAP}) cannot cap the size of a tmpfs (no --size option; "
            f"0.5.0 or later has it). {INSTALL_HINT}"
        )
    probe = subprocess.run(
        [BWRAP, "--unshare-all", "--uid", str(SANDBOX_UID), *_os_binds(), "--", "/usr/bin/true"],
        capture_output=True,
        text=True,
        **_drop_kwargs(0, _python_paths()),
    )
    if probe.returncode != 0:
        return (
            f"bubblewrap cannot create a sandbox here ({probe.stderr.strip()[:200]}); "
            f"user namespaces may be disabled. {INSTALL_HINT}"
        )
    return None


def _drop_kwargs(slot, binds):
    """subprocess arguments that start bwrap under an unprivileged uid, when running as root and
    that uid can reach every folder to bind; {} otherwise."""
    if os.geteuid() != 0 or not all(_world_reachable(p) for p in binds):
        return {}
    uid = OUTSIDE_UID + slot
    return {"user": uid, "group": uid, "extra_groups": []}


def mode(slot: int = 0, limits: Limits | None = None) -> str:
    """How the sandbox runs here, in words, for the report: who starts bwrap, and its caps on
    writable space and memory (saying so where the memory of the whole sandbox is not capped)."""
    return f"{_who(slot)}; {_caps(limits or Limits())}"


def _caps(limits):
    writable = (
        f"writable space capped at {limits.scratch_mb} MB (/scratch), {limits.tmp_mb} MB (/tmp) "
        f"and {limits.tmp_mb} MB (/dev/shm)"
    )
    group = _memory_cgroup(limits.sandbox_mb)
    if group:
        _remove_cgroup(group)
        return f"{writable}; memory of the whole sandbox capped at {limits.sandbox_mb} MB"
    return (
        f"{writable}; memory NOT capped for the sandbox as a whole (no memory cgroup can be made "
        f"here: not root, and no delegated cgroup v2), only per process "
        f"({limits.memory_mb} MB of address space each)"
    )


def _who(slot):
    if os.geteuid() != 0:
        return "bubblewrap, as this user"
    if _drop_kwargs(slot, _python_paths()):
        return f"bubblewrap, started as uid {OUTSIDE_UID + slot} (not root)"
    cgroup = _pids_cgroup(1)
    if cgroup:
        _remove_cgroup(cgroup)
    return (
        "bubblewrap, started as root with every capability dropped (the Python environment is "
        "under a folder only root may enter); processes capped by "
        + (
            "a pids cgroup"
            if cgroup
            else "nothing: no writable cgroup, and root ignores the rlimit"
        )
    )


def command(
    bundle_dir: Path | str, argv: Sequence[str], limits: Limits, env: Mapping[str, str]
) -> list[str]:
    """The bwrap command line that runs `argv` (inside paths) in a sandbox over `bundle_dir`."""
    cmd = [
        BWRAP,
        "--unshare-all",
        "--unshare-net",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        # Empty /tmp and /dev/shm first: a later mount hides what lies under it, and the Python
        # environment or the kit may themselves live under /tmp (a CI clone). Each is capped:
        # at the kernel's default a tmpfs may grow to half the machine's memory.
        "--size",
        str(limits.tmp_mb << 20),
        "--tmpfs",
        "/tmp",
        "--size",
        str(limits.tmp_mb << 20),
        "--tmpfs",
        "/dev/shm",
        *_os_binds(),
    ]
    binds = _python_paths()
    hidden = [k for k in _kit_folders() if _shown_by_binds(k, binds)]
    inside = [p for p in binds if any(_within(p, k) for k in hidden)]
    for path in binds:
        if path not in inside:
            cmd += ["--ro-bind", path, path]
    # The kit itself stays out of sight wherever it is installed: under /usr or a folder of the
    # Python environment (a system package in /usr/local/share), the binds above would show the
    # learner's code its solution notebook and tests. An empty tmpfs hides it; what the
    # environment needs from inside it (a .venv in the kit's folder) is bound again after.
    for kit in hidden:
        cmd += ["--size", str(1 << 20), "--tmpfs", str(kit)]
    for path in inside:
        cmd += ["--ro-bind", path, path]
    for device in sorted(Path("/dev").glob("nvidia*")):  # a GPU, when the machine has one
        cmd += ["--dev-bind-try", str(device), str(device)]
    cmd += [
        "--ro-bind",
        str(bundle_dir),
        KIT,
        "--ro-bind",
        str(Path(bundle_dir) / "etc" / "passwd"),
        "/etc/passwd",
        "--ro-bind",
        str(Path(bundle_dir) / "etc" / "group"),
        "/etc/group",
        "--size",
        str(limits.scratch_mb << 20),
        "--tmpfs",
        SCRATCH,
        "--remount-ro",
        "/",
        "--chdir",
        SCRATCH,
        "--clearenv",
    ]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    cmd += [
        "--",
        PRLIMIT,
        f"--as={limits.memory_mb << 20}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_mb << 20}",
        f"--cpu={limits.cpu_s}",
        f"--nofile={limits.open_files}",
        "--core=0",
        *argv,
    ]
    return cmd


@dataclass
class Outcome:
    """What came back from the learner side: stdout (at most `cap` bytes), a stderr tail, status."""

    stdout: bytes
    stderr: bytes
    returncode: int | None
    timed_out: bool
    overflow: bool  # stdout went past its cap: the run was stopped there
    seconds: float


def run_capped(
    cmd: Sequence[str],
    stdin: bytes,
    deadline_s: float,
    stdout_cap: int,
    stderr_cap: int = 16384,
    **popen: Any,
) -> Outcome:
    """Run `cmd`, feed it `stdin` (bytes), read its output with caps and a deadline.

    stdout past `stdout_cap` stops the run (the learner side never needs that much); stderr
    keeps its last `stderr_cap` bytes. The whole process group is killed at the end.
    """
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **popen,
    )
    # PIPE gives each of them a stream
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    out, err, overflow, timed_out = bytearray(), bytearray(), False, False
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    while sel.get_map():
        left = deadline_s - (time.monotonic() - start)
        if left <= 0:
            timed_out = True
            break
        for key, _ in sel.select(timeout=min(left, 1.0)):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
            elif key.data == "out":
                out += chunk
                if len(out) > stdout_cap:
                    overflow = True
            else:
                err = (err + chunk)[-stderr_cap:]
        if overflow:
            break
    sel.close()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return Outcome(
        bytes(out[:stdout_cap]),
        bytes(err),
        proc.returncode,
        timed_out,
        overflow,
        time.monotonic() - start,
    )


def run_in_sandbox(
    argv: Sequence[str],
    stdin: bytes,
    deadline_s: float,
    stdout_cap: int,
    limits: Limits | None = None,
    env: Mapping[str, str] | None = None,
    slot: int = 0,
) -> Outcome:
    """Run `argv` (a command inside the sandbox, e.g. helpers.sandboxed.scheduler.learner_side())
    in a fresh sandbox with a fresh bundle; return an Outcome. Raises SandboxUnavailable."""
    reason = available()
    if reason:
        raise SandboxUnavailable(reason)
    limits = limits or Limits()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": SCRATCH,
        "TMPDIR": f"{SCRATCH}",
        "LANG": "C.UTF-8",
        "PYTHONPATH": KIT,
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{SCRATCH}/.matplotlib",
        **(env or {}),
    }
    with tempfile.TemporaryDirectory(prefix="dcgan-bundle-") as tmp:
        os.chmod(tmp, 0o755)
        bundle_dir = bundle(Path(tmp) / "kit")
        cmd = command(bundle_dir, argv, limits, env)
        drop = _drop_kwargs(slot, _python_paths() + [str(bundle_dir)])
        groups = [_memory_cgroup(limits.sandbox_mb)]
        if not drop and os.geteuid() == 0:
            groups.append(_pids_cgroup(limits.processes))
        groups = [g for g in groups if g]
        if groups:
            cmd, drop = _joining(groups, cmd, drop)
        try:
            return run_capped(cmd, stdin, deadline_s, stdout_cap, **drop)
        finally:
            for group in groups:
                _remove_cgroup(group)


def _joining(groups, cmd, drop):
    """`cmd` started by a shell that first joins every cgroup of `groups` (so every process of
    the sandbox is counted from its first), then drops to the unprivileged uid of `drop` (with
    setpriv: a shell started under that uid could not move itself into a cgroup v2), then
    becomes bwrap. Returns the new command and the Popen arguments that go with it."""
    script = 'for g in "$@"; do [ "$g" = -- ] && break; echo $$ > "$g/cgroup.procs" || exit 125; '
    script += 'shift; done; shift; exec "$@"'
    prefix = ["/bin/sh", "-c", script, "sh", *map(str, groups), "--"]
    if drop:
        uid = drop["user"]
        prefix += [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    return prefix + list(cmd), {}


def _own_cgroup(controller):
    """This process's cgroup path for `controller` (v1), or its v2 path when `controller` is
    empty, from /proc/self/cgroup; "/" when it is not listed."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        _, names, path = line.split(":", 2)
        if (controller and controller in names.split(",")) or (not controller and not names):
            return path
    return "/"


def _memory_cgroup(limit_mb):
    """A fresh memory cgroup capped at `limit_mb` MB (tmpfs pages count: they are charged to the
    cgroup of the process that writes them), without swap, or None where none can be made.

    Made below this process's own cgroup, so a cap set above it (a container's) still holds:
    cgroup v1's memory hierarchy, or a cgroup v2 whose children may use the memory controller."""
    limit = str(limit_mb << 20)
    v1 = Path("/sys/fs/cgroup/memory")
    v2 = Path("/sys/fs/cgroup")
    if (v1 / "cgroup.procs").exists():
        parent = v1 / _own_cgroup("memory").lstrip("/")
        files = [("memory.limit_in_bytes", limit), ("memory.memsw.limit_in_bytes", limit)]
    elif (v2 / "cgroup.controllers").exists():
        parent = v2 / _own_cgroup("").lstrip("/")
        files = [("memory.max", limit), ("memory.swap.max", "0")]
        try:
            if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
                return None
        except OSError:
            return None
    else:
        return None
    if not os.access(parent, os.W_OK):
        return None
    group = parent / f"dcgan-memory-{os.getpid()}-{next(_GROUP_NUMBERS)}"
    try:
        group.mkdir()
        for name, value in files:
            if name == files[0][0] or (group / name).exists():  # swap files need swap accounting
                (group / name).write_text(f"{value}\n")
        return group
    except OSError:
        _remove_cgroup(group)
        return None


def _pids_cgroup(limit):
    """A fresh pids cgroup capped at `limit` tasks (root, when bwrap cannot drop its uid and the
    kernel's process limit does not apply to root), or None where cgroups cannot be written.

    Each call gets a name of its own: a group whose last processes are still dying (after a fork
    bomb, say) must never be handed to the next sandbox, whose bwrap would then find it full."""
    for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
            continue
        if base.name == "cgroup" and "pids" not in (base / "cgroup.subtree_control").read_text():
            continue  # cgroup v2 without the pids controller enabled for children
        group = base / f"dcgan-grade-{os.getpid()}-{next(_GROUP_NUMBERS)}"
        try:
            group.mkdir()
            (group / "pids.max").write_text(f"{limit}\n")
            return group
        except OSError:
            _remove_cgroup(group)
    return None


_GROUP_NUMBERS = itertools.count()


def _remove_cgroup(group):
    """Kill whatever is left in `group`, then remove it (the kernel refuses while it has tasks)."""
    for _ in range(100):
        try:
            if (group / "cgroup.kill").exists():  # cgroup v2: one write kills them all
                (group / "cgroup.kill").write_text("1\n")
            else:
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(pid), signal.SIGKILL)
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # killed processes take a moment to be reaped
