"""The main user flow in a real browser: write a prompt, version it, label it, run it on the embedded model."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

NAME = "e2e-greeting"
TEMPLATE_V1 = "Say hello to {{ name }} in one short sentence."
TEMPLATE_V2 = TEMPLATE_V1 + " Mention {{ city }}."
TEMPLATE_LABEL = "Template (use {{ variable }} placeholders)"
NOTE = "mention the city"
MODEL_CALL_TIMEOUT = 180_000  # ms: the first call may wait for the embedded model to finish loading


def test_write_version_label_and_run_a_prompt(app):
    page = app.page

    # ---- Home ---------------------------------------------------------------------------------
    app.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Prompt Workbench")
    expect(page.get_by_text("local/smollm2", exact=True).first).to_be_visible()  # "Models: Available now"
    app.screenshot("01-home")

    # ---- Prompts: create v1 -------------------------------------------------------------------
    app.nav("Prompts")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Prompts")
    app.select("Prompt", "➕ New prompt")
    expect(page.get_by_role("heading", name="New prompt", exact=True)).to_be_visible()
    app.fill("Name", NAME)
    app.fill(TEMPLATE_LABEL, TEMPLATE_V1)
    expect(app.caption("Variables:")).to_have_text("Variables: name")
    app.click("Save version")
    expect(app.alert(f"Saved {NAME} v1")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Edit {NAME} (latest v1)")).to_be_visible()

    # ---- Prompts: edit, v2 with a note --------------------------------------------------------
    expect(app.text_box(TEMPLATE_LABEL)).to_have_value(TEMPLATE_V1)
    app.fill(TEMPLATE_LABEL, TEMPLATE_V2)
    app.fill("Version note (what changed and why)", NOTE)
    app.click("Save version")
    expect(app.alert(f"Saved {NAME} v2")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Edit {NAME} (latest v2)")).to_be_visible()
    expect(app.caption("Variables:")).to_have_text("Variables: name, city")

    rows = app.dataframe_rows("hash")  # the Versions table, newest first
    assert [r["version"] for r in rows] == ["2", "1"], rows
    assert rows[0]["note"] == NOTE
    assert rows[0]["variables"] == "name, city"
    assert rows[1]["variables"] == "name"

    # ---- Prompts: the diff --------------------------------------------------------------------
    diff_heading = page.get_by_role("heading", name="Diff", exact=True)
    diff_heading.scroll_into_view_if_needed()
    expect(diff_heading).to_be_visible()
    expect(page.get_by_role("combobox", name="From", exact=True)).to_have_value("1")
    expect(page.get_by_role("combobox", name="To", exact=True)).to_have_value("2")
    diff_table = (
        page.locator("table")
        .filter(has=page.locator("th", has_text="v1"))
        .filter(has=page.locator("th", has_text="v2"))
    )
    expect(diff_table).to_contain_text(TEMPLATE_V1)
    expect(diff_table).to_contain_text("Mention {{ city }}.")
    page.get_by_text("Unified diff", exact=True).click()
    expect(page.locator('[data-testid="stCode"]').filter(has_text="+" + TEMPLATE_V2)).to_be_visible()
    app.screenshot("02-prompts-versions-diff")

    # ---- Prompts: label v2 as production ------------------------------------------------------
    app.select("Label", "production")
    app.select("Version", "2")
    app.click(re.compile(r"^Set production"))
    expect(app.alert("production now points at v2.")).to_be_visible()
    expect(page.get_by_text("production is on v2", exact=True)).to_be_visible()
    assert app.dataframe_rows("hash")[0]["version"] == "2"

    # ---- Playground: run v2 on the embedded model ---------------------------------------------
    app.nav("Playground")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Playground")
    app.select("Prompt", NAME)
    app.select("Version", "v2 [production]")
    page.get_by_text("Prompt", exact=True).filter(visible=True).last.click()  # the expander: check the text
    expect(page.locator('[data-testid="stCode"]').filter(has_text=TEMPLATE_V2)).to_be_visible()
    app.fill("name", "Ada", rerun=False)  # inside a form: nothing reruns until Run
    app.fill("city", "Paris", rerun=False)
    models = app.widget("Models", "stMultiSelect")
    expect(models).to_contain_text("local/smollm2")
    app.click("Run", timeout=MODEL_CALL_TIMEOUT)

    answer = page.locator('[data-testid="stColumn"] [data-testid="stCode"]').first  # not the prompt's code block
    expect(answer).to_be_visible(timeout=MODEL_CALL_TIMEOUT)
    expect(answer).not_to_have_text(re.compile(r"^\s*(\(empty answer\))?\s*$"))
    expect(page.get_by_text("local/smollm2", exact=True).filter(visible=True).first).to_be_visible()
    stats = app.caption(" ms · ")
    expect(stats).to_have_text(re.compile(r"^\d+ ms · \d+ in / \d+ out tokens · "), timeout=MODEL_CALL_TIMEOUT)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    expect(app.dataframe("latency_ms")).to_be_visible()  # "Recent playground calls" lists the call
    app.screenshot("03-playground-answer")
