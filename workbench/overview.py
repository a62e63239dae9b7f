"""Figures for the home page, counted in SQL."""

from __future__ import annotations

from storage import ledger
from storage import prompts as prompt_repo
from workbench.llm import available_models


def summary() -> dict:
    return {**prompt_repo.counts(), **ledger.totals(), "models": available_models()}
