"""What a call cost, in USD, from token counts.

litellm's price table is the default. The embedded model costs 0. A model litellm does
not know gets None (unknown), never a made-up 0, so dashboards can say "unpriced".
"""

from __future__ import annotations

FREE_PREFIXES = ("local/",)


def has_custom_price(model: str) -> bool:
    """Custom per-model prices override litellm's table (they arrive with the dashboards work)."""
    return model.startswith(FREE_PREFIXES)


def call_cost(model: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
    if model.startswith(FREE_PREFIXES):
        return 0.0
    if input_tokens is None and output_tokens is None:
        return None
    from workbench.llm import litellm_module

    litellm = litellm_module()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=input_tokens or 0, completion_tokens=output_tokens or 0
        )
    except Exception:
        return None
    return float(prompt_cost + completion_cost)
