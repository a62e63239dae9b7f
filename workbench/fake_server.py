"""A fake OpenAI-compatible server for tests and the throughput benchmark.

Tests of the run engine need a real HTTP endpoint - litellm's retry, timeout and
concurrency code only runs against one - but a real provider is slow, costs money and
never fails on demand. This server answers `POST /v1/chat/completions` (plain or SSE
streaming) and `GET /v1/models` in the OpenAI shape, and can be told at run time how
slow to be, how often to fail and what to reply:

    POST /_control  {"delay_s": 0.2, "fail_rate": 0.2, "fail_statuses": [500, 429],
                     "retry_after": 1, "seed": 0, "mode": "echo" | "queue" | "rules",
                     "echo_key": false (true: error bodies quote the request's Authorization header),
                     "queue": ["canned", ...], "rules": [{"contains": "x", "reply": "y"}]}
    GET  /_stats    totals, attempts per request-body hash, max in-flight requests, recent bodies
    POST /_reset    clear the stats (the behaviour stays)

Failures are decided per attempt by hashing (seed, body hash, attempt number), so a run
is reproducible whatever order concurrent requests arrive in, and a retried request gets
a fresh draw: at a 20% failure rate every request eventually succeeds.

Use it in-process (`with start_fake_server(delay_s=0.1) as server: server.url`) or as a
process: `python -m workbench.fake_server --port 8911 --delay 0.2 --fail-rate 0.2`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MODES = ("echo", "queue", "rules")
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}


@dataclass
class Behaviour:
    """What the server does; every field can be changed through POST /_control."""

    delay_s: float = 0.0  # fixed latency; with delay_spread > 0, the median of a lognormal latency
    delay_spread: float = 0.0  # sigma of log(latency): real providers' latency varies (0.8 is typical)
    fail_rate: float = 0.0
    fail_statuses: list = field(default_factory=lambda: [500])
    retry_after: float | None = 1
    seed: int = 0
    mode: str = "echo"
    queue: list = field(default_factory=list)
    rules: list = field(default_factory=list)
    models: list = field(default_factory=lambda: ["fake"])
    recent_limit: int = 100
    echo_key: bool = False  # like providers that quote the key they refused: the secrets tests need one

    def update(self, changes: dict) -> None:
        """Validate and apply changes; a bad value raises ValueError and changes nothing."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        new = dict(vars(self), **changes)
        new["delay_s"] = float(new["delay_s"])
        new["delay_spread"] = float(new["delay_spread"])
        if new["delay_s"] < 0 or new["delay_spread"] < 0:
            raise ValueError("delay_s and delay_spread must not be negative")
        new["fail_rate"] = float(new["fail_rate"])
        if not 0 <= new["fail_rate"] <= 1:
            raise ValueError("fail_rate must be between 0 and 1")
        statuses = new["fail_statuses"]
        if isinstance(statuses, int):
            statuses = [statuses]
        new["fail_statuses"] = [int(s) for s in statuses]
        if not new["fail_statuses"] or any(s < 400 or s > 599 for s in new["fail_statuses"]):
            raise ValueError("fail_statuses must be a non-empty list of 4xx/5xx codes")
        if new["retry_after"] is not None:
            new["retry_after"] = float(new["retry_after"])
        new["seed"] = int(new["seed"])
        if new["mode"] not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        new["queue"] = [str(r) for r in new["queue"]]
        for rule in new["rules"]:
            if not isinstance(rule, dict) or "contains" not in rule or "reply" not in rule:
                raise ValueError("each rule needs 'contains' and 'reply'")
        new["models"] = [str(m) for m in new["models"]]
        new["recent_limit"] = int(new["recent_limit"])
        new["echo_key"] = bool(new["echo_key"])
        vars(self).update(new)


class Stats:
    """Counters the tests assert on. Only touched from the server's event loop."""

    def __init__(self, recent_limit: int = 100):
        self.total = 0
        self.failures = 0
        self.statuses: collections.Counter = collections.Counter()
        self.attempts: collections.Counter = collections.Counter()  # body hash -> attempts
        self.successes: collections.Counter = collections.Counter()  # body hash -> 200s
        self.in_flight = 0
        self.max_in_flight = 0
        self.recent: collections.deque = collections.deque(maxlen=recent_limit)
        self.started = time.time()
        self.latency_served = 0.0  # seconds of latency the server added, summed over requests
        self.arrivals: list[float] = []  # time.time() of every request, for rate checks

    def as_dict(self) -> dict:
        return {
            "total_requests": self.total,
            "failures": self.failures,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "distinct_bodies": len(self.attempts),
            "requests_by_body": dict(self.attempts),
            "successes_by_body": dict(self.successes),
            "max_repeats": max(self.attempts.values(), default=0),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "recent_bodies": list(self.recent),
            "elapsed_s": round(time.time() - self.started, 3),
            "latency_served_s": round(self.latency_served, 6),
            "arrivals": list(self.arrivals),
        }


