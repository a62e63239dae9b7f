"""Runs: an eval config becomes a plan of items, stored before any call is made.

A run is prompt versions x models x dataset rows x repeats. `create_run` validates
everything that can be validated offline (prompts resolve, the dataset satisfies every
prompt's variables, models and scorers are well-formed), then writes the run and all
its items in one transaction. Execution (workbench.engine) only fills items in, so
progress is a count over items and resume is "run the items that are not done".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from storage import datasets as dataset_repo
from storage import leases, queries
from storage import runs as repo
from storage.tables import DatasetVersion, PromptVersion, Run, utcnow
from workbench import datasets, guardrails, prompts, secrets
from workbench.errors import NotFound, WorkbenchError
from workbench.llm import ModelSpec
from workbench.scoring import scorer_variables, store, validate_scorer_config

FINAL_STATUSES = ("done", "failed", "cancelled", "budget_exceeded")
# judge-agreement thresholds (workbench.review.AGREEMENT_METRICS; repeated so runs need not import review)
AGREEMENT_METRICS = ("spearman", "kendall", "exact", "within_1", "kappa", "pass_kappa", "precision", "recall")


@dataclass
class RunPlan:
    name: str
    prompt_versions: list[PromptVersion]
    dataset_version: DatasetVersion
    models: list[ModelSpec]
    config: dict
    concurrency: int = 8
    repeat: int = 1
    use_cache: bool = True
    budget_usd: float | None = None
    scorers: list[dict] = field(default_factory=list)
    limit: int | None = None  # only the first N dataset rows (smoke tests, CI)


def load_config(path: str | Path) -> dict:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkbenchError(f"Config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise WorkbenchError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise WorkbenchError(f"{path}: the config must be a mapping with prompts, dataset and models.")
    config["_base_dir"] = str(path.resolve().parent)
    return config


def _resolve_prompt(entry) -> PromptVersion:
    if isinstance(entry, str):
        return prompts.resolve(entry)
    if isinstance(entry, dict) and entry.get("name"):
        kind = "chat" if entry.get("messages") else "text"
        saved = prompts.save_version(
            entry["name"],
            kind=kind,
            template=entry.get("template"),
            messages=entry.get("messages"),
            model=entry.get("model", prompts.DEFAULT_MODEL),
            params=entry.get("params") or {},
            note=entry.get("note", "from eval config"),
        )
        return saved.version
    raise WorkbenchError(f"A prompt entry must be 'name@version', 'name@label' or {{name, template}}: got {entry!r}")


def plan_from_config(config: dict) -> RunPlan:
    """Resolve and validate a config; nothing about the run is stored yet (inline prompts and a
    dataset file are registered as versions, which is idempotent)."""
    for key in ("prompts", "dataset", "models"):
        if not config.get(key):
            raise WorkbenchError(f"The config needs '{key}'.")
    try:
        versions = [_resolve_prompt(p) for p in config["prompts"]]
    except NotFound as exc:
        raise WorkbenchError(str(exc)) from None
    dataset_version = datasets.resolve_for_run(config["dataset"], base_dir=config.get("_base_dir"))
    rag = _rag_config(config.get("rag"), dataset_version)
    provided = {"context"} if rag else set()
    for version in versions:
        missing = [v for v in version.variables if v not in dataset_version.columns and v not in provided]
        if missing:
            raise WorkbenchError(
                f"Dataset '{datasets.label_of(dataset_version)}' lacks column(s) {', '.join(missing)} "
                f"needed by prompt {prompts.prompt_name_of(version)} v{version.version}; "
                f"it has: {', '.join(dataset_version.columns)}."
            )
    models = [ModelSpec.parse(m) for m in config["models"]]
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise WorkbenchError("The same model is listed twice; give one of them another api_base or remove it.")
    try:
        scorers = store.expand(list(config.get("scorers") or []))
    except NotFound as exc:
        raise WorkbenchError(str(exc)) from None
    problems = scorer_problems(scorers)
    if problems:
        raise WorkbenchError("Scorer config: " + "; ".join(problems))
    needed = {name for c in scorers for name in scorer_variables(c)}
    missing = sorted(needed - set(dataset_version.columns))
    if missing:
        raise WorkbenchError(
            f"Scorers refer to column(s) {', '.join(missing)} that dataset "
            f"'{datasets.label_of(dataset_version)}' lacks."
        )
    guard_config = config.get("guardrails") or {}
    if not isinstance(guard_config, dict):
        raise WorkbenchError("guardrails must be a mapping with 'input' and/or 'output' lists.")
    for side in ("input", "output"):
        for guard in guard_config.get(side) or []:
            issues = guardrails.validate_guard_config(guard)
            if issues:
                raise WorkbenchError(f"guardrails.{side}: " + "; ".join(issues))
    concurrency = int(config.get("concurrency", 8))
    repeat = int(config.get("repeat", 1))
    if not 1 <= concurrency <= 1024:
        raise WorkbenchError("concurrency must be between 1 and 1024.")
    if not 1 <= repeat <= 100:
        raise WorkbenchError("repeat must be between 1 and 100.")
    budget = config.get("budget_usd")
    limit = config.get("limit")
    if limit is not None and int(limit) < 1:
        raise WorkbenchError("limit must be a positive number of rows.")
    public = {k: v for k, v in config.items() if not k.startswith("_")}
    public["models"] = [_public_model(entry) for entry in config["models"]]
    public["scorers"] = scorers
    if rag:
        public["rag"] = rag
    public = secrets.strip_keys(public)  # scorers, guardrails, anything: only ${VARIABLE} references are stored
    return RunPlan(
        name=str(config.get("description") or config.get("name") or ""),
        prompt_versions=versions,
        dataset_version=dataset_version,
        models=models,
        config=public,
        concurrency=concurrency,
        repeat=repeat,
        use_cache=bool(config.get("cache", True)),
        budget_usd=float(budget) if budget is not None else None,
        scorers=scorers,
        limit=int(limit) if limit is not None else None,
    )


def _rag_config(rag, dataset_version) -> dict | None:
    """Validate a `rag:` section: a ready index version, k, and the column holding the question."""
    if not rag:
        return None
    from workbench.rag import index

    if not isinstance(rag, dict) or not rag.get("index"):
        raise WorkbenchError("rag: needs an index, e.g. rag: {index: help@2, k: 5}")
    try:
        version = index.resolve(rag["index"])
    except (NotFound, WorkbenchError, ValueError) as exc:
        raise WorkbenchError(f"rag.index: {exc}") from None
    if index.effective_status(version) != "ready":
        raise WorkbenchError(f"rag.index {index.label(version)} is not ready ({index.effective_status(version)}).")
    column = rag.get("question_column", "question")
    if column not in dataset_version.columns:
        raise WorkbenchError(f"rag.question_column {column!r} is not a column of the dataset.")
    k = int(rag.get("k", 5))
    if not 1 <= k <= 100:
        raise WorkbenchError("rag.k must be between 1 and 100.")
    return {"index": index.label(version), "index_version_id": version.id, "k": k, "question_column": column}


def _public_model(entry) -> dict | str:
    """A model entry as stored: an env reference (`${VAR}`) is kept so resume works; a literal key never is."""
    if not isinstance(entry, dict):
        return entry
    stored = {k: v for k, v in entry.items() if k != "api_key"}
    key = entry.get("api_key")
    if isinstance(key, str) and key.startswith("${") and key.endswith("}"):
        stored["api_key"] = key
    return stored


def scorer_problems(scorers: list) -> list[str]:
    problems = []
    for index, config in enumerate(scorers, 1):
        if not isinstance(config, dict):
            problems.append(f"scorer {index} must be a mapping with a type")
            continue
        problems += [f"scorer {index} ({config.get('type')}): {p}" for p in validate_scorer_config(config)]
    return problems


# Literal API keys typed into a config or the UI live only in this process's memory, so a run
# started here can use them; a resume in another process needs a `${VAR}` reference instead.
_literal_keys: dict[tuple[int, str], str] = {}


def create_run(plan: RunPlan) -> int:
    """Write the run and its whole plan of items in one transaction; returns the run id."""
    run = Run(
        name=plan.name,
        config=plan.config,
        status="pending",
        dataset_version_id=plan.dataset_version.id,
        concurrency=plan.concurrency,
        budget_usd=plan.budget_usd,
        use_cache=plan.use_cache,
        repeat=plan.repeat,
    )
    assert plan.dataset_version.id is not None
    row_ids = dataset_repo.row_ids(plan.dataset_version.id, plan.limit)
    items = [
        {
            "prompt_version_id": v.id,
            "model": m.label,
            "dataset_row_id": row_id,
            "repeat": r,
            "status": "pending",
        }
        for v in plan.prompt_versions
        for m in plan.models
        for row_id in row_ids
        for r in range(plan.repeat)
    ]
    if not items:
        raise WorkbenchError("The dataset has no rows: nothing to run.")
    run_id = repo.create(run, items)
    for spec in plan.models:
        if spec.api_key:
            _literal_keys[(run_id, spec.label)] = spec.api_key
    return run_id


def model_specs(run: Run) -> dict[str, ModelSpec]:
    """The run's models by label, keys re-read from the environment (they are never stored)."""
    specs = {}
    for entry in run.config.get("models", []):
        spec = ModelSpec.parse(entry)
        if not spec.api_key and run.id is not None:
            spec.api_key = _literal_keys.get((run.id, spec.label))
        specs[spec.label] = spec
    return specs


