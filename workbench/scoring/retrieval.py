"""The `retrieval` scorer: how well a RAG run's retrieved chunks cover the row's relevant passages.

A run with a `rag:` section stores, on each row it renders, the chunks it retrieved
(`_retrieved`), so retrieval metrics are ordinary per-row scores: aggregated, compared
between runs (say two index configs) and charted like any other scorer.
"""

from __future__ import annotations

from workbench.rag.retrieval_metrics import retrieval_scores
from workbench.scoring.registry import ScoreContext, ScoreResult, register

METRICS = ("hit_rate", "precision", "recall", "mrr", "ndcg")


def _check(config: dict) -> list[str]:
    metric = config.get("metric", "recall")
    return [] if metric in METRICS else [f"metric must be one of {', '.join(METRICS)}, not {metric!r}"]


@register("retrieval", optional=("metric", "k", "threshold"), check=_check)
def retrieval(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    row = context.row or {}
    if "_retrieved" not in row:
        return ScoreResult(None, None, "", error="no retrieved chunks on this row: the run needs a rag: section")
    metric = config.get("metric", "recall")
    k = int(config.get("k") or len(row["_retrieved"]) or 5)
    scores = retrieval_scores(row["_retrieved"], row, k)
    value = scores.get(metric)
    if value is None:
        return ScoreResult(None, None, "no relevant passages for this row (unanswerable): not scored")
    ranks = [i for i, hit in enumerate(scores.get("relevant") or [], 1) if hit]
    reason = f"{metric}@{k} {value:.2f}; relevant at rank(s) {', '.join(map(str, ranks)) or 'none'}"
    threshold = config.get("threshold")
    return ScoreResult(None if threshold is None else value >= float(threshold), float(value), reason)
