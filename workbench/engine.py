"""The run engine: fill in one shard of a run's pending items, concurrently and durably.

The engine knows nothing of queues or leases: `workbench.jobs` claims a shard of a run and then
calls `execute_shard`, which stops when its items run out, when `stop` is set (a cancel, a lost
lease, a shutdown) or when the run's budget has no room for another call.

- asyncio with `concurrency / shards` coroutines pulling items, so the bound holds run-wide.
- Every model call, the judges' included, goes through `workbench.models.client`: cache, the
  model's rpm, the run budget (reserved on the run row before each call), retries.
- Scorers other than judges are CPU work and run in threads; without judges an item's scoring
  does not hold up its coroutine (the next call starts while it is scored). Judge calls are
  made in the item's slot, so `concurrency` bounds every call in flight, judges' included.
- Results reach the database through one writer that commits small batches; an item is stored
  only while it is still pending, so no item is stored twice whoever else called it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from storage import execution
from storage.tables import PromptVersion, Run
from workbench import guardrails, prompts, runs, templates
from workbench.calls import call_values
from workbench.llm import CallResult, ModelSpec, litellm_module, request_hash
from workbench.models.client import Budget, BudgetExceeded, CallOptions, call
from workbench.models.rate import RateLimits
from workbench.scoring import ScoreContext, apply

BATCH_MAX = 200
BREAKER_AFTER = 5  # consecutive timeouts / connection errors that open a model's circuit
BATCH_WAIT_S = 0.05
LOCAL_PREFIX = "local/"


@dataclass
class WorkItem:
    item_id: int
    prompt_version_id: int
    model: str
    row_id: int
    repeat: int
    spec: ModelSpec | None = None
    messages: list | None = None
    digest: str | None = None
    row: dict | None = None


class Progress:
    """In-memory counters for progress callbacks (the database stays the source of truth)."""

    def __init__(self, counts: dict[str, int], spent: float):
        self.total = sum(counts.values())
        self.done = counts.get("done", 0)
        self.failed = counts.get("error", 0) + counts.get("blocked", 0)
        self.spent = spent
        self.calls = 0
        self.cached = 0
        self.started = time.perf_counter()

    def snapshot(self) -> dict:
        elapsed = time.perf_counter() - self.started
        return {
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "remaining": self.total - self.done - self.failed,
            "cost_usd": self.spent,
            "calls": self.calls,
            "cached": self.cached,
            "calls_per_s": self.calls / elapsed if elapsed > 0 else 0.0,
        }


def _prepare(run: Run, work: list[WorkItem], rows: dict) -> list[tuple[WorkItem, str]]:
    """Render every item's messages up front; a render failure is that item's final error."""
    specs = runs.model_specs(run)
    versions: dict[int, PromptVersion] = {}
    failures = []
    rows = _with_retrieval(run, rows, {item.row_id for item in work})
    for item in work:
        version = versions.get(item.prompt_version_id) or prompts.version_by_id(item.prompt_version_id)
        versions[item.prompt_version_id] = version
        base = specs.get(item.model)
        if base is None:
            failures.append((item, f"model {item.model!r} is not in the run config"))
            continue
        item.spec = ModelSpec(
            id=base.id,
            api_base=base.api_base,
            api_key=base.api_key,
            params={**(version.params or {}), **base.params},
            rpm=base.rpm,
        )
        item.row = rows.get(item.row_id, {})
        try:
            item.messages = prompts.render_messages(version, item.row)
        except templates.TemplateError as exc:
            failures.append((item, str(exc)))
            continue
        item.digest = request_hash(item.spec, item.messages, item.spec.params)
    return failures


def _with_retrieval(run: Run, rows: dict, row_ids: set[int]) -> dict:
    """For a RAG run, add each row's retrieved chunks (`_retrieved`) and `context` (what
    {{context}} becomes). Retrieval is deterministic for an index version, so a resumed run
    retrieves the same chunks again instead of storing them twice."""
    rag = run.config.get("rag")
    if not rag or not row_ids:
        return rows
    from workbench.rag import index
    from workbench.rag.evaluate import format_context

    ids = sorted(row_ids)
    questions = [str((rows.get(i) or {}).get(rag["question_column"], "")) for i in ids]
    retrieved = index.query_many(rag["index_version_id"], questions, k=rag["k"])
    out = dict(rows)
    for row_id, chunks in zip(ids, retrieved):
        out[row_id] = {**(rows.get(row_id) or {}), "context": format_context(chunks), "_retrieved": chunks}
    return out


def scorers_call_models(run: Run) -> bool:
    """Whether the run's scorers make model calls (judges), which need litellm even when every
    answer comes from the cache."""
    return any(isinstance(c, dict) and c.get("type") == "llm_judge" for c in run.config.get("scorers") or [])


def _local_slots() -> int:
    """How many calls the embedded model's server takes at once (1 when it cannot say)."""
    try:
        from workbench import local_server  # type: ignore[attr-defined]

        return max(1, int(local_server.parallel_slots()))
    except Exception:
        return 1


