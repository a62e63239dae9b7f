"""Dashboard: spend, tokens, latency, errors and quality over the call ledger; budget and custom prices."""

from datetime import date, timedelta

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ui_common import judge_warning, page_setup
from workbench import costs, dashboard
from workbench.errors import WorkbenchError

page_setup("Dashboard", "📊")
st.title("📊 Dashboard")


@st.cache_data(show_spinner=False, max_entries=32)
def viewed(filters: dashboard.Filters, stamp: tuple) -> dashboard.Dashboard:
    """Every panel for these filters, read again only when the filters or the data (`stamp`: newest
    call, score and run) change: a click on a chart or the calls table does not re-read them."""
    return dashboard.view(filters)


@st.cache_data(show_spinner=False, max_entries=4)
def filter_options(stamp: tuple) -> dict:
    return dashboard.filter_options()


stamp = dashboard.data_stamp()
options = filter_options(stamp)
today = dashboard.utc_today()
runs = dict(options["runs"])
cols = st.columns([3, 3, 2, 2, 1, 2])
picked = cols[0].date_input("Days (UTC)", (today - timedelta(days=29), today), max_value=today, key="dash_dates")
models = cols[1].multiselect("Models", options["models"], key="dash_models", placeholder="all")
sources = cols[2].multiselect("Sources", options["sources"], key="dash_sources", placeholder="all")
prompt = cols[3].selectbox("Prompt", [None, *options["prompts"]], key="dash_prompt", format_func=lambda p: p or "all")
version = cols[4].selectbox(
    "Version",
    [None, *options["prompts"].get(prompt, [])],
    key="dash_version",
    format_func=lambda v: "all" if v is None else f"v{v}",
    disabled=not prompt,
)
run_id = cols[5].selectbox(
    "Run", [None, *runs], key="dash_run", format_func=lambda r: "all" if r is None else f"#{r} {runs[r]}".strip()
)
start, end = (picked[0], picked[-1]) if isinstance(picked, (tuple, list)) and picked else (today, today)
filters = dashboard.Filters(start, end, tuple(models), tuple(sources), prompt, version, run_id)
try:
    view = viewed(filters, stamp)
except WorkbenchError as exc:
    st.error(str(exc))
    st.stop()

UNITS = {
    "usd": lambda v: f"${v:,.2f}" if v >= 1 else f"${v:.4f}",
    "ms": lambda v: f"{v:,.0f} ms",
    "rate": lambda v: f"{v:.1%}",
    "count": lambda v: f"{v:,}",
}
WORSE_WHEN_UP = {"spend", "cost_per_call", "cost_per_1k_rows", "p50", "p95", "p99", "error_rate", "guard_rate"}


def metric(column, key: str, figure: dict) -> None:
    value, change = figure["value"], figure["change"]
    delta = None if change is None else (f"{100 * change:+.1f} pts" if figure["unit"] == "rate" else f"{change:+.0%}")
    column.metric(
        figure["label"],
        "–" if value is None else UNITS[figure["unit"]](value),
        delta,
        delta_color="inverse" if key in WORSE_WHEN_UP else "normal",
        help=f"Previous {filters.days} days: "
        + ("–" if figure["previous"] is None else UNITS[figure["unit"]](figure["previous"])),
    )


keys = list(view.figures)
for row in (keys[:5], keys[5:]):
    for column, key in zip(st.columns(5), row):
        metric(column, key, view.figures[key])
totals = view.totals
st.caption(
    f"Against the previous {filters.days} days. {totals['input_tokens']:,} tokens in, "
    f"{totals['output_tokens']:,} out; {totals['unpriced']:,} successful calls have no price "
    f"(set one below); latency covers calls that reached a provider (cache hits excluded)."
)
budget = dashboard.budget_status()
if budget:
    st.progress(
        min(1.0, budget["fraction"] or 0.0),
        text=f"Budget: ${budget['spent']:,.2f} of ${budget['limit']:,.2f} this {budget['period']} · "
        f"month to date ${budget['month_to_date']:,.2f}, projected ${budget['projected_month']:,.2f} "
        f"at the last 7 days' pace (${budget['pace_per_day']:,.2f}/day)",
    )
