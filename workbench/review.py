"""Human review: queues of a run's rows, labels from several people, and what they say about a judge.

A queue is a snapshot: each item keeps what the reviewer sees (input, output, reference, context)
and the scores the row had when the queue was made, so labelling reads the same after a re-score;
calibration reads the live scores where the item still points at a run item. Labels are never
changed: a re-label is a new row and each reviewer's newest label counts (storage/reviews.py).

The human value of an item is the mean of its reviewers' scores and the majority of their pass/fail
verdicts (a tie counts as fail: a judge should not be credited with passing what half the team
rejects). Pairwise items show variant A on the left or the right at random; the stored choice is
always the variant, never the side.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable
from typing import Any, Literal

from storage import reviews as store
from storage.tables import ReviewItem, ReviewLabel, ReviewQueue
from workbench import calibration, config
from workbench.errors import NotFound, WorkbenchError

HOW = ("all", "filter", "sample", "disagreement")
DEFAULT_RUBRIC = {"scale": [1, 5], "pass_fail": True, "golden": True, "instructions": "", "blind": True}
AGREEMENT_METRICS = ("spearman", "kendall", "exact", "within_1", "kappa", "pass_kappa", "precision", "recall")
EXPORT_COLUMNS = ["item_id", "position", "row_key", "input", "output", "expected", "reviewer", "score", "passed"]
EXPORT_COLUMNS += ["choice", "note", "golden"]


# ---------------------------------------------------------------- rubric and queues


def check_rubric(rubric: dict | None) -> dict:
    """A complete rubric from a partial one; bad input is a WorkbenchError saying what is wrong."""
    filled = {**DEFAULT_RUBRIC, **(rubric or {})}
    scale = filled.get("scale")
    if scale is not None:
        if not isinstance(scale, (list, tuple)) or len(scale) != 2 or int(scale[0]) >= int(scale[1]):
            raise WorkbenchError("The rubric's scale must be [min, max] with min < max, e.g. [1, 5].")
        filled["scale"] = [int(scale[0]), int(scale[1])]
    if filled["scale"] is None and not filled["pass_fail"]:
        raise WorkbenchError("A rubric needs a score scale, pass/fail, or both.")
    return filled


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise WorkbenchError("Give the review queue a name.")
    if store.queue_by_name(name) is not None:
        raise WorkbenchError(f"A review queue named {name!r} exists already.")
    return name


def get_queue(ref: str | int) -> ReviewQueue:
    """A queue by id or name."""
    queue = store.queue_by_id(int(ref)) if str(ref).isdigit() else store.queue_by_name(str(ref))
    if queue is None:
        raise NotFound(f"No review queue {ref!r}.")
    return queue


def list_queues() -> list[dict]:
    return store.list_queues()


def _scales(run_config: dict) -> dict[str, list[float]]:
    """Each judge scorer's scale in a run, by scorer name."""
    from workbench.scoring import scorer_name
    from workbench.scoring.judge import judge_config

    out = {}
    for scorer in run_config.get("scorers") or []:
        if isinstance(scorer, dict) and scorer.get("type") == "llm_judge":
            low, high = judge_config(scorer)["scale"]
            out[scorer_name(scorer)] = [low, high]
    return out


def _run_rows(run_id: int) -> tuple[list[dict], dict[str, dict], dict]:
    """The run's results, its dataset rows by key, and its config."""
    from workbench import datasets, runs

    run = runs.get_run(run_id)
    rows = dict(datasets.rows(run.dataset_version_id)) if run.dataset_version_id else {}
    return runs.results(run_id, limit=None), rows, run.config


def _scores_of(result: dict) -> dict[str, dict]:
    scores: dict[str, dict] = {}
    for key, value in result.items():
        name, _, part = key.rpartition(".")
        if name and part in ("score", "passed", "reason"):
            scores.setdefault(name, {})[{"score": "value"}.get(part, part)] = value
    return scores


def _snapshot(result: dict, row: dict, scales: dict) -> dict:
    return {
        "variant": f"{result['prompt']}@v{result['version']} · {result['model']}",
        "input": result["input"],
        "output": result["output"],
        "expected": result["expected"],
        "context": row.get("context"),
        "row": row,
        "scores": _scores_of(result),
        "scales": scales,
    }


def _normalised(score: dict, scale: list[float] | None) -> float | None:
    if score.get("value") is not None:
        low, high = scale or (0.0, 1.0)
        return (float(score["value"]) - low) / ((high - low) or 1.0)
    if score.get("passed") is not None:
        return 1.0 if score["passed"] else 0.0
    return None


