"""Scorers: one result shape, one registry, and errors as data.

A scorer is a plain function `fn(config, output, context) -> ScoreResult`. Every scorer
(deterministic assertions, guardrails used as scorers, LLM judges registered by other
modules) returns the same `ScoreResult`, so the run engine, the results grid and the
comparison views never special-case a scorer type.

`run_scorer` is the only way the engine calls a scorer. It renders `{{ column }}`
references in the config against the dataset row first (so `value: "{{expected}}"`
works for every scorer without each one knowing about templates), and it turns any
exception into a `ScoreResult` with `error` set: one bad row or a flaky judge must show
up as an error cell in the grid, never abort a run of ten thousand items.

`validate_scorer_config` lets the CLI and the UI refuse a bad config *before* a run
starts and spends money, with messages a user can act on.
"""

from __future__ import annotations

# Importing these registers their scorers (deterministic assertions, llm_judge, retrieval).
from workbench.scoring import assertions, judge, retrieval  # noqa: E402,F401,I001
from workbench.scoring.registry import (
    COMMON_KEYS,
    NOT_RENDERED,
    SCORERS,
    SPECS,
    ScoreContext,
    Scorer,
    ScorerError,
    ScoreResult,
    ScorerSpec,
    failure,
    metric,
    passed,
    register,
    render_config,
    run_scorer,
    scorer_name,
    scorer_variables,
    validate_scorer_config,
)

__all__ = [
    "COMMON_KEYS",
    "NOT_RENDERED",
    "SCORERS",
    "SPECS",
    "Scorer",
    "ScoreContext",
    "ScoreResult",
    "ScorerError",
    "ScorerSpec",
    "failure",
    "metric",
    "passed",
    "register",
    "render_config",
    "run_scorer",
    "scorer_name",
    "scorer_variables",
    "validate_scorer_config",
]
