"""Throughput of the run engine through the CLI path, against a fake server with fixed latency.

Prints ratios against lower bounds measured in the same run, never absolute pass/fail times:
- pass 1: N rows at concurrency C with server latency L: wall / (N*L/C)  (target <= 1.3)
- pass 2: the same run again, all cached: server calls (target 0) and wall time (target < 3 s)
- pass 3: L = 0.02 s: calls per second (target >= 300), and the engine's CPU per call
Also prints litellm's own per-call overhead and the process's peak memory.

    python bench/eval_throughput.py [--rows 400] [--concurrency 32] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A priced model id served by the fake server, as through a gateway: litellm's per-call work
# for an id it does not know (a scan of its price map) is ~1 ms more than for a known one.
MODEL = "openai/gpt-4o-mini"
sys.path.insert(0, str(ROOT))


def start_server(latency: float):
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.fake_server", "--port", "0", "--delay", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    line = proc.stdout.readline()
    url = re.search(r"(http://\S+/v1)", line).group(1)
    return proc, url


def write_config(tmp: Path, url: str, rows: int, concurrency: int, tag: str) -> Path:
    data = tmp / f"rows-{tag}.csv"
    data.write_text("id,question\n" + "\n".join(f"{tag}{i},question number {i} for {tag}" for i in range(rows)) + "\n")
    config = tmp / f"eval-{tag}.yaml"
    config.write_text(
        f"description: throughput {tag}\n"
        f"prompts: [{{name: bench, template: 'Answer: {{{{question}}}}'}}]\n"
        f"dataset: {data}\n"
        f"models: [{{id: {MODEL}, api_base: '{url}', api_key: x, params: {{max_tokens: 16}}}}]\n"
        f"concurrency: {concurrency}\n"
    )
    return config


def _cpu_seconds() -> float:
    """CPU of this process and of its finished children: the eval forks worker processes, and
    their CPU counts as the engine's (the fake servers are children too, but they are only
    reaped at the end)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_eval(config: Path) -> tuple[float, float]:
    from workbench import cli

    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    code = cli.main(["eval", str(config), "--quiet"])
    wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    if code != 0:
        raise SystemExit(f"eval exited {code}")
    return wall, cpu


def litellm_overhead(url: str, n: int = 200) -> float:
    """Seconds of client CPU per call spent by litellm + our wrapper (server latency 0)."""
    import asyncio

    from workbench.llm import ModelSpec, acall

    spec = ModelSpec(MODEL, api_base=url, api_key="x")

    async def many(tag: str, count: int):
        for i in range(count):
            await acall(spec, [{"role": "user", "content": f"overhead {tag} {i}"}])

    asyncio.run(many("warm-up", 20))  # the first calls build clients and pydantic schemas
    cpu0 = time.process_time()
    asyncio.run(many("measured", n))
    return (time.process_time() - cpu0) / n


def server_requests(url: str) -> int:
    from workbench.fake_server import connect

    return connect(url).stats()["total_requests"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--fast-latency", type=float, default=0.02)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    os.environ["WORKBENCH_HOME"] = str(tmp / "home")
    from workbench import llm

    llm.litellm_module()  # import cost is paid once per process, not per run: measure runs

    slow, slow_url = start_server(args.latency)
    fast, fast_url = start_server(args.fast_latency)
    zero, zero_url = start_server(0.0)
    try:
        overhead = litellm_overhead(zero_url)
        config = write_config(tmp, slow_url, args.rows, args.concurrency, "slow")
        bound = args.rows * args.latency / args.concurrency
        wall, cpu = timed_eval(config)
        print(
            f"pass 1: {args.rows} rows, C={args.concurrency}, L={args.latency}s: wall {wall:.2f}s, "
            f"lower bound {bound:.2f}s, ratio {wall / bound:.2f} (target <= 1.3)"
        )
        before = server_requests(slow_url)
        wall2, _ = timed_eval(config)
        repeated = server_requests(slow_url) - before
        print(f"pass 2 (cached): {repeated} server calls (target 0), wall {wall2:.2f}s (target < 3 s)")
        config = write_config(tmp, fast_url, args.rows, args.concurrency, "fast")
        wall3, cpu3 = timed_eval(config)
        bound3 = args.rows * args.fast_latency / args.concurrency
        print(
            f"pass 3: L={args.fast_latency}s: {args.rows / wall3:.0f} calls/s (target >= 300), "
            f"ratio to bound {wall3 / bound3:.2f}, engine CPU {1000 * cpu3 / args.rows:.2f} ms/call "
            f"(all processes), of which litellm+wrapper {1000 * overhead:.2f} ms/call"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak memory {peak:.0f} MB (largest worker process or fake server: {worker_peak:.0f} MB)")
        met = wall / bound <= 1.3 and repeated == 0 and wall2 < 3 and args.rows / wall3 >= 300
        print(f"all targets met: {'yes' if met else 'no'}")
    finally:
        for proc in (slow, fast, zero):
            proc.terminate()


if __name__ == "__main__":
    main()
