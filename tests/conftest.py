"""Shared fixtures: a private WORKBENCH_HOME per test and a fake model with a reply queue."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("WORKBENCH_LEASE_SECONDS", "1.5")  # heartbeats (and cancels seen) every 0.5 s


def pytest_configure(config):
    """In CI the team-mode tests must run, never be skipped: `.ci/run` starts Redis and
    PostgreSQL and sets these variables; a CI run without them is an error, not a pass."""
    if os.environ.get("CI") == "true":
        missing = [v for v in ("WORKBENCH_TEST_REDIS_URL", "WORKBENCH_TEST_POSTGRES_URL") if not os.environ.get(v)]
        if missing:
            raise pytest.UsageError(f"CI=true but {', '.join(missing)} unset: run the tests through .ci/run")


def pytest_collection_modifyitems(config, items):
    """Browser tests last: Playwright's sync API keeps an event loop running in the main thread
    for the session, which would break every later test that calls asyncio.run()."""
    items.sort(key=lambda item: "tests/e2e/" in str(item.fspath).replace("\\", "/"))


@pytest.fixture(autouse=True, scope="session")
def stop_local_model_server():
    """A test that called the embedded model started its server (if none ran): stop that one at the end."""
    yield
    if "workbench.local_server" in sys.modules:
        sys.modules["workbench.local_server"].stop(owned_only=True)


@pytest.fixture(autouse=True)
def workbench_home(tmp_path, monkeypatch):
    from storage import db

    home = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.delenv("WORKBENCH_DATABASE_URL", raising=False)
    db.dispose_all()
    yield home
    db.dispose_all()


class FakeModel:
    """A litellm custom provider `fake/...`: replies from a queue (else echoes), records every call."""

    def __init__(self):
        self.replies: list = []
        self.history: list[dict] = []
        self.delay = 0.0

    def queue(self, *replies):
        self.replies.extend(replies)

    def next_reply(self, model, messages):
        self.history.append({"model": model, "messages": messages})
        if self.replies:
            reply = self.replies.pop(0)
            if isinstance(reply, Exception):
                raise reply
            return reply
        return "ECHO: " + messages[-1]["content"]

    def handler(self):
        from litellm import CustomLLM
        from litellm.types.utils import Usage

        fake = self

        class Handler(CustomLLM):
            def _respond(self, model, messages, model_response):
                text = fake.next_reply(model, messages)
                model_response.choices[0].message.content = text
                model_response.model = model
                words_in = sum(len(m["content"].split()) for m in messages)
                model_response.usage = Usage(
                    prompt_tokens=words_in,
                    completion_tokens=len(text.split()),
                    total_tokens=words_in + len(text.split()),
                )
                return model_response

            def completion(self, model, messages, api_base, custom_prompt_dict, model_response, *a, **kw):
                return self._respond(model, messages, model_response)

            async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response, *a, **kw):
                if fake.delay:
                    await asyncio.sleep(fake.delay)
                return self._respond(model, messages, model_response)

        return Handler()


@pytest.fixture
def fake_model(monkeypatch):
    from workbench import llm

    fake = FakeModel()
    llm.litellm_module()
    llm.register_provider("fake", fake.handler())
    monkeypatch.setenv("WORKBENCH_MODELS", "fake/model")
    yield fake
    llm._providers.pop("fake", None)
    llm._sync_providers()
