"""Named, versioned vector indexes over a document corpus, kept in Chroma.

A build loads documents (`documents`), cuts them into chunks (`chunking`), embeds the
chunks and writes them to a Chroma collection; the `rag_index_version` row records the
exact config, the {doc_id: content_hash} map and the chunk count. Decisions:

* **One collection per version.** A version is immutable and stays queryable, so it
  owns its collection (`wb-idx<index id>-v<version>`) under `config.home() / "chroma"`;
  rebuilding never touches an older version's vectors. A version whose build failed has
  its collection dropped.
* **Incremental re-index by content hash.** A new version built with the same chunking
  and embedding config as an earlier ready version copies the chunks *and their stored
  embeddings* of every document whose content hash it already holds (even if the file
  was renamed) instead of re-embedding them; only new or changed documents are embedded.
  Documents that are no longer in the corpus are simply not copied. A changed config
  means new chunk ids and vectors, so everything is embedded again.
* **Chunk ids** are `chunking.chunk_id(doc_id, start, end, config_hash)`, readable and
  stable across versions of the same config; each chunk's metadata holds doc_id, start,
  end and the index version number.
* **Embeddings**: `all-MiniLM-L6-v2` (bundled, offline) by default, any local
  sentence-transformers directory, or a hosted model through `litellm.embedding` when the
  id starts with a litellm provider (`openai/text-embedding-3-small`) and its key is set.
  Vectors are unit length and the collection uses cosine distance; score = 1 - distance.
  Chroma's own default embedding function is never used (it would download a model).
* **Progress and liveness** live in the version's `config["build"]` while it is
  `building` (the only time the row changes), so a page can poll one row. A build whose
  heartbeat stopped (the server died) shows as `interrupted`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage import indexes as repo
from storage.tables import RagIndexVersion
from workbench import config, embeddings, secrets
from workbench.errors import NotFound, WorkbenchError
from workbench.rag import chunking, documents

DEFAULT_CHUNKER = "recursive"
DEFAULT_CHUNK_SIZE = 800
DEFAULT_OVERLAP = 100
DEFAULT_EMBEDDING_MODEL = embeddings.DEFAULT_EMBEDDING_MODEL
SAMPLE_CORPUS = "sample"  # a source alias for sample_data/rag_corpus
EMBED_BATCH = 64
STALE_AFTER_S = 180.0  # a build silent this long is taken as interrupted

Progress = Callable[[int, int, str], None]

_clients: dict[str, object] = {}
_client_lock = threading.Lock()


# --- Chroma --------------------------------------------------------------------------


def chroma_client():
    """The persistent Chroma client for the current data directory (one per path and process)."""
    path = str(config.home() / "chroma")
    with _client_lock:
        if path not in _clients:
            import chromadb
            from chromadb.config import Settings

            _clients[path] = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
        return _clients[path]


def _collection(name: str):
    return chroma_client().get_collection(name, embedding_function=None)


def _drop_collection(name: str) -> None:
    try:
        chroma_client().delete_collection(name)
    except Exception:  # NotFoundError (class differs across chromadb versions): nothing to drop
        pass


# --- sources -------------------------------------------------------------------------


def load_source(source) -> tuple[list[documents.Document], list[documents.LoadError]]:
    """Documents from "sample", a path (folder, zip, file), uploads or Documents, or a list of those.

    Uploads are `(name, bytes)` pairs or objects with `.name` and `.getvalue()` (Streamlit's
    UploadedFile), so the page passes what it has without saving files.
    """
    if source is None or (isinstance(source, str) and source == SAMPLE_CORPUS):
        return documents.load_documents(config.SAMPLE_DATA / "rag_corpus")
    if isinstance(source, (str, os.PathLike)):
        return documents.load_documents(source)
    docs: list[documents.Document] = []
    errors: list[documents.LoadError] = []
    found: list[documents.Document]
    problems: list[documents.LoadError]
    for item in source:
        if isinstance(item, documents.Document):
            found, problems = [item], []
        elif isinstance(item, tuple) and len(item) == 2:
            found, problems = documents.load_uploaded(item[0], item[1])
        elif hasattr(item, "getvalue") and hasattr(item, "name"):
            found, problems = documents.load_uploaded(item.name, item.getvalue())
        else:
            found, problems = load_source(item)
        for doc in found:
            if any(d.doc_id == doc.doc_id for d in docs):
                problems.append(documents.LoadError(doc.doc_id, "duplicate document id (already loaded)"))
            else:
                docs.append(doc)
        errors.extend(problems)
    return docs, errors


def source_label(source) -> str:
    """A short description of a source for the version's record."""
    if source is None or source == SAMPLE_CORPUS:
        return "sample corpus"
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    names = [
        getattr(i, "doc_id", None) or getattr(i, "name", None) or (i[0] if isinstance(i, tuple) else str(i))
        for i in source
    ]
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


