"""A/B comparison of prompt versions and models on the same dataset rows.

One module per concern: `result` (what a comparison holds), `alignment` (variants, rows paired
by row key), `summary` (the statistics, as one JSON-able dict), `sample_size`, `rows` (side by
side, word diffs, flaky rows), `pairwise` (the pairwise judge), `saved` (saved comparisons and
promotion) and `cli`. The public names are all here, so callers write `compare.compare(...)`.
"""

from __future__ import annotations

from workbench.compare.alignment import data_stamp, load, pick_variant, variants
from workbench.compare.cli import add_cli, cmd_compare
from workbench.compare.pairwise import (
    PAIRWISE_TEMPLATE,
    apairwise_judge,
    pairwise_judge,
    pairwise_messages,
    pairwise_verdict,
)
from workbench.compare.result import ALPHA, NOT_INPUT, PROMOTE_LABEL, Metric, Result, Variant
from workbench.compare.rows import DEL_STYLE, INS_STYLE, flaky_rows, row_view, word_diff_html
from workbench.compare.sample_size import sample_size_advice
from workbench.compare.saved import get_saved, list_saved, promote, promotion_notes, save
from workbench.compare.summary import compare, cost_latency, leader, summarize, values_of, verdicts

__all__ = [
    "ALPHA",
    "DEL_STYLE",
    "INS_STYLE",
    "NOT_INPUT",
    "PAIRWISE_TEMPLATE",
    "PROMOTE_LABEL",
    "Metric",
    "Result",
    "Variant",
    "add_cli",
    "apairwise_judge",
    "cmd_compare",
    "compare",
    "cost_latency",
    "data_stamp",
    "flaky_rows",
    "get_saved",
    "leader",
    "list_saved",
    "load",
    "pairwise_judge",
    "pairwise_messages",
    "pairwise_verdict",
    "pick_variant",
    "promote",
    "promotion_notes",
    "row_view",
    "sample_size_advice",
    "save",
    "summarize",
    "values_of",
    "variants",
    "verdicts",
    "word_diff_html",
]