def disagreement(group: list[dict], scorers: list[str] | None, scales: dict) -> float:
    """How much the judgements of one row disagree, on a 0-1 scale: the range of the chosen scorers'
    normalised values over the row's repeats and over the scorers (two judges, or one judge asked
    several times). A row judged once by one scorer has none."""
    values = []
    for result in group:
        for name, score in _scores_of(result).items():
            if scorers and name not in scorers:
                continue
            value = _normalised(score, scales.get(name))
            if value is not None:
                values.append(value)
    return max(values) - min(values) if len(values) > 1 else 0.0


def select_rows(
    results: list[dict],
    how: str = "all",
    n: int | None = None,
    seed: int = 0,
    status: str | None = None,
    search: str | None = None,
    failing: str | None = None,
    scorers: list[str] | None = None,
    scales: dict | None = None,
) -> list[dict]:
    """Pick the results a queue holds: one per row and variant (the first repeat), then all, a
    filter (status, text in the output, rows a scorer failed), a random sample of n (seeded) or the
    n rows whose judgements disagree most (most first)."""
    if how not in HOW:
        raise WorkbenchError(f"Choose rows by one of: {', '.join(HOW)}.")
    groups: dict[tuple, list[dict]] = {}
    for result in results:
        groups.setdefault((result["prompt"], result["version"], result["model"], result["row_key"]), []).append(result)
    picked = [(group[0], group) for group in groups.values()]
    if how == "filter":
        if status:
            picked = [(r, g) for r, g in picked if r["status"] == status]
        if search:
            picked = [(r, g) for r, g in picked if search.lower() in (r["output"] or "").lower()]
        if failing:
            picked = [(r, g) for r, g in picked if r.get(f"{failing}.passed") is False]
    if how == "sample":
        if not n:
            raise WorkbenchError("Give the number of rows to sample.")
        picked = random.Random(seed).sample(picked, min(n, len(picked)))
    elif how == "disagreement":
        scorers = scorers or list(scales or {}) or None  # the judges by default: assertions do not "disagree"
        spread = [(disagreement(g, scorers, scales or {}), i) for i, (_, g) in enumerate(picked)]
        order = [i for value, i in sorted(spread, key=lambda pair: (-pair[0], pair[1]))]
        picked = [picked[i] for i in order]
        if all(value == 0 for value, _ in spread):
            raise WorkbenchError(
                "No row has two judgements to disagree: the run needs two judge scorers or repeat > 1."
            )
    if n and how != "sample":
        picked = picked[:n]
    return [r for r, _ in picked]


def create_queue(
    name: str,
    run_id: int,
    how: str = "all",
    n: int | None = None,
    seed: int = 0,
    rubric: dict | None = None,
    status: str | None = None,
    search: str | None = None,
    failing: str | None = None,
    scorers: list[str] | None = None,
    author: str | None = None,
) -> ReviewQueue:
    """A queue of a run's rows for people to label (items in the order chosen)."""
    name = _check_name(name)
    filled = check_rubric(rubric)
    results, rows, run_config = _run_rows(run_id)
    scales = _scales(run_config)
    chosen = select_rows(results, how, n, seed, status, search, failing, scorers, scales)
    if not chosen:
        raise WorkbenchError("No rows match: the queue would be empty.")
    items = [
        {"run_item_id": r["item_id"], "row_key": r["row_key"], "data": _snapshot(r, rows.get(r["row_key"], {}), scales)}
        for r in chosen
    ]
    source = {"how": how, "n": n, "seed": seed, "status": status, "search": search, "failing": failing}
    queue = ReviewQueue(
        name=name, kind="rows", run_id=run_id, rubric=filled, source=source, author=author or config.author()
    )
    return store.create_queue(queue, items)


def variants(run_id: int) -> list[str]:
    """The run's variants (prompt version x model) as labels, for a pairwise queue."""
    results, _, _ = _run_rows(run_id)
    return list(dict.fromkeys(f"{r['prompt']}@v{r['version']} · {r['model']}" for r in results))


