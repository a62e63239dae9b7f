"""Datasets: upload or paste, validate against prompts, save versions, edit, export."""

import pandas as pd
import streamlit as st

from ui_common import md_text, page_setup
from workbench import datasets
from workbench.errors import WorkbenchError

page_setup("Datasets", "🗂️")
st.title("🗂️ Datasets")

tab_new, tab_browse = st.tabs(["Upload or paste", "Stored datasets"])

with tab_new:
    source = st.radio("Source", ["Upload a file", "Paste rows"], horizontal=True, key="ds_source")
    parsed, filename = None, ""
    try:
        if source == "Upload a file":
            upload = st.file_uploader(
                "CSV, TSV, JSONL or JSON (a list of objects)",
                type=["csv", "tsv", "txt", "jsonl", "ndjson", "json"],
                key="ds_upload",
            )
            if upload is not None:
                filename = upload.name
                parsed = datasets.parse_dataset(upload.getvalue(), upload.name)
        else:
            pasted = st.text_area("Paste CSV (with a header row) or JSON lines", height=160, key="ds_paste")
            if pasted.strip():
                parsed = datasets.parse_pasted(pasted)
    except datasets.DatasetError as exc:
        st.error(md_text(f"Could not read {filename or 'the pasted rows'}: {exc}"))
    if parsed is not None:
        st.success(f"{len(parsed.rows)} rows · {len(parsed.columns)} columns · {parsed.format}")
        st.caption("Column types")
        st.dataframe(pd.DataFrame([parsed.column_types]), hide_index=True)
        st.caption(f"Preview (first {min(50, len(parsed.rows))} rows)")
        st.dataframe(pd.DataFrame(parsed.rows[:50], columns=parsed.columns), hide_index=True, width="stretch")
        coverage = datasets.prompt_coverage(parsed.columns)
        if coverage:
            st.caption("Which prompts this dataset can feed (latest version of each):")
            st.dataframe(pd.DataFrame(coverage), hide_index=True)
        default_name = filename.rsplit(".", 1)[0] if filename else ""
        name = st.text_input("Dataset name", value=default_name, key="ds_name")
        note = st.text_input("Version note", key="ds_note")
        if st.button("Save dataset version", type="primary", key="ds_save"):
            try:
                version, created = datasets.save_version(name, parsed, note=note, source_filename=filename)
            except WorkbenchError as exc:
                st.error(str(exc))
            else:
                if created:
                    st.success(f"Saved {name} v{version.version} ({version.row_count} rows).")
                else:
                    st.info(f"No change since {name} v{version.version}: nothing saved.")

with tab_browse:
    listing = datasets.list_datasets()
    if not listing:
        st.info("No datasets yet: upload one.")
        st.stop()
    st.dataframe(pd.DataFrame(listing), hide_index=True, width="stretch")
    name = st.selectbox("Dataset", [d["name"] for d in listing], key="ds_browse")
    history = datasets.versions(name)
    number = st.selectbox("Version", [v.version for v in reversed(history)], key=f"ds_version:{name}")
    version = datasets.get_version(name, number)
    st.caption(
        f"{version.row_count} rows · columns {', '.join(version.columns)} · "
        f"hash {version.content_hash[:12]} · {version.note or 'no note'}"
    )
    page_size = 100
    pages = max(1, -(-version.row_count // page_size))
    page = st.number_input("Page", 1, pages, 1, key=f"ds_page:{version.id}") if pages > 1 else 1
    rows = datasets.rows(version.id, limit=page_size, offset=(page - 1) * page_size)
    frame = pd.DataFrame([data for _, data in rows], columns=version.columns)
    if pages == 1:
        edited = st.data_editor(frame, num_rows="dynamic", width="stretch", key=f"ds_edit:{version.id}")
        edit_note = st.text_input("Note for the edited version", key=f"ds_edit_note:{version.id}")
        if st.button("Save edits as a new version", key="ds_save_edits"):
            try:
                saved, created = datasets.save_version(
                    name, datasets.from_records(version.columns, edited.to_dict("records")), note=edit_note
                )
            except (WorkbenchError, datasets.DatasetError) as exc:
                st.error(str(exc))
            else:
                st.success(f"Saved {name} v{saved.version}." if created else "No change: nothing saved.")
    else:
        st.dataframe(frame, hide_index=True, width="stretch")
        st.caption(
            "Editing in the table is offered for datasets up to 100 rows; export, edit and re-upload larger ones."
        )
    cols = st.columns(2)
    all_rows = [data for _, data in datasets.rows(version.id)]
    cols[0].download_button(
        "Export CSV",
        datasets.to_csv_bytes(version.columns, all_rows),
        f"{name}-v{number}.csv",
        "text/csv",
        key="ds_csv",
    )
    cols[1].download_button(
        "Export JSONL",
        datasets.to_jsonl_bytes(all_rows),
        f"{name}-v{number}.jsonl",
        "application/jsonl",
        key="ds_jsonl",
    )