# --- embeddings ----------------------------------------------------------------------


def is_hosted(model: str) -> bool:
    """True for litellm ids such as `openai/text-embedding-3-small`; local names and paths are not."""
    if model in embeddings.DEFAULT_ALIASES or "/" not in model or Path(model).expanduser().exists():
        return False
    from workbench import llm

    provider = model.split("/", 1)[0]
    return provider in llm.litellm_module().provider_list


def check_embedding_model(model: str) -> None:
    """Fail early, with what to do, for a hosted model whose key is not set."""
    if not (model or "").strip():
        raise WorkbenchError("Choose an embedding model.")
    if is_hosted(model):
        from workbench import llm

        missing = llm.litellm_module().validate_environment(model=model).get("missing_keys") or []
        if missing:
            raise embeddings.EmbeddingModelUnavailable(
                f"Hosted embedding model {model!r} needs {', '.join(missing)} in the environment; "
                f"or use {DEFAULT_EMBEDDING_MODEL!r} (bundled, offline)."
            )


def embed_texts(texts: list[str], model: str):
    """Unit vectors for texts with a local model (workbench.embeddings) or a hosted one (litellm)."""
    if not is_hosted(model):
        return embeddings.embed(texts, model)
    from workbench import llm

    check_embedding_model(model)
    try:
        response = llm.litellm_module().embedding(model=model, input=texts, num_retries=2)
    except Exception as exc:
        raise embeddings.EmbeddingModelUnavailable(
            f"Hosted embedding model {model!r} failed: {type(exc).__name__}: {str(exc)[:300]}"
        ) from None
    items = sorted(response.data, key=lambda d: d["index"] if isinstance(d, dict) else d.index)
    return embeddings.normalize([d["embedding"] if isinstance(d, dict) else d.embedding for d in items])


# --- configs and versions ------------------------------------------------------------


def index_config(
    chunker: str = DEFAULT_CHUNKER,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
) -> dict:
    """The settings that decide chunk ids and vectors, validated, with their hash."""
    if chunker not in chunking.CHUNKERS:
        raise WorkbenchError(f"Unknown chunker {chunker!r}; choose one of: {', '.join(chunking.CHUNKERS)}.")
    try:
        chunking.validate(chunk_size, overlap)
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None
    settings = {
        "chunker": chunker,
        "chunk_size": chunk_size,
        "overlap": overlap,
        "embedding_model": (embedding_model or "").strip(),
    }
    return {**settings, "config_hash": chunking.config_hash(settings)}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _index_id(name: str) -> int:
    found = repo.find(name)
    if found is None or found.id is None:
        raise NotFound(f"No index named {name!r}.")
    return found.id


def start_version(
    name: str,
    chunker: str = DEFAULT_CHUNKER,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    source_label: str = "",
) -> RagIndexVersion:
    """Write the next version of `name` as `building` (creating the index); `run_build` fills it."""
    name = (name or "").strip()
    if not name or "@" in name:
        raise WorkbenchError("Give the index a name (without '@', which separates name and version).")
    settings = index_config(chunker, chunk_size, overlap, embedding_model)
    check_embedding_model(settings["embedding_model"])

    def make(index_id: int, number: int) -> RagIndexVersion:
        build = {"source": source_label, "done": 0, "total": 0, "message": "queued", "heartbeat": _now()}
        return RagIndexVersion(
            index_id=index_id,
            version=number,
            config={**settings, "build": build},
            collection=f"wb-idx{index_id}-v{number}",
            status="building",
        )

    return repo.start_version(name, make)


