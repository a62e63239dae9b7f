"""RAG: build versioned indexes of a corpus, query them, evaluate and compare retrieval."""

import pandas as pd
import streamlit as st

from ui_common import md_text, page_setup
from workbench.errors import WorkbenchError
from workbench.jobs import queue
from workbench.rag import chunking, evaluate, index

page_setup("RAG", "📚")
st.title("📚 RAG")
building = st.session_state.get("rag_building")
build_tab, query_tab, eval_tab, compare_tab = st.tabs(["Build", "Query", "Evaluate", "Compare"])

with build_tab:
    source_kind = st.radio("Documents", ["Sample corpus", "Upload files"], horizontal=True, key="rag_source")
    uploads = []
    if source_kind == "Upload files":
        uploads = st.file_uploader(
            "Markdown, text, HTML or PDF files, or a .zip of them",
            accept_multiple_files=True,
            type=["md", "markdown", "txt", "html", "htm", "pdf", "zip"],
            key="rag_uploads",
        )
    cols = st.columns(5)
    name = cols[0].text_input("Index name", "docs", key="rag_name")
    chunker = cols[1].selectbox(
        "Chunker",
        list(chunking.CHUNKERS),
        index=list(chunking.CHUNKERS).index(index.DEFAULT_CHUNKER),
        key="rag_chunker",
    )
    chunk_size = cols[2].number_input(
        "Chunk size",
        16,
        20000,
        index.DEFAULT_CHUNK_SIZE,
        16,
        key="rag_chunk_size",
        help="characters; tokens (words) for fixed_tokens",
    )
    overlap = cols[3].number_input("Overlap", 0, 10000, index.DEFAULT_OVERLAP, 10, key="rag_overlap")
    embedding = cols[4].text_input(
        "Embedding model",
        index.DEFAULT_EMBEDDING_MODEL,
        key="rag_embedding",
        help="bundled all-MiniLM-L6-v2, a local sentence-transformers folder, or a "
        "hosted id like openai/text-embedding-3-small (needs its API key)",
    )
    if st.button("Build index", type="primary", key="rag_build"):
        source = index.SAMPLE_CORPUS if source_kind == "Sample corpus" else [(f.name, f.getvalue()) for f in uploads]
        try:
            if not source:
                raise WorkbenchError("Upload at least one file, or pick the sample corpus.")
            version = queue.submit_index(
                name,
                source,
                chunker=chunker,
                chunk_size=int(chunk_size),
                overlap=int(overlap),
                embedding_model=embedding,
            )
        except WorkbenchError as exc:
            st.error(str(exc))
        else:
            st.session_state["rag_building"] = building = version.id

    @st.fragment(run_every=1.0 if building and index.progress(building)["status"] == "building" else None)
    def build_progress(version_id: int):
        p = index.progress(version_id)
        if p["status"] in ("building", "interrupted"):
            st.progress(
                p["done"] / max(1, p["total"]),
                text=f"{p['label']} {p['status']}: {p['done']}/{p['total']} chunks · {p['message']}",
            )
        elif p["status"] == "ready":
            st.success(f"{p['label']} is ready: {p['total']} chunks.")
        else:
            st.error(f"{md_text(p['label'])} failed: {md_text(p['error'])}")
        if p["skipped"]:
            st.warning(
                f"{len(p['skipped'])} file(s) skipped:\n"
                + "\n".join(f"- {md_text(s['source'])}: {md_text(s['reason'])}" for s in p["skipped"])
            )
        if p["status"] != "building" and st.session_state.get("rag_was_live") == version_id:
            st.session_state["rag_was_live"] = None
            st.rerun()  # refresh the versions table and pickers once the build ends
        if p["status"] == "building":
            st.session_state["rag_was_live"] = version_id

    if building:
        build_progress(building)
    rows = [row for item in index.list_indexes() for row in item["rows"]]
    if rows:
        st.subheader("Index versions")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

refs = index.version_refs()
prompt_refs = evaluate.rag_prompt_refs()
NO_ANSWER = "(chunks only)"

