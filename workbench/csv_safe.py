"""CSV cells neutralised against formula injection, as OWASP recommends.

A spreadsheet opening an exported CSV runs a cell that starts with `=`, `+`, `-` or `@` as a
formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`), and tab or carriage return can hide such a
start. Model outputs, dataset cells and error texts are untrusted, so every CSV this workbench
writes passes its cells through `cell`: one starting with any of those characters gets a leading
`'`, which spreadsheets show as text. Plain numbers (`-3`, `+1.5e3`) cannot be formulas and are
left as they are, so numeric columns stay numeric.
"""

from __future__ import annotations

import re

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def cell(value):
    """The cell as written to CSV: text that a spreadsheet would evaluate gets a leading `'`."""
    if isinstance(value, str) and value[:1] in TRIGGERS and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def row(values) -> list:
    return [cell(v) for v in values]


def frame(data):
    """A copy of a pandas DataFrame with its text cells (and column names) neutralised."""
    safe = data.copy()
    for column in safe.columns:
        if safe[column].dtype.kind not in "biufcmM":  # text: object or pandas' string dtype
            safe[column] = safe[column].map(cell)
    safe.columns = [cell(c) if isinstance(c, str) else c for c in safe.columns]
    return safe
