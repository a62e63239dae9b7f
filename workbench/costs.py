"""What a call cost, in USD, from token counts.

A custom price (USD per 1M input/output tokens, in `model_price`) wins: self-hosted models and
negotiated rates are priced the way the team pays. Otherwise litellm's price table. The
embedded model (and any `local/` id) costs 0. A model nobody priced gets None (unknown), never a
made-up 0, so dashboards can say "unpriced".

Custom prices are read once per process and database and kept in memory, so the run engine's
hot path never queries for them; a write here drops the copy at once, and other processes (a
CLI eval next to the UI) pick a change up within PRICE_TTL seconds.
"""

from __future__ import annotations

import threading
import time

from storage import prices as repo
from workbench import config
from workbench.errors import WorkbenchError

FREE_PREFIXES = ("local/",)
PRICE_TTL = 30.0

_prices: dict[str, tuple[float, dict[str, tuple[float, float]]]] = {}  # database url -> (loaded at, prices)
_lock = threading.Lock()


def custom_prices() -> dict[str, tuple[float, float]]:
    """{model: (input USD per 1M tokens, output USD per 1M tokens)} from `model_price`, cached."""
    url = config.database_url()
    with _lock:
        cached = _prices.get(url)
        if cached is not None and time.monotonic() - cached[0] < PRICE_TTL:
            return cached[1]
    prices = repo.all_prices()
    with _lock:
        _prices[url] = (time.monotonic(), prices)
    return prices


def _forget() -> None:
    with _lock:
        _prices.clear()


def has_custom_price(model: str) -> bool:
    """True when our own price applies instead of litellm's (custom rows, and free local models)."""
    return model.startswith(FREE_PREFIXES) or model in custom_prices()


def call_cost(model: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
    custom = custom_prices().get(model)
    if custom is not None:
        if input_tokens is None and output_tokens is None:
            return None
        return ((input_tokens or 0) * custom[0] + (output_tokens or 0) * custom[1]) / 1_000_000
    if model.startswith(FREE_PREFIXES):
        return 0.0
    if input_tokens is None and output_tokens is None:
        return None
    litellm = _litellm()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=input_tokens or 0, completion_tokens=output_tokens or 0
        )
    except Exception:
        return None
    return float(prompt_cost + completion_cost)


def _litellm():
    """litellm itself, for its price table. Imported here rather than through `workbench.llm` (which
    imports this module): pricing needs none of llm's provider set-up, and `config`, imported above,
    has already pointed litellm at its bundled offline price map."""
    import litellm

    return litellm


def unit_price(model: str) -> tuple[float, float] | None:
    """USD per 1M input and output tokens: custom, else free, else litellm's (linear) table, else None."""
    custom = custom_prices().get(model)
    if custom is not None:
        return custom
    if model.startswith(FREE_PREFIXES):
        return (0.0, 0.0)
    per_input, per_output = call_cost(model, 1_000_000, 0), call_cost(model, 0, 1_000_000)
    if per_input is None or per_output is None:
        return None
    return (per_input, per_output)


def set_price(model: str, input_per_million: float, output_per_million: float) -> None:
    model = (model or "").strip()
    if not model:
        raise WorkbenchError("A price needs a model id.")
    try:
        prices = float(input_per_million), float(output_per_million)
    except (TypeError, ValueError):
        raise WorkbenchError("Prices must be numbers (USD per 1M tokens).") from None
    if min(prices) < 0:
        raise WorkbenchError("Prices cannot be negative.")
    repo.set_price(model, prices[0], prices[1])
    _forget()


def list_prices() -> list[dict]:
    return [
        {
            "model": r.model,
            "input_per_million": r.input_per_million,
            "output_per_million": r.output_per_million,
            "updated_at": r.updated_at,
        }
        for r in repo.listing()
    ]


def delete_price(model: str) -> bool:
    """Remove a custom price (litellm's table applies again to new calls); True if there was one."""
    removed = repo.delete_price(model)
    _forget()
    return removed


def recompute_costs(model: str | None = None) -> int:
    """Re-price past calls in SQL, one UPDATE per model, and rebuild that model's spend rollups in
    the same transaction; returns the rows updated.

    Without `model`: every model with a custom price. A named model gets its current price (custom,
    free, or litellm's); one nobody prices becomes unpriced (None). Cache hits stay at 0 and failed
    calls stay unpriced: neither was billed."""
    models = [model] if model else sorted(custom_prices())
    return sum(repo.reprice(name, unit_price(name)) for name in models)
