"""The run engine: fill in a run's pending items, concurrently, durably, resumably.

- asyncio with litellm's async API; a pool of `concurrency` workers pulls items, so the
  bound is real and stopping (cancel, budget) simply means workers take no new item.
- The embedded model gets one worker slot of its own (one model on two cores gains
  nothing from parallel calls); hosted models run at the run's concurrency, with an
  optional per-model requests-per-minute limit.
- 429/5xx/timeouts are retried with exponential backoff and jitter, honouring
  Retry-After; other errors are final for that item and the run goes on.
- Results go to the database through one writer that commits small batches, so SQLite
  never sees concurrent writers and every finished item is durable at once. A killed
  process loses only in-flight calls; `execute` again runs exactly the pending items.
- Identical requests are served from the call ledger (cache) unless the run disables
  it; repeats after the first always call the model, so variance stays visible.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, select, update

from storage.db import engine as db_engine
from storage.tables import DatasetRow, LlmCall, PromptVersion, Run, RunItem, Score, utcnow
from workbench import calls as ledger
from workbench import guardrails, prompts, runs, templates
from workbench.llm import CallResult, ModelSpec, acall, backoff_delay, litellm_module, request_hash
from workbench.scoring import ScoreContext, apply

HEARTBEAT_S = 2.0
BATCH_MAX = 200
BATCH_WAIT_S = 0.05
# Workers start RAMP_S apart (the whole ramp at most RAMP_WINDOW_S, or one call's latency once a
# call has been answered), and then the Pacer keeps call starts apart: see Pacer for why.
# Measured on 2 cores, 16 workers per process, 0.2 s latency: replies took 244 ms when all
# started together, 207 ms spread.
RAMP_S = 0.0125
RAMP_WINDOW_S = 0.25
PACE_AFTER = 32  # calls before the CPU per call is known well enough to pace by it
PACE_MAX_S = 0.01


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


class RunState:
    """In-memory counters for progress callbacks (the database stays the source of truth)."""

    def __init__(self, total: int, done: int, failed: int, spent: float, budget: float | None):
        self.total, self.done, self.failed = total, done, failed
        self.spent, self.budget = spent, budget
        self.calls = 0
        self.cached = 0
        self.started = time.perf_counter()
        self.stop_reason: str | None = None
        self.in_flight = 0
        self.mean_cost = 0.0
        self.calls_priced = 0
        self.first_latency_s: float | None = None  # of the first call answered, to pace the ramp

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

    def add_cost(self, result: CallResult) -> None:
        if result.cost_usd:
            self.spent += result.cost_usd
            self.calls_priced += 1
            self.mean_cost += (result.cost_usd - self.mean_cost) / self.calls_priced

    def over_budget(self) -> bool:
        """Stop before spending more: count what the calls in flight will likely cost."""
        if self.budget is None:
            return False
        return self.spent + self.mean_cost * self.in_flight >= self.budget


def _load_work(run: Run, retry_errors: bool, shard: tuple[int, int] = (0, 1)) -> tuple[list[WorkItem], RunState, dict]:
    eng = db_engine()
    with eng.begin() as conn:
        if retry_errors and shard[0] == 0:
            conn.execute(
                update(RunItem)
                .where(RunItem.run_id == run.id, RunItem.status == "error")
                .values(status="pending", error=None, error_type=None, call_id=None)
            )
        counts = dict(
            conn.execute(
                select(RunItem.status, func.count()).where(RunItem.run_id == run.id).group_by(RunItem.status)
            ).all()
        )
        spent = conn.execute(
            select(func.coalesce(func.sum(LlmCall.cost_usd), 0.0)).where(LlmCall.run_id == run.id)
        ).scalar()
        index, shards = shard
        pending = conn.execute(
            select(RunItem.id, RunItem.prompt_version_id, RunItem.model, RunItem.dataset_row_id, RunItem.repeat)
            .where(RunItem.run_id == run.id, RunItem.status == "pending", (RunItem.id % shards) == index)
            .order_by(RunItem.id)
        ).all()
        rows = dict(
            conn.execute(
                select(DatasetRow.id, DatasetRow.data).where(DatasetRow.dataset_version_id == run.dataset_version_id)
            ).all()
        )
    total = sum(counts.values())
    state = RunState(
        total,
        counts.get("done", 0),
        counts.get("error", 0) + counts.get("blocked", 0),
        float(spent or 0.0),
        run.budget_usd,
    )
    return [WorkItem(*p) for p in pending], state, rows


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


def _cached_calls(digests: set[str]) -> dict[str, dict]:
    """Successful, non-cached ledger rows by request hash, fetched in chunks."""
    found: dict[str, dict] = {}
    digests = list(digests)
    with db_engine().connect() as conn:
        for start in range(0, len(digests), 500):
            chunk = digests[start : start + 500]
            for row in conn.execute(
                select(LlmCall.request_hash, LlmCall.output, LlmCall.input_tokens, LlmCall.output_tokens).where(
                    LlmCall.request_hash.in_(chunk), LlmCall.error_type.is_(None), LlmCall.cached.is_(False)
                )
            ):
                found[row.request_hash] = {
                    "output": row.output,
                    "input_tokens": row.input_tokens,
                    "output_tokens": row.output_tokens,
                }
    return found


class Limiter:
    """Spaces call starts at least `interval` seconds apart, one waiter at a time, counted from
    when each call really starts: a late wake-up delays the next start too."""

    def __init__(self, interval: float):
        self.interval = interval
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self):
        async with self.lock:
            delay = self.next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.next_at = time.monotonic() + self.interval


class Pacer(Limiter):
    """Keeps this event loop's call starts at least one call's CPU apart (at most PACE_MAX_S).

    Calls of similar latency that start together come back together, and then stay together:
    asyncio interleaves the parsing of their replies (a few ms of litellm each), so every call
    of the burst waits for the whole burst's CPU, and all of them start their next calls at
    the same moment again. The start ramp spreads the first wave; pacing keeps it spread when
    replies collide later. A loop cannot start calls faster than it parses their replies
    anyway, so the spacing costs no throughput."""

    def __init__(self):
        super().__init__(0.0)
        self.cpu_at_start = time.thread_time()
        self.starts = 0

    async def wait(self) -> None:
        self.starts += 1
        if self.starts <= PACE_AFTER:
            return
        self.interval = min(PACE_MAX_S, (time.thread_time() - self.cpu_at_start) / self.starts)
        await super().wait()


async def execute(
    run_id: int,
    *,
    retry_errors: bool = False,
    max_attempts: int = 5,
    on_progress: Callable[[dict], None] | None = None,
    timeout: float = 120.0,
) -> str:
    """Run every pending item of `run_id`; returns the final status. Safe to call again to resume."""
    run = _start(run_id)
    if run is None:
        return runs.get_run(run_id).status
    try:
        stop_reason = await _execute(run, retry_errors, max_attempts, on_progress, timeout)
    except Exception as exc:
        runs.mark(run_id, status="failed", error=f"{type(exc).__name__}: {exc}", finished_at=utcnow())
        raise
    return _finish(run_id, stop_reason, on_progress)


def _start(run_id: int) -> Run | None:
    run = runs.get_run(run_id)
    if run.status in ("done", "cancelled"):
        return None
    runs.mark(
        run_id,
        status="running",
        started_at=run.started_at or utcnow(),
        heartbeat_at=utcnow(),
        finished_at=None,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        error=None,
    )
    return runs.get_run(run_id)


def _finish(run_id: int, stop_reason: str | None, on_progress=None) -> str:
    """Decide the final status from the stored items (the source of truth, whatever ran them)."""
    p = runs.progress(run_id)
    if stop_reason == "cancelled" or runs.get_run(run_id).status in ("cancelling", "cancelled"):
        final = "cancelled"
    elif stop_reason == "budget_exceeded":
        final = "budget_exceeded"
    elif p["remaining"]:
        final = "interrupted"
    elif p["done"] == 0 and p["failed"] > 0:
        final = "failed"
    else:
        final = "done"
    runs.mark(run_id, status=final, finished_at=utcnow(), heartbeat_at=utcnow())
    if on_progress:
        on_progress({**p, "calls_per_s": p["calls_per_s"] or 0.0, "status": final})
    return final


async def _execute(run, retry_errors, max_attempts, on_progress, timeout, shard=(0, 1)) -> str | None:
    """Fill in this shard's pending items; returns why it stopped early (None when it ran out of work)."""
    work, state, rows = _load_work(run, retry_errors, shard)
    failures = _prepare(run, work, rows)
    queue: asyncio.Queue = asyncio.Queue()
    for item, message in failures:
        queue.put_nowait(
            {
                "item": item,
                "result": None,
                "status": "error",
                "error_type": "render",
                "error": message,
                "scores": [],
                "judge_calls": [],
            }
        )
    failed_ids = {item.item_id for item, _ in failures}
    todo = [w for w in work if w.item_id not in failed_ids]
    cache = _cached_calls({w.digest for w in todo if w.repeat == 0}) if run.use_cache else {}
    if run.status == "budget_exceeded" and state.over_budget():
        state.stop_reason = "budget_exceeded"
    pending = list(reversed(todo))
    scorers = apply.prepare(run.config.get("scorers") or [])
    guard_config = run.config.get("guardrails") or {}
    input_guards, output_guards = guard_config.get("input") or [], guard_config.get("output") or []
    judge_cache = apply.cache_lookup() if run.use_cache else None
    local_slots = asyncio.Semaphore(1)
    pacer = Pacer()
    limiters = {w.spec.label: Limiter(60.0 / w.spec.rpm) for w in todo if w.spec.rpm}  # requests per minute

    async def call_with_retries(item: WorkItem) -> CallResult:
        for attempt in range(max_attempts):
            if item.spec.label in limiters:
                await limiters[item.spec.label].wait()
            if item.spec.id.startswith("local/"):
                async with local_slots:
                    result = await acall(item.spec, item.messages, timeout)
            else:
                await pacer.wait()
                result = await acall(item.spec, item.messages, timeout)
            if result.ok or not result.retryable or attempt == max_attempts - 1 or state.stop_reason:
                return result
            await asyncio.sleep(backoff_delay(attempt, result.retry_after))
        return result

    workers = max(1, run.concurrency // shard[1])
    ramp_step = min(RAMP_S, RAMP_WINDOW_S / workers)

    async def worker():
        while pending and not state.stop_reason:
            if state.over_budget():
                state.stop_reason = "budget_exceeded"
                break
            item = pending.pop()
            entry = {"item": item, "result": None, "scores": [], "judge_calls": []}
            if input_guards:
                text = "\n".join(m["content"] for m in item.messages)
                blocked, findings = apply.check_guards(text, input_guards)
                entry["scores"].append(apply.guard_scores("guard_input", findings))
                if blocked:
                    entry.update(
                        status="blocked",
                        error_type="guardrail",
                        error="input blocked: " + "; ".join(f.describe() for f in findings),
                    )
                    queue.put_nowait(entry)
                    continue
            hit = cache.get(item.digest) if item.repeat == 0 else None
            if hit is not None:
                result = CallResult(
                    model=item.spec.id,
                    messages=item.messages,
                    params=item.spec.params,
                    request_hash=item.digest,
                    output=hit["output"],
                    latency_ms=0.0,
                    input_tokens=hit["input_tokens"],
                    output_tokens=hit["output_tokens"],
                    cost_usd=0.0,
                    cached=True,
                    api_base=item.spec.api_base,
                )
            else:
                state.in_flight += 1
                try:
                    result = await call_with_retries(item)
                finally:
                    state.in_flight -= 1
                state.add_cost(result)
                if state.first_latency_s is None and result.ok:
                    state.first_latency_s = result.latency_ms / 1000
            entry["result"] = result
            if result.ok:
                if guard_config.get("redact_pii"):
                    result.output = guardrails.redact(result.output or "")
                if output_guards:
                    blocked, findings = apply.check_guards(result.output or "", output_guards)
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
                        input_text="\n".join(m["content"] for m in item.messages),
                    )
                    rows, judge_calls = await apply.score_output(
                        scorers, result.output or "", context, cached=judge_cache
                    )
                    entry["scores"] += rows
                    entry["judge_calls"] = judge_calls
                    for reply in judge_calls:
                        state.add_cost(reply)
            queue.put_nowait(entry)

    async def heartbeat():
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            with db_engine().begin() as conn:
                status = conn.execute(select(Run.status).where(Run.id == run.id)).scalar()
                conn.execute(update(Run).where(Run.id == run.id).values(heartbeat_at=utcnow()))
            if status in ("cancelling", "cancelled"):
                state.stop_reason = "cancelled"

    if todo:
        litellm_module()  # its import takes seconds: not inside the first call, with the loop stalled
    writer_task = asyncio.create_task(_writer(run.id, queue, state, on_progress))
    beat_task = asyncio.create_task(heartbeat())
    try:
        started = []
        while len(started) < workers and pending and not state.stop_reason:
            started.append(asyncio.create_task(worker()))
            if state.first_latency_s is not None:  # the ramp need not outlast one call
                ramp_step = min(ramp_step, state.first_latency_s / workers)
            await asyncio.sleep(ramp_step)
        await asyncio.gather(*started)
    finally:
        beat_task.cancel()
        await queue.put(None)
        await writer_task
    return state.stop_reason


