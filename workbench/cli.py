"""The `workbench` command: serve (UI + worker), worker, eval, init, compare, index."""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from contextlib import contextmanager

from workbench import config, secrets


def cmd_serve(args, streamlit_options: list[str] | None = None) -> int:
    """The UI and one worker as child processes; SIGINT/SIGTERM stops both (no orphans)."""
    from workbench import processes, sample

    if not args.no_sample:
        loaded = sample.load_all()
        if any(loaded.values()):
            print(f"Loaded sample data: {loaded}")
    app = config.REPO_ROOT / "Home.py"
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.port", str(args.port), "--server.address", args.address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    if not args.dev:
        # Watching files is for editing the app: over a checkout with a virtualenv it overflows
        # inotify's queue; a served app has nothing to reload.
        command += ["--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    command += streamlit_options or []
    children: list[subprocess.Popen] = []
    processes.exit_on_terminate()
    try:
        if args.workers:
            worker = [sys.executable, "-m", "workbench.cli", "worker", "-w", str(args.workers)]
            children.append(processes.start(worker))
        children.append(processes.start(command, env=os.environ.copy()))
        print(f"Prompt Workbench on http://{args.address}:{args.port}  (data in {config.home()})")
        return children[-1].wait()
    finally:
        processes.stop_all(children)


def cmd_worker(args) -> int:
    from workbench.jobs import worker

    if args.drain:
        print(f"executed {worker.drain()} job(s)")
        return 0
    worker.run(args.workers)
    return 0


def _progress_printer(stream=sys.stderr):
    """A one-line progress bar on a terminal; sparse lines when output is not a TTY (CI logs)."""
    last = {"t": 0.0}

    def show(p: dict) -> None:
        import time

        now = time.monotonic()
        final = "status" in p
        if not final and now - last["t"] < (0.2 if stream.isatty() else 5.0):
            return
        last["t"] = now
        total = max(1, p["total"])
        finished = p["done"] + p["failed"]
        width = 30
        filled = int(width * finished / total)
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{p['total']} done={p['done']} "
            f"failed={p['failed']} cached={p['cached']} {p['calls_per_s']:.1f} calls/s ${p['cost_usd']:.4f}"
        )
        if stream.isatty():
            stream.write("\r" + line + ("\n" if final else ""))
        else:
            stream.write(line + "\n")
        stream.flush()

    return show


