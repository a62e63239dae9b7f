"""Throughput of runs through `workbench eval` and its worker processes, against realistic latency.

Real providers' latency varies, so the fake server draws each reply's latency from a lognormal
distribution (median 0.2 s, sigma 0.8 by default) and reports the sum it served. Every figure is
a ratio to a bound measured in the same run, never an absolute time:

- pass 1: N rows at concurrency C. Bound = latency served / C. Two ratios: the run alone (first
  request to last stored result, target <= 1.15) and the whole `workbench eval` process with its
  start-up (target <= 1.3).
- pass 2: the same eval again, all cached: server calls (target 0), whole process (target < 2 s).
- pass 3: fixed latency 0.02 s: calls per second with 1 and with 2 worker processes (the second
  should add >= 70% when CPU is the limit), CPU per call over all the eval's processes.
- promptfoo (when npm can install it, see --promptfoo): the same fixed-latency run, calls per second
  and CPU per call, side by side (target: ours at least as good).
- peak memory of the largest process.

    python bench/eval_throughput.py [--rows 2000] [--concurrency 32] [--median 0.2] [--spread 0.8]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "openai/gpt-4o-mini"  # a priced id served by the fake server, as through a gateway
sys.path.insert(0, str(ROOT))


def start_server(median: float, spread: float = 0.0):
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.fake_server", "--port", "0", "--delay", str(median), "--spread", str(spread)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    line = proc.stdout.readline()
    return proc, re.search(r"(http://\S+/v1)", line).group(1)


def stats(url: str) -> dict:
    from workbench.fake_server import connect

    return connect(url).stats()


def reset(url: str) -> None:
    from workbench.fake_server import connect

    connect(url).reset()


def write_rows(tmp: Path, rows: int, tag: str) -> Path:
    data = tmp / f"rows-{tag}.csv"
    data.write_text("id,question\n" + "".join(f"{tag}{i},question number {i} for {tag}\n" for i in range(rows)))
    return data


def write_config(tmp: Path, url: str, rows: int, concurrency: int, tag: str) -> Path:
    config = tmp / f"eval-{tag}.yaml"
    config.write_text(
        f"description: throughput {tag}\n"
        f"prompts: [{{name: bench, template: 'Answer: {{{{question}}}}'}}]\n"
        f"dataset: {write_rows(tmp, rows, tag)}\n"
        f"models: [{{id: {MODEL}, api_base: '{url}', api_key: x, params: {{max_tokens: 16}}}}]\n"
        f"concurrency: {concurrency}\n"
    )
    return config


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(command: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of a command and every process it waited for."""
    cpu0, wall0 = children_cpu(), time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - wall0, children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return wall, cpu


def run_window(home: Path, server_url: str) -> float:
    """Seconds from the run's first request (server clock) to its last stored result."""
    import sqlite3

    first = min(stats(server_url)["arrivals"])
    with sqlite3.connect(home / "workbench.db") as conn:
        last = conn.execute("SELECT max(finished_at) FROM run_item").fetchone()[0]
    from datetime import datetime

    last_ts = datetime.fromisoformat(last).replace(tzinfo=UTC).timestamp()
    return last_ts - first


def eval_command(config: Path, workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "workbench.cli", "eval", str(config), "--quiet", "--workers", str(workers)]


