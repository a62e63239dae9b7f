"""Playground: run one prompt version on typed-in variables against one or more models."""

import pandas as pd
import streamlit as st

from ui_common import md_text, page_setup
from workbench import calls, playground, prompts, secrets
from workbench.errors import WorkbenchError
from workbench.llm import ModelSpec, available_models

page_setup("Playground", "🛝")
st.title("🛝 Playground")

listing = prompts.list_prompts()
if not listing:
    st.info("No prompts yet: create one on the Prompts page.")
    st.stop()
cols = st.columns([2, 1])
name = cols[0].selectbox("Prompt", [p["name"] for p in listing], key="pg_prompt")
history = prompts.versions(name)
labels = prompts.labels_of(name)
tags = {n: f"v{n}" + "".join(f" [{l}]" for l, v in labels.items() if v == n) for n in [v.version for v in history]}
number = cols[1].selectbox("Version", list(reversed(list(tags))), format_func=tags.get, key=f"pg_version:{name}")
version = prompts.get_version(name, number)
with st.expander("Prompt", expanded=False):
    st.code(prompts.as_text(version))
    st.caption(f"model `{version.model}` · params {version.params}")

with st.form("playground"):
    values = {var: st.text_area(var, key=f"pg_var:{name}:{var}", height=80) for var in version.variables}
    if not version.variables:
        st.caption("This version has no variables.")
    models = available_models()
    default = [version.model] if version.model in models else [models[0]]
    chosen = st.multiselect("Models", models, default=default, key=f"pg_models:{name}")
    with st.expander("Another model (any litellm id, optional OpenAI-compatible base URL)"):
        extra_id = st.text_input("Model id", placeholder="openai/my-model", key="pg_extra_id")
        extra_base = st.text_input("API base", placeholder="http://127.0.0.1:8000/v1", key="pg_extra_base")
        extra_key_env = st.text_input(
            "Name of the env var holding its API key",
            placeholder="OPENAI_API_KEY",
            key="pg_extra_key",
            help="A provider's *_API_KEY variable, or one listed in WORKBENCH_ALLOWED_KEY_VARS.",
        )
    use_cache = st.checkbox("Serve identical calls from the cache", value=False, key="pg_cache")
    submitted = st.form_submit_button("Run", type="primary")

if submitted:
    specs = [ModelSpec(m) for m in chosen]
    try:
        if extra_id.strip():
            # Only an allowed key variable may be read: its value goes to a URL typed here.
            key_var = extra_key_env.strip().removeprefix("${").removesuffix("}")
            if key_var:
                secrets.check_key_var(key_var)
            key = "${" + key_var + "}" if key_var else None
            specs.append(
                ModelSpec.parse({"id": extra_id.strip(), "api_base": extra_base.strip() or None, "api_key": key})
            )
        with st.spinner("Calling " + ", ".join(s.label for s in specs) + " …"):
            results = playground.run(version, values, specs, use_cache=use_cache)
    except WorkbenchError as exc:
        st.error(str(exc))
    else:
        for col, (spec, result) in zip(st.columns(len(results)), results):
            with col:
                st.markdown(f"**{md_text(spec.label)}**")
                if result.ok:
                    st.code(result.output or "(empty answer)", language=None, wrap_lines=True)
                else:
                    st.error(f"{result.error_type}: {secrets.mask(result.error, [spec.api_key])}")
                cost = "unpriced" if result.cost_usd is None else f"${result.cost_usd:.6f}"
                st.caption(
                    f"{result.latency_ms:.0f} ms · {result.input_tokens or 0} in / "
                    f"{result.output_tokens or 0} out tokens · {cost}" + (" · cached" if result.cached else "")
                )

st.subheader("Recent playground calls")
recent = calls.recent(20, source="playground")
if recent:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": c.created_at.strftime("%H:%M:%S"),
                    "model": c.model,
                    "latency_ms": round(c.latency_ms or 0),
                    "tokens_in": c.input_tokens,
                    "tokens_out": c.output_tokens,
                    "cost_usd": c.cost_usd,
                    "cached": c.cached,
                    "error": c.error_type,
                    "output": (c.output or "")[:120],
                }
                for c in recent
            ]
        ),
        hide_index=True,
        width="stretch",
    )
else:
    st.caption("No calls yet.")