def get_run(run_id: int) -> Run:
    run = repo.get(run_id)
    if run is None:
        raise NotFound(f"No run with id {run_id}.")
    return run


ACTIVE = ("queued", "running", "cancelling")


def job_prefix(run_id: int) -> str:
    """The keys of a run's jobs (its shards, see workbench.jobs.runs) start with this."""
    return f"run:{run_id}:"


def effective_status(run: Run) -> str:
    """What a person should see: an active run with no live worker is `queued` while one of its
    shards waits for a worker, `interrupted` when none is left to do (its worker died)."""
    if run.status not in ACTIVE:
        return run.status
    prefix = job_prefix(run.id or 0)
    if leases.holders(prefix):
        return "cancelling" if run.status == "cancelling" else "running"
    return "queued" if leases.pending(prefix) else "interrupted"


def request_cancel(run_id: int) -> str:
    """Ask the run to stop. A run no worker holds is cancelled at once; a running one stops at its
    worker's next heartbeat (a worker in any process)."""
    run = get_run(run_id)
    if run.status not in ACTIVE + ("pending", "interrupted"):
        return run.status
    if leases.holders(job_prefix(run_id)):
        mark(run_id, status="cancelling")
        return "cancelling"
    leases.drop(job_prefix(run_id))
    mark(run_id, status="cancelled", finished_at=utcnow())
    return "cancelled"


