"""Prompt templates: `{{ name }}` placeholders and nothing else.

We deliberately do not use a general template engine. A strict substituter can never
read attributes, call functions or loop, so a template written by anyone on the team
(or pasted from the internet) cannot reach Python objects. The only syntax is
`{{ identifier }}`; anything else between double braces is a syntax error that names
its position, and a missing variable is an error that names the variable.
"""

from __future__ import annotations

import json
import re

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; the message is shown to users as is."""


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {col}"


def _placeholders(template: str):
    """Yield (start, end, inner text) of each `{{ ... }}`, like a lazy `\\{\\{(.*?)\\}\\}` search.

    Written with str.find instead of that regex: on text with an unclosed `{{` the regex
    rescans to the end of the text for every later `{{`, quadratic in the Prompts page's
    as-you-type path (80 KB took a minute). Here each character is looked at a bounded
    number of times; an unclosed `{{` simply ends the scan.
    """
    position = 0
    while True:
        start = template.find("{{", position)
        if start == -1:
            return
        close = template.find("}}", start + 2)
        if close == -1:
            return
        yield start, close + 2, template[start + 2 : close]
        position = close + 2


def variables(template: str) -> list[str]:
    """Return the placeholder names in order of first appearance; raise TemplateError on bad syntax."""
    if template is None:
        raise TemplateError("The template is empty.")
    names: list[str] = []
    last_end = 0
    for start, end, inner in _placeholders(template):
        stray = template.find("}}", last_end, start)
        if stray != -1:
            raise TemplateError(f"Unmatched '}}}}' at {_line_col(template, stray)}.")
        name = inner.strip()
        if not IDENTIFIER.match(name):
            whole = template[start:end] if end - start < 60 else template[start : start + 57] + "..."
            raise TemplateError(
                f"Invalid placeholder {whole!r} at {_line_col(template, start)}: "
                "use {{ name }} with letters, digits and underscores only "
                "(no attributes, filters, calls or expressions)."
            )
        if name not in names:
            names.append(name)
        last_end = end
    for token in ("{{", "}}"):
        pos = template.find(token, last_end)
        if pos != -1:
            kind = "Unclosed '{{'" if token == "{{" else "Unmatched '}}'"
            raise TemplateError(f"{kind} at {_line_col(template, pos)}.")
    return names


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render(template: str, values: dict) -> str:
    """Substitute every placeholder; a missing variable raises TemplateError naming it.

    Values are inserted as text and never re-parsed, so a value containing `{{ x }}`
    stays literal (no second-order injection).
    """
    names = variables(template)
    missing = [n for n in names if n not in values]
    if missing:
        raise TemplateError("Missing value for variable(s): " + ", ".join(missing))
    parts, last_end = [], 0
    for start, end, inner in _placeholders(template):
        parts += [template[last_end:start], _as_text(values[inner.strip()])]
        last_end = end
    parts.append(template[last_end:])
    return "".join(parts)
