"""Time to first view of every page in real headless Chromium, after the server is up.

The target (issue: every page renders its first view in under 5 s) is printed next to a
lower bound measured in the same run: the first view of a trivial one-line Streamlit app
served the same way, so the ratio shows what our pages add on top of Streamlit itself.

    python bench/page_first_view.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TARGET_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(command: list[str], port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start")


def first_view(page, url: str) -> float:
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    page.wait_for_selector("h1", timeout=60_000)
    return time.perf_counter() - started


def main() -> None:
    home = tempfile.mkdtemp(prefix="wb-pages-")
    env = {**os.environ, "WORKBENCH_HOME": home, "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    port, trivial_port = free_port(), free_port()
    trivial = Path(home) / "trivial.py"
    trivial.write_text("import streamlit as st\nst.title('Trivial')\n")
    app = serve(
        [sys.executable, "-m", "workbench.cli", "serve", "--port", str(port), "--address", "127.0.0.1"], port, env
    )
    base = serve(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(trivial),
            "--server.port",
            str(trivial_port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        trivial_port,
        env,
    )
    pages = [""] + [p.stem.split("_", 1)[1] for p in sorted((ROOT / "pages").glob("*.py"))]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            lower = min(first_view(browser.new_page(), f"http://127.0.0.1:{trivial_port}/") for _ in range(3))
            print(f"lower bound (trivial Streamlit page): {lower:.2f} s")
            worst = 0.0
            for name in pages:
                seconds = first_view(browser.new_page(), f"http://127.0.0.1:{port}/{name}")
                worst = max(worst, seconds)
                print(
                    f"{name or 'Home':<12} {seconds:5.2f} s   ratio to lower bound {seconds / lower:5.1f}   "
                    f"{'ok' if seconds < TARGET_S else 'OVER'} (target < {TARGET_S:.0f} s)"
                )
            print(f"slowest page {worst:.2f} s: {'meets' if worst < TARGET_S else 'misses'} the target")
            browser.close()
    finally:
        for proc in (app, base):
            os.killpg(proc.pid, 15)


if __name__ == "__main__":
    main()
