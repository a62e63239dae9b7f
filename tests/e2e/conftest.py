"""The end-to-end harness: the real `workbench serve` in a subprocess, driven by headless Chromium.

Fixtures
--------
server_url  (session)  one app server for the whole session, on a free port, with its own fresh
                       WORKBENCH_HOME (sample data loaded, the embedded model warming up).
server_home (session)  that WORKBENCH_HOME, should a test need to look at files the app wrote.
browser     (session)  Debian's Chromium (/usr/bin/chromium) through Playwright's sync API.
page        (function) a fresh browser context + page (1400x1000); a screenshot is saved when
                       the test fails.
app         (function) a `StreamlitApp` driver around `page`: navigation, waiting for reruns,
                       filling widgets by label, clicking buttons, screenshots.

Every test in this directory is marked `e2e`; they are skipped (with the reason) only when
/usr/bin/chromium is missing. Never run `playwright install`: we use the system Chromium.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent
SCREENSHOTS = E2E_DIR / "screenshots"  # gitignored
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_START_TIMEOUT = 90  # seconds until /_stcore/health answers
DEFAULT_TIMEOUT_MS = 30_000  # for every Playwright action and `expect` (its own default is 5 s)


# ---- marking and skipping -------------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    skip = None
    if not CHROMIUM.exists():
        skip = pytest.mark.skip(
            reason=f"{CHROMIUM} is missing: install Debian's `chromium` package "
            "(scripts/test does) to run the browser tests"
        )
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if skip is not None:
                item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)  # lets `page` know whether the test failed
    return report


# ---- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def server_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e") / "home"


@pytest.fixture(scope="session")
def server_url(server_home):
    """Start `workbench serve` on a free port with its own data directory; stop it (whole group) at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ.copy()
    # The unit tests' autouse fixture moves WORKBENCH_HOME per test; the server gets its own, explicitly.
    env["WORKBENCH_HOME"] = str(server_home)
    for leftover in ("WORKBENCH_DATABASE_URL", "WORKBENCH_MODELS"):
        env.pop(leftover, None)
    # Do not watch the sources: an edit while the tests run would put a "File change. Rerun"
    # prompt in the status widget (and could rerun a page under the test's feet).
    env["STREAMLIT_SERVER_FILE_WATCHER_TYPE"] = "none"
    env["STREAMLIT_SERVER_RUN_ON_SAVE"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    log_path = server_home.parent / "server.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--port", str(port), "--address", "127.0.0.1"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _healthy(url):
            if process.poll() is not None:
                pytest.fail(f"`workbench serve` exited with {process.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"`workbench serve` not healthy after {SERVER_START_TIMEOUT} s:\n{_tail(log_path)}")
            time.sleep(0.3)
        yield url
    finally:
        _stop(process)
        log.close()
        print(f"\n[e2e] server log: {log_path}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group (workbench -> streamlit), SIGKILL it if still there after 15 s."""

    def group_alive() -> bool:
        process.poll()  # reap the leader, so a finished one stops counting
        try:
            os.killpg(process.pid, 0)
            return True
        except ProcessLookupError:
            return False

    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if not group_alive():
            return
        os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while group_alive() and time.monotonic() < deadline:
            time.sleep(0.1)


# ---- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        path = save_screenshot(page, f"FAILED-{request.node.name}")
        print(f"\n[e2e] screenshot of the failure: {path}")
    context.close()


def save_screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save tests/e2e/screenshots/NAME.png and return its path.

    Streamlit scrolls inside <main data-testid="stMain">, not the document, so Playwright's own
    full_page would only capture the viewport: for a full page we make the viewport as tall as
    the app's content for the shot, then put it back.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.wait_for_timeout(400)  # let expanders, toasts and fades finish
    viewport = page.viewport_size
    height = (
        page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight ?? 0") if full_page else 0
    )
    if viewport and height > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"], "height": min(height, 8000)})
        page.wait_for_timeout(400)
        try:
            page.screenshot(path=str(path), animations="disabled")
        finally:
            page.set_viewport_size(viewport)
    else:
        page.screenshot(path=str(path), animations="disabled")
    return path


# ---- the Streamlit driver -------------------------------------------------------------------


class StreamlitApp:
    """Drive a Streamlit app the way a person does: by visible labels and texts.

    After anything that makes Streamlit rerun the script, the helpers wait until the run
    is over (`wait_idle`), so the next assertion sees the new page. Long operations
    (model calls) take a `timeout` in milliseconds.
    """

    APP = '[data-testid="stApp"]'

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url.rstrip("/")

    # -- navigation --
    def goto(self, path: str = "/", timeout: float = 60_000) -> StreamlitApp:
        """Open a page by URL path: "/", "/Prompts", "/Playground"."""
        self.page.goto(self.base_url + "/" + path.lstrip("/"))
        self.page.wait_for_selector(f'{self.APP}[data-test-connection-state="CONNECTED"]', timeout=timeout)
        self.wait_idle(timeout=timeout)
        return self

    def nav(self, page_name: str, timeout: float = 60_000) -> StreamlitApp:
        """Switch page through the sidebar navigation link with that name."""
        link = self.page.locator('[data-testid="stSidebarNav"] a').filter(
            has=self.page.get_by_text(page_name, exact=True)
        )
        link.click()
        self.page.wait_for_url(
            re.compile(
                re.escape(self.base_url) + "/" + ("" if page_name == "Home" else re.escape(page_name)) + r"/?(\?.*)?$"
            ),
            timeout=timeout,
        )
        self.wait_idle(timeout=timeout)
        return self

    # -- waiting --
    def wait_idle(self, timeout: float = 60_000, settle_ms: float = 300) -> StreamlitApp:
        """Wait until the script run triggered by the last action is finished, then fail on app exceptions.

        A rerun request reaches the server a moment after the action, so first give it
        `settle_ms` to start, then wait for the app to report `notRunning` and the status widget
        (top right) to stop showing "Running...".
        """
        self.page.wait_for_timeout(settle_ms)
        self.page.wait_for_selector(f'{self.APP}[data-test-script-state="notRunning"]', timeout=timeout)
        self.page.locator('[data-testid="stStatusWidget"] [data-testid^="stStatusWidgetRunning"]').wait_for(
            state="hidden", timeout=timeout
        )
        self.assert_no_exception()
        return self

    def assert_no_exception(self) -> None:
        errors = self.page.locator('[data-testid="stException"]')
        if errors.count():
            raise AssertionError("The app shows an exception:\n" + errors.first.inner_text())

    # -- locating --
    def widget(self, label: str, testid: str):
        """The widget container (e.g. "stTextInput", "stSelectbox") whose label is exactly `label`."""
        return self.page.locator(f'[data-testid="{testid}"]').filter(
            has=self.page.locator('[data-testid="stWidgetLabel"]').get_by_text(label, exact=True)
        )

    def text_box(self, label: str):
        """The <input>/<textarea> of a st.text_input / st.text_area by its label (exact)."""
        return self.page.get_by_role("textbox", name=label, exact=True)

    def button(self, text: str | re.Pattern):
        """A button (st.button, st.form_submit_button) by its text; a regex matches a prefix etc."""
        if isinstance(text, str):
            return self.page.get_by_role("button", name=text, exact=True)
        return self.page.get_by_role("button", name=text)

    def text(self, text: str | re.Pattern, exact: bool = False):
        return self.page.get_by_text(text, exact=exact)

    def alert(self, text: str | re.Pattern, kind: str = "success"):
        """A st.success / st.info / st.warning / st.error box (`kind`) containing `text`."""
        return self.page.locator(f'[data-testid="stAlertContent{kind.capitalize()}"]').filter(has_text=text)

    def caption(self, text: str | re.Pattern):
        """A st.caption containing `text`."""
        return self.page.locator('[data-testid="stCaptionContainer"]').filter(has_text=text)

    def dataframe(self, column: str):
        """The st.dataframe that has a column headed `column`."""
        header = self.page.locator('table[role="grid"] th').filter(has_text=re.compile(f"^{re.escape(column)}$"))
        return self.page.locator('[data-testid="stDataFrame"]').filter(has=header)

    def dataframe_rows(self, column: str) -> list[dict[str, str]]:
        """The rows of the dataframe with column `column`, as {header: cell text}.

        The dataframe draws on a canvas; this reads the accessible grid hidden behind it, which
        is virtualised: very wide or long frames only expose what is scrolled into view.
        """
        grid = self.dataframe(column).locator('table[role="grid"]')
        grid.wait_for(state="attached")
        headers = [h.text_content() for h in grid.locator("thead th").all()]
        rows = grid.locator("tbody tr").all()
        return [dict(zip(headers, (c.text_content() for c in row.locator("td").all()))) for row in rows]

    # -- acting --
    def fill(self, label: str, value: str, rerun: bool = True) -> StreamlitApp:
        """Type into a text input/area and leave it (Tab), which is when Streamlit takes the value.

        Inside a st.form nothing reruns until the submit button: pass rerun=False.
        """
        box = self.text_box(label)
        box.fill(value)
        box.press("Tab")
        if rerun:
            self.wait_idle()
        return self

    def select(self, label: str, option: str, rerun: bool = True) -> StreamlitApp:
        """Choose `option` (its displayed text) in the st.selectbox labelled `label`."""
        combo = self.page.get_by_role("combobox", name=label, exact=True)
        if combo.input_value() == option:
            return self
        self._open(combo)
        self.page.get_by_role("option", name=option, exact=True).click()
        if rerun:
            self.wait_idle()
        return self

    def _open(self, combo, attempts: int = 5) -> None:
        """Open a combobox's list. A click landing while the page still scrolls (Streamlit's main
        pane scrolls smoothly) is ignored by the widget, so scroll first and retry until open."""
        combo.scroll_into_view_if_needed()
        for _ in range(attempts):
            self.page.wait_for_timeout(200)
            combo.click()
            try:
                expect(combo).to_have_attribute("aria-expanded", "true", timeout=2000)
                return
            except AssertionError:
                combo.press("Escape")
        raise AssertionError(f"could not open {combo}")

    def click(self, text: str | re.Pattern, timeout: float = 60_000) -> StreamlitApp:
        """Click a button by its text and wait for the rerun it causes (give model calls a long timeout)."""
        self.button(text).click()
        self.wait_idle(timeout=timeout)
        return self

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        return save_screenshot(self.page, name, full_page=full_page)


@pytest.fixture
def app(page, server_url) -> StreamlitApp:
    return StreamlitApp(page, server_url)
