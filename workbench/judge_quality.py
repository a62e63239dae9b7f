"""How far to trust the LLM judge: its scores against human labels, per rubric.

A judge's score is only worth averaging if it moves with what a person would say.
`sample_data/judge_labels.jsonl` holds hand-labelled Lumen Notes answers (clearly good,
clearly bad and in between) for every built-in rubric; `evaluate` asks a judge model to
score each of them through the same code path as runs (`ajudge`), and `agreement`
compares the two. An unparseable judge reply is counted, not scored: a judge that
cannot follow the reply format is a finding, not a crash.

Results are kept in the `app_setting` table (key "judge_agreement") so the Scorers
page can show how the judge did without rerunning it.
"""

from __future__ import annotations

import asyncio
import json
import math
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from storage import app_settings
from workbench import calls
from workbench.config import SAMPLE_DATA
from workbench.scoring import ScoreContext
from workbench.scoring.judge import RUBRICS, ajudge

LABELS_PATH = SAMPLE_DATA / "judge_labels.jsonl"
SETTING_KEY = "judge_agreement"
REQUIRED = ("id", "rubric", "input", "output", "human_score")


def load_labels(path: str | Path | None = None) -> list[dict]:
    """The labelled items; a malformed line is an error naming its line, not a silent skip."""
    path = Path(path or LABELS_PATH)
    labels = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path.name} line {number}: not JSON ({exc})") from exc
        missing = [key for key in REQUIRED if key not in item]
        if missing:
            raise ValueError(f"{path.name} line {number}: missing {', '.join(missing)}")
        if item["rubric"] not in RUBRICS:
            raise ValueError(f"{path.name} line {number}: unknown rubric {item['rubric']!r}")
        if item["human_score"] not in (1, 2, 3, 4, 5):
            raise ValueError(f"{path.name} line {number}: human_score must be 1-5, got {item['human_score']!r}")
        labels.append({"expected": "", "note": "", **item})
    return labels


def _round_half_up(value: float) -> int:
    """4.5 -> 5: Python's round() would give 4 (banker's rounding), which no reader expects."""
    return math.floor(value + 0.5)


def agreement(pairs: list[tuple[float | None, float]]) -> dict:
    """Agreement of (judge, human) score pairs; a None judge score is an unparseable reply.

    Spearman is None when it is undefined (fewer than two scored pairs, or either side
    constant, e.g. a judge that says 5 to everything): a number there would mislead.
    """
    scored = [(float(judge), float(human)) for judge, human in pairs if judge is not None]
    result: dict[str, Any] = {
        "n": len(pairs),
        "n_scored": len(scored),
        "spearman": None,
        "exact": None,
        "within_1": None,
        "mean_abs_error": None,
    }
    if not scored:
        return result
    judged, human = [j for j, _ in scored], [h for _, h in scored]
    if len(scored) >= 2 and len(set(judged)) > 1 and len(set(human)) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = float(spearmanr(judged, human).statistic)
        result["spearman"] = rho if math.isfinite(rho) else None
    result["exact"] = sum(_round_half_up(j) == h for j, h in scored) / len(scored)
    result["within_1"] = sum(abs(j - h) <= 1 for j, h in scored) / len(scored)
    result["mean_abs_error"] = sum(abs(j - h) for j, h in scored) / len(scored)
    return result


async def _judge_all(model: str, labels: list[dict], concurrency: int, constrained: bool | None) -> list[dict]:
    from workbench.models import client

    gate = asyncio.Semaphore(max(1, int(concurrency)))
    options = client.default_options()
    options.use_cache = False  # a measurement must ask the model

    def uncached(spec, messages):
        return client.call(spec, messages, options)

    async def one(item: dict) -> dict:
        config = {"type": "llm_judge", "rubric": item["rubric"], "model": model}
        if constrained is not None:
            config["constrained"] = constrained
        context = ScoreContext(
            row={"expected": item.get("expected") or "", "question": item["input"]}, input_text=item["input"]
        )
        async with gate:
            verdict, reply = await ajudge(config, item["output"], context, call=uncached)
        calls.record(reply, "judge")
        return {
            "id": item["id"],
            "rubric": item["rubric"],
            "human": item["human_score"],
            "judge": verdict.score,
            "error": (verdict.error or "")[:300] or None,
            "latency_ms": reply.latency_ms,
        }

    return await asyncio.gather(*(one(item) for item in labels))


def evaluate(model: str, rubrics=None, labels=None, concurrency: int = 2, constrained: bool | None = None) -> dict:
    """{rubric: agreement + model + items} for `model` judging the labelled set.

    `constrained` forces the judge's constrained reply on or off (None: the judge's default,
    on for the embedded model), to compare the two.

    Judge calls bypass the cache (a measurement must ask the model) but are recorded in
    the ledger as source `judge`, so their cost shows on the Dashboard like any other.
    """
    labels = load_labels() if labels is None else labels
    wanted = list(rubrics) if rubrics else sorted({item["rubric"] for item in labels}, key=list(RUBRICS).index)
    unknown = [r for r in wanted if r not in RUBRICS]
    if unknown:
        raise ValueError(f"unknown rubric(s) {', '.join(unknown)}; built-in: {', '.join(RUBRICS)}")
    chosen = [item for item in labels if item["rubric"] in wanted]
    if not chosen:
        raise ValueError(f"no labelled items for rubric(s) {', '.join(wanted)}")
    judged = asyncio.run(_judge_all(model, chosen, concurrency, constrained))
    results = {}
    for rubric in wanted:
        items = [{k: v for k, v in row.items() if k != "rubric"} for row in judged if row["rubric"] == rubric]
        if items:
            results[rubric] = {
                **agreement([(row["judge"], row["human"]) for row in items]),
                "model": model,
                "items": items,
            }
    return results


def save_results(results: dict) -> dict:
    """Keep one model's results, stamped, next to the latest results of the other models."""
    models = {entry.get("model") for entry in results.values()}
    if len(models) != 1 or None in models:
        raise ValueError("save_results takes the results of one evaluate() call (one model)")
    model = models.pop()
    saved_at = datetime.now(UTC).isoformat(timespec="seconds")

    def merged(current: dict | None) -> dict:
        return {
            "saved_at": saved_at,
            "models": {**((current or {}).get("models") or {}), model: {"saved_at": saved_at, "rubrics": results}},
        }

    return app_settings.update(SETTING_KEY, merged)


def latest_results() -> dict | None:
    """{"saved_at", "models": {model: {"saved_at", "rubrics": {rubric: agreement}}}}, or None if never measured."""
    return app_settings.get(SETTING_KEY) or None


def as_rows(saved: dict) -> list[dict]:
    """One flat row per (judge model, rubric) for a table: the stored results without the items."""
    rows = []
    for model, entry in (saved or {}).get("models", {}).items():
        for rubric, result in entry.get("rubrics", {}).items():
            rows.append(
                {
                    "judge": model,
                    "rubric": rubric,
                    "n": result["n"],
                    "unparseable": result["n"] - result["n_scored"],
                    "spearman": result["spearman"],
                    "exact": result["exact"],
                    "within_1": result["within_1"],
                    "mean_abs_error": result["mean_abs_error"],
                    "measured": entry.get("saved_at"),
                }
            )
    return rows
