"""How the Dashboard's queries scale: a million ledger rows in SQLite, timed against baselines.

Fills a fresh database (in a temporary WORKBENCH_HOME, schema made by the real migrations)
with synthetic calls spread over 90 days, then times each dashboard panel and the whole
page's set of queries for "last 30 days" and "all time". Times are printed as ratios
against two baselines measured in the same run, never as absolute pass/fail:
`SELECT count(*) FROM llm_call` (SQLite answers it from the smallest index) and
`SELECT sum(latency_ms) FROM llm_call` (a full table scan).

    python bench/dashboard_scale.py [--calls 1000000] [--days 90] [--home DIR]

The data is meant to look like a team's ledger: calls grow over the period and follow the
working day; 10 models (one self-hosted and unpriced, one local and free); 8 prompts whose 50
versions go live one after another (most calls use the live version, with the model it was
written for); a third of the calls come from ~330 eval runs with items, scores and a few
guardrail blocks; ~1% errors, ~6% cache hits; rows appended in time order, as the engine does.

`fill()` is also used to seed a small database for screenshots (`--calls 20000 --home DIR
--fill-only`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# model: (USD per 1M input, per 1M output or None = unpriced, median latency ms, share of calls)
MODELS = {
    "openai/gpt-4o-mini": (0.15, 0.60, 650, 0.24),
    "openai/gpt-4o": (2.50, 10.00, 1400, 0.08),
    "openai/gpt-4.1-mini": (0.40, 1.60, 800, 0.10),
    "anthropic/claude-3-5-haiku-latest": (0.80, 4.00, 900, 0.12),
    "anthropic/claude-sonnet-4-20250514": (3.00, 15.00, 2200, 0.06),
    "gemini/gemini-2.0-flash": (0.10, 0.40, 500, 0.12),
    "mistral/mistral-small-latest": (0.20, 0.60, 700, 0.06),
    "groq/llama-3.1-8b-instant": (0.05, 0.08, 250, 0.08),
    "local/smollm2": (0.0, 0.0, 1800, 0.09),
    "vllm/support-finetune": (None, None, 400, 0.05),  # self-hosted, no price known: cost None
}
ERROR_TYPES = ["rate_limit"] * 5 + ["timeout"] * 2 + ["server_error"] * 2 + ["connection", "bad_request", "auth"]
SOURCES = ["playground"] * 4 + ["rag"] * 2 + ["run"] * 3 + ["judge"]
SCORERS = ("contains", "judge_helpfulness", "guard_output")
TS = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores datetimes in SQLite


def _weighted(choices: dict, rng: random.Random):
    names, weights = list(choices), [v[3] for v in choices.values()]
    return lambda: rng.choices(names, weights)[0]


def fill(calls: int = 1_000_000, days: int = 90, seed: int = 7, now: datetime | None = None) -> dict:
    """Write `calls` synthetic ledger rows (plus prompts, runs, run items and scores) into the
    database of the current WORKBENCH_HOME, creating it through the real migrations."""
    from storage import db

    engine = db.engine()
    path = engine.url.database
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    start = now - timedelta(days=days)
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-200000")
    stamp = start.strftime(TS)

    # 8 prompts with 50 versions between them; each version prefers one model.
    prompt_names = [
        "support_answer",
        "summarise_ticket",
        "classify_intent",
        "extract_order",
        "rag_answer",
        "tone_rewrite",
        "judge_helpfulness",
        "sql_helper",
    ]
    versions = []  # (id, prompt index)
    with conn:
        for p, name in enumerate(prompt_names, 1):
            conn.execute(
                "INSERT INTO prompt (id, name, description, created_at) VALUES (?, ?, '', ?)", (p, name, stamp)
            )
        for v in range(1, 51):
            p = (v - 1) % len(prompt_names) + 1
            number = (v - 1) // len(prompt_names) + 1
            conn.execute(
                "INSERT INTO prompt_version (id, prompt_id, version, kind, template, variables, model, params, "
                "content_hash, created_at) VALUES (?, ?, ?, 'text', ?, '[\"question\"]', ?, '{}', ?, ?)",
                (v, p, number, f"v{number}: answer {{{{ question }}}}", "openai/gpt-4o-mini", f"h{v}", stamp),
            )
            versions.append((v, p))
        conn.execute("INSERT INTO dataset (id, name, created_at) VALUES (1, 'bench', ?)", (stamp,))
        conn.execute(
            "INSERT INTO dataset_version (id, dataset_id, version, columns, column_types, row_count, "
            "content_hash, created_at) VALUES (1, 1, 1, '[\"question\"]', '{}', 2000, 'b', ?)",
            (stamp,),
        )
        conn.executemany(
            "INSERT INTO dataset_row (id, dataset_version_id, position, row_key, data) VALUES (?, 1, ?, ?, ?)",
            [(i + 1, i, f"r{i}", json.dumps({"question": f"question {i}"})) for i in range(2000)],
        )

    # Calls grow over the period (the product is being adopted) and follow the working day.
    span = days * 86400.0

    def when() -> datetime:
        while True:
            x = math.sqrt(rng.random())  # density rising linearly towards now
            t = start + timedelta(seconds=x * span)
            if rng.random() < (1.0 if 8 <= t.hour < 19 else 0.35):
                return t

    pick_model = _weighted(MODELS, rng)
    version_model = {v: pick_model() for v, _ in versions}
    sigma = {m: 0.35 + 0.05 * (i % 4) for i, m in enumerate(MODELS)}
    # Runs: each one is a burst of calls over an hour or two, one prompt version x 1-2 models.
    run_count = max(3, calls // 3000)
    run_times = sorted(when() for _ in range(run_count))
    with conn:
        conn.executemany(
            "INSERT INTO run (id, name, config, status, dataset_version_id, concurrency, use_cache, repeat, "
            "created_at, started_at, finished_at, worker) VALUES (?, ?, '{}', 'done', 1, 8, 1, 1, ?, ?, ?, 'bench')",
            [
                (r + 1, f"bench run {r + 1}", t.strftime(TS), t.strftime(TS), (t + timedelta(hours=1)).strftime(TS))
                for r, t in enumerate(run_times)
            ],
        )
    # Versions of a prompt go live one after another over the period; most calls use the live one.
    by_prompt = {}
    for v, p in versions:
        by_prompt.setdefault(p, []).append(v)

    def version_at(t: datetime) -> int:
        chain = by_prompt[rng.randint(1, len(prompt_names))]
        live = min(len(chain) - 1, int((t - start).total_seconds() / span * len(chain)))
        return chain[live] if rng.random() < 0.85 else chain[rng.randint(0, live)]

    run_version = {r + 1: version_at(t) for r, t in enumerate(run_times)}
    run_models = {r + 1: [pick_model(), pick_model()] for r in range(run_count)}

    message = json.dumps(
        [
            {"role": "system", "content": "You are a helpful support assistant."},
            {"role": "user", "content": "Where is my order ORD-0000? It was due last week."},
        ]
    )
    call_rows, item_rows, score_rows = [], [], []
    call_id = item_id = 0
    item_keys = set()
    batch = 100_000
    insert_call = (
        "INSERT INTO llm_call (id, created_at, source, model, request_hash, messages, params, output, "
        "latency_ms, input_tokens, output_tokens, cost_usd, error_type, error, cached, "
        "prompt_version_id, run_id) VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    insert_item = (
        "INSERT INTO run_item (id, run_id, prompt_version_id, model, dataset_row_id, repeat, status, "
        "call_id, error_type, error, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    insert_score = (
        "INSERT INTO score (run_item_id, scorer_name, value, passed, reason, created_at) VALUES (?, ?, ?, ?, '', ?)"
    )

    def flush():
        with conn:
            conn.executemany(insert_call, call_rows)
            conn.executemany(insert_item, item_rows)
            conn.executemany(insert_score, score_rows)
        call_rows.clear(), item_rows.clear(), score_rows.clear()

    # When each call happens, then the calls in time order: the ledger is appended as calls finish.
    events = []
    for _ in range(calls):
        source = rng.choice(SOURCES)
        if source in ("run", "judge"):
            run_id = rng.randint(1, run_count)
            events.append((run_times[run_id - 1] + timedelta(seconds=rng.random() * 5400), source, run_id))
        else:
            events.append((when(), source, None))
    events.sort(key=lambda e: e[0])
    for t, source, run_id in events:
        if run_id is not None:
            version = run_version[run_id]
            model = rng.choice(run_models[run_id]) if source == "run" else "openai/gpt-4o-mini"
        else:
            version = version_at(t) if rng.random() < 0.8 else None
            # A version is mostly called with the model it was written for; now and then another.
            model = version_model[version] if version and rng.random() < 0.75 else pick_model()
        price_in, price_out, median, _ = MODELS[model]
        cached = source != "judge" and rng.random() < 0.06
        error = None if cached or rng.random() > 0.01 else rng.choice(ERROR_TYPES)
        tokens_in = int(rng.lognormvariate(math.log(350), 0.6))
        tokens_out = None if error else int(rng.lognormvariate(math.log(120), 0.7))
        latency = 0.0 if cached else rng.lognormvariate(math.log(median), sigma[model])
        if error in ("timeout",):
            latency = 30000.0 + rng.random() * 100
        if error or price_in is None:
            cost = None
        else:
            cost = 0.0 if cached else (tokens_in * price_in + tokens_out * price_out) / 1e6
        call_id += 1
        call_rows.append(
            (
                call_id,
                t.strftime(TS),
                source,
                model,
                "%064x" % rng.getrandbits(256),
                message,
                None if error else "Your order shipped on Monday and should arrive within two working days.",
                latency,
                tokens_in,
                tokens_out,
                cost,
                error,
                f"{error}: synthetic" if error else None,
                int(cached),
                version,
                run_id,
            )
        )
        if source == "run":
            row = rng.randint(1, 2000)
            key = (run_id, version, model, row)
            if key in item_keys:
                continue
            item_keys.add(key)
            item_id += 1
            finished = t.strftime(TS)
            blocked = rng.random() < 0.004
            status = "blocked" if blocked else ("error" if error else "done")
            item_rows.append(
                (
                    item_id,
                    run_id,
                    version,
                    model,
                    row,
                    0,
                    status,
                    None if blocked else call_id,
                    "guardrail" if blocked else error,
                    "output blocked: email" if blocked else None,
                    finished,
                )
            )
            if status == "blocked" or status == "done":
                # Quality drifts per run: a few runs regress, so the chart has something to show.
                quality = 0.82 - (0.25 if run_id % 17 == 0 else 0.0) + 0.03 * math.sin(run_id / 5)
                passed = rng.random() < quality
                score_rows.append((item_id, "contains", float(passed), int(passed), finished))
                judge = min(1.0, max(0.0, rng.gauss(quality, 0.15)))
                score_rows.append((item_id, "judge_helpfulness", judge, int(judge >= 0.7), finished))
                flagged = blocked or rng.random() < 0.01
                score_rows.append((item_id, "guard_output", 0.0 if flagged else 1.0, int(not flagged), finished))
        if len(call_rows) >= batch:
            flush()
    flush()
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("ANALYZE")
    conn.close()
    return {"calls": call_id, "run_items": item_id, "runs": run_count, "seconds": time.perf_counter() - started}


def timed(fn, repeat: int = 5) -> float:
    """Best of `repeat` wall times in seconds (the first run also warms the page cache)."""
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def add_recent_calls(count: int) -> None:
    """Append `count` calls stamped now (copies of old ones), as a live system would between loads."""
    from sqlalchemy import text

    from storage import db

    now = datetime.now(UTC).replace(tzinfo=None).strftime(TS)
    with db.engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO llm_call (created_at, source, model, request_hash, messages, params, output, latency_ms, "
                "input_tokens, output_tokens, cost_usd, error_type, error, cached, prompt_version_id, run_id) "
                "SELECT :now, source, model, request_hash, messages, params, output, latency_ms, input_tokens, "
                "output_tokens, cost_usd, error_type, error, cached, prompt_version_id, run_id "
                "FROM llm_call ORDER BY id LIMIT :n"
            ),
            {"now": now, "n": count},
        )


def page_queries(conn, scope, previous) -> dict:
    """Every SQL query the Dashboard page runs for its panels, by name."""
    from storage import dashboard_queries as q

    return {
        "totals (both periods)": lambda: q.totals(conn, scope, previous),
        "exact p50/p95/p99 (both periods)": lambda: q.exact_percentiles(conn, scope, previous),
        "spend by day and model": lambda: q.spend_by_day(conn, scope),
        "tokens by model": lambda: q.tokens_by_model(conn, scope),
        "cost by prompt version": lambda: q.cost_by_version(conn, scope),
        "latency quantiles by model": lambda: q.latency_quantiles_by_model(conn, scope),
        "p95 by day and model": lambda: q.latency_quantile_by_day(conn, scope),
        "quality by run": lambda: q.run_quality(conn, scope),
        "errors by type": lambda: q.errors_by_type(conn, scope),
        "calls table, page 1": lambda: q.calls_page(conn, scope, 50, 0),
        "models (for colours)": lambda: q.known_models(conn),
    }


def database_time(engine, fn) -> float:
    """Seconds `fn` spends inside the database's statement execution (cursor.execute), without
    the Python side: building statements, converting rows. Best of 7."""
    from sqlalchemy import event

    spent = {"t": 0.0}

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        spent["t"] += time.perf_counter() - conn.info.pop("bench_t0")

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    best = math.inf
    try:
        for _ in range(7):
            spent["t"] = 0.0
            fn()
            best = min(best, spent["t"])
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return best


def page_query_set(engine, filters) -> None:
    """The page's whole set of queries, as one page load issues them: the rollup refresh check, the
    panels, the calls table and the budget banner's spend."""
    from storage import dashboard_queries as q
    from workbench import dashboard

    with dashboard.reading(filters) as (conn, scope, previous):
        for run in page_queries(conn, scope, previous).values():
            run()
        today = dashboard.utc_today()
        q.spend_between(conn, today.replace(day=1).isoformat(), today.isoformat())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--home", help="WORKBENCH_HOME to fill (default: a new temporary directory)")
    parser.add_argument("--fill-only", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="time the database already in --home (no fill)")
    args = parser.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="wb-dash-"))
    os.environ["WORKBENCH_HOME"] = str(home)
    os.environ.pop("WORKBENCH_DATABASE_URL", None)
    if args.reuse:
        print(f"timing the existing database in {home}")
    elif (home / "workbench.db").exists():
        raise SystemExit(f"{home} already has a database: give an empty --home, or --reuse it")
    else:
        filled = fill(args.calls, args.days)
        print(
            f"fill: {filled['calls']:,} calls, {filled['run_items']:,} run items, {filled['runs']} runs "
            f"in {filled['seconds']:.1f}s  ({home})"
        )
    from storage import dashboard_queries as q
    from storage import db
    from workbench import dashboard

    engine = db.engine()
    started = time.perf_counter()
    q.refresh(engine)
    print(f"first rollup build (once, on the first page load after an upgrade): {time.perf_counter() - started:.1f}s")
    if args.fill_only:
        return
    add_recent_calls(1000)
    started = time.perf_counter()
    q.refresh(engine)
    print(f"incremental refresh after 1 000 new calls: {1000 * (time.perf_counter() - started):.1f} ms")
    print(f"refresh with nothing new: {1000 * timed(lambda: q.refresh(engine)):.2f} ms")

    with engine.connect() as conn:
        count = timed(lambda: conn.exec_driver_sql("SELECT count(*) FROM llm_call").scalar())
        scan = timed(lambda: conn.exec_driver_sql("SELECT sum(latency_ms) FROM llm_call").scalar())
    print(
        f"baselines: count(*) {1000 * count:.1f} ms (an index scan), sum(latency_ms) {1000 * scan:.1f} ms "
        f"(a full table scan)"
    )

    dashboard.set_budget(500.0, "month")
    met_all = True
    for label, filters in (
        ("last 30 days", dashboard.Filters.last(30)),
        ("all time", dashboard.Filters.last(args.days + 1)),
    ):
        print(f"\n== {label} ==")
        with dashboard.reading(filters) as (conn, scope, previous):
            for name, fn in page_queries(conn, scope, previous).items():
                print(f"  {name:36s} {1000 * timed(fn):8.1f} ms")
        total = timed(lambda: page_query_set(engine, filters), repeat=7)
        in_db = database_time(engine, lambda: page_query_set(engine, filters))
        page = timed(lambda: (dashboard.view(filters), dashboard.calls_table(filters), dashboard.budget_status()))
        under, ratio = total < 1.5, total / count
        met_all = met_all and under and ratio < 10
        print(
            f"  the page's whole query set, end to end through SQLAlchemy (incl. the refresh check): "
            f"{1000 * total:.1f} ms"
        )
        print(
            f"    / count(*) = {ratio:.1f}x (target < 10x: {'met' if ratio < 10 else 'NOT met'}); "
            f"/ full scan = {total / scan:.2f}x; under 1.5 s: {'met' if under else 'NOT met'}"
        )
        print(
            f"  of which inside SQLite (statement execution, as count(*) is measured): {1000 * in_db:.1f} ms "
            f"= {in_db / count:.1f}x count(*) (target < 10x: {'met' if in_db / count < 10 else 'NOT met'})"
        )
        print(f"  the page's core calls with their DataFrames (view + calls table + budget): {1000 * page:.1f} ms")

    with engine.connect() as conn:
        run_id = conn.exec_driver_sql("SELECT id FROM run ORDER BY id DESC LIMIT 1").scalar()
    for label, filters in (
        ("one run (narrow: reads the ledger)", dashboard.Filters.last(args.days + 1, run_id=run_id)),
        ("one prompt, 30 days (narrow)", dashboard.Filters.last(30, prompt="support_answer")),
    ):
        page = timed(lambda: dashboard.view(filters), repeat=2)
        print(f"\n{label}: whole view {1000 * page:.1f} ms ({page / count:.1f}x count(*))")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory {peak:.0f} MB; all targets met: {'yes' if met_all else 'no'}")


if __name__ == "__main__":
    main()
