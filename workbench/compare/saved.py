"""Saved comparisons, and promoting a variant's prompt version with a comparison as evidence."""

from __future__ import annotations

from storage import comparisons as repo
from storage.tables import Comparison
from workbench import prompts
from workbench.compare.result import PROMOTE_LABEL, Result
from workbench.compare.summary import directions
from workbench.errors import NotFound, WorkbenchError


def save(result: Result, name: str = "", pairwise: list[dict] | None = None) -> int:
    """Store runs, baseline and summary (with any pairwise results) as a `comparison`; returns its id."""
    summary = {
        **result.summary,
        "pairwise": list(pairwise if pairwise is not None else result.summary.get("pairwise", [])),
    }
    name = name.strip() or " vs ".join(v.label for v in result.variants)
    return repo.save(name, result.run_ids, result.baseline, summary)


def get_saved(comparison_id: int) -> Comparison:
    row = repo.get(int(comparison_id))
    if row is None:
        raise NotFound(f"No comparison with id {comparison_id}.")
    return row


def list_saved(limit: int = 50) -> list[dict]:
    rows = repo.latest(limit)
    return [
        {
            "id": r.id,
            "name": r.name,
            "runs": ", ".join(map(str, r.run_ids)),
            "baseline": r.baseline,
            "created": r.created_at,
        }
        for r in rows
    ]


def promotion_notes(summary: dict, label: str) -> list[str]:
    """What a user should know before pointing production at this variant's prompt version."""
    variant = next((v for v in summary["variants"] if v["label"] == label), None)
    if variant is None:
        raise WorkbenchError(f"No variant {label!r} in this comparison.")
    notes = []
    found = directions(summary)
    if label == summary["baseline"]:
        beaten = sorted({f"{other} on {name}" for other, pairs in found.items() for name, d in pairs if d == "better"})
        if beaten:
            notes.append(f"Other variants are detectably better than the baseline {label}: {', '.join(beaten)}.")
        elif not any(d == "worse" for pairs in found.values() for _, d in pairs):
            notes.append(f"No scorer shows the baseline {label} detectably better than the other variants.")
    else:
        worse = [name for name, d in found.get(label, []) if d == "worse"]
        if worse:
            notes.append(f"{label} is detectably worse than the baseline on {', '.join(worse)}.")
        elif not any(d == "better" for _, d in found.get(label, [])):
            notes.append(f"No scorer shows {label} detectably better than the baseline.")
    if variant["model"] != variant["prompt_model"]:
        notes.append(
            f"This variant ran {variant['prompt']}@{variant['version']} with {variant['model']}, but that "
            f"version names {variant['prompt_model']}: promoting it does not change the model."
        )
    current = prompts.labels_of(variant["prompt"]).get(PROMOTE_LABEL)
    if current == variant["version"]:
        notes.append(f"{variant['prompt']}@{variant['version']} is already {PROMOTE_LABEL}.")
    return notes


def promote(comparison_id: int, label: str, author: str | None = None) -> dict:
    """Point the winning variant's prompt at `production`, citing the saved comparison as evidence."""
    saved = get_saved(comparison_id)
    variant = next((v for v in saved.summary.get("variants", []) if v["label"] == label), None)
    if variant is None:
        raise WorkbenchError(f"Comparison {comparison_id} has no variant {label!r}.")
    previous = prompts.labels_of(variant["prompt"]).get(PROMOTE_LABEL)
    prompts.set_label(
        variant["prompt"], PROMOTE_LABEL, variant["version"], evidence=f"comparison {comparison_id}", author=author
    )
    return {
        "prompt": variant["prompt"],
        "version": variant["version"],
        "previous": previous,
        "label": PROMOTE_LABEL,
        "comparison_id": comparison_id,
    }
