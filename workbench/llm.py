"""Every model call goes through here: litellm for the call, the `llm_call` table for the record.

Model ids are litellm strings (`openai/gpt-4o-mini`, `anthropic/...`, `local/smollm2`).
The embedded model (`local/smollm2`) is served by a local OpenAI-compatible server process
(workbench.local_server) and called through litellm like a hosted model; test fakes are
litellm custom providers. The product calls all of them the same way. Responses are cached by a hash of (model, api_base,
params, messages); errors are returned as data and never cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from workbench import (
    config,  # noqa: F401  (offline price map before litellm import)
    costs,
    secrets,
)
from workbench.errors import WorkbenchError

EMBEDDED_MODEL = "local/smollm2"

# Hosted models offered in pickers when the provider's key is in the environment.
HOSTED_MODELS = {
    "OPENAI_API_KEY": ["openai/gpt-4o-mini", "openai/gpt-4o"],
    "ANTHROPIC_API_KEY": ["anthropic/claude-3-5-haiku-latest", "anthropic/claude-sonnet-4-20250514"],
    "GEMINI_API_KEY": ["gemini/gemini-2.0-flash"],
    "MISTRAL_API_KEY": ["mistral/mistral-small-latest"],
    "GROQ_API_KEY": ["groq/llama-3.1-8b-instant"],
}

# Parameters passed through to litellm; anything else in a version's params is refused.
KNOWN_PARAMS = {
    "temperature",
    "max_tokens",
    "top_p",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "logprobs",
    "top_logprobs",
    "timeout",
}

_providers: dict[str, Any] = {}


@dataclass
class ModelSpec:
    """A model as a run or the playground uses it. api_key is never stored or logged."""

    id: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    params: dict = field(default_factory=dict)
    rpm: float | None = None  # optional requests-per-minute limit, enforced by the run engine

    @property
    def label(self) -> str:
        return f"{self.id} @ {self.api_base}" if self.api_base else self.id

    @classmethod
    def parse(cls, value) -> ModelSpec:
        """From a plain id or a mapping {id, api_base, api_key, params}; `${VAR}` keys read the environment."""
        if isinstance(value, ModelSpec):
            return value
        if isinstance(value, str):
            return cls(id=value.strip())
        if not isinstance(value, dict) or not value.get("id"):
            raise WorkbenchError(f"A model needs an id, got {value!r}.")
        return cls(
            id=str(value["id"]).strip(),
            api_base=value.get("api_base") or None,
            api_key=expand_env(value.get("api_key")),
            params=dict(value.get("params") or {}),
            rpm=float(value["rpm"]) if value.get("rpm") else None,
        )

    def public(self) -> dict:
        """What may be stored in a run config: everything but the key."""
        return {"id": self.id, "api_base": self.api_base, "params": self.params, "rpm": self.rpm}


def expand_env(value: str | None) -> str | None:
    """`${NAME}` reads an allowed key variable only; see workbench.secrets (a literal is remembered for masking)."""
    return secrets.resolve(value)


@dataclass
class CallResult:
    model: str
    messages: list
    params: dict
    request_hash: str
    output: str | None = None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    error_type: str | None = None
    error: str | None = None
    cached: bool = False
    api_base: str | None = None
    retry_after: float | None = None
    logprobs: list | None = None
    attempts: int = 1  # requests sent, retries included

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @property
    def retryable(self) -> bool:
        return self.error_type in ("rate_limit", "server_error", "timeout", "connection")


def available_models() -> list[str]:
    """The embedded model always; hosted ones whose keys are set; extra ids from WORKBENCH_MODELS."""
    models = [EMBEDDED_MODEL]
    for key, ids in HOSTED_MODELS.items():
        if os.environ.get(key):
            models += ids
    for extra in (os.environ.get("WORKBENCH_MODELS") or "").split(","):
        if extra.strip() and extra.strip() not in models:
            models.append(extra.strip())
    return models


def register_provider(name: str, handler) -> None:
    """Add a litellm custom provider (the embedded model, or a fake in tests)."""
    _providers[name] = handler
    _sync_providers()


def _sync_providers() -> None:
    import litellm

    litellm.custom_provider_map = [{"provider": n, "custom_handler": h} for n, h in _providers.items()]
    litellm.utils.custom_llm_setup()


_litellm = None
_no_litellm_logging = None  # litellm's "internal call" switch, once litellm is imported


def litellm_module():
    """Import and configure litellm once (it takes seconds: never at page import)."""
    global _litellm
    if _litellm is None:
        import litellm

        litellm.suppress_debug_info = True
        litellm.drop_params = True
        litellm.telemetry = False
        _litellm = litellm
        _sync_providers()
        _find_logging_switch()
    return _litellm


def _find_logging_switch() -> None:
    """litellm builds a logging payload and schedules success callbacks (a task and a thread-pool
    job) for every call, ~1 ms of CPU that our own ledger makes useless: we register no litellm
    callbacks. Its context flag for internal sub-calls skips exactly that work (and the proxy's
    billing hooks, which we do not run). It is private API, so when a litellm version lacks it
    calls simply keep the logging."""
    global _no_litellm_logging
    try:
        from litellm._internal_context import is_internal_call
    except ImportError:
        return
    _no_litellm_logging = is_internal_call


def request_hash(spec: ModelSpec, messages: list, params: dict) -> str:
    body = {"model": spec.id, "api_base": spec.api_base, "params": params, "messages": messages}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def check_params(params: dict) -> dict:
    unknown = sorted(set(params) - KNOWN_PARAMS)
    if unknown:
        raise WorkbenchError(
            f"Unknown model parameter(s): {', '.join(unknown)}. Known: {', '.join(sorted(KNOWN_PARAMS))}."
        )
    return params


def classify_error(exc: Exception) -> tuple[str, float | None]:
    """Map a provider exception to an error type (and Retry-After seconds when given)."""
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    retry_after = None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        header = headers.get("retry-after")
        if header:
            retry_after = float(header)
    except (TypeError, ValueError):
        retry_after = None
    if name == "RateLimitError" or status == 429:
        return "rate_limit", retry_after
    if "Timeout" in name or isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout", None
    if name in ("APIConnectionError", "ServiceUnavailableError", "InternalServerError") or (
        isinstance(status, int) and status >= 500
    ):
        # litellm reports a refused or dropped connection as an InternalServerError "Connection error."
        connection = name == "APIConnectionError" or "Connection error" in str(exc)
        return ("connection" if connection else "server_error"), retry_after
    if name in ("AuthenticationError", "PermissionDeniedError") or status in (401, 403):
        return "auth", None
    if name == "NotFoundError" or status == 404 or "LLM Provider NOT provided" in str(exc):
        return "unknown_model", None
    if name in ("BadRequestError", "UnprocessableEntityError", "ContextWindowExceededError") or status in (400, 422):
        return "bad_request", None
    return "provider_error", None


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 600 else text[:600] + "..."


async def acall(spec: ModelSpec, messages: list, timeout: float = 120.0) -> CallResult:
    """One attempt at one call through litellm's async API. Never raises for provider errors."""
    params = check_params(dict(spec.params))
    result = CallResult(
        model=spec.id,
        messages=messages,
        params=params,
        request_hash=request_hash(spec, messages, params),
        api_base=spec.api_base,
    )
    litellm = litellm_module()
    call_timeout = float(params.pop("timeout", timeout))
    try:
        model, api_base = await _target(spec)
    except Exception as exc:  # no such local model, or the embedded model's server could not start
        result.error_type, result.error = _target_error(exc), f"{type(exc).__name__}: {_short(exc)}"
        return result
    # Local OpenAI-compatible servers usually need no key, but the client insists on one.
    api_key = spec.api_key or ("not-needed" if api_base else None)
    started = time.perf_counter()
    quiet = _no_litellm_logging.set(True) if _no_litellm_logging is not None else None
    try:
        try:
            response = await litellm.acompletion(
                model=model,
                messages=messages,
                api_base=api_base,
                api_key=api_key,
                timeout=call_timeout,
                num_retries=0,
                **params,
            )
        except Exception as exc:
            # litellm reports a refused connection as an InternalServerError, hence both types.
            if spec.id != EMBEDDED_MODEL or classify_error(exc)[0] not in ("connection", "server_error"):
                raise
            # The embedded model's server may have died since it was last seen: check it (start it
            # again if it is gone) and ask once more.
            try:
                model, api_base = await _target(spec, recheck=True)
            except Exception as start_error:  # report the start failure (it says why), as retryable
                result.error_type, result.error = "connection", f"{type(start_error).__name__}: {_short(start_error)}"
                result.latency_ms = (time.perf_counter() - started) * 1000
                return result
            started = time.perf_counter()
            response = await litellm.acompletion(
                model=model,
                messages=messages,
                api_base=api_base,
                api_key=api_key,
                timeout=call_timeout,
                num_retries=0,
                **params,
            )
    except Exception as exc:  # provider errors are data
        result.latency_ms = (time.perf_counter() - started) * 1000
        result.error_type, result.retry_after = classify_error(exc)
        # providers echo keys in error bodies: mask them here, where every stored error starts
        result.error = secrets.mask(f"{type(exc).__name__}: {_short(exc)}")
        return result
    finally:
        if quiet is not None and _no_litellm_logging is not None:
            _no_litellm_logging.reset(quiet)
    result.latency_ms = (time.perf_counter() - started) * 1000
    choice = response.choices[0]
    result.output = choice.message.content or ""
    usage = getattr(response, "usage", None)
    result.input_tokens = getattr(usage, "prompt_tokens", None)
    result.output_tokens = getattr(usage, "completion_tokens", None)
    # litellm already priced the response; recomputing costs ~1 ms of CPU per call.
    hidden = getattr(response, "_hidden_params", None) or {}
    priced = hidden.get("response_cost")
    result.cost_usd = (
        float(priced)
        if priced is not None and not costs.has_custom_price(spec.id)
        else costs.call_cost(spec.id, result.input_tokens, result.output_tokens)
    )
    logprobs = getattr(choice, "logprobs", None)
    if logprobs is not None:
        content = getattr(logprobs, "content", None) or (
            logprobs.get("content") if isinstance(logprobs, dict) else None
        )
        if content:
            result.logprobs = [
                {
                    "token": getattr(t, "token", None) if not isinstance(t, dict) else t.get("token"),
                    "top": [
                        {
                            "token": (x.token if not isinstance(x, dict) else x["token"]),
                            "logprob": (x.logprob if not isinstance(x, dict) else x["logprob"]),
                        }
                        for x in ((t.top_logprobs if not isinstance(t, dict) else t.get("top_logprobs")) or [])
                    ],
                }
                for t in content
            ]
    return result