def _progress(counts: dict, calls: tuple) -> dict:
    total = sum(counts.values())
    done = counts.get("done", 0)
    failed = counts.get("error", 0) + counts.get("blocked", 0)
    first, last = calls[5], calls[6]
    elapsed = (last - first).total_seconds() if first and last else 0.0
    return {
        "total": total,
        "done": done,
        "failed": failed,
        "remaining": counts.get("pending", 0),
        "calls": calls[0],
        "cached": calls[1] or 0,
        "cost_usd": float(calls[2]),
        "input_tokens": int(calls[3]),
        "output_tokens": int(calls[4]),
        "calls_per_s": (calls[0] / elapsed) if elapsed > 0 else None,
    }


def progress(run_id: int) -> dict:
    """Counts over items and spend so far, in SQL."""
    found = repo.progress_counts([run_id])[run_id]
    return _progress(found["items"], found["calls"])


def list_runs(limit: int = 50) -> list[dict]:
    runs = repo.latest(limit)
    counts = repo.progress_counts([run.id for run in runs if run.id is not None])
    out = []
    for run in runs:
        found = counts[run.id or 0]
        p = _progress(found["items"], found["calls"])
        out.append(
            {
                "id": run.id,
                "name": run.name,
                "status": effective_status(run),
                "created": run.created_at,
                "done": p["done"],
                "failed": p["failed"],
                "total": p["total"],
                "cost_usd": p["cost_usd"],
            }
        )
    return out


RESULT_COLUMNS = [
    "item_id",
    "row_key",
    "prompt",
    "version",
    "model",
    "repeat",
    "status",
    "input",
    "output",
    "expected",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cached",
    "error",
]