def promptfoo_pass(tmp: Path, url: str, rows: int, concurrency: int, npm_dir: Path) -> tuple[float, float] | None:
    """promptfoo's eval of the same rows against the same server: (calls/s, CPU ms per call)."""
    binary = npm_dir / "node_modules" / ".bin" / "promptfoo"
    if not binary.exists():
        return None
    data = write_rows(tmp, rows, "pf")
    config = tmp / "promptfooconfig.yaml"
    config.write_text(
        "prompts: ['Answer: {{question}}']\n"
        f"providers: [{{id: 'openai:chat:gpt-4o-mini', config: {{apiBaseUrl: '{url}', apiKey: x, max_tokens: 16}}}}]\n"
        f"tests: file://{data}\n"
    )
    env = {
        **os.environ,
        "HOME": str(tmp / "pf-home"),
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_CACHE_ENABLED": "false",
    }
    command = [str(binary), "eval", "-c", str(config), "--max-concurrency", str(concurrency), "--no-cache",
               "--no-table", "--no-write", "--no-progress-bar"]  # fmt: skip
    reset(url)
    wall, cpu = run_command(command, env)
    served = stats(url)["total_requests"]
    arrivals = sorted(stats(url)["arrivals"])
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else wall
    return served / span, 1000 * cpu / max(1, served)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--median", type=float, default=0.2)
    parser.add_argument("--spread", type=float, default=0.8)
    parser.add_argument("--fast-latency", type=float, default=0.02)
    parser.add_argument(
        "--promptfoo",
        type=Path,
        default=ROOT.parent / ".cache-pf",
        help="folder where `npm install promptfoo` was run (skipped when missing)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    home = tmp / "home"
    os.environ["WORKBENCH_HOME"] = str(home)
    met = []
    slow, slow_url = start_server(args.median, args.spread)
    fast, fast_url = start_server(args.fast_latency)
    try:
        config = write_config(tmp, slow_url, args.rows, args.concurrency, "slow")
        wall, _ = run_command(eval_command(config))
        served = stats(slow_url)
        bound = served["latency_served_s"] / args.concurrency
        window = run_window(home, slow_url)
        print(
            f"pass 1: {args.rows} rows, C={args.concurrency}, lognormal latency median {args.median}s "
            f"sigma {args.spread} (served {served['latency_served_s']:.0f}s in all): bound {bound:.2f}s; "
            f"run {window:.2f}s ratio {window / bound:.2f} (target <= 1.15); whole eval {wall:.2f}s "
            f"ratio {wall / bound:.2f} (target <= 1.3)"
        )
        met += [window / bound <= 1.15, wall / bound <= 1.3]
        before = stats(slow_url)["total_requests"]
        wall2, _ = run_command(eval_command(config))
        repeated = stats(slow_url)["total_requests"] - before
        print(f"pass 2 (all cached): {repeated} server calls (target 0), whole eval {wall2:.2f}s (target < 2 s)")
        met += [repeated == 0, wall2 < 2]
        rates = {}
        for workers in (1, 2):
            config = write_config(tmp, fast_url, args.rows, args.concurrency, f"fast{workers}")
            reset(fast_url)
            wall3, cpu3 = run_command(eval_command(config, workers))
            arrivals = sorted(stats(fast_url)["arrivals"])
            rates[workers] = len(arrivals) / (arrivals[-1] - arrivals[0])
            print(
                f"pass 3: fixed latency {args.fast_latency}s, {workers} worker process(es): "
                f"{rates[workers]:.0f} calls/s, CPU {1000 * cpu3 / args.rows:.2f} ms/call over all processes "
                f"(start-up included), whole eval {wall3:.2f}s"
            )
        gain = rates[2] / rates[1] - 1
        print(f"          the second worker adds {100 * gain:.0f}% (target >= 70% when CPU is the limit)")
        met.append(gain >= 0.7)
        ours_cpu = 1000 * cpu3 / args.rows
        pf = promptfoo_pass(tmp, fast_url, args.rows, args.concurrency, args.promptfoo)
        if pf is None:
            print(f"promptfoo: not installed in {args.promptfoo} (npm install promptfoo there): column skipped")
        else:
            print(
                f"promptfoo: {pf[0]:.0f} calls/s, CPU {pf[1]:.2f} ms/call; ours with 1 worker {rates[1]:.0f} calls/s "
                f"(ratio {rates[1] / pf[0]:.2f}, target >= 1), 2 workers {rates[2]:.0f}"
            )
            met.append(rates[1] >= pf[0])
        print(f"          ours: CPU {ours_cpu:.2f} ms/call with 2 workers")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak memory of the largest process (eval, helpers, fake servers, promptfoo): {peak:.0f} MB")
        print(json.dumps({"met": met}))
        print(f"all targets met: {'yes' if all(met) else 'no'}")
    finally:
        for proc in (slow, fast):
            proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
