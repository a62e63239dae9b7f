"""Prompts and their immutable versions, with movable labels.

Every save writes a new `prompt_version` row (unless nothing changed since the latest
one); rows are never updated. `production`/`staging` are pointers in `prompt_label`,
and each move is recorded in `label_event`, so a rollback is just moving a label back
and the history of who pointed what where stays readable.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from storage import prompts as repo
from storage.tables import Prompt, PromptVersion
from workbench import config, templates
from workbench.errors import NotFound, WorkbenchError

LABELS = ("production", "staging")
ROLES = ("system", "user", "assistant")
DEFAULT_MODEL = "local/smollm2"


@dataclass
class SaveResult:
    version: PromptVersion
    created: bool  # False when the content equalled the latest version


def content_hash(kind: str, template: str | None, messages: list | None, model: str, params: dict) -> str:
    body = {"kind": kind, "template": template, "messages": messages, "model": model, "params": params}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def detect_variables(kind: str, template: str | None = None, messages: list | None = None) -> list[str]:
    """Variables across the template or all chat messages, in order; raises TemplateError on bad syntax."""
    if kind == "text":
        return templates.variables(template or "")
    names: list[str] = []
    for message in messages or []:
        for name in templates.variables(message.get("content", "")):
            if name not in names:
                names.append(name)
    return names


def validate(kind: str, template: str | None, messages: list | None, model: str, params: dict) -> list[str]:
    """Check a prompt body before saving; returns the variables, raises WorkbenchError with a clear message."""
    if kind not in ("text", "chat"):
        raise WorkbenchError(f"Unknown prompt kind {kind!r}: use 'text' or 'chat'.")
    if kind == "text":
        if not (template or "").strip():
            raise WorkbenchError("The template is empty: write the prompt text first.")
    else:
        if not messages:
            raise WorkbenchError("A chat prompt needs at least one message.")
        for i, message in enumerate(messages, 1):
            if message.get("role") not in ROLES:
                raise WorkbenchError(f"Message {i}: role must be one of {', '.join(ROLES)}.")
            if not str(message.get("content", "")).strip():
                raise WorkbenchError(f"Message {i} ({message.get('role')}) is empty.")
        if not any(m["role"] == "user" for m in messages):
            raise WorkbenchError("A chat prompt needs a user message.")
    if not (model or "").strip():
        raise WorkbenchError("Choose a model for this version.")
    if not isinstance(params, dict):
        raise WorkbenchError("Model parameters must be a mapping (e.g. {temperature: 0.2, max_tokens: 256}).")
    try:
        return detect_variables(kind, template, messages)
    except templates.TemplateError as exc:
        raise WorkbenchError(f"Template syntax error: {exc}") from exc


def save_version(
    name: str,
    *,
    kind: str = "text",
    template: str | None = None,
    messages: list | None = None,
    model: str = DEFAULT_MODEL,
    params: dict | None = None,
    note: str = "",
    description: str | None = None,
    author: str | None = None,
) -> SaveResult:
    """Create the prompt if needed and append a version, unless the content is unchanged."""
    name = (name or "").strip()
    if not name:
        raise WorkbenchError("Give the prompt a name.")
    if "@" in name:
        raise WorkbenchError("A prompt name cannot contain '@' (it separates name and version in references).")
    params = dict(params or {})
    if kind == "chat":
        messages = [{"role": m["role"], "content": m["content"]} for m in messages or []]
        template = None
    else:
        messages = None
    found_variables = validate(kind, template, messages, model, params)
    digest = content_hash(kind, template, messages, model, params)
    version, created = repo.save_version(
        name,
        description,
        {
            "kind": kind,
            "template": template,
            "messages": messages,
            "variables": found_variables,
            "model": model.strip(),
            "params": params,
            "content_hash": digest,
            "note": note,
            "author": author or config.author(),
        },
    )
    return SaveResult(version, created=created)


def list_prompts() -> list[dict]:
    """Each prompt with its latest version number and labels, for the list view."""
    return [
        {
            "name": entry["name"],
            "description": entry["description"],
            "versions": entry["versions"],
            "latest": entry["latest"],
            **{label: entry["labels"].get(label) for label in LABELS},
        }
        for entry in repo.listing()
    ]


def get_prompt(name: str) -> Prompt:
    prompt = repo.find(name)
    if prompt is None:
        raise NotFound(f"No prompt named {name!r}.")
    return prompt


def _prompt_id(name: str) -> int:
    prompt = get_prompt(name)
    assert prompt.id is not None  # stored rows have ids
    return prompt.id


def versions(name: str) -> list[PromptVersion]:
    return repo.versions(_prompt_id(name))


def get_version(name: str, version: int) -> PromptVersion:
    found = repo.version(_prompt_id(name), version)
    if found is None:
        raise NotFound(f"Prompt {name!r} has no version {version}.")
    return found


def version_by_id(version_id: int) -> PromptVersion:
    found = repo.version_by_id(version_id)
    if found is None:
        raise NotFound(f"No prompt version with id {version_id}.")
    return found


def prompt_name_of(version: PromptVersion) -> str:
    prompt = repo.by_id(version.prompt_id)
    if prompt is None:
        raise NotFound(f"No prompt with id {version.prompt_id}.")
    return prompt.name


def labels_of(name: str) -> dict[str, int]:
    """{label: version number} for one prompt."""
    return repo.labels(_prompt_id(name))


def set_label(name: str, label: str, version: int, evidence: str = "", author: str | None = None) -> None:
    """Point `label` at `version` and record the move; rolling back is the same call with an older version."""
    label = label.strip()
    if not label or "@" in label or label.isdigit():
        raise WorkbenchError("A label is a word such as 'production' or 'staging'.")
    target = get_version(name, version)
    assert target.id is not None
    repo.move_label(target.prompt_id, label, target.id, author or config.author(), evidence)


def label_history(name: str) -> list[dict]:
    return [
        {
            "when": e.created_at,
            "label": e.label,
            "from": from_number,
            "to": to_number,
            "author": e.author,
            "evidence": e.evidence,
        }
        for e, from_number, to_number in repo.label_events(_prompt_id(name))
    ]


def resolve(ref: str) -> PromptVersion:
    """`name@3`, `name@production` or plain `name` (the latest version)."""
    name, _, which = ref.partition("@")
    name, which = name.strip(), which.strip()
    if not which:
        latest = repo.latest_version(_prompt_id(name))
        if latest is None:
            raise NotFound(f"Prompt {name!r} has no versions.")
        return latest
    if which.isdigit():
        return get_version(name, int(which))
    labels = labels_of(name)
    if which not in labels:
        raise NotFound(f"Prompt {name!r} has no label {which!r} (labels: {', '.join(labels) or 'none'}).")
    return get_version(name, labels[which])


def as_text(version: PromptVersion) -> str:
    """One readable text for a version's body, used for diffs and previews."""
    if version.kind == "text":
        return version.template or ""
    return "\n".join(f"[{m['role']}]\n{m['content']}" for m in version.messages or [])