def results(
    run_id: int, limit: int | None = 200, offset: int = 0, status: str | None = None, search: str | None = None
) -> list[dict]:
    """One page of per-item results joined with their row, version and call."""
    rows = repo.results(run_id, limit, offset, status, search)
    out = []
    for item, row, version, prompt_name, call, scores in rows:
        record = {
            "item_id": item.id,
            "row_key": row.row_key,
            "prompt": prompt_name,
            "version": version.version,
            "model": item.model,
            "repeat": item.repeat,
            "status": item.status,
            "input": json.dumps({k: row.data.get(k) for k in version.variables}, ensure_ascii=False),
            "output": call.output if call else None,
            "expected": row.data.get("expected"),
            "latency_ms": call.latency_ms if call else None,
            "input_tokens": call.input_tokens if call else None,
            "output_tokens": call.output_tokens if call else None,
            "cost_usd": call.cost_usd if call else None,
            "cached": call.cached if call else None,
            "error": item.error or (call.error if call else None),
        }
        for name, score in scores.items():
            record[f"{name}.score"] = score.value
            record[f"{name}.passed"] = score.passed
            record[f"{name}.reason"] = score.error or score.reason
        out.append(record)
    return out


def export(run_id: int, fmt: str) -> bytes:
    rows = results(run_id, limit=None)
    columns = list(dict.fromkeys(key for row in rows for key in row)) or RESULT_COLUMNS
    if fmt == "jsonl":
        return datasets.to_jsonl_bytes(rows)
    if fmt == "csv":
        return datasets.to_csv_bytes(columns, rows)
    raise WorkbenchError("Export format must be csv or jsonl.")


def mark(run_id: int, **fields) -> None:
    if fields.get("error"):  # an exception's text can quote a provider's reply, and with it a key
        fields["error"] = secrets.mask(fields["error"])
    repo.update_fields(run_id, **fields)


def now():
    return utcnow()


def summary(run_id: int) -> dict:
    """Progress plus per-scorer aggregates, all computed in SQL."""
    p = progress(run_id)
    scorers = queries.score_summary(run_id)
    finished = p["done"] + p["failed"]
    pass_rate = queries.overall_pass_rate(run_id) if scorers else (p["done"] / finished if finished else None)
    return {
        **p,
        "scorers": scorers,
        "pass_rate": pass_rate,
        "error_rate": (p["failed"] / finished) if finished else None,
    }


def check_thresholds(result: dict, thresholds: dict, default_error_rate: float | None = 0.0) -> list[str]:
    """Failures as readable lines; empty when every threshold holds.

    `pass_rate`, `<scorer>.mean` and `<scorer>.pass_rate` are minimums; `error_rate` is a maximum.
    `error_rate` applies even when not given: `default_error_rate` (0, so in CI a run with any
    errored or blocked row fails, like a test suite with an erroring test). `error_rate: null` in
    the config turns it off.
    `<judge scorer>.kappa` (or another of AGREEMENT_METRICS) is a minimum agreement with the human
    labels of its review queues, so CI refuses to trust an uncalibrated judge.
    """
    failures = []
    by_name = {s["scorer"]: s for s in result.get("scorers", [])}
    given = dict(thresholds or {})
    defaulted = "error_rate" not in given
    if defaulted:
        given["error_rate"] = default_error_rate
    for key, limit in given.items():
        if limit is None:
            if key != "error_rate":
                failures.append(f"{key}: give a number (only error_rate can be null, to turn it off)")
            continue
        limit = float(limit)
        if key in ("pass_rate", "error_rate"):
            value = result.get(key)
        elif "." in key and key.rpartition(".")[2] in AGREEMENT_METRICS:
            value = (result.get("agreement") or {}).get(key)  # filled in by the caller from workbench.review
            if value is None:
                failures.append(f"{key}: no reviewed rows with {key.rpartition('.')[0]} scores (calibrate it first)")
                continue
        elif "." in key:
            name, _, metric = key.rpartition(".")
            if name not in by_name:
                failures.append(f"{key}: no scorer named {name!r} in this run")
                continue
            value = by_name[name].get(metric)
        else:
            failures.append(f"{key}: unknown threshold (use pass_rate, error_rate, <scorer>.mean, <scorer>.pass_rate)")
            continue
        if value is None:
            if not (key == "error_rate" and defaulted):
                failures.append(f"{key}: no value (nothing was scored)")
        elif key == "error_rate" and value > limit:
            hint = " (the default; set thresholds: {error_rate: null} to allow errors)" if defaulted else ""
            failures.append(f"error_rate {value:.3f} > {limit}{hint}")
        elif key != "error_rate" and value < limit:
            failures.append(f"{key} {value:.3f} < {limit}")
    return failures
