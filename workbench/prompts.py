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

from sqlmodel import select

from storage.db import session
from storage.tables import LabelEvent, Prompt, PromptLabel, PromptVersion, utcnow
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
    with session() as s:
        prompt = s.exec(select(Prompt).where(Prompt.name == name)).first()
        if prompt is None:
            prompt = Prompt(name=name, description=description or "")
            s.add(prompt)
            s.flush()
        elif description is not None and description != prompt.description:
            prompt.description = description
        latest = s.exec(
            select(PromptVersion).where(PromptVersion.prompt_id == prompt.id).order_by(PromptVersion.version.desc())
        ).first()
        if latest is not None and latest.content_hash == digest:
            return SaveResult(latest, created=False)
        version = PromptVersion(
            prompt_id=prompt.id,
            version=(latest.version + 1) if latest else 1,
            kind=kind,
            template=template,
            messages=messages,
            variables=found_variables,
            model=model.strip(),
            params=params,
            content_hash=digest,
            note=note,
            author=author or config.author(),
        )
        s.add(version)
        s.flush()
        return SaveResult(version, created=True)


def list_prompts() -> list[dict]:
    """Each prompt with its latest version number and labels, for the list view."""
    with session() as s:
        prompts = s.exec(select(Prompt).order_by(Prompt.name)).all()
        out = []
        for prompt in prompts:
            versions = s.exec(select(PromptVersion.version).where(PromptVersion.prompt_id == prompt.id)).all()
            labels = labels_of(prompt.name, s=s)
            out.append(
                {
                    "name": prompt.name,
                    "description": prompt.description,
                    "versions": len(versions),
                    "latest": max(versions) if versions else None,
                    **{label: labels.get(label) for label in LABELS},
                }
            )
        return out


def get_prompt(name: str, s=None) -> Prompt:
    def find(s):
        prompt = s.exec(select(Prompt).where(Prompt.name == name)).first()
        if prompt is None:
            raise NotFound(f"No prompt named {name!r}.")
        return prompt

    if s is not None:
        return find(s)
    with session() as s:
        return find(s)


def versions(name: str) -> list[PromptVersion]:
    with session() as s:
        prompt = get_prompt(name, s)
        return list(
            s.exec(
                select(PromptVersion).where(PromptVersion.prompt_id == prompt.id).order_by(PromptVersion.version)
            ).all()
        )


def get_version(name: str, version: int) -> PromptVersion:
    with session() as s:
        prompt = get_prompt(name, s)
        found = s.exec(
            select(PromptVersion).where(PromptVersion.prompt_id == prompt.id, PromptVersion.version == version)
        ).first()
        if found is None:
            raise NotFound(f"Prompt {name!r} has no version {version}.")
        return found


def version_by_id(version_id: int) -> PromptVersion:
    with session() as s:
        found = s.get(PromptVersion, version_id)
        if found is None:
            raise NotFound(f"No prompt version with id {version_id}.")
        return found


def prompt_name_of(version: PromptVersion) -> str:
    with session() as s:
        return s.get(Prompt, version.prompt_id).name


def labels_of(name: str, s=None) -> dict[str, int]:
    """{label: version number} for one prompt."""

    def read(s):
        prompt = get_prompt(name, s)
        rows = s.exec(
            select(PromptLabel.label, PromptVersion.version)
            .join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
            .where(PromptLabel.prompt_id == prompt.id)
        ).all()
        return {label: version for label, version in rows}

    if s is not None:
        return read(s)
    with session() as s:
        return read(s)


def set_label(name: str, label: str, version: int, evidence: str = "", author: str | None = None) -> None:
    """Point `label` at `version` and record the move; rolling back is the same call with an older version."""
    label = label.strip()
    if not label or "@" in label or label.isdigit():
        raise WorkbenchError("A label is a word such as 'production' or 'staging'.")
    with session() as s:
        prompt = get_prompt(name, s)
        target = s.exec(
            select(PromptVersion).where(PromptVersion.prompt_id == prompt.id, PromptVersion.version == version)
        ).first()
        if target is None:
            raise NotFound(f"Prompt {name!r} has no version {version}.")
        current = s.exec(
            select(PromptLabel).where(PromptLabel.prompt_id == prompt.id, PromptLabel.label == label)
        ).first()
        previous_id = current.version_id if current else None
        if previous_id == target.id:
            return
        if current is None:
            s.add(PromptLabel(prompt_id=prompt.id, label=label, version_id=target.id))
        else:
            current.version_id = target.id
            current.updated_at = utcnow()
        s.add(
            LabelEvent(
                prompt_id=prompt.id,
                label=label,
                from_version_id=previous_id,
                to_version_id=target.id,
                author=author or config.author(),
                evidence=evidence,
            )
        )


def label_history(name: str) -> list[dict]:
    with session() as s:
        prompt = get_prompt(name, s)
        numbers = dict(
            s.exec(select(PromptVersion.id, PromptVersion.version).where(PromptVersion.prompt_id == prompt.id)).all()
        )
        events = s.exec(
            select(LabelEvent).where(LabelEvent.prompt_id == prompt.id).order_by(LabelEvent.id.desc())
        ).all()
        return [
            {
                "when": e.created_at,
                "label": e.label,
                "from": numbers.get(e.from_version_id),
                "to": numbers[e.to_version_id],
                "author": e.author,
                "evidence": e.evidence,
            }
            for e in events
        ]


def resolve(ref: str) -> PromptVersion:
    """`name@3`, `name@production` or plain `name` (the latest version)."""
    name, _, which = ref.partition("@")
    name, which = name.strip(), which.strip()
    if not which:
        found = versions(name)
        if not found:
            raise NotFound(f"Prompt {name!r} has no versions.")
        return found[-1]
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
    settings = {}
    if a.model != b.model:
        settings["model"] = (a.model, b.model)
    for key in sorted(set(a.params) | set(b.params)):
        if a.params.get(key) != b.params.get(key):
            settings[key] = (a.params.get(key), b.params.get(key))
    unified = "\n".join(difflib.unified_diff(left, right, f"v{a.version}", f"v{b.version}", lineterm=""))
    return {"rows": rows, "unified": unified, "settings": settings, "same": a.content_hash == b.content_hash}
