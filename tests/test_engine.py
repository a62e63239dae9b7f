"""The run engine against a local fake OpenAI-compatible server (real HTTP on 127.0.0.1)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from workbench import runs
from workbench.errors import WorkbenchError
from workbench.fake_server import start_fake_server
from workbench.jobs import queue
from workbench.jobs import runs as run_jobs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server():
    with start_fake_server(delay_s=0.0) as srv:
        yield srv


def write_dataset(tmp_path, n=20, name="qa.csv"):
    path = tmp_path / name
    lines = ["id,question,expected"] + [f"r{i},What is {i}+{i}?,{2 * i}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def config_for(server, dataset, **extra):
    return {
        "description": "test run",
        "prompts": [{"name": "adder", "template": "Answer: {{ question }}"}],
        "dataset": str(dataset),
        "models": [{"id": "openai/fake", "api_base": server.url, "api_key": "x"}],
        "concurrency": 4,
        **extra,
    }


def start(config) -> int:
    return runs.create_run(runs.plan_from_config(config))


def test_plan_is_stored_before_any_call_and_run_completes(server, tmp_path):
    run_id = start(config_for(server, write_dataset(tmp_path, 12)))
    assert runs.progress(run_id)["remaining"] == 12 and server.stats()["total_requests"] == 0
    assert run_jobs.run_now(run_id) == "done"
    p = runs.progress(run_id)
    assert (p["done"], p["failed"], p["remaining"], p["calls"]) == (12, 0, 0, 12)
    rows = runs.results(run_id, limit=None)
    assert rows[0]["output"] == "ECHO: Answer: What is 0+0?" and rows[0]["expected"] == "0"
    assert all(r["latency_ms"] is not None and r["input_tokens"] for r in rows)


def test_missing_column_is_refused_before_any_call(server, tmp_path):
    config = config_for(server, write_dataset(tmp_path, 3))
    config["prompts"] = [{"name": "needs-context", "template": "{{ question }} {{ context }} {{ tone }}"}]
    with pytest.raises(WorkbenchError, match="context, tone"):
        start(config)
    assert runs.list_runs() == [] and server.stats()["total_requests"] == 0


def test_concurrency_is_really_bounded(tmp_path):
    with start_fake_server(delay_s=0.1) as srv:
        run_id = start(config_for(srv, write_dataset(tmp_path, 30), concurrency=5))
        assert run_jobs.run_now(run_id) == "done"
        assert srv.stats()["max_in_flight"] == 5


def test_retries_429_and_500_until_every_row_is_final(tmp_path):
    with start_fake_server(delay_s=0.0, fail_rate=0.3, fail_statuses=[500, 429], retry_after=0.01, seed=3) as srv:
        run_id = start(config_for(srv, write_dataset(tmp_path, 60), concurrency=8))
        assert run_jobs.run_now(run_id) == "done"
        p = runs.progress(run_id)
        assert p["done"] + p["failed"] == 60 and p["remaining"] == 0
        assert p["done"] >= 58  # 5 attempts at 30% failure: a final failure is very rare
        assert srv.stats()["total_requests"] > 60  # retries happened
        items = runs.results(run_id, limit=None)
        assert len({i["item_id"] for i in items}) == 60


def test_non_retryable_error_is_recorded_per_row_and_run_goes_on(server, tmp_path):
    run_id = start(
        config_for(server, write_dataset(tmp_path, 5))
        | {"models": [{"id": "openai/fake", "api_base": server.url, "api_key": "x"}, {"id": "nosuchprovider/model"}]}
    )
    assert run_jobs.run_now(run_id) == "done"
    errors = runs.results(run_id, limit=None, status="error")
    assert len(errors) == 5 and all("nosuchprovider" in e["model"] for e in errors)
    assert runs.progress(run_id)["done"] == 5


def test_cache_second_run_makes_no_calls_and_repeats_bypass_it(server, tmp_path):
    dataset = write_dataset(tmp_path, 10)
    run_jobs.run_now(start(config_for(server, dataset)))
    first = server.stats()["total_requests"]
    second = start(config_for(server, dataset))
    run_jobs.run_now(second)
    assert server.stats()["total_requests"] == first
    assert runs.progress(second)["cached"] == 10
    third = start(config_for(server, dataset, repeat=3))
    run_jobs.run_now(third)
    assert server.stats()["total_requests"] == first + 20  # repeat 0 cached, repeats 1-2 called
    no_cache = start(config_for(server, dataset, cache=False))
    run_jobs.run_now(no_cache)
    assert server.stats()["total_requests"] == first + 30


def test_budget_stops_the_run_cleanly(tmp_path, monkeypatch):
    from workbench import costs

    monkeypatch.setattr(costs, "call_cost", lambda model, i, o: 0.01)
    with start_fake_server(delay_s=0.0) as srv:
        run_id = start(config_for(srv, write_dataset(tmp_path, 50), concurrency=1, budget_usd=0.05))
        assert run_jobs.run_now(run_id) == "budget_exceeded"
        p = runs.progress(run_id)
        assert p["cost_usd"] <= 0.05 + 1e-9 and p["done"] == 5 and p["remaining"] == 45


def test_cancel_from_another_thread_stops_and_resume_finishes(tmp_path):
    import threading

    with start_fake_server(delay_s=0.05) as srv:
        run_id = start(config_for(srv, write_dataset(tmp_path, 80), concurrency=2))
        threading.Timer(0.5, runs.request_cancel, args=(run_id,)).start()
        assert run_jobs.run_now(run_id) == "cancelled"  # seen at the next heartbeat
        p = runs.progress(run_id)
        assert 0 < p["done"] < 80
        before = srv.stats()["total_requests"]
        assert run_jobs.run_now(run_id) == "done"
        assert runs.progress(run_id)["done"] == 80
        assert srv.stats()["total_requests"] - before == 80 - p["done"]


def test_cli_exit_codes_output_and_thresholds(server, tmp_path):
    from workbench import cli

    config = config_for(server, write_dataset(tmp_path, 6), thresholds={"error_rate": 0.0})
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "results.jsonl"
    assert cli.main(["eval", str(path), "--output", str(out), "--quiet"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 6 and lines[0]["output"].startswith("ECHO")
    config["models"].append({"id": "nosuchprovider/m"})
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["eval", str(path), "--quiet"]) == 1  # error_rate 0.5 > 0
    path.write_text("prompts: [nope@1]\ndataset: missing.csv\nmodels: [x]\n")
    assert cli.main(["eval", str(path), "--quiet"]) == 2


def test_sigkill_then_resume_repeats_no_finished_row(tmp_path):
    """Kill the CLI process mid-run; --resume completes it without re-requesting stored rows."""
    with start_fake_server(delay_s=0.05) as srv:
        config = config_for(srv, write_dataset(tmp_path, 120), concurrency=4)
        path = tmp_path / "eval.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**os.environ, "WORKBENCH_HOME": os.environ["WORKBENCH_HOME"]}
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "eval", str(path), "--quiet"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 60
        while time.time() < deadline and srv.stats()["total_requests"] < 40:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        run_id = runs.list_runs()[0]["id"]
        done_before = runs.progress(run_id)["done"]
        assert 0 < done_before < 120
        stats = srv.stats()
        seen_before = dict(stats["requests_by_body"])
        from workbench import cli

        assert run_jobs.owner_of(run_id)  # the dead process's lease is still valid: resume is refused
        assert cli.main(["eval", "--resume", str(run_id), "--quiet"]) == 2
        while run_jobs.owner_of(run_id):  # until it expires (WORKBENCH_LEASE_SECONDS)
            time.sleep(0.1)
        assert cli.main(["eval", "--resume", str(run_id), "--quiet"]) == 0
        assert runs.progress(run_id)["done"] == 120
        after = srv.stats()["requests_by_body"]
        finished = {r["input"] for r in runs.results(run_id, limit=None)}
        assert len(finished) == 120
        # Exactly the rows not stored at the kill are requested again (those in flight or
        # answered but not yet committed); no stored row is requested twice.
        assert sum(after.values()) - sum(seen_before.values()) == 120 - done_before
        assert sum(1 for n in after.values() if n > 1) == 120 - done_before - (len(after) - len(seen_before))


def test_requests_per_minute_limit_spaces_calls(server, tmp_path):
    config = config_for(server, write_dataset(tmp_path, 25), concurrency=8)
    config["models"][0]["rpm"] = 600  # at most 10 calls in any second
    run_id = start(config)
    started = time.perf_counter()
    assert run_jobs.run_now(run_id) == "done"
    assert time.perf_counter() - started >= 1.9  # 10 at once, 10 a second later, 5 after two


def test_a_second_executor_is_refused_and_told_the_owner(tmp_path):
    import threading

    from workbench.jobs import worker

    with start_fake_server(delay_s=0.05) as srv:
        run_id = start(config_for(srv, write_dataset(tmp_path, 40), concurrency=2))
        queue.submit_run(run_id)
        drainer = threading.Thread(target=worker.drain)
        drainer.start()
        deadline = time.time() + 30
        while time.time() < deadline and run_jobs.owner_of(run_id) is None:
            time.sleep(0.02)
        owner = run_jobs.owner_of(run_id)
        assert owner
        with pytest.raises(WorkbenchError, match=f"being executed by {owner}"):
            queue.submit_run(run_id)
        assert run_jobs.execute(run_id) == "running"  # claims nothing: the shard is held
        drainer.join(60)
        assert runs.get_run(run_id).status == "done"
        assert srv.stats()["total_requests"] == 40 and srv.stats()["max_repeats"] == 1


def test_a_dead_endpoint_opens_the_circuit_instead_of_retrying_every_row(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on: every call is a connection error
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    config = {
        "prompts": [{"name": "adder", "template": "Answer: {{ question }}"}],
        "dataset": str(write_dataset(tmp_path, 200)),
        "models": [{"id": "openai/fake", "api_base": dead, "api_key": "x"}],
        "concurrency": 4,
    }
    run_id = start(config)
    started = time.perf_counter()
    assert run_jobs.run_now(run_id) == "failed"
    assert time.perf_counter() - started < 60  # 200 rows x 5 attempts with backoff would take far longer
    rows = runs.results(run_id, limit=None)
    skipped = [r for r in rows if r["error"].startswith("not called:")]
    called = [r for r in rows if not r["error"].startswith("not called:")]
    assert all("Connection error" in r["error"] for r in called)
    # the breaker's count of failed attempts plus the calls already in flight
    assert len(called) <= engine_breaker_after() + 4 and len(skipped) >= 190
    assert "resume with --retry-errors" in skipped[0]["error"]


def engine_breaker_after() -> int:
    from workbench import engine

    return engine.BREAKER_AFTER