def create_pairwise_queue(
    name: str,
    a: tuple[int, str],
    b: tuple[int, str],
    n: int | None = None,
    seed: int = 0,
    instructions: str = "",
    author: str | None = None,
) -> ReviewQueue:
    """Rows both variants answered, each shown with A on a random side (seeded). `a` and `b` are
    (run id, variant label from `variants`)."""
    name = _check_name(name)
    sides = []
    for run_id, label in (a, b):
        results, rows, _ = _run_rows(run_id)
        by_row = {}
        for r in results:
            if f"{r['prompt']}@v{r['version']} · {r['model']}" == label and r["repeat"] == 0:
                by_row[r["row_key"]] = r
        if not by_row:
            raise WorkbenchError(f"Run {run_id} has no variant {label!r}.")
        sides.append((by_row, rows))
    common = [key for key in sides[0][0] if key in sides[1][0]]
    if not common:
        raise WorkbenchError("The two variants share no dataset rows.")
    rng = random.Random(seed)
    if n:
        common = rng.sample(common, min(n, len(common)))
    items = []
    for key in common:
        ra, rb = sides[0][0][key], sides[1][0][key]
        data = {
            "input": ra["input"],
            "expected": ra["expected"],
            "context": sides[0][1].get(key, {}).get("context"),
            "row": sides[0][1].get(key, {}),
            "a": {"variant": a[1], "run_id": a[0], "item_id": ra["item_id"], "output": ra["output"]},
            "b": {"variant": b[1], "run_id": b[0], "item_id": rb["item_id"], "output": rb["output"]},
        }
        items.append({"run_item_id": None, "row_key": key, "data": data, "swapped": rng.random() < 0.5})
    rubric = {"scale": None, "pass_fail": False, "golden": False, "instructions": instructions, "blind": True}
    queue = ReviewQueue(
        name=name,
        kind="pairwise",
        run_id=a[0],
        rubric=rubric,
        source={"a": list(a), "b": list(b), "n": n, "seed": seed},
        author=author or config.author(),
    )
    return store.create_queue(queue, items)


def update_rubric(queue: ReviewQueue, rubric: dict) -> int:
    """A new rubric version; labels given before keep the version they were given under."""
    return store.update_rubric(int(queue.id or 0), check_rubric(rubric))


# ---------------------------------------------------------------- reviewing


def items(queue: ReviewQueue) -> list[ReviewItem]:
    return store.items(int(queue.id or 0))


def view(queue: ReviewQueue, item: ReviewItem, show_scores: bool = False) -> dict:
    """What a reviewer sees of an item. Blind by default: the judge's scores only when asked.
    A pairwise item becomes `left` and `right` answers in the item's random order."""
    data = dict(item.data)
    out = {
        "item_id": item.id,
        "position": item.position,
        "row_key": item.row_key,
        "input": data.get("input"),
        "expected": data.get("expected"),
        "context": data.get("context"),
    }
    if queue.kind == "pairwise":
        first, second = (data["b"], data["a"]) if item.swapped else (data["a"], data["b"])
        out["left"], out["right"] = first["output"], second["output"]
        return out
    out["output"] = data.get("output")
    out["variant"] = data.get("variant")
    if show_scores:
        out["scores"] = data.get("scores") or {}
    return out