def count_words(messages) -> int:
    """Rough token count: words of every message, including text parts of multi-part content."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(part["text"].split())
    return total


def last_user_text(messages) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return "" if content is None else str(content)
    return ""


def body_hash(body: dict) -> str:
    """Canonical hash, so the same logical request counts once however the client orders keys."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:16]


def draw(seed: int, key: str, attempt: int) -> tuple[float, float]:
    """Two uniform numbers in [0, 1) from (seed, body hash, attempt): order-independent determinism."""
    digest = hashlib.sha1(f"{seed}:{key}:{attempt}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") / 2**64, int.from_bytes(digest[8:16], "big") / 2**64)


def latency(behaviour: Behaviour, key: str, attempt: int) -> float:
    """The delay for one attempt: fixed, or lognormal around the median (deterministic per attempt)."""
    if behaviour.delay_spread <= 0 or behaviour.delay_s <= 0:
        return behaviour.delay_s
    import math
    import statistics

    u = draw(behaviour.seed + 7919, key, attempt)[0]
    z = statistics.NormalDist().inv_cdf(min(max(u, 1e-9), 1 - 1e-9))
    return behaviour.delay_s * math.exp(behaviour.delay_spread * z)


def error_response(status: int, message: str, retry_after: float | None = None) -> web.Response:
    headers = {}
    if status == 429 and retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    body = {
        "error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": None, "code": status}
    }
    return web.json_response(body, status=status, headers=headers)