if not totals["calls"] and view.quality.empty:
    st.info("No model calls match these filters yet: runs, the Playground and RAG answers all land here.")

palette = px.colors.qualitative.Plotly + px.colors.qualitative.Dark24
colours = {m: palette[i % len(palette)] for i, m in enumerate(view.models)}


def panel(column, title: str, fig, frame, key: str, select: bool = False, height: int = 420):
    """One chart with readable axes, its data as CSV, and (if asked) click selection."""
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend_title_text="",
        legend=dict(orientation="h", yanchor="top", y=-0.12, x=0, font_size=11),
    )
    with column:
        event = (
            st.plotly_chart(fig, key=key, on_select="rerun" if select else "ignore", selection_mode="points")
            if select
            else st.plotly_chart(fig, key=key)
        )
        st.download_button("Download CSV", dashboard.to_csv(frame), f"{key}.csv", "text/csv", key=f"{key}_csv")
    return (event.selection.get("points") or []) if select and event else []


left, right = st.columns(2)
by = "Month" if filters.days > dashboard.MONTHLY_AFTER_DAYS else "Day"
fig = px.bar(
    view.spend,
    x="period",
    y="cost_usd",
    color="model",
    color_discrete_map=colours,
    custom_data=["model"],
    labels={"period": by, "cost_usd": "Spend (USD)"},
).update_yaxes(tickprefix="$")
fig.update_xaxes(title=None, tickformat="%b %d" if by == "Day" else "%b %Y")
spend_points = panel(
    left, f"Spend per {by.lower()} by model — click a bar for its calls", fig, view.spend, "dash_spend", select=True
)
bar_colours = [colours.get(m) for m in view.tokens["model"]]
fig = go.Figure(
    [
        go.Bar(
            y=view.tokens["model"],
            x=view.tokens[f"{side}put_tokens"],
            name=side,
            orientation="h",
            marker=dict(color=bar_colours, pattern_shape=shape),
        )
        for side, shape in (("in", ""), ("out", "/"))
    ]
)
fig.update_layout(barmode="group", xaxis_title="Tokens", yaxis=dict(autorange="reversed"), showlegend=False)
panel(right, "Tokens in (plain) and out (hatched) by model", fig, view.tokens, "dash_tokens")

left, right = st.columns(2)
labels = sorted(view.versions["prompt_version"].unique(), key=lambda v: (v == "(no version)", v))
fig = px.bar(
    view.versions,
    x="cost_usd",
    y="prompt_version",
    color="model",
    orientation="h",
    color_discrete_map=colours,
    category_orders={"prompt_version": labels},
    labels={"cost_usd": "Spend (USD)", "prompt_version": ""},
)
versions_height = max(420, 120 + 18 * len(labels))
panel(
    left,
    "Spend per prompt version",
    fig.update_xaxes(tickprefix="$"),
    view.versions,
    "dash_versions",
    height=versions_height,
)
fig = go.Figure(
    [
        go.Box(
            y=[r.model],
            q1=[r.p25],
            median=[r.p50],
            q3=[r.p75],
            lowerfence=[r.p5],
            upperfence=[r.p95],
            name=r.model,
            orientation="h",
            marker_color=colours.get(r.model),
        )
        for r in view.latency_models.itertuples()
    ]
)
fig.update_layout(
    showlegend=False, xaxis_title="Latency (ms, log scale)", xaxis_type="log", yaxis=dict(autorange="reversed")
)
panel(right, "Latency by model (box p25–p75, whiskers p5–p95)", fig, view.latency_models, "dash_latency")

left, right = st.columns(2)
fig = px.line(
    view.latency_days,
    x="day",
    y="p95_ms",
    color="model",
    markers=True,
    color_discrete_map=colours,
    labels={"day": "Day", "p95_ms": "p95 latency (ms)"},
).update_xaxes(title=None, tickformat="%b %d")
panel(left, "p95 latency per day", fig, view.latency_days, "dash_p95")
fig = px.bar(
    view.errors,
    x="error_type",
    y="calls",
    color="model",
    color_discrete_map=colours,
    custom_data=["model"],
    labels={"error_type": "Error type", "calls": "Failed calls"},
).update_xaxes(title=None)
error_points = panel(right, "Errors by type — click a bar for its calls", fig, view.errors, "dash_errors", select=True)

