"""The README documents every registered extension (scorers, guards, rubrics, chunkers)."""

from pathlib import Path

from workbench import guardrails
from workbench.rag.chunking import CHUNKERS
from workbench.scoring import SCORERS
from workbench.scoring.judge import RUBRICS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_scorer_type_is_documented():
    missing = [name for name in SCORERS if f"`{name}`" not in README]
    assert missing == []


def test_every_guard_and_rubric_is_documented():
    assert [g for g in guardrails.GUARD_TYPES if f"`{g}`" not in README] == []
    assert [r for r in RUBRICS if f"`{r}`" not in README] == []


def test_every_chunker_is_documented():
    assert [c for c in CHUNKERS if f"`{c}`" not in README] == []
