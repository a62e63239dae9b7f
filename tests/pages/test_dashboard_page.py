from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from storage import db
from storage.tables import LlmCall
from workbench import costs, dashboard

PAGE = "../../pages/8_Dashboard.py"


def add_calls(*rows):
    now = datetime.now(UTC).replace(hour=12, minute=0)
    base = {
        "created_at": now,
        "source": "playground",
        "model": "openai/gpt-4o-mini",
        "request_hash": "h",
        "messages": [],
        "params": {},
        "latency_ms": 400.0,
        "input_tokens": 100,
        "output_tokens": 50,
        "cost_usd": 0.25,
        "cached": False,
        "error_type": None,
    }
    with db.engine().begin() as conn:
        conn.execute(insert(LlmCall), [{**base, **row} for row in rows])


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def test_renders_with_no_data():
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert any("No model calls match" in i.value for i in at.info)
    assert metrics(at)["Calls"] == "0" and metrics(at)["p95 latency"] == "–"


def test_shows_headline_numbers_charts_and_calls():
    yesterday = datetime.now(UTC) - timedelta(days=1)
    add_calls(
        {"latency_ms": 100.0},
        {"latency_ms": 200.0, "model": "vllm/tuned", "cost_usd": None},
        {"latency_ms": 300.0, "error_type": "timeout", "cost_usd": None},
        {"latency_ms": 0.0, "cached": True, "cost_usd": 0.0},
        {"created_at": yesterday, "cost_usd": 0.5},
    )
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Calls"] == "5" and shown["Spend"] == "$0.7500"
    assert shown["Error rate"] == "20.0%" and shown["Cache hit rate"] == "20.0%"
    assert shown["p50 latency"] == "200 ms"  # rank ceil(0.5 x 4) of 100, 200, 300, 400 (cache hits are not timed)
    assert len(at.get("plotly_chart")) >= 6
    calls = at.dataframe[0].value
    assert len(calls) == 5 and set(calls["model"]) == {"openai/gpt-4o-mini", "vllm/tuned"}
    assert any("1 successful calls have no price" in c.value for c in at.caption)
    at.multiselect(key="dash_models").set_value(["vllm/tuned"]).run()
    assert metrics(at)["Calls"] == "1"


def test_budget_exceeded_shows_the_banner_here_and_on_other_pages():
    add_calls({"cost_usd": 3.0})
    dashboard.set_budget(2.0, "day")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert any("over the $2.00 budget" in w.value for w in at.warning)
    home = AppTest.from_file("../../pages/1_Prompts.py", default_timeout=30).run()
    assert any("over the $2.00 budget" in w.value for w in home.warning)
    dashboard.set_budget(10.0, "day")
    assert not any("budget" in w.value for w in AppTest.from_file(PAGE, default_timeout=30).run().warning)


def test_budget_and_price_forms_save():
    add_calls({"model": "vllm/tuned", "cost_usd": None})
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.number_input(key="dash_budget").set_value(50.0)
    at.radio(key="dash_budget_period").set_value("month")
    at.button(key="dash_budget_save").click().run()
    assert dashboard.get_budget() == {"usd": 50.0, "period": "month"}
    at.selectbox(key="dash_price_model").set_value("vllm/tuned")
    at.number_input(key="dash_price_in").set_value(1.0)
    at.number_input(key="dash_price_out").set_value(2.0)
    at.button(key="dash_price_save").click().run()
    assert costs.list_prices()[0]["model"] == "vllm/tuned"
    at.button(key="dash_recompute").click().run()
    assert not at.exception
    assert any("Re-priced 1 calls" in s.value for s in at.success)
    assert metrics(at)["Spend"] == "$0.0002"  # 100 x $1 + 50 x $2 per 1M tokens


def test_reruns_reuse_the_panels_until_the_data_changes(monkeypatch):
    add_calls({"cost_usd": 1.0})
    views = []
    real = dashboard.view

    def counting(filters):
        views.append(filters)
        return real(filters)

    monkeypatch.setattr(dashboard, "view", counting)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception and len(views) == 1
    at.number_input(key="dash_calls_page").set_value(1).run()
    at.run()
    assert len(views) == 1
    add_calls({"cost_usd": 2.0})  # a new call: the panels are read again
    at.run()
    assert len(views) == 2 and metrics(at)["Calls"] == "2"
