"""Index builds: query, versions, incremental re-index, bad files, errors, hosted embeddings, background."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from storage.db import session
from storage.tables import RagIndexVersion
from workbench import config, embeddings
from workbench.errors import NotFound, WorkbenchError
from workbench.rag import chunking, index

BASE = embeddings.hashing_embedder()


class CountingEmbedder:
    """The hashing embedder, remembering every text it was asked to embed."""

    def __init__(self):
        self.texts: list[str] = []

    def __call__(self, texts, model=""):
        self.texts.extend(texts)
        return BASE(texts, model)


@pytest.fixture
def counter():
    fake = CountingEmbedder()
    with embeddings.use_embedder(fake):
        yield fake


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "plans.md").write_text(
        "# Plans\n\nPlus costs eight dollars per member per month.\n\nBusiness adds single sign-on and audit logs.\n",
        encoding="utf-8",
    )
    (folder / "refunds.md").write_text(
        "# Refunds\n\nAnnual plans can be refunded within fourteen days.\n", encoding="utf-8"
    )
    (folder / "sync.txt").write_text(
        "Offline edits sync when the device reconnects to the network.\n", encoding="utf-8"
    )
    return folder


def small(name="kb", source=None, **options):
    options = {"chunk_size": 60, "overlap": 10, **options}
    return index.build_index(name, source, **options)


def test_build_and_query_the_sample_corpus(counter):
    steps = []
    version = index.build_index("docs", "sample", on_progress=lambda d, t, m: steps.append((d, t, m)))
    assert version.status == "ready" and version.version == 1
    assert len(version.documents) == 33 and version.chunk_count == len(counter.texts) > 33
    assert steps[-1][0] == steps[-1][1] == version.chunk_count
    assert version.config["embedding_model"] == embeddings.DEFAULT_EMBEDDING_MODEL
    found = index.query("docs", "Annual plans can be refunded in full within 14 days of the purchase", k=3)
    assert len(found) == 3 and [r["rank"] for r in found] == [1, 2, 3]
    assert found[0]["score"] >= found[1]["score"] >= found[2]["score"]
    assert found[0]["doc_id"] == "billing-invoices-refunds.md"
    text = (config.SAMPLE_DATA / "rag_corpus" / found[0]["doc_id"]).read_text(encoding="utf-8")
    assert text[found[0]["start"] : found[0]["end"]] == found[0]["text"]
    assert chunking.parse_chunk_id(found[0]["chunk_id"]) == (
        found[0]["doc_id"],
        found[0]["start"],
        found[0]["end"],
        version.config["config_hash"],
    )


def test_incremental_reindex_embeds_only_the_changed_document(counter, corpus):
    v1 = small("kb", corpus)
    first = index.chunks_of("kb@1")
    assert {c["doc_id"] for c in first} == {"plans.md", "refunds.md", "sync.txt"}
    assert all(c["index_version"] == 1 for c in first)
    (corpus / "refunds.md").write_text(
        "# Refunds\n\nAnnual plans can be refunded within thirty days.\n", encoding="utf-8"
    )
    counter.texts.clear()
    v2 = small("kb", corpus)
    changed = [c["text"] for c in index.chunks_of("kb@2", "refunds.md")]
    assert sorted(counter.texts) == sorted(changed)  # nothing else was embedded again
    assert v2.config["build"]["reused_documents"] == 2 and v2.config["build"]["embedded_documents"] == 1
    assert v2.config["build"]["reused_from"] == 1
    assert v2.documents["refunds.md"] != v1.documents["refunds.md"]
    assert v2.documents["plans.md"] == v1.documents["plans.md"]
    unchanged = [c for c in index.chunks_of("kb@2") if c["doc_id"] != "refunds.md"]
    assert [c["chunk_id"] for c in unchanged] == [c["chunk_id"] for c in first if c["doc_id"] != "refunds.md"]
    assert all(c["index_version"] == 2 for c in index.chunks_of("kb@2"))
    # Both versions stay queryable, each with its own text.
    old = index.query("kb@1", "refunded within fourteen days", k=1)[0]
    new = index.query("kb@2", "refunded within thirty days", k=1)[0]
    assert "fourteen" in old["text"] and "thirty" in new["text"]
    assert index.get_version("kb").version == 2


def test_removed_documents_leave_the_new_version_only(counter, corpus):
    small("kb", corpus)
    (corpus / "sync.txt").unlink()
    counter.texts.clear()
    v2 = small("kb", corpus)
    assert counter.texts == []
    assert set(v2.documents) == {"plans.md", "refunds.md"}
    assert "sync.txt" not in {c["doc_id"] for c in index.chunks_of("kb@2")}
    assert v2.chunk_count == len(index.chunks_of("kb@2"))
    assert "sync.txt" in {c["doc_id"] for c in index.chunks_of("kb@1")}
    assert index.query("kb@1", "offline edits sync device", k=1)[0]["doc_id"] == "sync.txt"


def test_renamed_document_reuses_its_vectors_under_new_ids(counter, corpus):
    small("kb", corpus)
    (corpus / "sync.txt").rename(corpus / "offline.txt")
    counter.texts.clear()
    v2 = small("kb", corpus)
    assert counter.texts == [] and set(v2.documents) == {"plans.md", "refunds.md", "offline.txt"}
    moved = index.chunks_of("kb@2", "offline.txt")
    assert moved and all(c["chunk_id"].startswith("offline.txt#") for c in moved)
    assert index.query("kb@2", "offline edits sync device", k=1)[0]["doc_id"] == "offline.txt"


def test_a_new_chunking_config_embeds_everything_again(counter, corpus):
    small("kb", corpus)
    counter.texts.clear()
    v2 = small("kb", corpus, chunk_size=200, overlap=0)
    assert v2.config["build"]["reused_documents"] == 0
    assert len(counter.texts) == v2.chunk_count
    assert v2.config["config_hash"] != index.get_version("kb", 1).config["config_hash"]


def test_ready_versions_are_not_rewritten_by_later_builds(counter, corpus):
    v1 = small("kb", corpus)
    (corpus / "plans.md").write_text("Completely different text about keyboards.\n", encoding="utf-8")
    small("kb", corpus)
    again = index.get_version("kb", 1)
    assert (again.documents, again.chunk_count, again.config, again.status) == (
        v1.documents,
        v1.chunk_count,
        v1.config,
        "ready",
    )
    assert [v.version for v in index.versions("kb")] == [1, 2]
    assert index.get_version("kb", 1).collection != index.get_version("kb", 2).collection


def test_corrupt_pdf_is_named_and_the_build_goes_on(counter, corpus):
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\n this is not really a pdf \x00\x01")
    (corpus / "notes.docx").write_bytes(b"PK whatever")
    version = small("kb", corpus)
    assert version.status == "ready"
    assert set(version.documents) == {"plans.md", "refunds.md", "sync.txt"}
    skipped = {s["source"]: s["reason"] for s in version.config["build"]["skipped"]}
    assert set(skipped) == {"broken.pdf", "notes.docx"}
    assert "PDF" in skipped["broken.pdf"]
    assert index.describe(version)["skipped_files"] == 2


def test_empty_corpus_fails_clearly(counter, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkbenchError, match="No documents to index"):
        small("kb", tmp_path / "empty")
    failed = index.get_version("kb", 1)
    assert failed.status == "failed" and "No documents to index" in failed.error
    with pytest.raises(NotFound, match="no ready version"):
        index.query("kb", "anything")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "scan.pdf").write_bytes(b"%PDF-1.4 broken")
    with pytest.raises(WorkbenchError, match="scan.pdf"):
        small("kb2", tmp_path / "bad")


def test_unavailable_embedding_model_fails_clearly(corpus, monkeypatch):
    with embeddings.use_embedder(None):  # the real loader, which refuses before importing torch
        with pytest.raises(embeddings.EmbeddingModelUnavailable, match="not available offline"):
            small("kb", corpus, embedding_model="/no/such/model")
    failed = index.get_version("kb", 1)
    assert failed.status == "failed" and "/no/such/model" in failed.error
    with pytest.raises(WorkbenchError):
        index.query("kb@1", "anything")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(embeddings.EmbeddingModelUnavailable, match="OPENAI_API_KEY"):
        small("hosted", corpus, embedding_model="openai/text-embedding-3-small")
    with pytest.raises(NotFound):
        index.versions("hosted")  # refused before any version was written


def test_bad_settings_are_refused_before_building(counter, corpus):
    with pytest.raises(WorkbenchError, match="Unknown chunker"):
        small("kb", corpus, chunker="by_vibes")
    with pytest.raises(WorkbenchError, match="overlap"):
        small("kb", corpus, chunk_size=50, overlap=50)
    with pytest.raises(WorkbenchError, match="name"):
        small("kb@2", corpus)
    with pytest.raises(NotFound):
        index.versions("kb")
    small("kb", corpus)
    with pytest.raises(WorkbenchError, match="k must be"):
        index.query("kb", "plans", k=0)
    with pytest.raises(WorkbenchError, match="question"):
        index.query("kb", "  ")
    with pytest.raises(NotFound, match="no version 9"):
        index.query("kb@9", "plans")


def test_uploads_and_zip_archives_are_sources(counter):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("guide/a.md", "# A\n\nAlpha text about apples.\n")
        zf.writestr("guide/b.txt", "Beta text about bananas.\n")
    version = small("up", [("notes.md", b"Gamma text about grapes.\n"), ("bundle.zip", archive.getvalue())])
    assert set(version.documents) == {"notes.md", "guide/a.md", "guide/b.txt"}
    assert index.query("up", "bananas", k=1)[0]["doc_id"] == "guide/b.txt"


class _EmbeddingServer(BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        _EmbeddingServer.calls.append(
            {"model": body["model"], "n": len(texts), "auth": self.headers.get("Authorization")}
        )
        vectors = BASE(texts)
        payload = {
            "object": "list",
            "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_hosted_embeddings_go_through_litellm(corpus, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _EmbeddingServer.calls = []
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_API_BASE", f"http://127.0.0.1:{server.server_address[1]}/v1")
    try:
        with embeddings.use_embedder(None):
            version = small("hosted", corpus, embedding_model="openai/text-embedding-3-small")
            assert version.status == "ready"
            found = index.query("hosted", "refunded within fourteen days", k=1)
    finally:
        server.shutdown()
    assert found[0]["doc_id"] == "refunds.md"
    assert {c["model"] for c in _EmbeddingServer.calls} == {"text-embedding-3-small"}
    assert sum(c["n"] for c in _EmbeddingServer.calls) == version.chunk_count + 1  # chunks, then the question
    assert _EmbeddingServer.calls[0]["auth"] == "Bearer sk-test"
    assert index.is_hosted("openai/text-embedding-3-small")
    assert not index.is_hosted("sentence-transformers/all-MiniLM-L6-v2") and not index.is_hosted("BAAI/bge-small")


def test_background_build_reports_progress(counter, corpus):
    from workbench.jobs import queue, worker

    version = queue.submit_index("bg", corpus, chunk_size=60, overlap=10)
    assert version.status == "building"
    assert worker.drain() == 1  # a worker builds it
    progress = index.progress(version.id)
    assert progress["status"] == "ready" and progress["done"] == progress["total"] == version_chunks(version.id)
    assert progress["label"] == "bg@1"
    failing = queue.submit_index("bg", corpus / "missing-folder")
    assert worker.drain() == 1
    assert index.progress(failing.id)["status"] == "failed"
    assert "not found" in index.progress(failing.id)["error"]


def version_chunks(version_id: int) -> int:
    return index.version_by_id(version_id).chunk_count


def test_a_build_whose_heartbeat_stopped_shows_as_interrupted(counter):
    version = index.start_version("stuck")
    assert index.effective_status(version) == "building"
    with session() as s:
        row = s.get(RagIndexVersion, version.id)
        old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
        row.config = {**row.config, "build": {**row.config["build"], "heartbeat": old}}
    assert index.progress(version.id)["status"] == "interrupted"
    assert index.list_indexes()[0]["rows"][0]["status"] == "interrupted"
    assert index.version_refs() == [] and index.version_refs(ready_only=False) == ["stuck@1"]


@pytest.mark.slow
def test_real_minilm_retrieves_well_on_the_sample_corpus():
    from workbench.rag import evaluate

    with embeddings.use_embedder(None):
        index.build_index("docs", "sample")
        result = evaluate.evaluate_retrieval("docs", evaluate.default_qa_path(), k=5)
    summary = result["summary"]
    assert summary["hit_rate"]["mean"] > 0.8 and summary["mrr"]["mean"] > 0.6
    assert summary["hit_rate"]["skipped"] == 3  # the unanswerable questions