if not view.quality.empty:
    judge_warning(view.quality["scorer"].unique())
    fig = px.line(
        view.quality,
        x="run_id",
        y="value",
        color="prompt_version",
        facet_col="scorer",
        facet_col_wrap=3,
        markers=True,
        custom_data=["run_id"],
        hover_data=["run", "metric", "n"],
        labels={"run_id": "Run (in start order)", "value": "Pass rate / mean score", "prompt_version": ""},
    )
    fig.update_yaxes(range=[0, 1.05]).update_xaxes(title=None)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    points = panel(
        st.container(),
        "Quality per run (runs in start order): each scorer's pass rate, or mean score, "
        "by prompt version — click a point to open its run",
        fig,
        view.quality,
        "dash_quality",
        select=True,
    )
    if points and st.button(f"Open run #{points[0]['customdata'][0]} on the Runs page", key="dash_open_run"):
        st.session_state["run_selected"] = int(points[0]["customdata"][0])
        st.switch_page("pages/4_Runs.py")

st.subheader("Calls")
day = model = error_type = None
if spend_points:
    point = spend_points[0]
    day, model = (date.fromisoformat(point["x"]) if by == "Day" else None), point["customdata"][0]
elif error_points:
    error_type, model = error_points[0]["x"], error_points[0]["customdata"][0]
if model:
    st.caption(
        f"From the chart: {model}"
        + (f" on {day}" if day else "")
        + (f", {error_type}" if error_type else "")
        + ". Click the bar again (or double-click the chart) to see all calls."
    )
page = st.columns([1, 5])[0].number_input("Page", 1, step=1, key="dash_calls_page")
calls, total = dashboard.calls_table(filters, int(page), 50, day=day, model=model, error_type=error_type)
st.caption(f"{total:,} calls, 50 per page, newest first.")
st.dataframe(calls, hide_index=True, width="stretch")

with st.expander("Budget"):
    current = dashboard.get_budget() or {"usd": 0.0, "period": "month"}
    cols = st.columns(3)
    usd = cols[0].number_input("Budget (USD, 0 = none)", 0.0, 1e9, float(current["usd"]), 10.0, key="dash_budget")
    period = cols[1].radio(
        "Per",
        dashboard.BUDGET_PERIODS,
        dashboard.BUDGET_PERIODS.index(current["period"]),
        horizontal=True,
        key="dash_budget_period",
    )
    if cols[2].button("Save budget", key="dash_budget_save"):
        dashboard.set_budget(usd or None, period)
        st.rerun()

with st.expander("Custom model prices (USD per 1M tokens; override litellm's table)"):
    cols = st.columns([3, 2, 2, 1])
    price_model = cols[0].selectbox("Model", options["models"], key="dash_price_model", accept_new_options=True)
    price_in = cols[1].number_input("Input", 0.0, 1e6, 0.0, 0.05, format="%.4f", key="dash_price_in")
    price_out = cols[2].number_input("Output", 0.0, 1e6, 0.0, 0.05, format="%.4f", key="dash_price_out")
    if cols[3].button("Save price", key="dash_price_save"):
        try:
            costs.set_price(price_model, price_in, price_out)
        except WorkbenchError as exc:
            st.error(str(exc))
    prices = costs.list_prices()
    st.dataframe(prices, hide_index=True, width="stretch")
    cols = st.columns(2)
    drop = cols[0].selectbox("Remove the price of", [p["model"] for p in prices], key="dash_price_drop")
    if drop and cols[0].button("Remove price", key="dash_price_remove"):
        costs.delete_price(drop)
        st.rerun()
    if prices and cols[1].button("Recompute past costs with these prices", key="dash_recompute"):
        with st.spinner("Re-pricing past calls…"):
            st.session_state["dash_repriced"] = costs.recompute_costs()
        viewed.clear()  # past costs changed in place: no new call, score or run moves the stamp
        st.rerun()  # every figure above changes
    if "dash_repriced" in st.session_state:
        st.success(f"Re-priced {st.session_state.pop('dash_repriced'):,} calls.")
