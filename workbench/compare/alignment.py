"""Variants of the runs compared, and their rows paired up by row key.

A *variant* is (run, prompt version, model): one run may hold several (a run over two
prompt versions, or three models), or the user picks several runs. Rows pair up by
`dataset_row.row_key`, which is stable across dataset versions, so runs over different
versions of one dataset still pair; the comparison then says so, because a row's text
may have changed in between.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from storage import comparisons as repo
from storage import ledger
from storage import runs as run_repo
from workbench import secrets
from workbench.compare.result import NOT_INPUT, Metric, Result, Variant
from workbench.errors import NotFound, WorkbenchError


def data_stamp() -> tuple:
    """Changes whenever a comparison's figures can (new calls, scores, runs, finished items): what the
    Compare page keys its cached statistics on, so a widget click does not recompute them."""
    return ledger.stamp()


def _run_ids(run_ids) -> list[int]:
    ids = list(dict.fromkeys(int(r) for r in run_ids))
    if not ids:
        raise WorkbenchError("Pick at least one run to compare.")
    found = run_repo.existing_ids(ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"No run with id {', '.join(map(str, missing))}.")
    return ids


def _labels(found: list[Variant]) -> list[str]:
    """Short names that still tell the variants apart: only the parts that differ are kept."""
    parts = [(f"#{v.run_id}", f"{v.prompt}@{v.version}", v.model) for v in found]
    varying = [i for i in range(3) if len({p[i] for p in parts}) > 1] or [0, 1, 2]
    return [" ".join(p[i] for i in varying) for p in parts]


def variants(run_ids) -> list[Variant]:
    """The (run, prompt version, model) combinations in these runs, in the order the runs were given."""
    ids = _run_ids(run_ids)
    rows = repo.variants(ids)
    found = sorted(
        (
            Variant(
                run_id=r[0],
                prompt_version_id=r[1],
                model=r[2],
                prompt=r[3],
                version=r[4],
                prompt_model=r[5],
                dataset=f"{r[7]}@{r[8]}" if r[7] else "?",
                dataset_version_id=r[6],
                items=r[9],
            )
            for r in rows
        ),
        key=lambda v: (ids.index(v.run_id), v.prompt, v.version, v.model),
    )
    return [Variant(**{**asdict(v), "label": label}) for v, label in zip(found, _labels(found))]


def pick_variant(found: list[Variant], ref) -> Variant:
    """A variant by label, by 1-based position, or by run id when that run holds one variant."""
    text = str(ref).strip()
    for v in found:
        if v.label == text:
            return v
    if text.lstrip("#").isdigit():
        number = int(text.lstrip("#"))
        in_run = [v for v in found if v.run_id == number]
        if len(in_run) == 1:
            return in_run[0]
        if len(in_run) > 1:
            raise WorkbenchError(
                f"Run {number} holds {len(in_run)} variants; name one: " + ", ".join(repr(v.label) for v in in_run)
            )
        if not text.startswith("#") and 1 <= number <= len(found):
            return found[number - 1]
    matches = [v for v in found if text.lower() in v.label.lower()]
    if len(matches) == 1:
        return matches[0]
    raise WorkbenchError(f"No single variant matches {text!r}; variants: " + ", ".join(repr(v.label) for v in found))


def _input_text(data: dict) -> str:
    """What was asked: the row minus its answer key, one value bare or several as `column: value` lines."""
    shown = {k: v for k, v in (data or {}).items() if k not in NOT_INPUT}
    if len(shown) == 1:
        return str(next(iter(shown.values())))
    return "\n".join(f"{k}: {v}" for k, v in shown.items())


def _load_items(ids: list[int], label_of: dict) -> list[dict]:
    rows = repo.items(ids)
    return [
        {
            "item_id": r[0],
            "variant": label_of[(r[1], r[2], r[3])],
            "repeat": r[4],
            "status": r[5],
            "row_key": r[7],
            "data": r[8] or {},
            "dataset_version_id": r[9],
            "call_model": r[10],
            "output": r[11],
            "latency_ms": r[12],
            "cost_usd": r[13],
            "cached": r[14],
            "input_tokens": r[15],
            "output_tokens": r[16],
            "error": secrets.mask(r[6] or r[17]),
        }
        for r in rows
    ]


def _load_scores(ids: list[int]) -> dict[int, dict]:
    """{item id: {scorer: (value, passed, error)}}; a re-scored item keeps its latest score."""
    out: dict[int, dict] = {}
    for item_id, name, value, passed, error in repo.scores(ids):
        out.setdefault(item_id, {})[name] = (value, passed, error)
    return out


def _judge_scale(configs: list[dict], scorer: str) -> float | None:
    from workbench.scoring import scorer_name
    from workbench.scoring.judge import judge_config

    for config in configs:
        if isinstance(config, dict) and config.get("type") == "llm_judge" and scorer_name(config) == scorer:
            low, high = judge_config(config)["scale"]
            return high - low
    return None


def _metrics(scores: dict[int, dict], configs: list[dict]) -> list[Metric]:
    """Which scorers give a pass/fail, a score, or both (a score that is just the pass as 0/1 is not repeated)."""
    seen: dict[str, dict] = {}
    for by_name in scores.values():
        for name, (value, passed, error) in by_name.items():
            flags = seen.setdefault(name, {"pass": False, "score": False, "values": []})
            if error is not None:
                continue
            if passed is not None:
                flags["pass"] = True
            if value is not None:
                flags["values"].append(float(value))
                if passed is None or float(value) != float(bool(passed)):
                    flags["score"] = True
    metrics = []
    for name in sorted(seen):
        flags = seen[name]
        both = flags["pass"] and flags["score"]
        if flags["pass"]:
            metrics.append(Metric(f"{name} pass rate" if both else name, name, "pass", 1.0))
        if flags["score"] or not flags["pass"]:
            values = flags["values"]
            unit = bool(values) and min(values) >= 0 and max(values) <= 1
            metrics.append(
                Metric(f"{name} score" if both else name, name, "score", 1.0 if unit else _judge_scale(configs, name))
            )
    return metrics


def _value(metric: Metric, score) -> float | None:
    if score is None:
        return None
    value, passed, error = score
    if error is not None:
        return None
    if metric.kind == "pass":
        return None if passed is None else float(bool(passed))
    return None if value is None else float(value)


def _align(items: list[dict], scores: dict, metrics: list[Metric], baseline: str) -> tuple[list[dict], int]:
    """Rows keyed by row_key with every variant's outputs and metric values (a list per row: its repeats).

    Input and expected come from the baseline's dataset row when it has one. Returns the
    rows and how many row keys carry different content in different dataset versions.
    """
    rows: dict[str, dict] = {}
    contents: dict[str, set] = {}
    for item in items:
        row = rows.setdefault(
            item["row_key"],
            {
                "row_key": item["row_key"],
                "data": item["data"],
                "outputs": {},
                "errors": {},
                "values": {m.name: {} for m in metrics},
                "from_baseline": False,
            },
        )
        if item["variant"] == baseline and not row["from_baseline"]:
            row["data"], row["from_baseline"] = item["data"], True
        contents.setdefault(item["row_key"], set()).add(json.dumps(item["data"], sort_keys=True, default=str))
        row["outputs"].setdefault(item["variant"], []).append(item["output"])
        row["errors"].setdefault(item["variant"], []).append(item["error"] if item["status"] != "done" else None)
        for metric in metrics:
            score = scores.get(item["item_id"], {}).get(metric.scorer)
            row["values"][metric.name].setdefault(item["variant"], []).append(_value(metric, score))
    out = []
    for row in rows.values():
        data = row.pop("data")
        row.pop("from_baseline")
        out.append(
            {
                "row_key": row["row_key"],
                "input": _input_text(data),
                "expected": data.get("expected"),
                "data": data,
                **row,
            }
        )
    return out, sum(len(c) > 1 for c in contents.values())


def load(run_ids, baseline=None) -> Result:
    """Variants, aligned rows and per-item measurements for these runs (statistics: `compare`)."""
    ids = _run_ids(run_ids)
    found = variants(ids)
    if len(found) < 2:
        raise WorkbenchError(
            "A comparison needs at least two variants: pick two runs, or one run with several "
            "prompt versions or models."
        )
    base = pick_variant(found, baseline) if baseline not in (None, "") else found[0]
    label_of = {(v.run_id, v.prompt_version_id, v.model): v.label for v in found}
    configs = [c for config in run_repo.configs(ids) for c in (config.get("scorers") or [])]
    items = _load_items(ids, label_of)
    scores = _load_scores(ids)
    metrics = _metrics(scores, configs)
    rows, changed = _align(items, scores, metrics, base.label)
    notes = _notes(found, items, rows, changed, metrics)
    return Result(
        run_ids=ids, variants=found, baseline=base.label, metrics=metrics, rows=rows, items=items, notes=notes
    )


def _notes(found: list[Variant], items: list[dict], rows: list[dict], changed: int, metrics: list[Metric]) -> list[str]:
    """Reasons to read the numbers with care, found before any statistics are computed."""
    notes = []
    names = {v.dataset.rpartition("@")[0] for v in found}
    versions = sorted({v.dataset for v in found})
    if len(names) > 1:
        notes.append(
            f"The runs used different datasets ({', '.join(versions)}): only rows with the same row key "
            f"pair up, and those may not be the same question."
        )
    elif len(versions) > 1:
        notes.append(
            f"The runs used different dataset versions ({', '.join(versions)}); rows are aligned by row "
            f"key anyway."
            + (f" {changed} row{'s' if changed != 1 else ''} changed content between versions." if changed else "")
        )
    partial = sum(1 for row in rows if len(row["outputs"]) < len(found))
    if partial:
        notes.append(
            f"{partial} of {len(rows)} rows are missing from some variants; they count as dropped in "
            f"the paired statistics."
        )
    for v in found:
        pending = sum(1 for i in items if i["variant"] == v.label and i["status"] == "pending")
        if pending:
            notes.append(f"{v.label}: {pending} of {v.items} items are not finished yet; comparing what is done.")
    repeats = {v.label: max((len(r["outputs"].get(v.label, [])) for r in rows), default=0) for v in found}
    if len(set(repeats.values())) > 1:
        notes.append(
            "The variants ran different numbers of repeats ("
            + ", ".join(f"{k}: {n}" for k, n in repeats.items())
            + "); statistics use per-row means."
        )
    if not metrics:
        notes.append(
            "No scores were recorded for these runs: add scorers on the Runs page (re-score) to compare "
            "quality; cost and latency are still compared."
        )
    return notes