def _update_build(version_id: int, **changes) -> None:
    def change(version: RagIndexVersion) -> None:
        build = {**version.config.get("build", {}), **changes, "heartbeat": _now()}
        version.config = {**version.config, "build": build}  # a new dict, so the JSON column is saved

    repo.change_version(version_id, change)


def _finish(version_id: int, status: str, error: str | None = None, **fields) -> RagIndexVersion:
    def change(version: RagIndexVersion) -> None:
        version.status, version.error = status, error
        for key, value in fields.items():
            setattr(version, key, value)

    found = repo.change_version(version_id, change)
    if found is None:
        raise NotFound(f"No index version with id {version_id}.")
    return found


@dataclass
class _Chunk:
    id: str
    text: str
    metadata: dict
    embedding: list | None = None


def _previous_version(version: RagIndexVersion) -> RagIndexVersion | None:
    """The latest ready version of the same index with the same chunking and embedding config."""
    candidates = repo.latest_ready(version.index_id, below=version.version)
    return next((v for v in candidates if v.config.get("config_hash") == version.config["config_hash"]), None)


def _reused_chunks(
    previous: RagIndexVersion, docs: list[documents.Document], version: RagIndexVersion
) -> tuple[list[_Chunk], set[str]]:
    """Chunks with their stored embeddings for documents the previous version holds by content hash."""
    by_hash = {digest: doc_id for doc_id, digest in previous.documents.items()}
    wanted = {by_hash[d.content_hash]: d.doc_id for d in docs if d.content_hash in by_hash}
    if not wanted:
        return [], set()
    try:
        old = _collection(previous.collection)
    except Exception:  # the previous collection is gone: embed everything again
        return [], set()
    chunks: list[_Chunk] = []
    old_ids = sorted(wanted)
    for i in range(0, len(old_ids), 200):
        got = old.get(where={"doc_id": {"$in": old_ids[i : i + 200]}}, include=["embeddings", "documents", "metadatas"])
        for text, meta, vector in zip(got["documents"], got["metadatas"], got["embeddings"]):
            doc_id = wanted[meta["doc_id"]]
            chunks.append(
                _Chunk(
                    chunking.chunk_id(doc_id, meta["start"], meta["end"], version.config["config_hash"]),
                    text,
                    {**meta, "doc_id": doc_id, "index_version": version.version},
                    [float(x) for x in vector],
                )
            )
    return chunks, set(wanted.values())


