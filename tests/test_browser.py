"""The widgets in a real browser: JupyterLab on 127.0.0.1, driven by Debian's headless Chromium through Selenium.

The test writes a small notebook (the pair browser over judo-synth, the reward explorer), starts JupyterLab on a free
port with a token, runs all cells from the Run menu, then drags the browser's slider and types into the explorer, and
asserts each picture changed on screen. Skipped when Chromium or chromedriver is missing, unless CI is set (then it
fails: .ci/run installs them)."""
import contextlib, json, os, shutil, signal, socket, subprocess, sys, time, urllib.request, uuid
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "_build" / "browser"   # screenshots of a failed run
SHOTS.mkdir(parents=True, exist_ok=True)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("CI"): raise RuntimeError("CI: the browser test needs Debian's chromium and chromium-driver (.ci/run installs them)")
    pytest.skip("no chromium/chromedriver on PATH (apt-get install chromium chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

CELLS = [
    f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
    "from judo.synth import synth_dataset\nfrom judo.data import read_mmad\nfrom judo.pairing import browse\n"
    "from judo.rewards import reward_explorer\n"
    "root = synth_dataset(n_per_category=8, categories='washer,pill_box')",
    "browse(read_mmad(root), root, size=128)",
    "reward_explorer('<seg> (5,6)-(5,7) </seg>\\n<think> a dent </think>\\n<answer>A</answer>', gt_cells='(5,6)')",
]

def _free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def _api(url: str, token: str, method: str = "GET"):
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as r: return json.loads(r.read() or b"null")

@contextlib.contextmanager
def running_lab(d: Path):
    "A JupyterLab server on 127.0.0.1 (free port, token) serving `d` with the test notebook; killed at the end."
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, d / "widgets.ipynb")
    port, token = _free_port(), uuid.uuid4().hex
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(d / "runtime"), "JUPYTER_CONFIG_DIR": str(d / "config"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline", "OMP_NUM_THREADS": "1"}
    srv = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
                            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
                            f"--ServerApp.root_dir={d}", "--LabApp.news_url=", "--ServerApp.open_browser=False"],
                           env=env, stdout=open(d / "lab.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try: _api(f"{base}/api/status", token); break
            except Exception:
                if srv.poll() is not None or time.time() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (d / "lab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield base, token
    finally:
        try:
            for k in _api(f"{base}/api/kernels", token): _api(f"{base}/api/kernels/{k['id']}", token, "DELETE")
        except Exception: pass
        os.killpg(srv.pid, signal.SIGTERM)
        try: srv.wait(15)
        except subprocess.TimeoutExpired: os.killpg(srv.pid, signal.SIGKILL); srv.wait(5)

@contextlib.contextmanager
def notebook_page(base: str, token: str):
    "The test notebook open in headless Chromium, all cells run, both widgets drawn."
    opts = webdriver.ChromeOptions(); opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2400", "--disable-gpu"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        driver.get(f"{base}/lab/tree/widgets.ipynb?token={token}")
        wait = WebDriverWait(driver, 90, poll_frequency=0.5)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell"))
        wait.until(lambda d: "Idle" in d.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Widget, #jp-main-statusbar").text)
        for attempt in range(2):                        # a click before the app settles can be lost: try once more
            driver.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "li[data-command='runmenu:run-all']"))
            driver.find_element(By.CSS_SELECTOR, "li[data-command='runmenu:run-all']").click()
            try:
                WebDriverWait(driver, 150, poll_frequency=1).until(lambda d: len(_images(d)) >= 2); break
            except Exception:
                driver.save_screenshot(str(SHOTS / f"run_all_{attempt}.png"))
                if attempt: raise
        yield driver
    finally:
        driver.quit()


def _cells(driver): return driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")
def _images(driver): return [i for i in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea img.widget-image") if i.size["width"] > 0]
def _cell_image(driver, i): return _cells(driver)[i].find_element(By.CSS_SELECTOR, "img.widget-image")

def _changes(driver, i, before: bytes, timeout=60) -> bool:
    "The picture of code cell `i` looks different from `before` within `timeout` s."
    end = time.time() + timeout
    while time.time() < end:
        try:
            if _cell_image(driver, i).screenshot_as_png != before: return True
        except StaleElementReferenceException: pass
        time.sleep(0.5)
    return False

def check_widgets_render_live(page):
    assert "Error displaying widget" not in page.page_source
    pic = _cell_image(page, 1)
    natural, shown = page.execute_script("return [arguments[0].naturalWidth, arguments[0].clientWidth]", pic)
    assert abs(natural - shown) <= 2, f"the browser's picture is drawn {shown} px wide, its PNG is {natural} px"

def check_pair_browser_slider_drag_changes_picture(page):
    cell = _cells(page)[1]
    readout = cell.find_element(By.CSS_SELECTOR, ".widget-readout")
    first = readout.text
    assert first == "1"                                       # 1-based, like its caption
    before = _cell_image(page, 1).screenshot_as_png
    handle, track = (cell.find_element(By.CSS_SELECTOR, c) for c in (".noUi-handle", ".noUi-target"))
    ActionChains(page).drag_and_drop_by_offset(handle, track.size["width"], 0).perform()     # to the last sample
    WebDriverWait(page, 30).until(lambda d: readout.text != first)
    assert _changes(page, 1, before), "dragging the slider did not change the pair browser's picture"
    caption = cell.find_element(By.CSS_SELECTOR, ".widget-html-content").text
    assert caption.startswith(f"{readout.text}/"), (caption[:20], readout.text)

def check_reward_explorer_typing_changes_picture(page):
    cell = _cells(page)[2]
    pic = _cell_image(page, 2)
    assert pic.size["width"] >= 500, f"the explorer's picture is only {pic.size['width']} px wide"
    before = pic.screenshot_as_png
    box = cell.find_element(By.CSS_SELECTOR, ".widget-textarea textarea")
    box.click(); box.send_keys(Keys.CONTROL, "a")
    box.send_keys("<seg> (9,9) </seg> <answer>B</answer>")   # another cell, the wrong letter, no <think>
    def table() -> str:                                      # re-read: every update replaces the table element
        try: return cell.find_element(By.CSS_SELECTOR, ".widget-html-content table").text
        except (StaleElementReferenceException, NoSuchElementException): return ""
    # every keystroke re-scores, and a half-typed reply scores 0 on all five too: wait for the whole reply's scores
    # ((9,9) misses the true (5,6): seg_f1 = 0.2 + 0.8 * F1 0), so that no intermediate table is read as the last one
    final = ("accuracy 0.0000", "format 0.0000", "seg_f1 0.2000")
    try: WebDriverWait(page, 60, poll_frequency=0.5).until(lambda d: all(line in table() for line in final))
    except TimeoutException: raise AssertionError(f"the explorer never scored the typed reply as {final}: {table()!r}")
    assert _changes(page, 2, before), "typing in the explorer did not change its picture"

def test_widgets_in_a_real_browser(tmp_path):
    "One JupyterLab and one browser for the three checks (so pytest-xdist cannot start two)."
    with running_lab(tmp_path) as (base, token), notebook_page(base, token) as page:
        check_widgets_render_live(page)
        check_pair_browser_slider_drag_changes_picture(page)
        check_reward_explorer_typing_changes_picture(page)
