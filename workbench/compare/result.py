"""What a comparison holds: its variants, the metrics compared, and the aligned rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.errors import WorkbenchError

ALPHA = 0.05
PROMOTE_LABEL = "production"
NOT_INPUT = ("expected", "id", "row_key")  # dataset columns that are not the question put to the model


@dataclass(frozen=True)
class Variant:
    run_id: int
    prompt_version_id: int
    model: str
    prompt: str
    version: int
    prompt_model: str  # the model the prompt version itself names (a run may have used another)
    dataset: str  # "name@version" of the run's dataset
    dataset_version_id: int | None
    items: int
    label: str = ""


@dataclass(frozen=True)
class Metric:
    """One thing compared: a scorer's pass rate (kind "pass") or its score (kind "score").

    A judge gives both a 1-5 score and a pass/fail against its threshold; the two are
    compared separately because they answer different questions. `scale` is the width
    of the score range when known (1.0 for 0-1 scores and pass rates), used to flag
    intervals too wide to act on.
    """

    name: str
    scorer: str
    kind: str
    scale: float | None


@dataclass
class Result:
    run_ids: list[int]
    variants: list[Variant]
    baseline: str
    metrics: list[Metric]
    rows: list[dict]  # aligned by row_key: input, expected, outputs[label], values[metric][label]
    items: list[dict]  # one per run item, for cost and latency
    notes: list[str]
    summary: dict = field(default_factory=dict)

    def variant(self, label: str) -> Variant:
        for v in self.variants:
            if v.label == label:
                return v
        raise WorkbenchError(f"No variant {label!r}; variants: {', '.join(v.label for v in self.variants)}.")
