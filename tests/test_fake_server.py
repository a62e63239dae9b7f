"""The fake OpenAI server behaves like a real provider to the openai client and to litellm."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from workbench.fake_server import connect, start_fake_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server():
    with start_fake_server() as s:
        yield s


def client(server, **kw):
    return openai.OpenAI(base_url=server.url, api_key="x", **kw)


def user(text):
    return [{"role": "user", "content": text}]


def test_echo_with_openai_client(server):
    response = client(server).chat.completions.create(
        model="gpt-fake", messages=[{"role": "system", "content": "be brief"}, *user("hello there world")]
    )
    assert response.choices[0].message.content == "ECHO: hello there world"
    assert response.model == "gpt-fake"
    assert response.usage.prompt_tokens == 5  # "be brief" + "hello there world"
    assert response.usage.completion_tokens == 4
    assert response.usage.total_tokens == 9
    assert server.url.endswith("/v1")
    assert [m.id for m in client(server).models.list()] == ["fake"]


def test_litellm_completion(server):
    import litellm

    response = litellm.completion(
        model="openai/fake", api_base=server.url, api_key="x", messages=user("what is two plus two")
    )
    assert response.choices[0].message.content == "ECHO: what is two plus two"
    assert response.usage.prompt_tokens == 5
    assert response.usage.completion_tokens == 6
    stats = server.stats()
    assert stats["total_requests"] == 1
    assert stats["recent_bodies"][0]["model"] == "fake"


def test_streaming(server):
    stream = client(server).chat.completions.create(
        model="m", messages=user("stream these words"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "ECHO: stream these words"
    assert chunks[-1].usage.completion_tokens == 4


def test_queue_then_echo_fallback(server):
    server.control(mode="queue", queue=["first", "second"])
    c = client(server)
    replies = [
        c.chat.completions.create(model="m", messages=user(f"q{i}")).choices[0].message.content for i in range(3)
    ]
    assert replies == ["first", "second", "ECHO: q2"]
    assert server.stats()["behaviour"]["queue"] == []


def test_rules(server):
    server.control(
        mode="rules", rules=[{"contains": "capital", "reply": "Paris"}, {"contains": "colour", "reply": "blue"}]
    )
    c = client(server)
    ask = lambda text: c.chat.completions.create(model="m", messages=user(text)).choices[0].message.content
    assert ask("the capital of France?") == "Paris"
    assert ask("sky colour?") == "blue"
    assert ask("anything else") == "ECHO: anything else"


def test_429_carries_retry_after(server):
    server.control(fail_rate=1.0, fail_statuses=[429], retry_after=7)
    with pytest.raises(openai.RateLimitError) as info:
        client(server, max_retries=0).chat.completions.create(model="m", messages=user("hi"))
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "7"
    server.control(fail_statuses=[500])
    with pytest.raises(openai.InternalServerError):
        client(server, max_retries=0).chat.completions.create(model="m", messages=user("hi"))
    assert server.stats()["statuses"] == {"429": 1, "500": 1}


def test_litellm_sees_rate_limit(server):
    import litellm

    server.control(fail_rate=1.0, fail_statuses=[429])
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(
            model="openai/fake", api_base=server.url, api_key="x", messages=user("hi"), num_retries=0, max_retries=0
        )


def attempt_until_ok(http, url, i, limit=50):
    for attempt in range(1, limit + 1):
        r = http.post(url + "/chat/completions", json={"model": "m", "messages": user(f"row {i}")})
        if r.status_code == 200:
            return attempt
    raise AssertionError(f"row {i} never succeeded")


def test_failures_are_deterministic_and_retries_succeed(server):
    server.control(fail_rate=0.2, fail_statuses=[500, 429], seed=42)
    with httpx.Client(trust_env=False) as http:
        first = [attempt_until_ok(http, server.url, i) for i in range(100)]
        stats = server.stats()
        server.reset()
        second = [attempt_until_ok(http, server.url, i) for i in range(100)]
    assert first == second  # same seed, same attempts fail
    assert any(a > 1 for a in first)  # some did fail at 20%
    assert 5 <= stats["failures"] <= 50
    assert stats["total_requests"] == sum(first)
    assert set(stats["statuses"]) == {"200", "500", "429"}
    # every request body eventually succeeded exactly once
    assert stats["distinct_bodies"] == 100
    assert set(stats["successes_by_body"].values()) == {1}

    server.reset()
    server.control(seed=7)
    with httpx.Client(trust_env=False) as http:
        other_seed = [attempt_until_ok(http, server.url, i) for i in range(100)]
    assert other_seed != first


def test_openai_client_retries_through_failures(server):
    server.control(fail_rate=0.5, fail_statuses=[429], retry_after=0.01, seed=1)
    c = client(server, max_retries=20)
    for i in range(10):
        assert (
            c.chat.completions.create(model="m", messages=user(f"x {i}")).choices[0].message.content == f"ECHO: x {i}"
        )
    stats = server.stats()
    assert stats["failures"] > 0
    assert stats["total_requests"] == 10 + stats["failures"]


def test_max_in_flight_and_no_repeats(server):
    server.control(delay_s=0.2)

    async def fire():
        async with openai.AsyncOpenAI(base_url=server.url, api_key="x") as c:
            return await asyncio.gather(
                *(c.chat.completions.create(model="m", messages=user(f"request {i}")) for i in range(20))
            )

    responses = asyncio.run(fire())
    assert sorted(r.choices[0].message.content for r in responses) == sorted(f"ECHO: request {i}" for i in range(20))
    stats = server.stats()
    assert stats["max_in_flight"] == 20
    assert stats["in_flight"] == 0
    assert stats["total_requests"] == 20
    assert stats["max_repeats"] == 1
    assert len(stats["requests_by_body"]) == 20


def test_reset_and_recent_cap(server):
    server.control(recent_limit=3)
    c = client(server)
    for i in range(5):
        c.chat.completions.create(model="m", messages=user(f"n{i}"))
    stats = server.stats()
    assert stats["total_requests"] == 5
    assert [b["messages"][0]["content"] for b in stats["recent_bodies"]] == ["n2", "n3", "n4"]
    server.reset()
    stats = server.stats()
    assert stats["total_requests"] == 0
    assert stats["requests_by_body"] == {}
    assert stats["max_in_flight"] == 0
    assert stats["behaviour"]["recent_limit"] == 3  # behaviour survives a reset


def test_bad_control_and_bad_request(server):
    with pytest.raises(ValueError, match="unknown setting"):
        server.control(delay=1)
    with pytest.raises(ValueError, match="fail_rate"):
        server.control(fail_rate=2)
    with pytest.raises(ValueError, match="mode"):
        start_fake_server(mode="random")
    with httpx.Client(trust_env=False) as http:
        r = http.post(server.url + "/chat/completions", json={"model": "m"})
    assert r.status_code == 400
    assert "messages" in r.json()["error"]["message"]


def test_runs_as_a_process():
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.fake_server", "--port", "0", "--fail-rate", "1", "--fail-statuses", "503"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        line = proc.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        remote = connect(url)
        with httpx.Client(trust_env=False) as http:
            assert http.post(url + "/chat/completions", json={"messages": user("a")}).status_code == 503
            remote.control(fail_rate=0)
            assert (
                http.post(url + "/chat/completions", json={"messages": user("a")}).json()["choices"][0]["message"][
                    "content"
                ]
                == "ECHO: a"
            )
        assert remote.stats()["statuses"] == {"503": 1, "200": 1}
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