def render_messages(version: PromptVersion, values: dict) -> list[dict]:
    """The chat messages to send; a text prompt becomes one user message. Sandboxed substitution."""
    if version.kind == "text":
        return [{"role": "user", "content": templates.render(version.template or "", values)}]
    return [{"role": m["role"], "content": templates.render(m["content"], values)} for m in version.messages or []]


def diff(a: PromptVersion, b: PromptVersion) -> dict:
    """Side-by-side rows (tag, left, right), a unified diff, and changed settings."""
    left, right = as_text(a).splitlines(), as_text(b).splitlines()
    rows = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        span = max(i2 - i1, j2 - j1)
        for k in range(span):
            rows.append(
                {
                    "tag": tag,
                    "left": left[i1 + k] if i1 + k < i2 else "",
                    "right": right[j1 + k] if j1 + k < j2 else "",
                }
            )
    settings: dict[str, tuple[Any, Any]] = {}
    if a.model != b.model:
        settings["model"] = (a.model, b.model)
    for key in sorted(set(a.params) | set(b.params)):
        if a.params.get(key) != b.params.get(key):
            settings[key] = (a.params.get(key), b.params.get(key))
    unified = "\n".join(difflib.unified_diff(left, right, f"v{a.version}", f"v{b.version}", lineterm=""))
    return {"rows": rows, "unified": unified, "settings": settings, "same": a.content_hash == b.content_hash}