async def _writer(run_id: int, queue: asyncio.Queue, state: RunState, on_progress) -> None:
    """Drain finished items in small transactions: one writer, durable per batch."""
    closing = False
    while not closing:
        batch = [await queue.get()]
        deadline = time.monotonic() + BATCH_WAIT_S
        while len(batch) < BATCH_MAX:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), timeout))
            except TimeoutError:
                break
        if batch[-1] is None or None in batch:
            closing = True
            batch = [b for b in batch if b is not None]
            while not queue.empty():
                extra = queue.get_nowait()
                if extra is not None:
                    batch.append(extra)
        if batch:
            _write_batch(run_id, batch, state)
            if on_progress:
                on_progress(state.snapshot())


def _write_batch(run_id: int, batch: list, state: RunState) -> None:
    """One transaction per batch: calls (main and judge) in one multi-row insert, items in one update."""
    now = utcnow()
    call_rows, owners = [], []  # owners[i]: index into batch whose item gets call_rows[i]'s id, or None
    for index, entry in enumerate(batch):
        item, result = entry["item"], entry["result"]
        if result is not None:
            call_rows.append(ledger.call_values(result, "run", item.prompt_version_id, run_id))
            owners.append(index)
        for reply in entry["judge_calls"]:
            call_rows.append(ledger.call_values(reply, "judge", item.prompt_version_id, run_id))
            owners.append(None)
    with db_engine().begin() as conn:
        call_ids = {}
        if call_rows:
            ids = (
                conn.execute(insert(LlmCall).returning(LlmCall.id, sort_by_parameter_order=True), call_rows)
                .scalars()
                .all()
            )
            call_ids = {owner: call_id for owner, call_id in zip(owners, ids) if owner is not None}
        item_updates, score_rows = [], []
        for index, entry in enumerate(batch):
            item, result = entry["item"], entry["result"]
            if result is not None:
                state.calls += 1
                state.cached += int(result.cached)
            status = entry.get("status") or ("done" if result is not None and result.ok else "error")
            error_type = entry.get("error_type") or (result.error_type if result is not None else None)
            error = entry.get("error") or (result.error if result is not None else None)
            item_updates.append(
                {
                    "b_id": item.item_id,
                    "b_status": status,
                    "b_call": call_ids.get(index),
                    "b_type": error_type,
                    "b_error": error,
                    "b_at": now,
                }
            )
            score_rows += [{**score, "run_item_id": item.item_id, "created_at": now} for score in entry["scores"]]
            if status == "done":
                state.done += 1
            else:
                state.failed += 1
        conn.execute(
            update(RunItem)
            .where(RunItem.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                call_id=bindparam("b_call"),
                error_type=bindparam("b_type"),
                error=bindparam("b_error"),
                finished_at=bindparam("b_at"),
            ),
            item_updates,
        )
        if score_rows:
            conn.execute(insert(Score), score_rows)


