"""The notebooks as a learner meets them: a real Jupyter server, a real browser, Run All.

Notebook 7 and JupyterLab, each in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium), open the learner edition and the solution notebook
(copies, so nothing is saved into the kit) and run all cells in quick mode.

- Solution: no error output, every graded test prints ``Tests Passed``, the images render and the
  training progress bar renders as a widget (no raw ``HBox(...)`` text, no "Error displaying
  widget"), and the formulas render (MathJax).
- Learner edition: Run All stops at the first graded test, whose output is short and names the
  piece that is not written yet.
- Part 2 (both notebooks, JupyterLab only): the same, beside part 1 as in the kit.

Screenshots go to ``artifacts/browser/`` (git-ignored; CI keeps them). Without a browser these
tests are skipped, except under ``CI=true``, where that is a failure. docs/testing.md, "The browser
test", says how to run them.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from helpers.instructor.release import LEARNER_NOTEBOOK, PART2_LEARNER_NOTEBOOK
from helpers.notebook import NOTEBOOK, PART2_NOTEBOOK, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
RUN_TIMEOUT = 400  # seconds for Run All in quick mode on a loaded 2-core machine
# Flags for a closed network and a throw-away profile: nothing is fetched, nothing is kept.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FRONT_ENDS = {
    "notebook7": "notebooks/{path}",
    "lab": "lab/tree/{path}",
}


def _find_browser():
    """(chromium, chromedriver) paths, or a reason why the test cannot run."""
    chromium = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, "selenium is not installed (pip install -r requirements.txt)"
    if not chromium or not driver:
        return None, (
            "no chromium and chromedriver on PATH (Debian/Ubuntu: apt-get install "
            "chromium chromium-driver)"
        )
    return (chromium, driver), None


@pytest.fixture(scope="module")
def browser_paths():
    paths, why = _find_browser()
    if paths is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"The browser test cannot run in CI: {why}. .ci/run installs them.")
        pytest.skip(f"browser test skipped: {why}. See docs/testing.md, 'The browser test'.")
    return paths


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(browser_paths, tmp_path_factory):
    """A Jupyter server (JupyterLab and Notebook 7) on a folder holding copies of both notebooks."""
    base = tmp_path_factory.mktemp("jupyter")
    root = base / "kit"
    # One copy per front end: each opens its own files, with its own kernel sessions.
    for front_end in FRONT_ENDS:
        (root / front_end / "solution").mkdir(parents=True)
        shutil.copyfile(LEARNER_NOTEBOOK, root / front_end / LEARNER_NOTEBOOK.name)
        shutil.copyfile(NOTEBOOK, root / front_end / "solution" / NOTEBOOK.name)
        # part 2 beside part 1, as in the kit: it loads part 1's code from the notebook beside it
        shutil.copyfile(PART2_LEARNER_NOTEBOOK, root / front_end / PART2_LEARNER_NOTEBOOK.name)
        shutil.copyfile(PART2_NOTEBOOK, root / front_end / "solution" / PART2_NOTEBOOK.name)
    config = base / "config"
    config.mkdir()
    # window.jupyterapp lets the test read the notebook model; nothing else is changed.
    (config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "LabApp": {"expose_app_in_browser": True},
                "JupyterNotebookApp": {"expose_app_in_browser": True},
            }
        )
    )
    settings = base / "settings"
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    # Every cell in the page, so the test sees all outputs (the default skips cells off screen).
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    ).write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # Run All sends every cell at once, and after an error the kernel drops the requests still
    # queued. ipykernel waits 0 s for requests in transit; on a loaded CI machine one can arrive
    # late and run after the failure (a Jupyter race, not the kit's), so give them 5 s.
    profile = base / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.json").write_text(
        json.dumps({"Kernel": {"stop_on_error_timeout": 5.0}})
    )
    port, token = _free_port(), os.urandom(16).hex()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
        "DCGAN_QUICK": "1",
        "DCGAN_OUT": str(base / "outputs"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("MPLBACKEND", None)  # the kernel must use Jupyter's inline backend, as for a learner
    log = open(base / "server.log", "w")  # noqa: SIM115 (open while the server runs)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.workspaces_dir={base / 'workspaces'}",
            "--LabApp.extension_manager=readonly",
        ]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log_text = (base / "server.log").read_text()[-3000:]
                pytest.fail(f"The Jupyter server did not start:\n{log_text}")
            time.sleep(0.5)
    yield {"url": url, "token": token, "root": root, "outputs": base / "outputs"}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def driver(browser_paths, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    browser.set_script_timeout(60)
    yield browser
    browser.quit()


# --- driving the page -----------------------------------------------------------------------------


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"Timed out after {timeout} s waiting for {what}.")


NOTEBOOK_JS = """
const app = window.jupyterapp;
if (!app || !app.shell) { return null; }
const panel = app.shell.currentWidget;
if (!panel || !panel.content || !panel.content.model || !panel.sessionContext) { return null; }
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
return {
  kernel: kernel ? kernel.status : null,
  cells: panel.content.model.toJSON().cells,
};
"""


def notebook_node(browser):
    """The open notebook's element (JupyterLab keeps earlier tabs in the page, hidden)."""
    return browser.execute_script(
        "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        "return w && w.content ? w.content.node : null;"
    )


