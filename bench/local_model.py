"""The embedded model's runtimes, measured side by side on this machine and the same GGUF.

For each runtime available (llama.cpp's server when installed, the transformers-int8
server always) it starts a server of its own (in a private folder, so a running one is not
disturbed) and prints: load time (start to healthy), single-stream tokens/s for a
128-token answer (prefill included, median of 3), aggregate tokens/s with 4 parallel
requests, the server's peak memory, single-stream tokens/s while two other processes keep
both cores busy, and the ratio of each figure to bare llama.cpp (its server over plain
HTTP). A last row measures the product's own path, `local/smollm2` through `llm.acall`
(litellm), on the default runtime.

    python bench/local_model.py [--runtimes llama.cpp,transformers] [--tokens 128] [--parallel 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def _chat(api_base: str, tokens: int) -> int:
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,  # a fixed-length answer: both servers honour it
    }
    request = urllib.request.Request(
        api_base + "/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return int(json.loads(response.read())["usage"]["completion_tokens"])


def single(api_base: str, tokens: int, runs: int = 3) -> float:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        produced = _chat(api_base, tokens)
        rates.append(produced / (time.perf_counter() - started))
    return statistics.median(rates)


def parallel(api_base: str, tokens: int, n: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        produced = sum(pool.map(lambda _: _chat(api_base, tokens), range(n)))
    return produced / (time.perf_counter() - started)


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def under_load(api_base: str, tokens: int) -> float:
    """Single-stream tokens/s while two processes keep both cores busy."""
    stop_at = time.time() + 600
    hogs = [multiprocessing.Process(target=_spin, args=(stop_at,), daemon=True) for _ in range(2)]
    for hog in hogs:
        hog.start()
    try:
        time.sleep(0.5)
        return single(api_base, tokens, runs=1)
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join()


def peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def product_path(tokens: int, n: int) -> tuple[float, float]:
    """(single, aggregate) tokens/s of `local/smollm2` through llm.acall on the default runtime."""
    from workbench import llm

    spec = llm.ModelSpec("local/smollm2", params={"max_tokens": tokens, "temperature": 0})
    messages = [{"role": "user", "content": PROMPT}]

    async def one() -> int:
        result = await llm.acall(spec, messages, timeout=600)
        if not result.ok:
            raise RuntimeError(result.error)
        return int(result.output_tokens or 0)

    async def measure() -> tuple[float, float]:
        await one()  # litellm's import and first-call set-up are not the model's speed
        started = time.perf_counter()
        produced = await one()
        first = produced / (time.perf_counter() - started)
        started = time.perf_counter()
        produced = sum(await asyncio.gather(*(one() for _ in range(n))))
        return first, produced / (time.perf_counter() - started)

    return asyncio.run(measure())


def measure(runtime: str, tokens: int, n: int) -> dict:
    from workbench import local_server

    os.environ["WORKBENCH_MODEL_RUNTIME"] = runtime
    local_server.forget()
    started = time.perf_counter()
    api_base = local_server.ensure_running()
    row: dict = {"runtime": runtime, "load_s": time.perf_counter() - started}
    state = local_server.status() or {}
    row.update(threads=state.get("threads"), slots=state.get("slots"))
    try:
        _chat(api_base, 8)  # warm
        row["single"] = single(api_base, tokens)
        row["parallel"] = parallel(api_base, tokens, n)
        row["loaded"] = under_load(api_base, tokens)
        row["peak_mib"] = peak_rss_mib(int(state.get("pid") or 0))
        if runtime == os.environ.get("_BENCH_DEFAULT"):
            row["product"] = product_path(tokens, n)
    finally:
        local_server.stop(owned_only=True)
    return row


def _fmt(value, pattern="{:.1f}") -> str:
    return "-" if value is None else pattern.format(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", help="comma-separated: llama.cpp, transformers (default: every one installed)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args(argv)
    os.environ["WORKBENCH_MODEL_SERVER_DIR"] = tempfile.mkdtemp(prefix="bench-local-model-")
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="bench-local-home-"))
    from workbench import local_server

    installed = ["llama.cpp"] if local_server.llama_server_binary() else []
    runtimes = args.runtimes.split(",") if args.runtimes else [*installed, "transformers"]
    os.environ["_BENCH_DEFAULT"] = runtimes[0]
    rows = [measure(name.strip(), args.tokens, args.parallel) for name in runtimes]
    bare = next((row for row in rows if row["runtime"] == "llama.cpp"), None)
    header = (
        f"{'runtime':<22} {'load s':>6} {'1 stream tok/s':>14} {f'{args.parallel} parallel tok/s':>17} "
        f"{'peak MiB':>8} {'loaded tok/s':>12} {'ratio 1/par':>12}"
    )
    print(f"{args.tokens}-token answers, prefill included; cpu: {os.cpu_count()} logical, "
          f"{local_server.physical_cores()} physical; threads {rows[0].get('threads')}")  # fmt: skip
    print(header)
    print("-" * len(header))

    def ratio(single, par) -> str:
        if not bare:
            return "-"
        return f"{single / bare['single']:.2f}/{par / bare['parallel']:.2f}"

    for row in rows:
        print(
            f"{row['runtime'] + ' (' + str(row['slots']) + ' slots)':<22} {row['load_s']:>6.1f} {row['single']:>14.1f} "
            f"{row['parallel']:>17.1f} {_fmt(row['peak_mib'], '{:.0f}'):>8} {row['loaded']:>12.1f} "
            f"{ratio(row['single'], row['parallel']):>12}"
        )
    for row in rows:
        if "product" in row:
            first, par = row["product"]
            label = f"local/smollm2 via llm ({row['runtime']})"
            print(f"{label:<22} {'':>6} {first:>14.1f} {par:>17.1f} {'':>8} {'':>12} {ratio(first, par):>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