async def _target(spec: ModelSpec, recheck: bool = False) -> tuple[str, str | None]:
    """The litellm model string and api_base for a spec: the embedded model is its local server's
    OpenAI-compatible endpoint (started on first use, seconds; not counted in the call's latency)."""
    if spec.id != EMBEDDED_MODEL:
        if spec.id.startswith("local/") and not spec.api_base:
            raise LookupError(f"Unknown local model {spec.id!r}: available: {EMBEDDED_MODEL}")
        return spec.id, spec.api_base
    from workbench import local_server

    if recheck:
        local_server.forget()
    return "openai/smollm2", await asyncio.to_thread(local_server.ensure_running)


def _target_error(exc: Exception) -> str:
    """An unknown local model is not retryable; a local server that failed to start may be."""
    return "unknown_model" if isinstance(exc, LookupError) else "connection"


async def astream(spec: ModelSpec, messages: list, timeout: float = 120.0):
    """Stream one call: yields text deltas (str) as they arrive, then one CallResult with the whole output.

    Errors are data here too: a failed call yields no text and a CallResult with the error. Token
    counts come from the provider's final usage chunk when it sends one.
    """
    params = check_params(dict(spec.params))
    result = CallResult(
        model=spec.id,
        messages=messages,
        params=params,
        request_hash=request_hash(spec, messages, params),
        api_base=spec.api_base,
    )
    litellm = litellm_module()
    call_timeout = float(params.pop("timeout", timeout))
    started = time.perf_counter()
    pieces: list[str] = []
    try:
        model, api_base = await _target(spec)
    except Exception as exc:
        result.error_type, result.error = _target_error(exc), f"{type(exc).__name__}: {_short(exc)}"
        yield result
        return
    try:
        api_key = spec.api_key or ("not-needed" if api_base else None)
        started = time.perf_counter()
        stream = await litellm.acompletion(
            model=model,
            messages=messages,
            api_base=api_base,
            api_key=api_key,
            timeout=call_timeout,
            num_retries=0,
            stream=True,
            stream_options={"include_usage": True},
            **params,
        )
        async for chunk in stream:
            choices = getattr(chunk, "choices", None) or []
            delta = getattr(choices[0], "delta", None) if choices else None
            text = getattr(delta, "content", None) if delta is not None else None
            if text:
                pieces.append(text)
                yield text
            usage = getattr(chunk, "usage", None)
            if usage is not None and getattr(usage, "completion_tokens", None):
                result.input_tokens = usage.prompt_tokens
                result.output_tokens = usage.completion_tokens
    except Exception as exc:  # provider errors are data
        result.error_type, result.retry_after = classify_error(exc)
        result.error = f"{type(exc).__name__}: {_short(exc)}"
    result.latency_ms = (time.perf_counter() - started) * 1000
    if result.ok:
        result.output = "".join(pieces)
        result.cost_usd = costs.call_cost(spec.id, result.input_tokens, result.output_tokens)
    yield result


def call(spec: ModelSpec, messages: list, timeout: float = 120.0) -> CallResult:
    """Synchronous wrapper for one attempt (used where no event loop runs)."""
    return asyncio.run(acall(spec, messages, timeout))


def backoff_delay(attempt: int, retry_after: float | None, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter; a server's Retry-After wins when it asks for longer."""
    import random

    delay = random.uniform(0, min(cap, base * (2**attempt)))
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), cap * 4))
    return delay
