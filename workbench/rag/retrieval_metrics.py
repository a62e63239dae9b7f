"""Score a ranked list of retrieved chunks against what a QA row says is relevant.

A QA row can name what is relevant at three levels of precision, and the most precise
one given is used:

1. `relevant_chunk_ids` - exact chunk ids (only meaningful for one index configuration).
2. `relevant_passages`  - sentences copied from the documents. These survive re-chunking,
   which is why the sample QA set uses them.
3. `source_documents`   - document ids; any chunk of the document counts.

A "relevant item" is one of those ids or passages. A retrieved chunk *covers* an item when
its chunk id or doc id is that id, or, for passages, when either

* the chunk contains, as one contiguous run, at least half (`PASSAGE_SHARE`) of the
  passage's words, and at least `MIN_WORDS` of them (all of them for a shorter passage), or
* the whole chunk, at least `MIN_WORDS` words long, lies inside the passage (a chunk
  smaller than the passage).

Text is compared as lower-cased word tokens, so Markdown, punctuation, case and line
breaks do not matter. The run must be contiguous because counting shared words, or even
shared word pairs, lets a chunk from the wrong article match a short passage ("Anyone with
Can edit or Full access ..." is half-shared by the comments article); half a sentence in
the right order rarely happens by accident. Half, not all, so that a chunk whose boundary
cuts through the passage still counts for the side holding most of it.

Metrics, for the top `k` chunks (a chunk is "relevant" when it covers at least one item):

* hit_rate  - 1 if any of the top k is relevant, else 0.
* precision - relevant chunks in the top k divided by k (not by the number returned, so
  returning fewer chunks is not rewarded).
* recall    - share of the relevant items covered by the top k.
* mrr       - 1 / rank of the first relevant chunk within the top k, 0 if none.
* ndcg      - binary gains, credited per relevant item to the first chunk that covers it
  (so three chunks of the one relevant document are not counted three times), divided by
  the ideal of one new item per rank; capped at 1 for a chunk that covers several items.

A row with nothing relevant (an unanswerable question) gets None for every metric, not
0: retrieval cannot be right or wrong there, and averages must skip it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PASSAGE_SHARE = 0.5
MIN_WORDS = 5
METRICS = ("hit_rate", "precision", "recall", "mrr", "ndcg")


@dataclass(frozen=True)
class Relevant:
    chunk_ids: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    passages: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping) -> Relevant:
        """From a QA row: `relevant_chunk_ids`, `relevant_passages`, `source_documents`."""

        def strings(key):
            values = row.get(key) or ()
            if isinstance(values, str):  # one id written without a list
                values = [values]
            return tuple(str(v) for v in values if str(v).strip())

        return cls(
            chunk_ids=strings("relevant_chunk_ids"),
            doc_ids=strings("source_documents") or strings("relevant_documents"),
            passages=strings("relevant_passages"),
        )

    @property
    def mode(self) -> str | None:
        """Which level decides relevance: "chunk_ids", "passages", "documents", or None."""
        if self.chunk_ids:
            return "chunk_ids"
        if self.passages:
            return "passages"
        if self.doc_ids:
            return "documents"
        return None

    @property
    def items(self) -> tuple[str, ...]:
        return {"chunk_ids": self.chunk_ids, "passages": self.passages, "documents": self.doc_ids, None: ()}[self.mode]


def tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def passage_in_chunk(chunk_text: str, passage: str, share: float = PASSAGE_SHARE) -> bool:
    """The passage rule from the module docstring."""
    chunk_words, passage_words = tokens(chunk_text), tokens(passage)
    if not chunk_words or not passage_words:
        return False
    need = min(len(passage_words), max(MIN_WORDS, math.ceil(share * len(passage_words))))
    if _ngrams(passage_words, need) & _ngrams(chunk_words, need):
        return True
    return MIN_WORDS <= len(chunk_words) < need and f" {' '.join(chunk_words)} " in f" {' '.join(passage_words)} "


def _field(item: Any, name: str):
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def _doc_id(item: Any) -> str | None:
    doc_id = _field(item, "doc_id")
    if doc_id is None and _field(item, "chunk_id"):
        doc_id = str(_field(item, "chunk_id")).rpartition("#")[0] or None  # ids made by chunking.chunk_id
    return doc_id


def covered_items(retrieved: Sequence, relevant: Relevant) -> list[frozenset[int]]:
    """For each retrieved chunk (dict or object with chunk_id, doc_id, text): indexes of the items it covers."""
    mode, items = relevant.mode, relevant.items
    result = []
    for chunk in retrieved:
        if mode == "chunk_ids":
            hit = {i for i, item in enumerate(items) if _field(chunk, "chunk_id") == item}
        elif mode == "documents":
            hit = {i for i, item in enumerate(items) if _doc_id(chunk) == item}
        elif mode == "passages":
            text = _field(chunk, "text") or ""
            hit = {i for i, item in enumerate(items) if passage_in_chunk(text, item)}
        else:
            hit = set()
        result.append(frozenset(hit))
    return result


def hit_rate_at_k(flags: Sequence, k: int) -> float:
    """`flags[i]` is truthy when the chunk at rank i+1 is relevant (a non-empty covered set works too)."""
    return 1.0 if any(flags[:k]) else 0.0


def precision_at_k(flags: Sequence, k: int) -> float:
    return sum(1 for f in flags[:k] if f) / k


def reciprocal_rank(flags: Sequence, k: int | None = None) -> float:
    for rank, flag in enumerate(flags[:k], start=1):
        if flag:
            return 1.0 / rank
    return 0.0


def recall_at_k(covered: Sequence[Iterable[int]], n_relevant: int, k: int) -> float:
    found = set().union(*covered[:k]) if covered[:k] else set()
    return len(found) / n_relevant


def ndcg_at_k(covered: Sequence[Iterable[int]], n_relevant: int, k: int) -> float:
    seen: set[int] = set()
    dcg = 0.0
    for rank, items in enumerate(covered[:k], start=1):
        new = set(items) - seen
        seen |= new
        dcg += len(new) / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, n_relevant) + 1))
    return min(1.0, dcg / ideal)


def retrieval_scores(retrieved: Sequence, relevant: Relevant | Mapping, k: int) -> dict:
    """All metrics for one question. `relevant` is a `Relevant` or a QA row.

    Besides the metrics, returns which of the top-k chunks were judged relevant, so the UI
    can mark them, and the judging mode, so a reader knows what "relevant" meant.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"k must be a positive whole number, got {k!r}.")
    if not isinstance(relevant, Relevant):
        relevant = Relevant.from_row(relevant)
    top = list(retrieved)[:k]
    covered = covered_items(top, relevant)
    n_relevant = len(relevant.items)
    scores: dict = {"k": k, "mode": relevant.mode, "n_relevant": n_relevant, "relevant": [bool(c) for c in covered]}
    if n_relevant == 0:
        return {**scores, **{name: None for name in METRICS}}
    return {
        **scores,
        "hit_rate": hit_rate_at_k(covered, k),
        "precision": precision_at_k(covered, k),
        "recall": recall_at_k(covered, n_relevant, k),
        "mrr": reciprocal_rank(covered, k),
        "ndcg": ndcg_at_k(covered, n_relevant, k),
    }


def mean_scores(rows: Iterable[Mapping]) -> dict:
    """Average each metric over the rows that have one; says how many rows were skipped."""
    rows = list(rows)
    scored = [row for row in rows if row.get("hit_rate") is not None]
    means = {name: (sum(row[name] for row in scored) / len(scored) if scored else None) for name in METRICS}
    return {**means, "n_scored": len(scored), "n_unanswerable": len(rows) - len(scored)}