with query_tab:
    if not refs:
        st.info("No ready index yet: build one first.")
    else:
        cols = st.columns([2, 1, 2])
        ref = cols[0].selectbox("Index version", refs, key="rag_query_index")
        k = cols[1].number_input("Top k", 1, 50, 5, key="rag_query_k")
        prompt = cols[2].selectbox(
            "Answer with prompt",
            [NO_ANSWER] + prompt_refs,
            key="rag_query_prompt",
            help="prompt versions that use {{context}} and {{question}}",
        )
        question = st.text_input("Question", key="rag_question")
        if st.button("Search", type="primary", key="rag_search"):
            try:
                with st.spinner("Retrieving…" if prompt == NO_ANSWER else "Retrieving and answering…"):
                    st.session_state["rag_found"] = evaluate.answer_question(
                        ref, question, None if prompt == NO_ANSWER else prompt, int(k)
                    )
            except WorkbenchError as exc:
                st.error(str(exc))
        found = st.session_state.get("rag_found")
        if found:
            if found["answer"] is not None:
                st.markdown("**Answer**")
                # the model's text, never Markdown: a poisoned document can make it emit an image URL
                st.code(found["answer"], language=None, wrap_lines=True)
            elif found["error"]:
                st.error(f"The answer failed: {md_text(found['error'])}")
            st.dataframe(
                pd.DataFrame(found["chunks"])[["rank", "score", "doc_id", "start", "end", "text"]],
                hide_index=True,
                width="stretch",
            )
            for chunk in found["chunks"]:
                with st.expander(
                    f"#{chunk['rank']} {chunk['doc_id']} [{chunk['start']}:{chunk['end']}] · score {chunk['score']:.3f}"
                ):
                    st.text(chunk["text"])


def qa_source(key: str):
    upload = st.file_uploader(
        "QA set (JSONL: question, reference, relevant_passages / source_documents)", type=["jsonl", "json"], key=key
    )
    st.caption("Default: sample_data/rag_qa.jsonl" if upload is None else f"Using {upload.name}")
    return upload.getvalue() if upload is not None else None


def answer_options(key: str) -> dict:
    cols = st.columns(3)
    chosen = cols[0].selectbox("Generate answers with", [NO_ANSWER] + prompt_refs, key=f"{key}_prompt")
    judge = cols[1].text_input("Judge model for ragas LLM metrics (optional)", key=f"{key}_judge")
    use_ragas = cols[2].checkbox(
        "ragas metrics",
        False,
        key=f"{key}_ragas",
        help="non-LLM context precision/recall always; answer and judge metrics when set",
    )
    return {
        "prompt": None if chosen == NO_ANSWER else chosen,
        "judge": judge.strip() or None,
        "ragas": True if use_ragas else None,
    }


with eval_tab:
    if refs:
        cols = st.columns([2, 1])
        ref = cols[0].selectbox("Index version", refs, key="rag_eval_index")
        k = cols[1].number_input("Top k", 1, 50, 5, key="rag_eval_k")
        qa = qa_source("rag_eval_qa")
        options = answer_options("rag_eval")
        if st.button("Evaluate", type="primary", key="rag_eval_run"):
            try:
                with st.spinner("Evaluating…"):
                    st.session_state["rag_eval"] = evaluate.evaluate(ref, qa, int(k), **options)
            except WorkbenchError as exc:
                st.error(str(exc))
        result = st.session_state.get("rag_eval")
        if result:
            st.subheader(f"{result['index']} at k={result['k']}")
            st.dataframe(
                pd.DataFrame([{"metric": m, **v} for m, v in result["summary"].items()]),
                hide_index=True,
                width="stretch",
            )
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "row": r["row_key"],
                            "question": r["question"],
                            **r["scores"],
                            "answer": r["answer"],
                            "top chunks": ", ".join(r["chunk_ids"][:3]),
                            "errors": "; ".join(f"{what}: {why}" for what, why in r["errors"].items()),
                        }
                        for r in result["rows"]
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
    else:
        st.info("No ready index yet: build one first.")

with compare_tab:
    if len(refs) >= 2:
        cols = st.columns(3)
        base = cols[0].selectbox("Baseline (A)", refs, index=1, key="rag_cmp_a")
        other = cols[1].selectbox("Variant (B)", refs, index=0, key="rag_cmp_b")
        k = cols[2].number_input("Top k", 1, 50, 5, key="rag_cmp_k")
        qa = qa_source("rag_cmp_qa")
        options = answer_options("rag_cmp")
        if st.button("Compare", type="primary", key="rag_cmp_run"):
            try:
                with st.spinner("Evaluating both versions…"):
                    st.session_state["rag_cmp"] = evaluate.compare(base, other, qa, int(k), **options)
            except WorkbenchError as exc:
                st.error(str(exc))
        result = st.session_state.get("rag_cmp")
        if result:
            a, b = result["a"], result["b"]
            st.dataframe(pd.DataFrame([a["config"], b["config"]], index=[a["index"], b["index"]]), width="stretch")
            table = [
                {key: value for key, value in m.items() if key not in ("verdict", "warnings")}
                for m in result["metrics"]
            ]
            st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
            for m in result["metrics"]:
                st.markdown(f"- {m['verdict']}" + "".join(f"\n  - ⚠️ {w}" for w in m["warnings"]))
    else:
        st.info("Build at least two index versions (e.g. chunk size 256 and 512) to compare them.")
