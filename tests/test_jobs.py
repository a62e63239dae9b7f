"""Runs as jobs: leases, workers in other processes, takeover after a crash, run-wide limits.

These start real `workbench worker` / `workbench eval` processes against the fake
OpenAI-compatible server on 127.0.0.1, with short leases (WORKBENCH_LEASE_SECONDS) so a dead
worker's job is taken over within seconds.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from storage import leases
from workbench import runs
from workbench.errors import WorkbenchError
from workbench.fake_server import start_fake_server
from workbench.jobs import queue, worker
from workbench.jobs import runs as run_jobs

ROOT = Path(__file__).resolve().parent.parent


def dataset(tmp_path, n, name="qa.csv"):
    path = tmp_path / name
    # every question the same length, so every answer costs the same
    path.write_text("id,question\n" + "".join(f"r{i},What is {1000 + i}?\n" for i in range(n)), encoding="utf-8")
    return path


def config(server, data, **extra):
    return {
        "description": "jobs test",
        "prompts": [{"name": "ask", "template": "Q: {{ question }}"}],
        "dataset": str(data),
        "models": [{"id": "openai/fake", "api_base": server.url, "api_key": "x"}],
        "concurrency": 4,
        **extra,
    }


def create(cfg, shards=1) -> int:
    return runs.create_run(runs.plan_from_config({**cfg, "shards": shards}))


def env(**extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def start_worker(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "worker", *args],
        env=env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(predicate, timeout=60.0, every=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def stop(*procs):
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_job_delivered_twice_is_executed_once(tmp_path):
    with start_fake_server(delay_s=0.02) as srv:
        run_id = create(config(srv, dataset(tmp_path, 60)))
        queue.submit_run(run_id)
        queue.enqueue(run_jobs.keys(run_id, 1)[0])  # the queue delivers it again
        drainers = [threading.Thread(target=worker.drain) for _ in range(2)]
        for t in drainers:
            t.start()
        for t in drainers:
            t.join(60)
        assert runs.get_run(run_id).status == "done"
        stats = srv.stats()
        assert stats["total_requests"] == 60 and stats["max_repeats"] == 1


@pytest.mark.parametrize("kill_at", [0.3, 0.7])
def test_killed_worker_is_taken_over_and_no_stored_row_is_called_again(tmp_path, kill_at):
    with start_fake_server(delay_s=0.05) as srv:
        n = 120
        run_id = create(config(srv, dataset(tmp_path, n), concurrency=4))
        queue.submit_run(run_id)
        first = start_worker()
        try:
            assert wait_for(lambda: runs.progress(run_id)["done"] >= n * kill_at)
            first.send_signal(signal.SIGKILL)
            first.wait()
            stored = {r["input"] for r in runs.results(run_id, limit=None, status="done")}
            seen = dict(srv.stats()["requests_by_body"])
            assert 0 < len(stored) < n and run_jobs.owner_of(run_id)  # its lease is still valid
            second = start_worker()
            try:
                assert wait_for(lambda: runs.get_run(run_id).status == "done", timeout=90)
            finally:
                stop(second)
        finally:
            stop(first)
        assert runs.progress(run_id)["done"] == n
        after = srv.stats()["requests_by_body"]
        # exactly the rows not stored at the kill are requested again (in flight, or answered but
        # not yet committed): a stored row requested again would make the count larger
        assert sum(after.values()) - sum(seen.values()) == n - len(stored)
        assert srv.stats()["max_repeats"] <= 2


def test_resume_while_a_worker_executes_is_refused_and_names_it(tmp_path):
    from workbench import cli

    with start_fake_server(delay_s=0.05) as srv:
        run_id = create(config(srv, dataset(tmp_path, 80), concurrency=2))
        queue.submit_run(run_id)
        proc = start_worker()
        try:
            assert wait_for(lambda: run_jobs.owner_of(run_id) is not None)
            owner = run_jobs.owner_of(run_id)
            with pytest.raises(WorkbenchError, match=f"being executed by {owner}"):
                queue.submit_run(run_id)
            assert cli.main(["eval", "--resume", str(run_id), "--quiet"]) == 2
            assert wait_for(lambda: runs.get_run(run_id).status == "done", timeout=90)
        finally:
            stop(proc)
        stats = srv.stats()
        assert stats["total_requests"] == 80 and stats["max_repeats"] == 1


def test_rpm_holds_run_wide_with_two_worker_processes(tmp_path):
    from workbench import cli

    with start_fake_server(delay_s=0.01) as srv:
        cfg = config(srv, dataset(tmp_path, 70), concurrency=8)
        cfg["models"][0]["rpm"] = 600  # at most 10 calls in any second, run-wide
        path = tmp_path / "eval.yaml"
        path.write_text(yaml.safe_dump(cfg))
        assert cli.main(["eval", str(path), "--workers", "2", "--quiet"]) == 0
        arrivals = sorted(srv.stats()["arrivals"])
        assert len(arrivals) == 70
        # each of the two processes may start 10 calls in any 2 s: 40 in any 4 s run-wide. The server
        # sees arrivals, which trail the starts by up to a burst's client CPU: allow 10% for that
        worst = max(sum(1 for t in arrivals if start <= t < start + 4.0) for start in arrivals)
        assert worst <= 44, worst
        assert arrivals[-1] - arrivals[0] >= 5.5  # 70 calls at 600/min take about 6 s


def test_budget_holds_within_one_call_with_two_workers_and_judge_calls(tmp_path):
    from storage import execution
    from workbench import cli, costs

    # every answer is "ECHO: Q: What is 10xx?" (5 words) and every judge reply "Score: 4 fine
    # enough here" (5 words): at $2 000 per million output tokens each call costs $0.01
    rules = [{"contains": "Score:", "reply": "Score: 4 fine enough here"}]
    with start_fake_server(delay_s=0.02, mode="rules", rules=rules) as srv:
        costs.set_price("openai/fake", 0.0, 2000.0)
        cfg = config(srv, dataset(tmp_path, 200), concurrency=16, budget_usd=0.2)
        cfg["scorers"] = [{"type": "llm_judge", "rubric": "correctness", "model": "openai/fake",
                           "api_base": srv.url}]  # fmt: skip
        path = tmp_path / "eval.yaml"
        path.write_text(yaml.safe_dump(cfg))
        assert cli.main(["eval", str(path), "--workers", "2", "--quiet"]) == 1
        run_id = runs.list_runs()[0]["id"]
        assert runs.get_run(run_id).status == "budget_exceeded"
        spent = runs.progress(run_id)["cost_usd"]
        assert 0.18 <= spent <= 0.2 + 0.01 + 1e-9
        assert execution.run_control(run_id)[2] == pytest.approx(0.0)  # no reservation left behind
        p = runs.progress(run_id)
        assert p["calls"] == srv.stats()["total_requests"]  # judge calls recorded (and counted), none invented


def test_retry_errors_retries_every_error_even_on_a_finished_run(tmp_path):
    with start_fake_server(delay_s=0.0, fail_rate=1.0, fail_statuses=[400]) as srv:
        run_id = create(config(srv, dataset(tmp_path, 30), concurrency=4))
        assert run_jobs.run_now(run_id) == "failed"
        assert runs.progress(run_id)["failed"] == 30
        srv.control(fail_rate=0.0)
        assert run_jobs.run_now(run_id, retry_errors=True) == "done"
        assert runs.progress(run_id)["done"] == 30


def test_retry_errors_with_two_shards_resets_every_error(tmp_path):
    from workbench import cli

    with start_fake_server(delay_s=0.0, fail_rate=1.0, fail_statuses=[400]) as srv:
        path = tmp_path / "eval.yaml"
        path.write_text(yaml.safe_dump(config(srv, dataset(tmp_path, 190), concurrency=8)))
        assert cli.main(["eval", str(path), "--workers", "2", "--quiet"]) == 1
        run_id = runs.list_runs()[0]["id"]
        assert runs.progress(run_id)["failed"] == 190
        srv.control(fail_rate=0.0)
        assert cli.main(["eval", "--resume", str(run_id), "--retry-errors", "--quiet"]) == 0
        assert runs.progress(run_id)["done"] == 190


def test_a_slow_scorer_does_not_delay_other_items_calls(tmp_path):
    from workbench.scoring import ScoreResult, register

    starts: list[float] = []

    @register("sleepy_test_scorer")
    def sleepy(config, output, context):
        starts.append(time.time())
        time.sleep(2.0)
        return ScoreResult(True, 1.0, "slept")

    with start_fake_server(delay_s=0.02) as srv:
        run_id = create(config(srv, dataset(tmp_path, 12), concurrency=4, scorers=[{"type": "sleepy_test_scorer"}]))
        assert run_jobs.run_now(run_id) == "done"
        arrivals = sorted(srv.stats()["arrivals"])
        assert len(arrivals) == 12 and len(starts) == 12
        # every call was made while the first answers were still being scored
        assert arrivals[-1] - arrivals[0] < 1.5
        # and the scoring itself overlapped (threads), instead of 12 x 2 s one after another
        assert max(sum(1 for t in starts if s <= t < s + 2.0) for s in starts) >= 4


def test_fresh_evals_with_an_inline_scorer_and_two_workers_finish_every_row(tmp_path):
    from workbench import cli

    with start_fake_server(delay_s=0.0) as srv:
        data = dataset(tmp_path, 300)
        for attempt in range(10):
            cfg = config(srv, data, concurrency=16, scorers=[{"type": "contains", "value": "ECHO"}], cache=False)
            path = tmp_path / f"eval{attempt}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            assert cli.main(["eval", str(path), "--workers", "2", "--quiet"]) == 0
            run_id = runs.list_runs()[0]["id"]
            p = runs.progress(run_id)
            assert (p["done"], p["remaining"]) == (300, 0)


def test_two_evals_on_the_same_new_dataset_file_both_succeed(tmp_path):
    with start_fake_server(delay_s=0.0) as srv:
        path = tmp_path / "eval.yaml"
        path.write_text(yaml.safe_dump(config(srv, dataset(tmp_path, 20, name="fresh.csv"))))
        command = [sys.executable, "-m", "workbench.cli", "eval", str(path), "--quiet"]
        procs = [subprocess.Popen(command, env=env(), cwd=ROOT, stderr=subprocess.PIPE) for _ in range(2)]
        outcomes = [(p.wait(120), p.stderr.read().decode()) for p in procs]
        assert [code for code, _ in outcomes] == [0, 0], outcomes


def test_serve_stopped_by_sigterm_leaves_no_process_behind(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--port", str(port), "--no-sample",
         "--server.headless", "true"],
        env=env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip

    def children():
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    try:
        assert wait_for(lambda: len(children()) >= 2, timeout=60)  # the UI and the worker
        kids = children()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)

        def alive(pid):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split()[2] != "Z"

        assert wait_for(lambda: not any(alive(pid) for pid in kids), timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_cancel_of_a_queued_run_needs_no_worker(tmp_path):
    with start_fake_server(delay_s=0.0) as srv:
        run_id = create(config(srv, dataset(tmp_path, 5)))
        queue.submit_run(run_id)
        assert runs.effective_status(runs.get_run(run_id)) == "queued"
        assert runs.request_cancel(run_id) == "cancelled"
        assert leases.pending(run_jobs.prefix(run_id)) == []
        assert worker.drain() == 1  # the queued message finds nothing to do
        assert srv.stats()["total_requests"] == 0


REDIS_URL = os.environ.get("WORKBENCH_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="set WORKBENCH_TEST_REDIS_URL (a scratch Redis) to run")


@needs_redis
def test_team_mode_queue_and_rate_limits_live_in_redis(tmp_path, monkeypatch):
    """With WORKBENCH_QUEUE_URL=redis://..., jobs travel through Redis and a model's rpm counter is
    shared by every process (each gets the full rate, not a share)."""
    import asyncio

    import redis

    from workbench.models.rate import RateLimits

    redis.Redis.from_url(REDIS_URL).flushdb()
    monkeypatch.setenv("WORKBENCH_QUEUE_URL", REDIS_URL)
    assert queue.location() == REDIS_URL
    with start_fake_server(delay_s=0.0) as srv:
        run_id = create(config(srv, dataset(tmp_path, 10)))
        queue.submit_run(run_id)
        assert queue.huey().pending_count() == 1
        assert worker.drain() == 1
        assert runs.get_run(run_id).status == "done" and srv.stats()["total_requests"] == 10

    async def hits(limits: RateLimits, n: int) -> float:
        started = time.monotonic()
        for _ in range(n):
            await limits.wait("redis-model", 600)
        return time.monotonic() - started

    first, second = RateLimits(share=0.5, scope="a"), RateLimits(share=0.5, scope="b")
    assert first.shared and first.share == 1.0  # shared storage: the full rate, one counter
    assert asyncio.run(hits(first, 10)) < 0.5  # the first 10 in this second go at once
    assert asyncio.run(hits(second, 5)) >= 0.5  # the counter is shared: the next ones wait


def test_rescore_is_a_job_that_a_worker_executes(tmp_path):
    from workbench.jobs import rescore

    with start_fake_server(delay_s=0.0) as srv:
        run_id = create(config(srv, dataset(tmp_path, 8)))
        assert run_jobs.run_now(run_id) == "done"
        with pytest.raises(ValueError):
            queue.submit_rescore(run_id, [{"type": "no_such_scorer"}])  # refused before anything is queued
        assert rescore.pending(run_id) == 0
        queue.submit_rescore(run_id, [{"type": "contains", "value": "ECHO"}])
        assert rescore.pending(run_id) == 1 and runs.summary(run_id)["scorers"] == []
        assert worker.drain() == 1
        assert rescore.pending(run_id) == 0
        (scored,) = runs.summary(run_id)["scorers"]
        assert scored["scorer"] == "contains" and scored["n"] == 8 and scored["pass_rate"] == 1.0
        assert srv.stats()["total_requests"] == 8  # the outputs were not asked for again
