"""Run one prompt version on typed-in variables against several models at once."""

from __future__ import annotations

import asyncio

from storage.tables import PromptVersion
from workbench import prompts, templates
from workbench.errors import WorkbenchError
from workbench.llm import CallResult, ModelSpec
from workbench.models.client import complete


def run(
    version: PromptVersion, values: dict, models: list[ModelSpec | str], use_cache: bool = False, timeout: float = 120.0
) -> list[tuple[ModelSpec, CallResult]]:
    """Render once, call every model concurrently, record every call; errors come back as results."""
    if not models:
        raise WorkbenchError("Pick at least one model.")
    try:
        messages = prompts.render_messages(version, values)
    except templates.TemplateError as exc:
        raise WorkbenchError(str(exc)) from exc
    specs = []
    for model in models:
        spec = ModelSpec.parse(model)
        # The version's own parameters apply unless the model entry sets its own.
        spec.params = {**(version.params or {}), **spec.params}
        specs.append(spec)

    async def all_calls():
        return await asyncio.gather(
            *[
                complete(
                    spec, messages, "playground", prompt_version_id=version.id, use_cache=use_cache, timeout=timeout
                )
                for spec in specs
            ]
        )

    results = asyncio.run(all_calls())
    return [(spec, result) for spec, (result, _call_id) in zip(specs, results)]