def _reviewer(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise WorkbenchError("Type your name before labelling: labels are kept per reviewer.")
    return name


def make_label(
    queue: ReviewQueue,
    item_id: int,
    reviewer: str,
    score: float | None = None,
    passed: bool | None = None,
    note: str = "",
    golden: str | None = None,
    choice: str | None = None,
    skip: bool = False,
) -> ReviewLabel:
    """A checked label (not yet stored); problems are WorkbenchErrors naming the value."""
    rubric = queue.rubric or {}
    if not skip:
        if queue.kind == "pairwise":
            if choice not in ("A", "B", "tie"):
                raise WorkbenchError(f"A pairwise choice is A, B or tie, not {choice!r}.")
        else:
            scale = rubric.get("scale")
            if score is not None:
                if not scale:
                    raise WorkbenchError("This queue's rubric has no score scale.")
                if not scale[0] <= float(score) <= scale[1]:
                    raise WorkbenchError(f"score {score:g} is outside the scale {scale[0]}-{scale[1]}.")
            if passed is not None and not rubric.get("pass_fail"):
                raise WorkbenchError("This queue's rubric has no pass/fail.")
            if score is None and passed is None:
                raise WorkbenchError("Give a score or a pass/fail verdict (or skip the item).")
    return ReviewLabel(
        item_id=item_id,
        reviewer=_reviewer(reviewer),
        rubric_version=queue.rubric_version,
        score=None if skip or score is None else float(score),
        passed=None if skip else passed,
        choice=None if skip else choice,
        skipped=skip,
        note=note or "",
        golden=(golden or None) if not skip else None,
    )


def label(queue: ReviewQueue, item_id: int, reviewer: str, **fields: Any) -> ReviewLabel:
    """Store one label (a new row; an earlier label by the same reviewer is kept, not changed)."""
    if item_id not in {i.id for i in items(queue)}:
        raise WorkbenchError(f"Item {item_id} is not in queue {queue.name!r}.")
    made = make_label(queue, item_id, reviewer, **fields)
    store.add_labels([made])
    return made


def label_pairwise(queue: ReviewQueue, item: ReviewItem, reviewer: str, side: str) -> ReviewLabel:
    """The reviewer picked the `left` or `right` answer (or `tie`): stored as the variant it was."""
    if side not in ("left", "right", "tie"):
        raise WorkbenchError(f"Pick left, right or tie, not {side!r}.")
    choice = "tie" if side == "tie" else ("A" if (side == "left") != item.swapped else "B")
    return label(queue, int(item.id or 0), reviewer, choice=choice)


def labels(queue: ReviewQueue, reviewer: str | None = None) -> list[ReviewLabel]:
    """Each reviewer's current (newest) label per item."""
    return store.labels(int(queue.id or 0), reviewer)


def history(queue: ReviewQueue) -> list[ReviewLabel]:
    """Every label ever given in the queue, re-labels included."""
    return store.labels(int(queue.id or 0), latest_only=False)


def next_position(queue: ReviewQueue, reviewer: str, after: int = -1) -> int | None:
    """The first item after `after` the reviewer has not labelled or skipped (wrapping round)."""
    done = {label.item_id for label in labels(queue, reviewer)}
    todo = [i.position for i in items(queue) if i.id not in done]
    later = [p for p in todo if p > after]
    return (later or todo)[0] if todo else None


def progress(queue: ReviewQueue) -> list[dict]:
    """Per reviewer: items labelled, skipped and left."""
    total = len(items(queue))
    out: dict[str, dict] = {}
    for label_ in labels(queue):
        entry = out.setdefault(label_.reviewer, {"reviewer": label_.reviewer, "labelled": 0, "skipped": 0})
        entry["skipped" if label_.skipped else "labelled"] += 1
    return [{**e, "left": total - e["labelled"] - e["skipped"], "total": total} for e in out.values()]


def human_values(queue: ReviewQueue) -> dict[int, dict]:
    """{item_id: {score: reviewers' mean, passed: majority (ties fail), n: reviewers}}."""
    by_item: dict[int, list[ReviewLabel]] = {}
    for label_ in labels(queue):
        if not label_.skipped:
            by_item.setdefault(label_.item_id, []).append(label_)
    out = {}
    for item_id, given in by_item.items():
        scores = [g.score for g in given if g.score is not None]
        verdicts = [g.passed for g in given if g.passed is not None]
        out[item_id] = {
            "score": sum(scores) / len(scores) if scores else None,
            "passed": (sum(verdicts) > len(verdicts) / 2) if verdicts else None,
            "n": len(given),
        }
    return out


def reviewer_agreement(queue: ReviewQueue) -> dict:
    """Krippendorff's alpha among the queue's reviewers (scores ordinal, else pass/fail nominal):
    the ceiling a judge can reach on these rows."""
    current = [label_ for label_ in labels(queue) if not label_.skipped]
    reviewers = sorted({label_.reviewer for label_ in current})
    item_ids = sorted({label_.item_id for label_ in current})
    uses_scores = any(label_.score is not None for label_ in current)
    cell = {
        (label_.reviewer, label_.item_id): (
            label_.score if uses_scores else (None if label_.passed is None else float(label_.passed))
        )
        for label_ in current
    }
    matrix = [[cell.get((r, i)) for i in item_ids] for r in reviewers]
    level: Literal["ordinal", "nominal"] = "ordinal" if uses_scores else "nominal"
    doubly = sum(1 for i in item_ids if sum(cell.get((r, i)) is not None for r in reviewers) >= 2)
    return {
        "alpha": calibration.krippendorff_alpha(matrix, level=level) if len(reviewers) >= 2 else None,
        "level": level,
        "reviewers": len(reviewers),
        "items": doubly,
    }


# ---------------------------------------------------------------- calibration


def _judge_scale(item: ReviewItem, scorer: str) -> list[float] | None:
    return (item.data.get("scales") or {}).get(scorer)


def judged_scorers(queue: ReviewQueue) -> list[str]:
    """Scorers with a score on some item of the queue (snapshot or live)."""
    queue_items = items(queue)
    names = {name for i in queue_items for name in (i.data.get("scores") or {})}
    live = store.scores_for_items([i.run_item_id for i in queue_items if i.run_item_id])
    names |= {name for per in live.values() for name in per}
    return sorted(names)


def calibration_pairs(queue: ReviewQueue, scorer: str) -> list[dict]:
    """(judge, human) per labelled item; the judge's score read live where the item points at a run
    item and rescaled onto the rubric's scale when the judge uses another one."""
    humans = human_values(queue)
    queue_items = [i for i in items(queue) if i.id in humans]
    live = store.scores_for_items([i.run_item_id for i in queue_items if i.run_item_id])
    rubric_scale = (queue.rubric or {}).get("scale")
    pairs = []
    for item in queue_items:
        score = (live.get(item.run_item_id or -1) or {}).get(scorer) or (item.data.get("scores") or {}).get(scorer)
        if not score or score.get("error"):
            continue
        value = score.get("value")
        judge_scale = _judge_scale(item, scorer)
        if value is not None and rubric_scale and judge_scale and list(judge_scale) != list(rubric_scale):
            lo, hi = judge_scale
            value = rubric_scale[0] + (float(value) - lo) / (hi - lo) * (rubric_scale[1] - rubric_scale[0])
        human = humans[int(item.id or 0)]
        pairs.append(
            {"judge": value, "human": human["score"], "judge_pass": score.get("passed"), "human_pass": human["passed"]}
        )
    return pairs


def calibrate(queue: ReviewQueue, scorer: str, n_boot: int = calibration.N_BOOT, seed: int = 0) -> dict:
    """The judge's agreement with the queue's reviewers, with the reviewers' own agreement beside it."""
    scale = (queue.rubric or {}).get("scale") or [1, 5]
    result = calibration.agreement(calibration_pairs(queue, scorer), scale=tuple(scale), n_boot=n_boot, seed=seed)
    result["reviewers"] = reviewer_agreement(queue)
    result["scorer"], result["queue"] = scorer, queue.name
    result["poor"] = calibration.poor(result)
    return result


def calibrations(n_boot: int = calibration.N_BOOT) -> list[dict]:
    """Every (queue, judge scorer) with labelled rows: what the Scorers page and the warnings read."""
    out = []
    for queue_id in store.all_labelled_queue_ids():
        queue = get_queue(queue_id)
        if queue.kind != "rows":
            continue
        for scorer in judged_scorers(queue):
            result = calibrate(queue, scorer, n_boot=n_boot)
            if result["n_scores"] or result["n_verdicts"]:
                out.append(result)
    return out


def stamp() -> tuple[int, int]:
    """Changes whenever a label or a score is added: the key of the pages' cached calibrations."""
    return store.stamp()


def poor_judges(scorer_names, results: list[dict] | None = None) -> dict[str, str]:
    """{scorer: why} for the named scorers that agree poorly with people in some queue. Only the
    named scorers are calibrated (point estimates): the pages call this on every view."""
    wanted = set(scorer_names)
    if results is None:
        results = []
        for queue_id in store.all_labelled_queue_ids():
            queue = get_queue(queue_id)
            if queue.kind == "rows":
                results += [calibrate(queue, name, n_boot=0) for name in judged_scorers(queue) if name in wanted]
    found = {}
    for result in results:
        if result["scorer"] in wanted and result["poor"] and result["scorer"] not in found:
            found[result["scorer"]] = f"{result['poor']} (queue {result['queue']})"
    return found


def agreements(thresholds: dict | None) -> dict[str, float | None]:
    """The judge-agreement values that `thresholds` names (`<scorer>.kappa`, ...), by key, for
    `runs.check_thresholds` (which reads them from the result's "agreement")."""
    keys = [k for k in thresholds or {} if "." in k and k.rpartition(".")[2] in AGREEMENT_METRICS]
    return {k: agreement_value(*k.rsplit(".", 1)) for k in keys}


def agreement_value(scorer: str, metric: str, queue: str | None = None) -> float | None:
    """A judge's agreement metric for a threshold: the named queue, else the queue with the most
    labelled rows for it (None when no reviewed row has its score)."""
    if metric not in AGREEMENT_METRICS:
        raise WorkbenchError(f"{metric!r} is not an agreement metric ({', '.join(AGREEMENT_METRICS)}).")
    if queue is not None:
        results = [calibrate(get_queue(queue), scorer, n_boot=0)]
    else:
        results = [r for r in calibrations(n_boot=0) if r["scorer"] == scorer]
    results.sort(key=lambda r: -(r["n_scores"] + r["n_verdicts"]))
    return calibration.value_of(results[0], metric) if results else None


def pairwise_summary(queue: ReviewQueue) -> dict:
    """People's verdicts on a pairwise queue as B's win rate over A (ties half) with its interval (one vote per
    reviewer and item)."""
    from workbench import stats

    rate = stats.pairwise_win_rate([lbl.choice for lbl in labels(queue) if lbl.choice])
    source = queue.source or {}
    return {"a": (source.get("a") or [None, "A"])[1], "b": (source.get("b") or [None, "B"])[1], "rate": rate}


# ---------------------------------------------------------------- sample data

SAMPLE_QUEUE = "sample-support-review"


def load_sample(path) -> str | None:
    """The sample review queue (support answers, two judges, labels by two reviewers) once; a queue
    of that name is left alone. Its judge scores are illustrative, written by hand (see the README),
    so a fresh install shows real agreement figures without calling a model."""
    if store.queue_by_name(SAMPLE_QUEUE) is not None:
        return None
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rubric = check_rubric(
        {"scale": [1, 5], "pass_fail": True, "golden": True, "instructions": "Is the answer correct and helpful?"}
    )
    items, given = [], []
    for record in records:
        scales = {name: [1, 5] for name in record["scores"]}
        row = {"question": record["input"], "expected": record.get("expected") or ""}
        data = {
            "variant": "sample answers",
            "input": record["input"],
            "output": record["output"],
            "expected": record.get("expected") or "",
            "context": None,
            "row": row,
            "scores": record["scores"],
            "scales": scales,
        }
        items.append({"run_item_id": None, "row_key": record["row_key"], "data": data})
        given.append([{**entry, "note": entry.get("note") or "", "rubric_version": 1} for entry in record["labels"]])
    queue = ReviewQueue(
        name=SAMPLE_QUEUE, kind="rows", rubric=rubric, source={"how": "sample data"}, author="sample data"
    )
    store.create_queue(queue, items, given)
    return SAMPLE_QUEUE


def pairwise_for_runs(run_ids) -> list[dict]:
    """People's pairwise verdicts on variants of these runs (for the Compare page)."""
    wanted = {int(r) for r in run_ids}
    out = []
    for entry in list_queues():
        if entry["kind"] != "pairwise" or not entry["labelled"]:
            continue
        queue = get_queue(entry["id"])
        source = queue.source or {}
        if {int(source["a"][0]), int(source["b"][0])} <= wanted:
            out.append({"queue": queue.name, **pairwise_summary(queue)})
    return out


def judge_scorers(run_id: int) -> list[str]:
    """The LLM-judge scorers of a run, by name (what re-judging can repeat)."""
    from workbench import runs

    return list(_scales(runs.get_run(run_id).config))


# ---------------------------------------------------------------- re-judging


def rejudge(
    run_id: int,
    scorer: str,
    times: int = 3,
    limit: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Ask a run's judge `times` times per row with the cache bypassed: each row's spread and the
    share of rows whose verdict flips. Cancellable between calls (`should_stop`); every call is in
    the ledger as a `judge` call of the run."""
    import asyncio

    from workbench import runs
    from workbench.models import client
    from workbench.scoring import ScoreContext, scorer_name
    from workbench.scoring.judge import ajudge

    if not 2 <= int(times) <= 20:
        raise WorkbenchError("Re-judge between 2 and 20 times.")
    run = runs.get_run(run_id)
    configs = [c for c in run.config.get("scorers") or [] if c.get("type") == "llm_judge" and scorer_name(c) == scorer]
    if not configs:
        raise WorkbenchError(f"Run {run_id} has no LLM-judge scorer named {scorer!r}.")
    results, rows, _ = _run_rows(run_id)
    todo = [r for r in results if r["repeat"] == 0 and r["output"] is not None][:limit]
    options = client.default_options()
    options.use_cache = False
    total, done = len(todo) * int(times), 0
    per_row = []

    async def ask(result: dict):
        row = rows.get(result["row_key"], {})
        context = ScoreContext(row=row, input_text=result["input"])
        verdict, reply = await ajudge(
            configs[0], result["output"], context, call=lambda s, m: client.call(s, m, options)
        )
        client.record(reply, "judge", run_id=run_id)
        return verdict

    for result in todo:
        verdicts = []
        for _ in range(int(times)):
            if should_stop and should_stop():
                break
            verdicts.append(asyncio.run(ask(result)))
            done += 1
            if on_progress:
                on_progress(done, total)
        values = [v.score for v in verdicts if v.score is not None]
        passes = {v.passed for v in verdicts if v.passed is not None}
        per_row.append(
            {
                "item_id": result["item_id"],
                "row_key": result["row_key"],
                "scores": values,
                "mean": sum(values) / len(values) if values else None,
                "spread": max(values) - min(values) if values else None,
                "flips": len(passes) > 1,
                "errors": sum(1 for v in verdicts if v.error),
            }
        )
        if should_stop and should_stop():
            break
    judged = [r for r in per_row if r["scores"]]
    return {
        "rows": per_row,
        "times": int(times),
        "flip_share": sum(r["flips"] for r in judged) / len(judged) if judged else None,
        "mean_spread": sum(r["spread"] for r in judged) / len(judged) if judged else None,
        "cancelled": bool(should_stop and should_stop()),
    }


# ---------------------------------------------------------------- golden sets


def golden_dataset(queue: ReviewQueue, name: str, note: str = ""):
    """Reviewed rows with a corrected answer become a dataset version: the row's columns, `expected`
    set to the golden answer (the newest one given), and the reviewers' `human_score`/`human_pass`."""
    from workbench import datasets

    humans = human_values(queue)
    golden: dict[int, str] = {}
    for label_ in labels(queue):
        if label_.golden:
            golden[label_.item_id] = label_.golden  # labels come oldest first: the newest wins
    records = []
    for item in items(queue):
        if item.id not in golden:
            continue
        human = humans.get(int(item.id or 0), {})
        row = dict(item.data.get("row") or {})
        if not row:
            row = {"input": item.data.get("input")}
        row["expected"] = golden[int(item.id or 0)]
        row["human_score"] = "" if human.get("score") is None else human["score"]
        row["human_pass"] = "" if human.get("passed") is None else bool(human["passed"])
        records.append(row)
    if not records:
        raise WorkbenchError("No reviewed row in this queue has a corrected answer yet.")
    columns = list(dict.fromkeys(k for r in records for k in r))
    parsed = datasets.from_records(columns, records)
    return datasets.save_version(name, parsed, note=note or f"golden answers from review queue {queue.name}")


# ---------------------------------------------------------------- export and import


def export_csv(queue: ReviewQueue) -> bytes:
    """One line per item and reviewer label (an unlabelled item gets one line with no reviewer),
    ready to be filled in elsewhere and imported."""
    by_item: dict[int, list[ReviewLabel]] = {}
    for label_ in labels(queue):
        by_item.setdefault(label_.item_id, []).append(label_)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for item in items(queue):
        data = item.data
        output = data.get("output") if queue.kind == "rows" else ""
        base = {
            "item_id": item.id,
            "position": item.position,
            "row_key": item.row_key,
            "input": data.get("input") or "",
            "output": output or "",
            "expected": data.get("expected") or "",
        }
        for label_ in by_item.get(int(item.id or 0)) or [None]:  # type: ignore[list-item]
            if label_ is None:
                writer.writerow(base)
                continue
            writer.writerow(
                {
                    **base,
                    "reviewer": label_.reviewer,
                    "score": "" if label_.score is None else f"{label_.score:g}",
                    "passed": "" if label_.passed is None else ("pass" if label_.passed else "fail"),
                    "choice": label_.choice or ("skip" if label_.skipped else ""),
                    "note": label_.note,
                    "golden": label_.golden or "",
                }
            )
    return buffer.getvalue().encode("utf-8")


_PASS = {"pass": True, "true": True, "1": True, "yes": True, "fail": False, "false": False, "0": False, "no": False}


def _parse_line(queue: ReviewQueue, number: int, line: dict, item_ids: set[int]) -> ReviewLabel | None:
    try:
        item_id = int(str(line.get("item_id") or "").strip())
    except ValueError:
        raise WorkbenchError(f"line {number}: item_id {line.get('item_id')!r} is not a number") from None
    if item_id not in item_ids:
        raise WorkbenchError(f"line {number}: item {item_id} is not in queue {queue.name!r}")
    reviewer = (line.get("reviewer") or "").strip()
    score_text = (line.get("score") or "").strip()
    passed_text = (line.get("passed") or "").strip().lower()
    choice = (line.get("choice") or "").strip()
    if not reviewer and not (score_text or passed_text or choice):
        return None  # an exported, unlabelled item
    if not reviewer:
        raise WorkbenchError(f"line {number}: no reviewer")
    if passed_text and passed_text not in _PASS:
        raise WorkbenchError(f"line {number}: passed must be pass or fail, not {passed_text!r}")
    try:
        score = float(score_text) if score_text else None
    except ValueError:
        raise WorkbenchError(f"line {number}: score {score_text!r} is not a number") from None
    try:
        return make_label(
            queue,
            item_id,
            reviewer,
            score=score,
            passed=_PASS[passed_text] if passed_text else None,
            note=line.get("note") or "",
            golden=(line.get("golden") or "").strip() or None,
            choice=None if choice == "skip" else (choice or None),
            skip=choice == "skip",
        )
    except WorkbenchError as exc:
        raise WorkbenchError(f"line {number}: {exc}") from None


def _same(a: ReviewLabel, b: ReviewLabel) -> bool:
    fields = ("score", "passed", "choice", "skipped", "note", "golden")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


def import_csv(queue: ReviewQueue, content: bytes) -> dict:
    """Labels made elsewhere (the export's columns; item_id, reviewer and score or passed suffice).
    Every problem is collected with its line number (unknown items, out-of-scale scores, the same
    item and reviewer twice) and any problem refuses the whole file; a line equal to the reviewer's
    current label adds nothing, so importing an export again is harmless."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WorkbenchError("The labels file is not UTF-8 text.") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("item_id", "reviewer") if c not in (reader.fieldnames or [])]
    if missing:
        raise WorkbenchError(f"The labels file lacks column(s) {', '.join(missing)}.")
    item_ids = {int(i.id or 0) for i in items(queue)}
    current = {(lbl.item_id, lbl.reviewer): lbl for lbl in labels(queue)}
    problems: list[str] = []
    made: list[ReviewLabel] = []
    seen: dict[tuple[int, str], int] = {}
    for number, line in enumerate(reader, start=2):
        try:
            parsed = _parse_line(queue, number, line, item_ids)
        except WorkbenchError as exc:
            problems.append(str(exc))
            continue
        if parsed is None:
            continue
        key = (parsed.item_id, parsed.reviewer)
        if key in seen:
            problems.append(f"line {number}: item {key[0]} by {key[1]} again (first on line {seen[key]})")
            continue
        seen[key] = number
        if key in current and _same(current[key], parsed):
            continue
        made.append(parsed)
    if problems:
        raise WorkbenchError("Nothing imported: " + "; ".join(problems[:20]) + (" …" if len(problems) > 20 else ""))
    store.add_labels(made)
    return {"imported": len(made), "unchanged": len(seen) - len(made)}


# ---------------------------------------------------------------- CLI


def add_cli(subparsers) -> None:
    review = subparsers.add_parser("review", help="export or import human review labels")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    export = review_sub.add_parser("export", help="write a queue's items and labels as CSV")
    export.add_argument("queue", help="queue name or id")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)
    importer = review_sub.add_parser("import", help="add labels made elsewhere (all or nothing)")
    importer.add_argument("queue", help="queue name or id")
    importer.add_argument("labels", help="CSV with item_id, reviewer, score and/or passed, note, golden")
    importer.set_defaults(func=cmd_import)
    judge = subparsers.add_parser("judge", help="how far to trust an LLM judge")
    judge_sub = judge.add_subparsers(dest="judge_command", required=True)
    calibrate_ = judge_sub.add_parser("calibrate", help="agreement of a judge scorer with human labels")
    calibrate_.add_argument("scorer", help="the judge scorer's name (its column in runs)")
    calibrate_.add_argument("--queue", required=True, help="review queue name or id")
    calibrate_.set_defaults(func=cmd_calibrate)


def cmd_export(args) -> int:
    import sys

    try:
        data = export_csv(get_queue(args.queue))
    except (NotFound, WorkbenchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "wb") as handle:
            handle.write(data)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def cmd_import(args) -> int:
    import sys

    try:
        with open(args.labels, "rb") as handle:
            result = import_csv(get_queue(args.queue), handle.read())
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (NotFound, WorkbenchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"imported {result['imported']} label(s); {result['unchanged']} unchanged")
    return 0


def format_metric(entry: dict) -> str:
    if entry["value"] is None:
        return "-"
    interval = f" [{entry['low']:.2f}, {entry['high']:.2f}]" if entry["low"] is not None else ""
    return f"{entry['value']:.2f}{interval}"


def cmd_calibrate(args) -> int:
    import sys

    try:
        result = calibrate(get_queue(args.queue), args.scorer)
    except (NotFound, WorkbenchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not result["metrics"]:
        print(f"no reviewed row of queue {args.queue} has a {args.scorer} score", file=sys.stderr)
        return 1
    print(f"{args.scorer} against people in queue {result['queue']}")
    print(f"  {'metric':<12}{'value [95% CI]':>24}{'n':>6}")
    for entry in result["metrics"]:
        print(f"  {entry['metric']:<12}{format_metric(entry):>24}{entry['n']:>6}")
    alpha = result["reviewers"]["alpha"]
    ceiling = f"{alpha:.2f}" if alpha is not None else "-"
    print(
        f"  reviewers' Krippendorff alpha {ceiling} ({result['reviewers']['reviewers']} reviewers, "
        f"{result['reviewers']['items']} items labelled twice or more)"
    )
    labels_ = result["confusion"]["labels"]
    print("  confusion (rows: people, columns: judge) " + " ".join(str(x) for x in labels_))
    for value, row in zip(labels_, result["confusion"]["matrix"]):
        print(f"    {value}: " + " ".join(f"{c:>3}" for c in row))
    if result["poor"]:
        print(f"  WARNING: {result['poor']}: do not trust this judge's scores alone")
    print(json.dumps({"n_scores": result["n_scores"], "n_verdicts": result["n_verdicts"]}))
    return 0
