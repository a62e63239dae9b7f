"""Upload a dataset, start a run, leave the page and come back: the run went on and finished."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 240_000  # ms: three rows on the embedded model, which may still be loading

CSV = (
    "id,question,expected\nq1,What is the capital of France?,Paris\nq2,How many days are in a week?,7\n"
    "q3,What colour is the sky on a clear day?,blue\n"
)


def test_upload_run_navigate_away_and_back(app, tmp_path):
    page = app.page
    upload = tmp_path / "quiz.csv"
    upload.write_text(CSV, encoding="utf-8")

    # ---- Datasets: upload and save ------------------------------------------------------------
    app.goto("/")
    app.nav("Datasets")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    app.wait_idle()
    expect(app.alert("3 rows · 3 columns · csv")).to_be_visible()
    expect(app.text_box("Dataset name")).to_have_value("quiz")
    app.click("Save dataset version")
    expect(app.alert("Saved quiz v1 (3 rows).")).to_be_visible()
    app.screenshot("10-datasets-saved")

    # ---- Runs: start in the background --------------------------------------------------------
    app.nav("Runs")
    prompts_box = page.get_by_role("combobox", name="Prompt versions", exact=True)
    prompts_box.click()
    page.get_by_role("option", name="support-answer@1", exact=True).click()
    page.keyboard.press("Escape")
    app.wait_idle()
    app.select("Dataset version", "quiz@1")
    app.fill("Scorers (YAML list, optional)", '- {type: contains, value: "{{expected}}"}')
    app.fill("Description", "e2e background run")
    app.click("Start run")
    expect(page.get_by_text(re.compile(r"(pending|running|done): \d/3"))).to_be_visible()
    app.screenshot("11-run-started")

    # ---- leave while it runs, then come back ----------------------------------------------------
    app.nav("Prompts")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Prompts")
    app.nav("Runs")
    expect(page.get_by_text("done: 3/3")).to_be_visible(timeout=RUN_TIMEOUT)
    page.reload()
    app.wait_idle()
    rows = app.dataframe_rows("output")
    assert len(rows) == 3 and all(r["status"] == "done" and r["output"].strip() for r in rows)
    expect(app.dataframe("pass_rate")).to_be_visible()  # the Scores table with the run's aggregates
    app.screenshot("12-run-finished")
