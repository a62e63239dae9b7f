"""Figures for the home page, counted in SQL."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from storage.db import session
from storage.tables import LlmCall, Prompt, PromptVersion
from workbench.llm import available_models


def summary() -> dict:
    with session() as s:
        return {
            "prompts": s.exec(select(func.count()).select_from(Prompt)).one(),
            "versions": s.exec(select(func.count()).select_from(PromptVersion)).one(),
            "calls": s.exec(select(func.count()).select_from(LlmCall)).one(),
            "spend_usd": float(s.exec(select(func.coalesce(func.sum(LlmCall.cost_usd), 0.0))).one()),
            "models": available_models(),
        }
