"""RAG index speed: build throughput against raw encoding, query latency, incremental re-index.

Prints ratios against bounds measured in the same run, never absolute pass/fail times:
- build: chunks/s of `index.build_index` (load, chunk, embed, write to Chroma) over the sample
  corpus replicated to ~5 000 chunks, divided by the chunks/s of a bare
  `SentenceTransformer.encode` of the very same chunk texts at the same batch size
  (target ratio >= 0.8);
- query: p50/p95 latency of a top-5 query on that index, model warm (target p95 < 50 ms);
- re-index: building again after touching one document, as a share of the full build's
  time (target < 5%).
Also prints the process's peak memory.

    python bench/rag_index.py [--chunks 5000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def replicate_corpus(target: Path, chunks_wanted: int) -> int:
    """Copies of the sample help centre, each copy's text made distinct (so nothing is deduplicated
    by content hash), until the corpus holds about `chunks_wanted` chunks. Returns the copies made."""
    from workbench.rag import documents

    docs, _ = documents.load_documents(ROOT / "sample_data" / "rag_corpus")
    per_copy = len(chunk_texts(docs))
    copies = max(1, round(chunks_wanted / per_copy))
    for copy in range(copies):
        for doc in docs:
            name = Path(doc.doc_id)
            (target / f"{name.stem}-copy{copy:03d}.md").write_text(
                f"# Copy {copy} of {name.stem}\n\nEdition {copy}.\n\n{doc.text}", encoding="utf-8"
            )
    return copies


def chunk_texts(docs) -> list[str]:
    """The chunk texts a build of `docs` embeds, cut the way the build cuts them (default config)."""
    from workbench.rag import chunking, index

    return [
        c.text
        for d in docs
        for c in chunking.chunk_text(d.text, index.DEFAULT_CHUNKER, index.DEFAULT_CHUNK_SIZE, index.DEFAULT_OVERLAP)
    ]


def raw_encode_rate(texts: list[str]) -> float:
    """Chunks/s of SentenceTransformer.encode alone, best of two passes (the lower bound)."""
    from workbench import embeddings
    from workbench.rag import index

    encoder = embeddings.load_model()
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        for i in range(0, len(texts), index.EMBED_BATCH):
            encoder.encode(
                texts[i : i + index.EMBED_BATCH],
                batch_size=index.EMBED_BATCH,
                convert_to_numpy=True,
                show_progress_bar=False,
                normalize_embeddings=True,
            )
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="wb-bench-rag-"))
    os.environ["WORKBENCH_HOME"] = str(work / "home")
    corpus = work / "corpus"
    corpus.mkdir()
    from workbench import embeddings
    from workbench.rag import documents, index

    copies = replicate_corpus(corpus, args.chunks)
    texts = chunk_texts(documents.load_documents(corpus)[0])
    print(
        f"corpus: {copies} copies of the sample help centre, {len(list(corpus.iterdir()))} documents, "
        f"{len(texts)} chunks ({index.DEFAULT_CHUNKER}, {index.DEFAULT_CHUNK_SIZE}/{index.DEFAULT_OVERLAP})"
    )

    embeddings.embed(["warm up the model"])  # loading is not throughput, for either side
    raw_rate = raw_encode_rate(texts)

    started = time.perf_counter()
    version = index.build_index("bench", str(corpus))
    build_s = time.perf_counter() - started
    build_rate = version.chunk_count / build_s
    print(
        f"build:    {version.chunk_count} chunks in {build_s:.1f} s = {build_rate:.0f} chunks/s; raw encode "
        f"{raw_rate:.0f} chunks/s; ratio {build_rate / raw_rate:.2f} (target >= 0.8)"
    )

    questions = [
        json.loads(line)["question"]
        for line in (ROOT / "sample_data" / "rag_qa.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    index.query("bench", questions[0], k=5)  # the first query opens the collection
    latencies = []
    for i in range(args.queries):
        started = time.perf_counter()
        hits = index.query("bench", questions[i % len(questions)], k=5)
        latencies.append((time.perf_counter() - started) * 1000)
        assert len(hits) == 5
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    print(
        f"query:    top-5 over {version.chunk_count} chunks, {args.queries} queries: p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms (target p95 < 50 ms)"
    )

    touched = sorted(corpus.iterdir())[0]
    touched.write_text(touched.read_text(encoding="utf-8") + "\n\nOne more paragraph, added later.\n", encoding="utf-8")
    started = time.perf_counter()
    again = index.build_index("bench", str(corpus))
    reindex_s = time.perf_counter() - started
    build = again.config["build"]
    print(
        f"re-index: one document touched: {reindex_s:.2f} s, {build['embedded_chunks']} chunk(s) embedded, "
        f"{build['reused_chunks']} reused; {reindex_s / build_s:.1%} of the full build (target < 5%)"
    )

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"memory:   peak {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