class FakeApp:
    """The aiohttp application and its mutable state."""

    def __init__(self, **behaviour):
        self.behaviour = Behaviour()
        self.behaviour.update(behaviour)
        self.stats = Stats(self.behaviour.recent_limit)
        self.counter = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(
            [
                web.post("/v1/chat/completions", self.chat),
                web.post("/chat/completions", self.chat),
                web.get("/v1/models", self.models),
                web.get("/models", self.models),
                web.post("/_control", self.control),
                web.get("/_control", self.get_control),
                web.get("/_stats", self.get_stats),
                web.post("/_reset", self.reset),
            ]
        )
        return app

    def reply_for(self, messages) -> str:
        b = self.behaviour
        text = last_user_text(messages)
        if b.mode == "queue" and b.queue:
            return b.queue.pop(0)
        if b.mode == "rules":
            for rule in b.rules:
                if str(rule["contains"]) in text:
                    return str(rule["reply"])
        return "ECHO: " + text

    async def chat(self, request: web.Request) -> web.StreamResponse:
        stats, b = self.stats, self.behaviour
        stats.total += 1
        stats.arrivals.append(time.time())
        stats.in_flight += 1
        if stats.in_flight > stats.max_in_flight:
            stats.max_in_flight = stats.in_flight
        try:
            try:
                body = await request.json()
            except ValueError:
                return self._finish(None, error_response(400, "request body is not JSON"))
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                return self._finish(None, error_response(400, "'messages' must be a list"))
            key = body_hash(body)
            stats.attempts[key] += 1
            stats.recent.append(body)
            attempt = stats.attempts[key]
            delay = latency(b, key, attempt)
            if delay > 0:
                stats.latency_served += delay
                await asyncio.sleep(delay)
            if b.fail_rate > 0:
                fail, pick = draw(b.seed, key, attempt)
                if fail < b.fail_rate:
                    status = b.fail_statuses[int(pick * len(b.fail_statuses))]
                    message = f"fake failure {status} (attempt {attempt})"
                    if b.echo_key:
                        message += f"; you sent Authorization: {request.headers.get('Authorization')}"
                    return self._finish(key, error_response(status, message, b.retry_after))
            messages = body["messages"]
            text = self.reply_for(messages)
            model = body.get("model") or "fake"
            prompt_tokens, completion_tokens = count_words(messages), len(text.split())
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            self.counter += 1
            ident = f"chatcmpl-fake{self.counter}"
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return await self._stream(request, key, ident, model, text, usage if include_usage else None)
            return self._finish(
                key,
                web.json_response(
                    {
                        "id": ident,
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "logprobs": None,
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": usage,
                    }
                ),
            )
        finally:
            stats.in_flight -= 1

    def _finish(self, key, response: web.Response) -> web.Response:
        self.stats.statuses[response.status] += 1
        if response.status == 200:
            self.stats.successes[key] += 1
        else:
            self.stats.failures += 1
        return response

    async def _stream(self, request, key, ident, model, text, usage) -> web.StreamResponse:
        """Server-sent events: a role chunk, one chunk per word, a stop chunk, optional usage, [DONE]."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        created = int(time.time())

        def chunk(delta, finish=None, usage_=None, choices=True):
            data = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}] if choices else [],
            }
            if usage_ is not None:
                data["usage"] = usage_
            return f"data: {json.dumps(data)}\n\n".encode()

        words = text.split(" ")
        parts = [chunk({"role": "assistant", "content": ""})]
        parts += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        parts.append(chunk({}, finish="stop"))
        if usage is not None:
            parts.append(chunk(None, usage_=usage, choices=False))
        parts.append(b"data: [DONE]\n\n")
        for part in parts:
            await response.write(part)
        await response.write_eof()
        self.stats.statuses[200] += 1
        self.stats.successes[key] += 1
        return response

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.behaviour.models],
            }
        )

    async def control(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("control body must be a JSON object")
            self.behaviour.update(changes)
        except (ValueError, TypeError) as e:
            return web.json_response({"error": str(e)}, status=400)
        if "recent_limit" in changes:
            self.stats.recent = collections.deque(self.stats.recent, maxlen=self.behaviour.recent_limit)
        return web.json_response(vars(self.behaviour))

    async def get_control(self, request: web.Request) -> web.Response:
        return web.json_response(vars(self.behaviour))

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.stats.as_dict(), behaviour=vars(self.behaviour)))

    async def reset(self, request: web.Request) -> web.Response:
        in_flight = self.stats.in_flight
        self.stats = Stats(self.behaviour.recent_limit)
        self.stats.in_flight = in_flight  # requests still running will decrement it
        return web.json_response({"ok": True})


async def serve(fake: FakeApp, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start listening; return the runner and the bound port (port=0 picks a free one)."""
    runner = web.AppRunner(fake.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, bound


class FakeServer:
    """Handle on a running fake server, in this process or another; talks to it over HTTP."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.root = self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        # Never route the fake server's own control calls through an HTTP proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, payload: dict | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.root + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise ValueError(json.loads(e.read()).get("error", str(e))) from None

    def stats(self) -> dict:
        return self._call("GET", "/_stats")

    def control(self, **changes) -> dict:
        """Change behaviour (delay_s, fail_rate, fail_statuses, retry_after, seed, mode, queue, rules...)."""
        return self._call("POST", "/_control", changes)

    def reset(self) -> None:
        self._call("POST", "/_reset", {})

    def stop(self) -> None:
        loop, runner, thread = self._loop, self._runner, self._thread
        if loop is None or runner is None or thread is None:  # never started, or already stopped
            return
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = None

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_fake_server(host: str = "127.0.0.1", port: int = 0, **behaviour) -> FakeServer:
    """Run a fake server in a daemon thread with its own event loop; returns once it listens."""
    fake = FakeApp(**behaviour)  # validate in the caller's thread so errors surface here
    loop = asyncio.new_event_loop()
    ready: dict = {}
    started = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        try:
            ready["runner"], ready["port"] = loop.run_until_complete(serve(fake, host, port))
        except BaseException as e:  # report bind errors to the caller
            ready["error"] = e
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="fake-openai-server", daemon=True)
    thread.start()
    started.wait(timeout=30)
    if "error" in ready:
        raise ready["error"]
    server = FakeServer(f"http://{host}:{ready['port']}/v1")
    server._thread, server._loop, server._runner = thread, loop, ready["runner"]
    return server


def connect(url: str) -> FakeServer:
    """A handle on a fake server started as a separate process (stats/control/reset over HTTP)."""
    return FakeServer(url)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.fake_server", description="Fake OpenAI-compatible chat completions server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8911, help="0 picks a free port (printed on start)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds of latency per request (the median)")
    parser.add_argument("--spread", type=float, default=0.0, help="lognormal sigma of the latency (0: fixed)")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="fraction of attempts that fail")
    parser.add_argument("--fail-statuses", default="500", help="comma-separated statuses, e.g. 500,429")
    parser.add_argument("--retry-after", type=float, default=1, help="Retry-After seconds sent with 429")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=MODES, default="echo")
    args = parser.parse_args(argv)
    fake = FakeApp(
        delay_s=args.delay,
        delay_spread=args.spread,
        fail_rate=args.fail_rate,
        seed=args.seed,
        mode=args.mode,
        fail_statuses=[int(s) for s in args.fail_statuses.split(",") if s.strip()],
        retry_after=args.retry_after,
    )

    async def run():
        runner, port = await serve(fake, args.host, args.port)
        # Launchers wait for this line to learn the port.
        print(f"Fake OpenAI server listening on http://{args.host}:{port}/v1", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    run_loop: Callable[..., Any]
    try:
        import uvloop  # optional: roughly doubles requests/s for the benchmark

        run_loop = uvloop.run
    except ImportError:
        run_loop = asyncio.run
    run_loop(run())


if __name__ == "__main__":
    main()