def cmd_eval(args) -> int:
    """Plan the run, then execute it as a worker: claim its shards by lease (with `--workers N`,
    N-1 helper processes claim the others), print progress, exit by the thresholds."""
    from workbench import runs
    from workbench.errors import WorkbenchError
    from workbench.jobs import runs as run_jobs

    run_id = args.resume
    try:
        with _collector_paused():
            if args.resume:
                run = runs.get_run(run_id)
                config_thresholds = run.config.get("thresholds") or {}
                print(f"Resuming run {run_id}", file=sys.stderr)
            else:
                if not args.config:
                    print("error: give a CONFIG.yaml or --resume RUN_ID", file=sys.stderr)
                    return 2
                config_dict = runs.load_config(args.config)
                if args.no_cache:
                    config_dict["cache"] = False
                if args.concurrency:
                    config_dict["concurrency"] = args.concurrency
                if args.limit:
                    config_dict["limit"] = args.limit
                config_dict["shards"] = max(1, args.workers)
                plan = runs.plan_from_config(config_dict)
                run_id = runs.create_run(plan)
                config_thresholds = plan.config.get("thresholds") or {}
                print(
                    f"Run {run_id}: {len(plan.prompt_versions)} prompt version(s) x {len(plan.models)} model(s) x "
                    f"{plan.dataset_version.row_count} rows x {plan.repeat} repeat(s)",
                    file=sys.stderr,
                )
            shard_keys = run_jobs.prepare(run_id, retry_errors=args.retry_errors)
        try:
            status = _execute_with_helpers(run_id, shard_keys, None if args.quiet else _progress_printer())
        finally:
            from workbench import local_server

            local_server.stop(owned_only=True)  # the embedded model's server, if this eval started it
    except WorkbenchError as exc:
        print(f"error: {secrets.mask(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = f"resume with `workbench eval --resume {run_id}`" if run_id else "no run was created"
        if run_id:
            run_jobs.finalize(run_id)
        print(f"\ninterrupted: {hint}", file=sys.stderr)
        return 130
    result = runs.summary(run_id)
    _print_summary(run_id, status, result)
    if args.output:
        fmt = "csv" if args.output.endswith(".csv") else "jsonl"
        with open(args.output, "wb") as handle:
            handle.write(runs.export(run_id, fmt))
        print(f"wrote {args.output}", file=sys.stderr)
    if any(k.rpartition(".")[2] in runs.AGREEMENT_METRICS for k in config_thresholds or {}):
        from workbench import review  # a judge's agreement with people, from its review queues

        result["agreement"] = review.agreements(config_thresholds)
    failures = runs.check_thresholds(result, config_thresholds)
    for failure in failures:
        print(f"THRESHOLD FAILED: {failure}")
    if status not in ("done",):
        print(f"run {run_id} ended as {status}")
        return 1
    return 1 if failures else 0


def _execute_with_helpers(run_id: int, shard_keys: list[str], on_progress) -> str:
    """Execute shard 0 here and the others in helper processes; then sweep up any shard a helper
    left (it died): this process claims it like any worker would."""
    from workbench import processes, runs
    from workbench.jobs import runs as run_jobs

    helpers = [
        processes.start([sys.executable, "-m", "workbench.cli", "run-job", key], stdout=subprocess.DEVNULL)
        for key in shard_keys[1:]
    ]
    if helpers and on_progress is not None:
        printer = on_progress

        def on_progress(_snapshot: dict) -> None:  # the helpers' items count too: read them
            p = runs.progress(run_id)
            printer({**p, "calls_per_s": p["calls_per_s"] or 0.0})

    try:
        run_jobs.execute_key(shard_keys[0], on_progress=on_progress, keep_queued_on_stop=False)
        for helper in helpers:
            helper.wait()
        run_jobs.execute(run_id, on_progress=on_progress)
    finally:
        processes.stop_all(helpers)
    status = runs.get_run(run_id).status
    if on_progress is not None and status not in run_jobs.ACTIVE:
        p = runs.progress(run_id)
        on_progress({**p, "calls_per_s": p["calls_per_s"] or 0.0, "status": status})
    return status


def cmd_run_job(args) -> int:
    """Execute one job by key (the helper processes of `workbench eval --workers N`)."""
    from workbench.jobs import kinds

    kinds.execute(args.key)
    return 0


@contextmanager
def _collector_paused():
    """Setup with the garbage collector off, then everything it loaded frozen out of its sight.

    litellm, SQLAlchemy and pydantic leave ~400k long-lived objects. While they load, and later
    during a run, every full collection walked them all: ~0.18 s with the event loop stalled,
    every few hundred calls. A command's imports, parser and run plan live as long as the
    command, so it loses nothing by never collecting them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _print_summary(run_id: int, status: str, result: dict) -> None:
    print(f"run {run_id}: {status}")
    print(
        f"  items {result['total']}  done {result['done']}  failed {result['failed']}  "
        f"calls {result['calls']} (cached {result['cached']})  tokens {result['input_tokens']}/"
        f"{result['output_tokens']}  cost ${result['cost_usd']:.4f}"
    )
    if result["pass_rate"] is not None:
        print(f"  pass_rate {result['pass_rate']:.3f}")
    if result["scorers"]:
        print(f"  {'scorer':<28}{'n':>6}{'mean':>9}{'pass':>9}{'errors':>8}")
        for s in result["scorers"]:
            mean = f"{s['mean']:.3f}" if s["mean"] is not None else "-"
            rate = f"{s['pass_rate']:.3f}" if s["pass_rate"] is not None else "-"
            print(f"  {s['scorer']:<28}{s['n']:>6}{mean:>9}{rate:>9}{s['errors']:>8}")


def cmd_init(args) -> int:
    from workbench import sample

    loaded = sample.load_all()
    print(f"data directory {config.home()}; loaded sample data: {loaded}")
    return 0


CORE_COMMANDS = ("serve", "init", "eval", "worker", "run-job")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with `command` one of the core commands, only that much of it: the
    compare and index commands import numpy and the RAG modules (0.1 s before an eval starts)."""
    parser = argparse.ArgumentParser(prog="workbench", description="Prompt Workbench")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the web UI")
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--address", default="localhost")
    serve.add_argument("--no-sample", action="store_true", help="do not load the sample data")
    serve.add_argument("--workers", type=int, default=1, help="worker processes to start with the UI (0: none)")
    serve.add_argument("--dev", action="store_true", help="reload pages when their files change")
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="execute queued jobs (runs, index builds, re-scores)")
    worker.add_argument("-w", "--workers", type=int, default=1, help="jobs executed at once (processes)")
    worker.add_argument("--drain", action="store_true", help="execute the jobs queued now, then exit")
    worker.set_defaults(func=cmd_worker)
    run_job = sub.add_parser("run-job", help=argparse.SUPPRESS)
    run_job.add_argument("key")
    run_job.set_defaults(func=cmd_run_job)
    init = sub.add_parser("init", help="create the database and load the sample data (idempotent)")
    init.set_defaults(func=cmd_init)
    evaluate = sub.add_parser("eval", help="run an eval config headless (for CI)")
    evaluate.add_argument("config", nargs="?", help="eval config YAML")
    evaluate.add_argument("--resume", type=int, metavar="RUN_ID", help="finish the pending items of a run")
    evaluate.add_argument("--retry-errors", action="store_true", help="with --resume: also redo failed items")
    evaluate.add_argument("--output", help="write results to .jsonl or .csv")
    evaluate.add_argument("--no-cache", action="store_true", help="call the model even for identical requests")
    evaluate.add_argument("--concurrency", type=int, help="override the config's concurrency")
    evaluate.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes executing the run (its items are split into that many shards)",
    )
    evaluate.add_argument("--limit", type=int, help="only the first N dataset rows (a quick smoke test)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=cmd_eval)
    if command in CORE_COMMANDS:
        return parser
    from workbench.compare import add_cli as add_compare_cli
    from workbench.rag.cli import add_cli as add_index_cli

    add_compare_cli(sub)
    add_index_cli(sub)
    from workbench.review import add_cli as add_review_cli

    add_review_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    with _collector_paused():
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(argv[0] if argv else None)
        args, unknown = parser.parse_known_args(argv)
        # `serve` passes Streamlit's own options (--server.*, --theme.*, ...) through to it
        options = [u for u in unknown if u.startswith("--")]
        passthrough = args.command == "serve" and unknown[:1] == options[:1] and all("." in u for u in options)
        if unknown and not passthrough:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "serve":
        return cmd_serve(args, unknown)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
