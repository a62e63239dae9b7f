"""The scorer registry: the one result shape, `register`, `run_scorer` and config validation.

Kept apart from the package `__init__` so the scorer modules that register themselves
(assertions, judge, retrieval) import it without importing the package that imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from workbench.templates import TemplateError, render, variables


@dataclass(frozen=True)
class ScoreResult:
    """passed: True/False, or None when the scorer only measures; score: a number or None."""

    passed: bool | None
    score: float | None
    reason: str
    error: str | None = None


@dataclass
class ScoreContext:
    """What a scorer may look at besides the output: the dataset row and the call's measurements."""

    row: dict = field(default_factory=dict)
    latency_ms: float | None = None
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    input_text: str = ""


Scorer = Callable[[dict, str, ScoreContext], ScoreResult]


@dataclass(frozen=True)
class ScorerSpec:
    """What validate_scorer_config needs to know about a scorer type."""

    fn: Scorer
    required: tuple = ()
    optional: tuple = ()
    check: Callable[[dict], list[str]] | None = None
    one_of: tuple = ()  # at least one of these keys must be present


SCORERS: dict[str, Scorer] = {}
SPECS: dict[str, ScorerSpec] = {}
COMMON_KEYS = ("type", "name", "description", "weight")
NOT_RENDERED = ("expr", "schema", "template")  # expressions see `row`; schemas are data; judge templates fill later


def register(type_name: str, required=(), optional=(), check=None, one_of=()):
    """Decorator: add a scorer function to the registry under `type_name`."""

    def decorate(fn: Scorer) -> Scorer:
        SCORERS[type_name] = fn
        SPECS[type_name] = ScorerSpec(fn, tuple(required), tuple(optional), check, tuple(one_of))
        return fn

    return decorate


def passed(ok: bool, reason: str) -> ScoreResult:
    """A pass/fail result: score 1.0 or 0.0."""
    return ScoreResult(passed=bool(ok), score=1.0 if ok else 0.0, reason=reason)


def metric(value: float, threshold, label: str) -> ScoreResult:
    """A measured value: passed only when a threshold is set."""
    value = float(value)
    if threshold is None:
        return ScoreResult(passed=None, score=value, reason=f"{label} {value:.3f}")
    threshold = float(threshold)
    ok = value >= threshold
    return ScoreResult(passed=ok, score=value, reason=f"{label} {value:.3f} {'>=' if ok else '<'} {threshold:g}")


def failure(message: str) -> ScoreResult:
    return ScoreResult(passed=None, score=None, reason="", error=message)


class ScorerError(ValueError):
    """A scorer could not judge this output (missing column, bad config); becomes ScoreResult.error."""


def scorer_name(config: dict) -> str:
    """The column name of a scorer's results: its `name`, a judge's rubric, or its type."""
    if config.get("name"):
        return str(config["name"])
    if config.get("type") == "llm_judge" and config.get("rubric"):
        return str(config["rubric"])
    if config.get("type") == "retrieval":
        return f"retrieval_{config.get('metric', 'recall')}"
    return str(config.get("type") or "scorer")


def _render_value(value, row: dict):
    if isinstance(value, str) and "{{" in value:
        return render(value, row)
    if isinstance(value, list):
        return [_render_value(item, row) for item in value]
    return value


def render_config(config: dict, row: dict) -> dict:
    """Render `{{ column }}` in string values (and strings inside lists) against the row."""
    return {key: value if key in NOT_RENDERED else _render_value(value, row) for key, value in config.items()}


def scorer_variables(config: dict) -> list[str]:
    """Row columns a config refers to with `{{ column }}`, so a caller can check them against a dataset."""
    names: list[str] = []

    def visit(value):
        if isinstance(value, str) and "{{" in value:
            names.extend(n for n in variables(value) if n not in names)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    for key, value in (config or {}).items():
        if key not in NOT_RENDERED:
            visit(value)
    return names


def run_scorer(config: dict, output, context: ScoreContext | None = None) -> ScoreResult:
    """Run one scorer on one output. Never raises: problems come back as ScoreResult(error=...)."""
    context = context or ScoreContext()
    try:
        if not isinstance(config, dict):
            return failure("a scorer config must be a mapping with a 'type'")
        type_name = config.get("type")
        fn = SCORERS.get(type_name) if isinstance(type_name, str) else None
        if fn is None:
            return failure(_unknown_type(type_name))
        rendered = render_config(config, context.row or {})
        result = fn(rendered, "" if output is None else str(output), context)
        if not isinstance(result, ScoreResult):
            return failure(f"scorer {type_name!r} returned {type(result).__name__}, not a ScoreResult")
        return result
    except TemplateError as exc:
        return failure(f"cannot fill the scorer config from the row: {exc}")
    except Exception as exc:  # errors are data: one failing scorer must not stop a run
        message = str(exc) or type(exc).__name__
        if not isinstance(exc, (ScorerError, ValueError)):
            message = f"{type(exc).__name__}: {message}"
        return failure(message)


def _unknown_type(type_name) -> str:
    if not type_name:
        return "the scorer has no 'type'; known types: " + ", ".join(sorted(SCORERS))
    return f"unknown scorer type {type_name!r}; known types: " + ", ".join(sorted(SCORERS))


def validate_scorer_config(config) -> list[str]:
    """Human-readable problems with a scorer config; an empty list means it can run."""
    if not isinstance(config, dict):
        return ["a scorer must be a mapping with a 'type'"]
    type_name = config.get("type")
    spec = SPECS.get(type_name) if isinstance(type_name, str) else None
    if spec is None:
        return [_unknown_type(type_name)]
    problems = [f"missing required key {key!r}" for key in spec.required if config.get(key) in (None, "", [])]
    if spec.one_of and not any(config.get(key) is not None for key in spec.one_of):
        problems.append("needs at least one of: " + ", ".join(spec.one_of))
    known = set(COMMON_KEYS) | set(spec.required) | set(spec.optional) | set(spec.one_of)
    for key in config:
        if key not in known:
            problems.append(f"unknown key {key!r} for {type_name}; allowed: {', '.join(sorted(known - {'type'}))}")
    try:
        scorer_variables(config)
    except TemplateError as exc:
        problems.append(str(exc))
    if not problems and spec.check is not None:
        try:
            problems += spec.check(config)
        except Exception as exc:  # a checker bug must not hide the config problem behind a traceback
            problems.append(f"{type(exc).__name__}: {exc}")
    return problems
