"""Prompts: create, edit (every save is a new immutable version), diff, label and roll back."""

import html

import pandas as pd
import streamlit as st

from ui_common import md_text, page_setup
from workbench import prompts
from workbench.errors import WorkbenchError
from workbench.llm import available_models

page_setup("Prompts", "📝")
st.title("📝 Prompts")

NEW = "➕ New prompt"
listing = prompts.list_prompts()
if listing:
    # Label columns hold a version number or nothing; a "—" filler would mix text into numbers.
    st.dataframe(
        pd.DataFrame(listing),
        hide_index=True,
        width="stretch",
        column_config={label: st.column_config.NumberColumn(format="v%d") for label in prompts.LABELS},
    )
names = [p["name"] for p in listing]
if "select_after_save" in st.session_state:  # a widget's value can only be set before it is drawn
    st.session_state["prompt_choice"] = st.session_state.pop("select_after_save")
# The first prompt is preselected through session state: a widget default as well would warn.
st.session_state.setdefault("prompt_choice", names[0] if names else NEW)
choice = st.selectbox("Prompt", [NEW] + names, key="prompt_choice")
creating = choice == NEW
history = [] if creating else prompts.versions(choice)
latest = history[-1] if history else None

# ---- editor -------------------------------------------------------------------------------
st.subheader("New prompt" if creating else f"Edit `{choice}` (latest v{latest.version})")
k = f"{choice}:{latest.version if latest else 0}"  # fresh widget state per prompt and version
name = st.text_input("Name", value="" if creating else choice, disabled=not creating, key=f"name:{k}")
kind = st.radio(
    "Kind",
    ["text", "chat"],
    horizontal=True,
    key=f"kind:{k}",
    index=0 if (latest is None or latest.kind == "text") else 1,
)
template, messages = None, None
if kind == "text":
    template = st.text_area(
        "Template (use {{ variable }} placeholders)",
        height=180,
        key=f"tpl:{k}",
        value=(latest.template or prompts.as_text(latest)) if latest else "",
    )
else:
    old = {m["role"]: m["content"] for m in (latest.messages or [])} if latest and latest.kind == "chat" else {}
    system = st.text_area("System message", value=old.get("system", ""), height=120, key=f"sys:{k}")
    user = st.text_area(
        "User message",
        value=old.get("user", latest.template if latest and latest.kind == "text" else ""),
        height=120,
        key=f"user:{k}",
    )
    messages = ([{"role": "system", "content": system}] if system.strip() else []) + [{"role": "user", "content": user}]
try:
    found = prompts.detect_variables(kind, template, messages)
    st.caption("Variables: " + (", ".join(f"`{v}`" for v in found) if found else "none"))
except Exception as exc:
    st.warning(f"Template syntax error: {exc}")

models = available_models()
current_model = latest.model if latest else prompts.DEFAULT_MODEL
cols = st.columns([2, 1, 1, 1])
model = cols[0].selectbox(
    "Model",
    sorted(set(models) | {current_model}),
    key=f"model:{k}",
    index=sorted(set(models) | {current_model}).index(current_model),
)
params = dict(latest.params) if latest else {"temperature": 0.0, "max_tokens": 256}
temperature = cols[1].number_input("temperature", 0.0, 2.0, float(params.get("temperature", 0.0)), 0.1, key=f"t:{k}")
max_tokens = cols[2].number_input("max_tokens", 1, 8192, int(params.get("max_tokens", 256)), key=f"mt:{k}")
top_p = cols[3].number_input("top_p", 0.0, 1.0, float(params.get("top_p", 1.0)), 0.05, key=f"tp:{k}")
description = st.text_input(
    "Description",
    value="" if creating else next(p["description"] for p in listing if p["name"] == choice),
    key=f"desc:{k}",
)
note = st.text_input("Version note (what changed and why)", key=f"note:{k}")
if st.button("Save version", type="primary", key="save"):
    new_params = {**params, "temperature": temperature, "max_tokens": int(max_tokens)}
    if top_p < 1.0:
        new_params["top_p"] = top_p
    else:
        new_params.pop("top_p", None)
    try:
        saved = prompts.save_version(
            name,
            kind=kind,
            template=template,
            messages=messages,
            model=model,
            params=new_params,
            note=note,
            description=description,
        )
    except WorkbenchError as exc:
        st.error(str(exc))
    else:
        if saved.created:
            st.session_state["flash"] = f"Saved {name} v{saved.version.version} ({saved.version.content_hash[:10]})."
            st.session_state["select_after_save"] = name
            st.rerun()
        else:
            st.info(f"No change since v{saved.version.version}: nothing saved.")
if "flash" in st.session_state:
    st.success(st.session_state.pop("flash"))

if creating or not history:
    st.stop()

# ---- versions, labels, diff ---------------------------------------------------------------
labels = prompts.labels_of(choice)
st.subheader("Versions")
st.dataframe(
    pd.DataFrame(
        [
            {
                "version": v.version,
                "kind": v.kind,
                "model": v.model,
                "params": ", ".join(f"{p}={x}" for p, x in v.params.items()),
                "variables": ", ".join(v.variables),
                "hash": v.content_hash[:12],
                "note": v.note,
                "author": v.author,
                "created": v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "labels": ", ".join(l for l, n in labels.items() if n == v.version),
            }
            for v in reversed(history)
        ]
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("Labels")
numbers = [v.version for v in history]
cols = st.columns([1, 1, 2])
label = cols[0].selectbox("Label", list(prompts.LABELS), key="label_name")
target = cols[1].selectbox("Version", list(reversed(numbers)), key=f"label_version:{k}")
current = labels.get(label)
verb = "Roll back" if current and target < current else "Set"
cols[2].write(f"`{label}` is on v{current}" if current else f"`{label}` is not set")
if cols[2].button(f"{verb} {label} → v{target}", key="move_label"):
    prompts.set_label(choice, label, target)
    st.session_state["flash"] = f"{label} now points at v{target}."
    st.rerun()
events = prompts.label_history(choice)
if events:
    with st.expander("Label history"):
        st.dataframe(pd.DataFrame(events), hide_index=True, width="stretch")

st.subheader("Diff")
if len(numbers) < 2:
    st.caption("Save a second version to compare.")
else:
    cols = st.columns(2)
    a = cols[0].selectbox("From", numbers, index=len(numbers) - 2, key=f"diff_a:{k}")
    b = cols[1].selectbox("To", numbers, index=len(numbers) - 1, key=f"diff_b:{k}")
    result = prompts.diff(prompts.get_version(choice, a), prompts.get_version(choice, b))
    if result["same"]:
        st.info("These versions are identical.")
    for setting, (old, new) in result["settings"].items():
        st.write(f"**{md_text(setting)}**: {md_text(old)} → {md_text(new)}")
    colours = {"equal": "", "replace": "#fff5cc", "delete": "#ffe0e0", "insert": "#e0ffe0"}
    rows = "".join(
        f"<tr style='background:{colours[r['tag']]}'><td><pre>{html.escape(r['left'])}</pre></td>"
        f"<td><pre>{html.escape(r['right'])}</pre></td></tr>"
        for r in result["rows"]
    )
    st.markdown(
        f"<table style='width:100%;font-size:0.85em'><tr><th>v{a}</th><th>v{b}</th></tr>{rows}</table>",
        unsafe_allow_html=True,
    )
    with st.expander("Unified diff"):
        st.code(result["unified"] or "(no changes)", language="diff")
