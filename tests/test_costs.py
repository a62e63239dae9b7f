"""Prices: litellm's table by default, custom per-model prices over it, and re-pricing past calls."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import event, insert, select

from storage import db
from storage.tables import LlmCall
from workbench import costs, dashboard
from workbench.errors import WorkbenchError


def test_local_models_are_free_and_unknown_models_unpriced():
    assert costs.call_cost("local/smollm2", 1000, 1000) == 0.0
    assert costs.call_cost("nobody/knows-this-model", 1000, 1000) is None
    assert costs.call_cost("openai/gpt-4o-mini", None, None) is None
    assert costs.has_custom_price("local/smollm2") and not costs.has_custom_price("openai/gpt-4o-mini")


def test_litellm_prices_apply_without_a_custom_price():
    from workbench.llm import litellm_module

    per_token = litellm_module().cost_per_token
    expected = sum(per_token(model="openai/gpt-4o-mini", prompt_tokens=1000, completion_tokens=500))
    assert costs.call_cost("openai/gpt-4o-mini", 1000, 500) == pytest.approx(expected)
    per_million = (
        per_token(model="openai/gpt-4o-mini", prompt_tokens=1_000_000, completion_tokens=0)[0],
        per_token(model="openai/gpt-4o-mini", prompt_tokens=0, completion_tokens=1_000_000)[1],
    )
    assert costs.unit_price("openai/gpt-4o-mini") == pytest.approx(per_million)
    assert costs.unit_price("local/smollm2") == (0.0, 0.0) and costs.unit_price("nobody/knows") is None


def test_a_custom_price_overrides_litellm_and_can_be_removed():
    litellm_cost = costs.call_cost("openai/gpt-4o-mini", 1_000_000, 1_000_000)
    costs.set_price("openai/gpt-4o-mini", 1.0, 2.0)
    costs.set_price("vllm/my-finetune", 0.2, 0.4)
    assert costs.has_custom_price("vllm/my-finetune") and costs.has_custom_price("openai/gpt-4o-mini")
    assert costs.call_cost("openai/gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert costs.call_cost("vllm/my-finetune", 500_000, 250_000) == pytest.approx(0.1 + 0.1)
    assert costs.call_cost("vllm/my-finetune", None, None) is None
    costs.set_price("vllm/my-finetune", 0.3, 0.6)  # updating keeps one row
    assert [(p["model"], p["input_per_million"], p["output_per_million"]) for p in costs.list_prices()] == [
        ("openai/gpt-4o-mini", 1.0, 2.0),
        ("vllm/my-finetune", 0.3, 0.6),
    ]
    assert costs.delete_price("openai/gpt-4o-mini") and not costs.delete_price("openai/gpt-4o-mini")
    assert costs.call_cost("openai/gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(litellm_cost)
    assert not costs.has_custom_price("openai/gpt-4o-mini")


@pytest.mark.parametrize(
    "args, message", [(("", 1, 1), "model id"), (("m", -1, 1), "negative"), (("m", "lots", 1), "numbers")]
)
def test_bad_prices_are_refused(args, message):
    with pytest.raises(WorkbenchError, match=message):
        costs.set_price(*args)


def test_pricing_a_call_does_not_query_the_database_once_prices_are_loaded():
    costs.set_price("vllm/my-finetune", 0.2, 0.4)
    costs.call_cost("vllm/my-finetune", 1, 1)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine(), "before_cursor_execute", listener)
    try:
        for _ in range(200):
            costs.call_cost("vllm/my-finetune", 100, 50)
            costs.has_custom_price("openai/gpt-4o-mini")
    finally:
        event.remove(db.engine(), "before_cursor_execute", listener)
    assert statements == []


def test_calls_through_litellm_use_the_custom_price(fake_model):
    from workbench.llm import ModelSpec, call

    costs.set_price("fake/model", 10.0, 20.0)
    result = call(ModelSpec("fake/model"), [{"role": "user", "content": "one two three"}])
    assert result.ok and result.input_tokens == 3
    assert result.cost_usd == pytest.approx((3 * 10.0 + result.output_tokens * 20.0) / 1_000_000)


def _ledger(*rows: dict) -> None:
    base = {
        "created_at": datetime(2025, 3, 10, 12, tzinfo=UTC),
        "source": "run",
        "request_hash": "h",
        "messages": [],
        "params": {},
        "latency_ms": 100.0,
        "cached": False,
        "error_type": None,
        "input_tokens": 1000,
        "output_tokens": 500,
        "cost_usd": 0.5,
    }
    with db.engine().begin() as conn:
        conn.execute(insert(LlmCall), [{**base, **row} for row in rows])


def test_recompute_reprices_past_calls_and_the_dashboard_rollups():
    _ledger(
        {"model": "vllm/my-finetune", "cost_usd": None},
        {"model": "vllm/my-finetune", "cost_usd": None},
        {"model": "vllm/my-finetune", "cached": True, "cost_usd": 0.0},
        {"model": "vllm/my-finetune", "error_type": "timeout", "cost_usd": None, "output_tokens": None},
        {"model": "openai/gpt-4o-mini", "cost_usd": 0.5},
    )
    period = dashboard.Filters(date(2025, 3, 10), date(2025, 3, 10))
    assert dashboard.view(period).figures["spend"]["value"] == pytest.approx(0.5)  # rollups built before re-pricing
    costs.set_price("vllm/my-finetune", 2.0, 4.0)
    assert costs.recompute_costs() == 2  # the two successful, uncached calls; one UPDATE per priced model
    with db.engine().connect() as conn:
        rows = conn.execute(
            select(LlmCall.cached, LlmCall.error_type, LlmCall.cost_usd)
            .where(LlmCall.model == "vllm/my-finetune")
            .order_by(LlmCall.id)
        ).all()
    each = (1000 * 2.0 + 500 * 4.0) / 1_000_000
    assert [r.cost_usd for r in rows] == [pytest.approx(each), pytest.approx(each), 0.0, None]
    view = dashboard.view(period)
    assert view.figures["spend"]["value"] == pytest.approx(0.5 + 2 * each)
    assert view.totals["unpriced"] == 0
    tokens = view.tokens.set_index("model")
    assert tokens.loc["vllm/my-finetune", "cost_usd"] == pytest.approx(2 * each)


def test_recompute_one_model_back_to_litellm_after_removing_its_price():
    _ledger({"model": "openai/gpt-4o-mini", "cost_usd": 123.0})
    costs.set_price("openai/gpt-4o-mini", 1.0, 1.0)
    assert costs.recompute_costs("openai/gpt-4o-mini") == 1
    costs.delete_price("openai/gpt-4o-mini")
    assert costs.recompute_costs() == 0  # no custom prices left: nothing to do
    assert costs.recompute_costs("openai/gpt-4o-mini") == 1
    with db.engine().connect() as conn:
        cost = conn.execute(select(LlmCall.cost_usd)).scalar()
    assert cost == pytest.approx(costs.call_cost("openai/gpt-4o-mini", 1000, 500))