def run_sync(run_id: int, processes: int = 1, **kwargs) -> str:
    """Execute a run to completion from synchronous code (CLI, worker threads).

    With processes > 1 (CLI only: never from a threaded server), the pending items are split
    by id across forked processes, each with its own event loop and writer: litellm spends a
    few ms of CPU per call, so one process tops out near 200-300 calls/s. Each process gets
    concurrency // processes slots, keeping the global bound.
    """
    if processes <= 1 or not hasattr(os, "fork"):
        return asyncio.run(execute(run_id, **kwargs))
    on_progress = kwargs.pop("on_progress", None)
    run = _start(run_id)
    if run is None:
        return runs.get_run(run_id).status
    from storage import db

    db.dispose_all()  # no database connection may cross a fork
    children = []
    for index in range(1, processes):
        pid = os.fork()
        if pid == 0:  # child: run one shard, report by exit code only
            code = 1
            try:
                db.dispose_all()
                asyncio.run(
                    _execute(runs.get_run(run_id), shard=(index, processes), on_progress=None, **_shard_args(kwargs))
                )
                code = 0
            finally:
                os._exit(code)
        children.append(pid)

    def progress_from_db(_snapshot):
        if on_progress:
            p = runs.progress(run_id)
            on_progress({**p, "calls_per_s": p["calls_per_s"] or 0.0})

    try:
        stop_reason = asyncio.run(
            _execute(runs.get_run(run_id), shard=(0, processes), on_progress=progress_from_db, **_shard_args(kwargs))
        )
    finally:
        failed_children = sum(1 for pid in children if os.waitpid(pid, 0)[1] != 0)
    if failed_children:
        runs.mark(run_id, error=f"{failed_children} worker process(es) failed; resume to finish the run")
    return _finish(run_id, stop_reason, on_progress)


def _shard_args(kwargs: dict) -> dict:
    return {
        "retry_errors": kwargs.get("retry_errors", False),
        "max_attempts": kwargs.get("max_attempts", 5),
        "timeout": kwargs.get("timeout", 120.0),
    }


def auto_processes(run_id: int) -> int:
    """Shard a run across processes only when it pays and is safe: enough hosted-model work, no
    embedded model (each process would load it), and no budget (spend is tracked per process)."""
    import json

    run = runs.get_run(run_id)
    pending = runs.progress(run_id)["remaining"]
    if (
        run.budget_usd is not None
        or "local/" in json.dumps(run.config)
        or pending < 200
        or run.concurrency < 8
        or (os.cpu_count() or 1) < 2
    ):
        return 1
    return min(os.cpu_count() or 1, 4)
