"""Load the sample data on first start, and never duplicate it on later starts.

A sample prompt is loaded only when no prompt of that name exists, so a user's own
edits to it are never overwritten or followed by a surprise version.
"""

from __future__ import annotations

import yaml

from storage import prompts as prompt_repo
from workbench import config, prompts

SAMPLE_PROMPT_FILES = ("prompts.yaml", "rag_prompt.yaml")


def load_sample_prompts(path=None) -> list[str]:
    paths = [path] if path else [config.SAMPLE_DATA / name for name in SAMPLE_PROMPT_FILES]
    loaded = []
    entries = [entry for p in paths for entry in yaml.safe_load(p.read_text(encoding="utf-8"))]
    existing = set(prompt_repo.names())
    for entry in entries:
        if entry["name"] in existing:
            continue
        for version in entry["versions"]:
            prompts.save_version(
                entry["name"],
                kind=version.get("kind", "text"),
                template=version.get("template"),
                messages=version.get("messages"),
                model=version.get("model", prompts.DEFAULT_MODEL),
                params=version.get("params") or {},
                note=version.get("note", ""),
                description=entry.get("description", ""),
                author="sample data",
            )
        for label, number in (entry.get("labels") or {}).items():
            prompts.set_label(entry["name"], label, number, evidence="sample data", author="sample data")
        loaded.append(entry["name"])
    return loaded


SAMPLE_DATASETS = {"support_qa": "support_qa.csv", "rag_qa": "rag_qa.jsonl"}


SAMPLE_DESCRIPTIONS = {
    "support_qa": "Lumen Notes support questions with the key fact a good answer contains",
    "rag_qa": "Questions about the Lumen Notes help centre with reference answers and source passages",
}


def load_sample_datasets() -> list[str]:
    """Register the sample eval datasets once (a dataset of the same name is left alone)."""
    from workbench import datasets

    existing = {d["name"] for d in datasets.list_datasets()}
    loaded = []
    for name, filename in SAMPLE_DATASETS.items():
        path = config.SAMPLE_DATA / filename
        if name in existing or not path.exists():
            continue
        parsed = datasets.parse_dataset(path.read_bytes(), filename)
        datasets.save_version(
            name,
            parsed,
            note="sample data",
            source_filename=filename,
            description=SAMPLE_DESCRIPTIONS[name],
            author="sample data",
        )
        loaded.append(name)
    return loaded


def load_sample_review() -> list[str]:
    """The sample review queue with two reviewers' labels, so the Scorers page shows agreement figures."""
    from workbench import review

    path = config.SAMPLE_DATA / "review_sample.jsonl"
    loaded = review.load_sample(path) if path.exists() else None
    return [loaded] if loaded else []


def load_all() -> dict:
    """Everything sample, idempotently."""
    return {
        "prompts": load_sample_prompts(),
        "datasets": load_sample_datasets(),
        "review_queues": load_sample_review(),
    }