def _state(browser):
    return browser.execute_script(NOTEBOOK_JS)


def open_notebook(browser, server, front_end, path):
    """Open `path` (relative to the server root) in a front end; wait for an idle kernel."""
    from selenium.webdriver.common.by import By

    where = FRONT_ENDS[front_end].format(path=f"{front_end}/{path}")
    browser.get(f"{server['url']}/{where}?token={server['token']}")
    _wait(
        lambda: (_state(browser) or {}).get("kernel") == "idle",
        120,
        f"{path} to open with an idle kernel",
    )
    _wait(
        lambda: notebook_node(browser).find_elements(By.CSS_SELECTOR, ".jp-Cell"), 30, "the cells"
    )


def run_all(browser):
    """Run > Run All Cells, as a learner does, then wait until the kernel has finished."""
    from selenium.webdriver.common.by import By

    menus = browser.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
    run_menu = next(m for m in menus if m.text.strip() == "Run")
    run_menu.click()
    item = _wait(
        lambda: browser.find_elements(
            By.CSS_SELECTOR, '.lm-Menu-item[data-command="runmenu:run-all"]'
        ),
        10,
        "Run All Cells",
    )
    item[0].click()

    def finished():
        state = _state(browser)
        page = notebook_node(browser)
        prompts = [p.text for p in page.find_elements(By.CSS_SELECTOR, ".jp-InputPrompt")]
        started = any(c.get("execution_count") for c in state["cells"] if c["cell_type"] == "code")
        busy = state["kernel"] != "idle" or any("*" in p for p in prompts)
        return state if started and not busy else None

    # Finished when nothing has changed for a few seconds: the last outputs and widgets render,
    # and a cell that would still run after the others shows up.
    state, deadline = _wait(finished, RUN_TIMEOUT, "Run All to finish"), time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(3)
        again = _wait(finished, RUN_TIMEOUT, "Run All to finish")
        if again == state:
            break
        state = again
    return state


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def output_text(cell):
    """A cell's outputs as the text a learner reads (ANSI colours stripped)."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append("".join(out["text"]))
        elif out["output_type"] == "error":
            parts.append("\n".join(out["traceback"]))
        else:
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return ANSI.sub("", "\n".join(parts))


def dom_outputs(browser):
    from selenium.webdriver.common.by import By

    return notebook_node(browser).find_elements(By.CSS_SELECTOR, ".jp-Cell .jp-OutputArea")


def screenshot(browser, name, element=None):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if element is not None:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        time.sleep(0.5)
        element.screenshot(str(path))
    else:
        browser.save_screenshot(str(path))
    return path


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
def test_solution_runs_all_cells_in_the_browser(driver, server, front_end):
    from selenium.webdriver.common.by import By

    # Each front end trains afresh: resuming the other's finished run draws no training bars.
    shutil.rmtree(server["outputs"], ignore_errors=True)
    open_notebook(driver, server, front_end, f"solution/{NOTEBOOK.name}")
    state = run_all(driver)
    code = [c for c in state["cells"] if c["cell_type"] == "code"]
    screenshot(driver, f"{front_end}-solution")

    errors = [
        (i, o["ename"], o["evalue"])
        for i, c in enumerate(code)
        for o in c["outputs"]
        if o["output_type"] == "error"
    ]
    assert not errors, errors
    not_run = [
        (i, "".join(c["source"])[:60]) for i, c in enumerate(code) if not c.get("execution_count")
    ]
    assert not not_run, f"code cells that did not run: {not_run}"
    graded = [c for c in code if "graded-test" in tags(c)]
    assert len(graded) >= 10
    for cell in graded:
        calls = len(re.findall(r"tests\.test_\w+\(", "".join(cell["source"])))
        assert output_text(cell).count("Tests Passed") == calls, (cell["source"], output_text(cell))

    # What the learner sees: images drawn, progress bars as widgets, formulas typeset.
    page = notebook_node(driver)
    images = page.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
    n_png = sum("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    assert n_png >= 5 and len(images) == n_png
    assert all(driver.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
    bars = page.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-hprogress")
    assert bars, "no progress bar widget was rendered"
    shown = "\n".join(area.get_attribute("textContent") for area in dom_outputs(driver))
    assert "HBox(" not in shown and "Error displaying widget" not in shown
    assert page.find_elements(By.CSS_SELECTOR, ".jp-MarkdownOutput mjx-container"), (
        "no formula typeset"
    )

    # the cell that calls train (losses, samples = train(...)), not the one that defines it
    train = next(
        c
        for c in code
        if re.search(r"=\s*train\(", "".join(c["source"]))
        and "def train" not in "".join(c["source"])
    )
    index = code.index(train)
    area = page.find_elements(By.CSS_SELECTOR, ".jp-CodeCell")[index]
    screenshot(driver, f"{front_end}-solution-training", area)


@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
def test_learner_edition_stops_at_its_first_stub_with_a_short_message(driver, server, front_end):
    from selenium.webdriver.common.by import By

    open_notebook(driver, server, front_end, LEARNER_NOTEBOOK.name)
    state = run_all(driver)
    code = [c for c in state["cells"] if c["cell_type"] == "code"]
    failed = [
        i for i, c in enumerate(code) if any(o["output_type"] == "error" for o in c["outputs"])
    ]
    first_graded = next(i for i, c in enumerate(code) if "graded-test" in tags(c))
    ran = [i for i, c in enumerate(code) if c.get("execution_count")]
    assert failed == [first_graded], (
        f"errors in code cells {failed}, expected only {first_graded}; cells that ran: {ran}"
    )
    assert not any(c.get("execution_count") for c in code[first_graded + 1 :]), "Run All went on"

    cell = notebook_node(driver).find_elements(By.CSS_SELECTOR, ".jp-CodeCell")[first_graded]
    screenshot(driver, f"{front_end}-learner-first-failure", cell)
    shown = cell.find_element(By.CSS_SELECTOR, ".jp-OutputArea").get_attribute("innerText").strip()
    assert "get_dataloader" in shown and "not implemented yet" in shown, shown
    lines = [line for line in shown.splitlines() if line.strip()]
    assert len(lines) <= 10, f"the first failure takes {len(lines)} lines:\n{shown}"
    # ... and the page said beforehand that Run All stops there, and what to do then
    page = " ".join(notebook_node(driver).get_attribute("textContent").split())
    assert "stops at the first piece you have not written yet" in page
    assert "Run Selected Cell and All Below" in page


# --- part 2 (solution/part2_dcgan64_wgan.ipynb), in JupyterLab only, to keep CI's time down ----


def test_part2_solution_runs_all_cells_in_the_browser(driver, server):
    from selenium.webdriver.common.by import By

    open_notebook(driver, server, "lab", f"solution/{PART2_NOTEBOOK.name}")
    state = run_all(driver)
    code = [c for c in state["cells"] if c["cell_type"] == "code"]
    screenshot(driver, "lab-part2-solution")
    errors = [
        (i, o["ename"], o["evalue"])
        for i, c in enumerate(code)
        for o in c["outputs"]
        if o["output_type"] == "error"
    ]
    assert not errors, errors
    assert all(c.get("execution_count") for c in code), "some code cells did not run"
    graded = [c for c in code if "graded-test" in tags(c)]
    assert len(graded) >= 9
    for cell in graded:
        calls = len(re.findall(r"tests\.test_\w+\(", "".join(cell["source"])))
        assert output_text(cell).count("Tests Passed") == calls, (cell["source"], output_text(cell))
    page = notebook_node(driver)
    images = page.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
    n_png = sum("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    assert n_png >= 5 and len(images) == n_png
    assert page.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-hprogress")
    assert page.find_elements(By.CSS_SELECTOR, ".jp-MarkdownOutput mjx-container")


def test_part2_learner_edition_stops_at_its_first_stub(driver, server):
    from selenium.webdriver.common.by import By

    open_notebook(driver, server, "lab", PART2_LEARNER_NOTEBOOK.name)
    state = run_all(driver)
    code = [c for c in state["cells"] if c["cell_type"] == "code"]
    failed = [
        i for i, c in enumerate(code) if any(o["output_type"] == "error" for o in c["outputs"])
    ]
    first_graded = next(i for i, c in enumerate(code) if "graded-test" in tags(c))
    assert failed == [first_graded], f"errors in code cells {failed}, expected {first_graded}"
    assert not any(c.get("execution_count") for c in code[first_graded + 1 :]), "Run All went on"
    cell = notebook_node(driver).find_elements(By.CSS_SELECTOR, ".jp-CodeCell")[first_graded]
    screenshot(driver, "lab-part2-learner-first-failure", cell)
    shown = cell.find_element(By.CSS_SELECTOR, ".jp-OutputArea").get_attribute("innerText").strip()
    assert "Discriminator64" in shown and "not implemented yet" in shown, shown
    assert len([line for line in shown.splitlines() if line.strip()]) <= 10, shown


# --- the GAN doctor's demo (helpers.doctor.demo), in the learner edition ------------------------

RUN_CELL_JS = """
const panel = window.jupyterapp.shell.currentWidget;
panel.content.activeCellIndex = arguments[0];
window.jupyterapp.commands.execute('notebook:run-cell');
return true;
"""


def test_learner_edition_shows_the_gan_doctors_message_for_its_demo(driver, server):
    """The learner runs the demo cell alone (before writing any code): the doctor's message for
    a G whose learning rate is 0 appears under it."""
    from selenium.webdriver.common.by import By

    open_notebook(driver, server, "lab", LEARNER_NOTEBOOK.name)
    cells = _state(driver)["cells"]
    index = next(
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and "helpers.doctor.demo(" in "".join(c["source"])
    )
    count = cells[index].get("execution_count")
    driver.execute_script(RUN_CELL_JS, index)

    def ran():
        state = _state(driver)
        cell = state["cells"][index]
        done = cell.get("execution_count") not in (None, count) and state["kernel"] == "idle"
        return cell if done else None

    cell = _wait(ran, 120, "the doctor's demo cell to run")
    text = output_text(cell)
    assert not any(o["output_type"] == "error" for o in cell["outputs"]), text
    assert "learning rate set to 0" in text, text
    assert "G is not learning" in text and "learning rate may be 0" in text, text
    code_index = [i for i, c in enumerate(cells) if c["cell_type"] == "code"].index(index)
    area = notebook_node(driver).find_elements(By.CSS_SELECTOR, ".jp-CodeCell")[code_index]
    shown = area.find_element(By.CSS_SELECTOR, ".jp-OutputArea").get_attribute("innerText")
    assert "G is not learning" in shown, shown
    screenshot(driver, "lab-learner-gan-doctor", area)
