"""Retrieval metrics against hand-computed values, and the passage-relevance rule."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench.rag.chunking import chunk_id, recursive
from workbench.rag.documents import load_documents
from workbench.rag.retrieval_metrics import (
    Relevant,
    covered_items,
    hit_rate_at_k,
    mean_scores,
    ndcg_at_k,
    passage_in_chunk,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    retrieval_scores,
)

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def chunk(doc_id, text="", start=0):
    return {"doc_id": doc_id, "chunk_id": chunk_id(doc_id, start, start + len(text)), "text": text}


# Ranks:            1     2     3     4     5
RANKED = [chunk(d) for d in ("x", "a", "y", "b", "a")]
DOCS_AB = Relevant(doc_ids=("a", "b"))


def test_document_level_scores_by_hand():
    scores = retrieval_scores(RANKED, DOCS_AB, k=5)
    assert scores["mode"] == "documents" and scores["n_relevant"] == 2
    assert scores["relevant"] == [False, True, False, True, True]
    assert scores["hit_rate"] == 1.0
    assert scores["precision"] == pytest.approx(3 / 5)
    assert scores["recall"] == 1.0
    assert scores["mrr"] == 0.5
    # New items at ranks 2 and 4 (rank 5 repeats "a"); ideal puts two items at ranks 1 and 2.
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert scores["ndcg"] == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert scores["ndcg"] == pytest.approx(0.650921, abs=1e-6)


def test_cutoff_k_only_looks_at_the_top_k():
    scores = retrieval_scores(RANKED, DOCS_AB, k=3)
    assert scores["relevant"] == [False, True, False]
    assert (scores["hit_rate"], scores["precision"], scores["recall"], scores["mrr"]) == (
        1.0,
        pytest.approx(1 / 3),
        0.5,
        0.5,
    )
    assert scores["ndcg"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))

    miss = retrieval_scores(RANKED, DOCS_AB, k=1)
    assert (miss["hit_rate"], miss["precision"], miss["recall"], miss["mrr"], miss["ndcg"]) == (0, 0, 0, 0, 0)


def test_precision_divides_by_k_even_when_fewer_chunks_come_back():
    scores = retrieval_scores([chunk("a"), chunk("z")], Relevant(doc_ids=("a",)), k=5)
    assert scores["precision"] == pytest.approx(1 / 5)
    assert scores["ndcg"] == 1.0 and scores["recall"] == 1.0


def test_individual_metrics_on_flags_and_item_sets():
    flags = [False, False, True, True]
    assert hit_rate_at_k(flags, 2) == 0.0 and hit_rate_at_k(flags, 3) == 1.0
    assert precision_at_k(flags, 4) == 0.5
    assert reciprocal_rank(flags) == pytest.approx(1 / 3) and reciprocal_rank(flags, 2) == 0.0
    covered = [set(), {0}, {0, 1}, {2}]
    assert recall_at_k(covered, 4, 2) == 0.25 and recall_at_k(covered, 4, 4) == 0.75
    assert recall_at_k([], 3, 5) == 0.0
    # One chunk covering both relevant items at rank 1 is perfect, not more than perfect.
    assert ndcg_at_k([{0, 1}], 2, 5) == 1.0


def test_chunk_ids_take_precedence_over_documents_and_passages():
    row = {"relevant_chunk_ids": [RANKED[3]["chunk_id"]], "source_documents": ["a"], "relevant_passages": ["something"]}
    scores = retrieval_scores(RANKED, row, k=5)
    assert scores["mode"] == "chunk_ids"
    assert scores["relevant"] == [False, False, False, True, False]
    assert scores["mrr"] == 0.25 and scores["precision"] == pytest.approx(1 / 5)


def test_unanswerable_rows_get_none_not_zero():
    row = {"source_documents": [], "relevant_passages": []}
    scores = retrieval_scores(RANKED, row, k=5)
    assert scores["mode"] is None and scores["n_relevant"] == 0
    assert all(scores[name] is None for name in ("hit_rate", "precision", "recall", "mrr", "ndcg"))

    answered = retrieval_scores(RANKED, DOCS_AB, k=3)
    means = mean_scores([answered, scores, retrieval_scores(RANKED, Relevant(doc_ids=("zzz",)), k=3)])
    assert means["n_scored"] == 2 and means["n_unanswerable"] == 1
    assert means["hit_rate"] == 0.5 and means["recall"] == 0.25
    assert mean_scores([scores])["mrr"] is None


def test_a_single_id_written_as_a_string_is_one_item():
    assert Relevant.from_row({"source_documents": "a"}).items == ("a",)


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k must be a positive"):
        retrieval_scores(RANKED, DOCS_AB, k=0)


PASSAGE = "Plus costs $8 per member per month when billed annually, or $10 per member per month when billed monthly."


@pytest.mark.parametrize(
    "chunk_text,expected",
    [
        # Same words in another format: Markdown, case, line breaks, surrounding text.
        (f"## Plus\n\n{PASSAGE.upper()} It allows unlimited members.", True),
        ("## Plus\n\nPlus costs $8 per member\nper month when billed annually, or $10 per member", True),
        # A chunk cut through the passage still counts for the side holding half of it ...
        ("per month when billed annually, or $10 per member per month when billed monthly. Next.", True),
        # ... but not for a small tail.
        ("when billed monthly. It allows unlimited members, removes the device limit.", False),
        # A chunk that lies entirely inside the passage.
        ("$8 per member per month when billed", True),
        # Shares many of the words, never half the passage in order.
        ("Lumen Assist costs $6 per member per month, billed with your plan, or when billed annually.", False),
        ("## Plus", False),
        ("", False),
    ],
)
def test_passage_rule(chunk_text, expected):
    assert passage_in_chunk(chunk_text, PASSAGE) is expected


def test_objects_with_attributes_work_and_doc_id_can_come_from_the_chunk_id():
    @dataclass
    class Hit:
        chunk_id: str
        text: str

    hits = [
        Hit(chunk_id("other.md", 0, 10), "irrelevant words here"),
        Hit(chunk_id("billing-plans.md", 5, 50), PASSAGE),
    ]
    assert covered_items(hits, Relevant(doc_ids=("billing-plans.md",))) == [frozenset(), frozenset({0})]
    assert covered_items(hits, Relevant(passages=(PASSAGE,))) == [frozenset(), frozenset({0})]


def test_passage_judging_on_the_sample_corpus_finds_only_the_source_documents():
    """Chunk the whole sample corpus; each QA passage must be found, and only in its sources."""
    docs, _ = load_documents(SAMPLE / "rag_corpus")
    rows = [json.loads(line) for line in (SAMPLE / "rag_qa.jsonl").read_text(encoding="utf-8").splitlines()]
    for size, overlap in [(300, 50), (800, 150)]:
        chunks = [
            {"doc_id": d.doc_id, "chunk_id": chunk_id(d.doc_id, c.start, c.end), "text": c.text}
            for d in docs
            for c in recursive(d.text, size, overlap)
        ]
        for row in rows:
            if not row["relevant_passages"]:
                continue
            covered = covered_items(chunks, Relevant.from_row(row))
            hit_docs = {c["doc_id"] for c, items in zip(chunks, covered) if items}
            assert hit_docs == set(row["source_documents"]), (size, row["id"])
            assert set().union(*covered) == set(range(len(row["relevant_passages"]))), (size, row["id"])