async def execute_shard(
    run_id: int,
    shard: int = 0,
    shards: int = 1,
    *,
    stop: threading.Event | None = None,
    on_progress: Callable[[dict], None] | None = None,
    max_attempts: int = 5,
    timeout: float = 60.0,
) -> str | None:
    """Fill in this shard's pending items. Returns why it stopped early ("cancelled",
    "budget_exceeded", "stopped"), or None when it ran out of items."""
    stop = stop or threading.Event()
    run = runs.get_run(run_id)
    work = [WorkItem(*row) for row in execution.pending_items(run_id, shard, shards)]
    counts = execution.status_counts(run_id)
    rows = execution.dataset_rows(run.dataset_version_id or 0, {w.row_id for w in work}) if work else {}
    failures = _prepare(run, work, rows)
    progress = Progress(counts, float(run.spent_usd or 0.0))
    queue: asyncio.Queue = asyncio.Queue()
    for item, message in failures:
        queue.put_nowait(_entry(item, None, status="error", error_type="render", error=message))
    failed_ids = {item.item_id for item, _ in failures}
    todo = [w for w in work if w.item_id not in failed_ids]
    options = CallOptions(
        use_cache=run.use_cache,
        max_attempts=max_attempts,
        timeout=timeout,
        budget=Budget(run_id) if run.budget_usd is not None else None,
        limits=RateLimits(share=1.0 / shards, scope=f"run{run_id}-{shard}"),
        slots={LOCAL_PREFIX: asyncio.Semaphore(_local_slots())},
    )
    if run.use_cache:
        from storage import ledger

        options.cache = ledger.cached_replies({w.digest for w in todo if w.repeat == 0 and w.digest})
    if any(w.repeat or w.digest not in (options.cache or {}) for w in todo) or scorers_call_models(run):
        litellm_module()  # seconds of import: before the loop starts, and only when a call is due
    repeat_options = CallOptions(**{**options.__dict__, "use_cache": False})  # repeats always call
    judge_options = CallOptions(**{**options.__dict__, "cache": None})  # judges look their replies up one by one
    scorers = apply.prepare(run.config.get("scorers") or [])
    has_judge = any(s.is_judge for s in scorers)
    guard_config = run.config.get("guardrails") or {}
    input_guards, output_guards = guard_config.get("input") or [], guard_config.get("output") or []
    pending = list(reversed(todo))
    breaker = Breaker()
    reason: list[str] = []
    scoring: set[asyncio.Task] = set()

    def stopped() -> bool:
        if stop.is_set() and not reason:
            reason.append("stopped")
        return bool(reason)

    async def judge_call(spec: ModelSpec, messages: list) -> CallResult:
        try:
            return await call(spec, messages, judge_options, stopped)
        except BudgetExceeded:
            if not reason:
                reason.append("budget_exceeded")
            return CallResult(
                model=spec.id,
                messages=messages,
                params=dict(spec.params),
                request_hash=request_hash(spec, messages, spec.params),
                error_type="budget",
                error="not called: the run's budget is reached",
            )

    async def finish(item: WorkItem, result: CallResult, entry: dict) -> None:
        """Guardrails, PII redaction and scoring of one answered item, then hand it to the writer."""
        if result.ok:
            if guard_config.get("redact_pii"):
                result.output = guardrails.redact(result.output or "")
            if output_guards:
                blocked, findings = await asyncio.to_thread(apply.check_guards, result.output or "", output_guards)
                entry["scores"].append(apply.guard_scores("guard_output", findings))
                if blocked:
                    entry.update(
                        status="blocked",
                        error_type="guardrail",
                        error="output blocked: " + "; ".join(f.describe() for f in findings),
                    )
            if scorers:
                context = ScoreContext(
                    row=item.row or {},
                    latency_ms=result.latency_ms,
                    cost_usd=result.cost_usd,
                    input_tokens=result.input_tokens,
                    output_tokens=result.output_tokens,
                    input_text="\n".join(m["content"] for m in item.messages or []),
                )
                rows, judge_calls = await apply.score_output(scorers, result.output or "", context, call=judge_call)
                entry["scores"] += rows
                entry["judge_calls"] = [r for r in judge_calls if r.error_type != "budget"]  # never sent
        queue.put_nowait(entry)

    async def worker() -> None:
        while pending and not stopped():
            item = pending.pop()
            assert item.spec is not None and item.messages is not None
            entry = _entry(item, None)
            if input_guards:
                text = "\n".join(m["content"] for m in item.messages)
                blocked, findings = await asyncio.to_thread(apply.check_guards, text, input_guards)
                entry["scores"].append(apply.guard_scores("guard_input", findings))
                if blocked:
                    entry.update(
                        status="blocked",
                        error_type="guardrail",
                        error="input blocked: " + "; ".join(f.describe() for f in findings),
                    )
                    queue.put_nowait(entry)
                    continue
            if breaker.is_open(item.model):
                entry.update(status="error", error_type="circuit_open", error=breaker.why(item.model))
                queue.put_nowait(entry)
                continue
            try:
                result = await call(
                    item.spec,
                    item.messages,
                    options if item.repeat == 0 else repeat_options,
                    lambda: stopped() or breaker.is_open(item.model),
                    lambda attempt: breaker.record(item.model, attempt),
                )
            except BudgetExceeded:
                if not reason:
                    reason.append("budget_exceeded")
                break
            entry["result"] = result
            if has_judge:  # judge calls are model calls: they take this coroutine's slot
                await finish(item, result, entry)
            else:  # CPU scorers run in threads while this slot already makes the next call
                task = asyncio.create_task(finish(item, result, entry))
                scoring.add(task)
                task.add_done_callback(scoring.discard)

    async def watch_stop() -> None:
        while not stopped():
            await asyncio.sleep(0.2)

    writer_task = asyncio.create_task(_writer(run_id, queue, progress, on_progress))
    watcher = asyncio.create_task(watch_stop())
    try:
        slots = max(1, run.concurrency // shards)
        await asyncio.gather(*(worker() for _ in range(min(slots, len(pending)) or 0)))
        while scoring:
            await asyncio.gather(*list(scoring))
    finally:
        watcher.cancel()
        await queue.put(None)
        await writer_task
    return reason[0] if reason else None


class Breaker:
    """A run-level circuit breaker per model: after BREAKER_AFTER consecutive attempts (retries
    included, across all calls) that ended in a timeout or a connection error, the model is taken as
    down: calls stop retrying and its remaining items of this shard become `circuit_open` errors at
    once, instead of each waiting through its retries (a dead endpoint would otherwise hold a 1 000-row run for hours). They are resumable:
    `--retry-errors` or Resume with retry."""

    def __init__(self, after: int = BREAKER_AFTER):
        self.after = after
        self.failures: dict[str, int] = {}

    def record(self, model: str, result: CallResult) -> None:
        if result.error_type in ("timeout", "connection"):
            self.failures[model] = self.failures.get(model, 0) + 1
        elif result.ok:
            self.failures[model] = 0

    def is_open(self, model: str) -> bool:
        return self.failures.get(model, 0) >= self.after

    def why(self, model: str) -> str:
        return (
            f"not called: {self.failures.get(model, 0)} calls in a row to {model} timed out or could not connect; "
            "resume with --retry-errors once it answers"
        )


def _entry(item: WorkItem, result: CallResult | None, **fields) -> dict:
    return {"item": item, "result": result, "scores": [], "judge_calls": [], **fields}


async def _writer(run_id: int, queue: asyncio.Queue, progress: Progress, on_progress) -> None:
    """Drain finished items in small transactions: one writer, durable per batch."""
    closing = False
    while not closing:
        batch = [await queue.get()]
        deadline = time.monotonic() + BATCH_WAIT_S
        while len(batch) < BATCH_MAX and batch[-1] is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        if None in batch:
            closing = True
            batch = [b for b in batch if b is not None]
            while not queue.empty():
                extra = queue.get_nowait()
                if extra is not None:
                    batch.append(extra)
        if batch:
            await asyncio.to_thread(_write_batch, run_id, batch, progress)
            if on_progress:
                on_progress(progress.snapshot())


def _write_batch(run_id: int, batch: list, progress: Progress) -> None:
    """One transaction per batch: calls (main and judge) inserted together, items updated."""
    calls: list[dict] = []
    owners: list[int | None] = []
    items: list[dict] = []
    scores: list[dict] = []
    for index, entry in enumerate(batch):
        item, result = entry["item"], entry["result"]
        if result is not None:
            calls.append(call_values(result, "run", item.prompt_version_id, run_id))
            owners.append(index)
        for reply in entry["judge_calls"]:
            calls.append(call_values(reply, "judge", item.prompt_version_id, run_id))
            owners.append(None)
        status = entry.get("status") or ("done" if result is not None and result.ok else "error")
        items.append(
            {
                "id": item.item_id,
                "status": status,
                "error_type": entry.get("error_type") or (result.error_type if result is not None else None),
                "error": entry.get("error") or (result.error if result is not None else None),
            }
        )
        scores += [{**score, "item_index": index} for score in entry["scores"]]
    written = set(execution.write_results(run_id, calls, owners, items, scores))
    for entry, item in zip(batch, items):
        if item["id"] not in written:
            continue
        result = entry["result"]
        if result is not None:
            progress.calls += 1
            progress.cached += int(result.cached)
        for reply in ([result] if result is not None else []) + entry["judge_calls"]:
            progress.spent += reply.cost_usd or 0.0
        if item["status"] == "done":
            progress.done += 1
        else:
            progress.failed += 1
