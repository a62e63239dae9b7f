"""Prompt Workbench: the home page (entry script; pages are found in pages/)."""

import streamlit as st

from ui_common import page_setup
from workbench import overview

page_setup("Home", "🧪")
st.title("🧪 Prompt Workbench")
st.caption("Write and version prompts, run them over datasets, score and compare — in one tab.")

summary = overview.summary()
cols = st.columns(4)
cols[0].metric("Prompts", summary["prompts"])
cols[1].metric("Prompt versions", summary["versions"])
cols[2].metric("Model calls", summary["calls"])
cols[3].metric("Spend (USD)", f"${summary['spend_usd']:.4f}")

st.subheader("Models")
st.write("Available now: " + ", ".join(f"`{m}`" for m in summary["models"]))
st.caption(
    "The embedded model (SmolLM2-135M-Instruct) runs locally; hosted models appear when "
    "their API key (e.g. OPENAI_API_KEY, ANTHROPIC_API_KEY) is set in the environment."
)

st.subheader("Where to start")
st.page_link("pages/1_Prompts.py", label="Prompts: create, version, diff and label", icon="📝")
st.page_link("pages/2_Playground.py", label="Playground: try a version on several models", icon="🛝")
st.page_link("pages/3_Datasets.py", label="Datasets: upload, validate, version and export eval data", icon="🗂️")
st.page_link("pages/4_Runs.py", label="Runs: prompt versions × dataset × models, in the background", icon="🏃")
st.page_link("pages/5_Scorers.py", label="Scorers: LLM-judge rubrics and saved assertions", icon="⚖️")
st.page_link(
    "pages/6_Compare.py", label="Compare: is B better than A? Paired statistics, pairwise judge, promote", icon="⚖️"
)
st.page_link(
    "pages/8_Dashboard.py", label="Dashboard: spend, latency, errors, guardrails and quality over time", icon="📊"
)
st.page_link("pages/7_RAG.py", label="RAG: build Chroma indexes, query them, evaluate retrieval and answers", icon="📚")
st.page_link("pages/9_Review.py", label="Review: label rows, calibrate judges against your people", icon="🧑‍⚖️")