def run_build(version_id: int, source, on_progress: Progress | None = None) -> RagIndexVersion:
    """Load, chunk, embed and store a `building` version; ends `ready`, or `failed` and raises."""
    version = repo.version_by_id(version_id)
    if version is None or version.status != "building":
        raise WorkbenchError(f"Index version {version_id} is not waiting to be built.")
    previous = _previous_version(version)
    settings = version.config
    started = time.monotonic()

    def report(done: int, total: int, message: str) -> None:
        _update_build(version_id, done=done, total=total, message=message)
        if on_progress:
            on_progress(done, total, message)

    try:
        report(0, 0, "loading documents")
        docs, errors = load_source(source)
        skipped = [{"source": e.source, "reason": e.reason} for e in errors]
        _update_build(version_id, skipped=skipped)
        if not docs:
            detail = "; ".join(str(e) for e in errors[:5]) or "the source holds no .md, .txt, .html or .pdf files"
            raise WorkbenchError(f"No documents to index from {source_label(source)}: {detail}.")
        reused, reused_docs = _reused_chunks(previous, docs, version) if previous else ([], set())
        fresh: list[_Chunk] = []
        for doc in docs:
            if doc.doc_id in reused_docs:
                continue
            for chunk in chunking.chunk_text(
                doc.text, settings["chunker"], settings["chunk_size"], settings["overlap"]
            ):
                fresh.append(
                    _Chunk(
                        chunking.chunk_id(doc.doc_id, chunk.start, chunk.end, settings["config_hash"]),
                        chunk.text,
                        {
                            "doc_id": doc.doc_id,
                            "start": chunk.start,
                            "end": chunk.end,
                            "index_version": version.version,
                        },
                    )
                )
        total = len(reused) + len(fresh)
        _drop_collection(version.collection)  # a leftover of the same name can only be an orphan
        collection = chroma_client().create_collection(
            version.collection,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"index_version_id": version.id, "config_hash": settings["config_hash"]},
        )
        for i in range(0, len(reused), 1000):
            batch = reused[i : i + 1000]
            collection.add(
                ids=[c.id for c in batch],
                documents=[c.text for c in batch],
                metadatas=[c.metadata for c in batch],
                embeddings=[c.embedding for c in batch],
            )
        done = len(reused)
        report(done, total, f"reused {len(reused_docs)} unchanged document(s)" if reused else "embedding")
        for i in range(0, len(fresh), EMBED_BATCH):
            batch = fresh[i : i + EMBED_BATCH]
            vectors = embed_texts([c.text for c in batch], settings["embedding_model"])
            collection.add(
                ids=[c.id for c in batch],
                documents=[c.text for c in batch],
                metadatas=[c.metadata for c in batch],
                embeddings=vectors.tolist(),
            )
            done += len(batch)
            report(done, total, f"embedded {done - len(reused)}/{len(fresh)} new chunks")
        build = {
            **_build_of(version_id),
            "done": total,
            "total": total,
            "message": "ready",
            "skipped": skipped,
            "documents": len(docs),
            "reused_documents": len(reused_docs),
            "reused_chunks": len(reused),
            "embedded_documents": len(docs) - len(reused_docs),
            "embedded_chunks": len(fresh),
            "reused_from": previous.version if previous and reused else None,
            "seconds": round(time.monotonic() - started, 2),
            "heartbeat": _now(),
        }
        return _finish(
            version_id,
            "ready",
            config={**settings, "build": build},
            chunk_count=total,
            documents={d.doc_id: d.content_hash for d in docs},
        )
    except Exception as exc:
        message = str(exc) if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {exc}"
        message = secrets.mask(message)  # a hosted embedding provider may echo its key
        _drop_collection(version.collection)
        _update_build(version_id, message="failed")
        _finish(version_id, "failed", error=message)
        raise


def _build_of(version_id: int) -> dict:
    return dict(version_by_id(version_id).config.get("build", {}))


def build_index(
    name: str,
    source=SAMPLE_CORPUS,
    chunker: str = DEFAULT_CHUNKER,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    on_progress: Progress | None = None,
) -> RagIndexVersion:
    """Build the next version of index `name` from `source` (see load_source) and wait for it."""
    version = start_version(name, chunker, chunk_size, overlap, embedding_model, source_label(source))
    assert version.id is not None  # stored rows have ids
    return run_build(version.id, source, on_progress)


# --- reading -------------------------------------------------------------------------


def versions(name: str) -> list[RagIndexVersion]:
    return repo.versions(_index_id(name))


def get_version(name: str, version: int | None = None) -> RagIndexVersion:
    """A version by number, or the latest ready one when `version` is None."""
    index_id = _index_id(name)
    if version is None:
        ready = repo.latest_ready(index_id)
        if not ready:
            raise NotFound(f"Index {name!r} has no ready version yet.")
        return ready[0]
    found = repo.version(index_id, version)
    if found is None:
        raise NotFound(f"Index {name!r} has no version {version}.")
    return found


def version_by_id(version_id: int) -> RagIndexVersion:
    found = repo.version_by_id(version_id)
    if found is None:
        raise NotFound(f"No index version with id {version_id}.")
    return found


def resolve(ref) -> RagIndexVersion:
    """`name` (latest ready), `name@3`, a version id, or a RagIndexVersion."""
    if isinstance(ref, RagIndexVersion):
        return ref
    if isinstance(ref, int):
        return version_by_id(ref)
    name, _, number = str(ref).strip().partition("@")
    if number and not number.strip().isdigit():
        raise WorkbenchError(f"Not an index reference: {ref!r} (use name or name@version).")
    return get_version(name.strip(), int(number) if number else None)


def label(version: RagIndexVersion) -> str:
    """`name@version`, the way versions are named everywhere."""
    index = repo.by_id(version.index_id)
    return f"{index.name if index else '?'}@{version.version}"


def effective_status(version: RagIndexVersion) -> str:
    """The stored status, except a build whose heartbeat stopped is `interrupted`."""
    if version.status != "building":
        return version.status
    beat = (version.config.get("build") or {}).get("heartbeat")
    if beat and (datetime.now(UTC) - datetime.fromisoformat(beat)).total_seconds() > STALE_AFTER_S:
        return "interrupted"
    return "building"


