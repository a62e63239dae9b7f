"""Secrets: which environment variables may become API keys, and keeping key values out of text.

Three rules, each closing a hole found in issue 17:

- A config (and the Playground's "env var holding its API key" field) may name an environment
  variable as `${NAME}`, and the value is sent as a Bearer token to a URL the user chooses. So
  only key variables resolve: the `*_API_KEY` of known providers plus the names listed in
  `WORKBENCH_ALLOWED_KEY_VARS` (comma separated). Anything else is refused with a message.
- Nothing stored holds a key. `strip_keys` replaces a literal key anywhere in a config by a
  `${literal:…}` reference to this process's memory, so a run started here still works while the
  database, exports and saved scorers only ever see the reference.
- Providers echo keys in error bodies. `mask` replaces every known secret value (literal keys
  seen by this process, keys in use, and every environment variable named like a key) by `***`
  wherever errors are stored, shown or exported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from workbench.errors import WorkbenchError

PROVIDER_KEY_VARS = frozenset(
    f"{provider}_API_KEY"
    for provider in (
        "OPENAI",
        "AZURE",
        "AZURE_OPENAI",
        "ANTHROPIC",
        "GEMINI",
        "GOOGLE",
        "MISTRAL",
        "CODESTRAL",
        "GROQ",
        "COHERE",
        "TOGETHERAI",
        "TOGETHER",
        "FIREWORKS_AI",
        "DEEPSEEK",
        "XAI",
        "PERPLEXITYAI",
        "OPENROUTER",
        "HUGGINGFACE",
        "REPLICATE",
        "CEREBRAS",
        "DEEPINFRA",
        "VOYAGE",
        "AI21",
        "NVIDIA_NIM",
        "SAMBANOVA",
        "NEBIUS",
        "DASHSCOPE",
        "MOONSHOT",
    )
)
ALLOW_VAR = "WORKBENCH_ALLOWED_KEY_VARS"
# Environment variables whose values are masked wherever text leaves the process.
SECRET_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|SECRET_KEY|PASSWORD|PASSWD|CREDENTIALS?)$", re.I)
# Config fields that hold a secret (`api_key` today); `max_tokens` and friends are not secrets.
SECRET_FIELD = re.compile(r"(?:.*_)?(?:api_?key|token|secret|password)", re.I)
MIN_MASKED = 8  # shorter values (flags, "1", "true") would mask ordinary text
MASK = "***"
REFERENCE = re.compile(r"^\$\{([^}]*)\}$")
LITERAL_PREFIX = "literal:"

_literal_by_token: dict[str, str] = {}
_token_by_literal: dict[str, str] = {}


def allowed_key_vars() -> set[str]:
    extra = {name.strip() for name in (os.environ.get(ALLOW_VAR) or "").split(",") if name.strip()}
    return set(PROVIDER_KEY_VARS) | extra


def key_var_problem(name: str) -> str | None:
    """Why `name` may not be read as an API key, or None when it may."""
    if name in allowed_key_vars():
        return None
    return (
        f"${{{name}}} is not an API key variable this workbench may read: use a provider's key variable "
        f"(e.g. OPENAI_API_KEY) or list {name} in {ALLOW_VAR} (comma separated) before starting the workbench."
    )


def check_key_var(name: str) -> None:
    problem = key_var_problem(name)
    if problem:
        raise WorkbenchError(problem)


def is_reference(value) -> bool:
    return isinstance(value, str) and REFERENCE.match(value) is not None


def remember(value: str) -> str:
    """A `${literal:…}` reference for a key typed literally; the value stays in this process only."""
    token = _token_by_literal.get(value)
    if token is None:
        token = os.urandom(8).hex()
        _token_by_literal[value] = token
        _literal_by_token[token] = value
    return "${" + LITERAL_PREFIX + token + "}"


def resolve(value: str | None) -> str | None:
    """The key to send for an `api_key` as configured: `${NAME}` reads an allowed environment
    variable, `${literal:…}` this process's memory (None once the process that read the config is
    gone), and a literal is used as it is (and remembered, so `mask` hides it)."""
    if not isinstance(value, str) or not value:
        return value or None
    match = REFERENCE.match(value)
    if match is None:
        remember(value)
        return value
    name = match.group(1).strip()
    if name.startswith(LITERAL_PREFIX):
        return _literal_by_token.get(name[len(LITERAL_PREFIX) :])
    check_key_var(name)
    return os.environ.get(name) or None


def key_problems(value) -> list[str]:
    """Config validation for an `api_key` field: a reference must name an allowed variable."""
    if not isinstance(value, str):
        return [] if value is None else ["api_key must be text, e.g. ${OPENAI_API_KEY}"]
    match = REFERENCE.match(value)
    if match is None or match.group(1).strip().startswith(LITERAL_PREFIX):
        return []
    problem = key_var_problem(match.group(1).strip())
    return [problem] if problem else []


def strip_keys(config):
    """A copy of a config (any nesting of dicts and lists) fit to store: every literal value of a
    secret field (`api_key`, `*_token`, ...) becomes a `${literal:…}` reference; `${VARIABLE}`
    references are kept as they are."""
    if isinstance(config, dict):
        out = {}
        for key, value in config.items():
            if isinstance(value, str) and value and SECRET_FIELD.fullmatch(str(key)) and not is_reference(value):
                out[key] = remember(value)
            else:
                out[key] = strip_keys(value)
        return out
    if isinstance(config, list):
        return [strip_keys(item) for item in config]
    return config


def secret_values(extra: Iterable[str | None] = ()) -> set[str]:
    """Every value `mask` hides: literal keys this process has seen, `extra`, and the values of
    environment variables named like a key or listed in WORKBENCH_ALLOWED_KEY_VARS."""
    allowed = allowed_key_vars()
    values = set(_token_by_literal) | {v for v in extra if v}
    values |= {v for name, v in os.environ.items() if v and (SECRET_NAME.search(name) or name in allowed)}
    return {v for v in values if len(v) >= MIN_MASKED}


_patterns: dict[frozenset, re.Pattern] = {}


def mask(text, extra: Iterable[str | None] = ()):
    """`text` with every known secret value replaced by `***`; non-text values are returned as they are."""
    if not isinstance(text, str) or not text:
        return text
    values = frozenset(secret_values(extra))
    if not values:
        return text
    pattern = _patterns.get(values)
    if pattern is None:
        if len(_patterns) > 64:
            _patterns.clear()
        # longest first, so a key that contains another is replaced whole
        pattern = _patterns[values] = re.compile("|".join(map(re.escape, sorted(values, key=len, reverse=True))))
    return pattern.sub(MASK, text)