def progress(version_id: int) -> dict:
    """{status, done, total, message, skipped, error} for a progress bar."""
    version = version_by_id(version_id)
    build = version.config.get("build") or {}
    return {
        "status": effective_status(version),
        "done": build.get("done", 0),
        "total": build.get("total", 0),
        "message": build.get("message", ""),
        "skipped": build.get("skipped", []),
        "error": version.error,
        "label": label(version),
    }


def describe(version: RagIndexVersion, name: str | None = None) -> dict:
    """One row for a versions table."""
    build = version.config.get("build") or {}
    return {
        "index": name or label(version).rpartition("@")[0],
        "version": version.version,
        "status": effective_status(version),
        "chunker": version.config.get("chunker"),
        "chunk_size": version.config.get("chunk_size"),
        "overlap": version.config.get("overlap"),
        "embedding_model": version.config.get("embedding_model"),
        "documents": len(version.documents),
        "chunks": version.chunk_count,
        "embedded_documents": build.get("embedded_documents"),
        "reused_documents": build.get("reused_documents"),
        "skipped_files": len(build.get("skipped") or []),
        "source": build.get("source", ""),
        "created_at": version.created_at,
        "error": version.error,
    }


def list_indexes() -> list[dict]:
    """Every index with its versions described, newest version first."""
    out = []
    for index, rows in repo.listing():
        ready = [v.version for v in rows if v.status == "ready"]
        out.append(
            {
                "name": index.name,
                "versions": len(rows),
                "latest_ready": ready[0] if ready else None,
                "rows": [describe(v, index.name) for v in rows],
            }
        )
    return out


def version_refs(ready_only: bool = True) -> list[str]:
    """`name@version` for every (ready) version, for pickers."""
    return [
        f"{i['name']}@{row['version']}"
        for i in list_indexes()
        for row in i["rows"]
        if row["status"] == "ready" or not ready_only
    ]


# --- querying ------------------------------------------------------------------------


def query_many(ref, questions: list[str], k: int = 5) -> list[list[dict]]:
    """Top-k chunks for each question, best first: chunk_id, doc_id, start, end, text, score, rank."""
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise WorkbenchError(f"k must be a positive whole number, got {k!r}.")
    version = resolve(ref)
    if version.status != "ready":
        raise WorkbenchError(f"Index version {label(version)} is {effective_status(version)}, not ready.")
    if not questions:
        return []
    if any(not (q or "").strip() for q in questions):
        raise WorkbenchError("Type a question first.")
    collection = _collection(version.collection)
    vectors = embed_texts(list(questions), version.config["embedding_model"])
    found = collection.query(
        query_embeddings=vectors.tolist(),
        n_results=min(k, max(1, version.chunk_count)),
        include=["documents", "metadatas", "distances"],
    )
    results = []
    for ids, texts, metas, distances in zip(found["ids"], found["documents"], found["metadatas"], found["distances"]):
        results.append(
            [
                {
                    "rank": rank,
                    "chunk_id": chunk_id,
                    "doc_id": meta["doc_id"],
                    "start": meta["start"],
                    "end": meta["end"],
                    "score": round(1.0 - float(distance), 6),
                    "text": text,
                }
                for rank, (chunk_id, text, meta, distance) in enumerate(zip(ids, texts, metas, distances), 1)
            ]
        )
    return results


def query(ref, question: str, k: int = 5) -> list[dict]:
    """Top-k chunks for one question (see query_many)."""
    return query_many(ref, [question], k)[0]


def chunks_of(ref, doc_id: str | None = None) -> list[dict]:
    """Stored chunks of a version (optionally one document), in document order; for inspection and tests."""
    version = resolve(ref)
    got = _collection(version.collection).get(
        where={"doc_id": doc_id} if doc_id else None, include=["documents", "metadatas"]
    )
    rows = [
        {"chunk_id": i, **meta, "text": text} for i, text, meta in zip(got["ids"], got["documents"], got["metadatas"])
    ]
    return sorted(rows, key=lambda r: (r["doc_id"], r["start"], r["end"]))
