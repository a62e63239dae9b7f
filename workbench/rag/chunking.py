"""Cut document text into chunks that remember where they came from.

Every chunker returns `Chunk(text, start, end)` with `text == document_text[start:end]`,
so a retrieved chunk can always be traced back to (document, character range), shown in
context, and compared across index configurations. Chunks are stripped of leading and
trailing whitespace (with the offsets moved accordingly) and whitespace-only chunks are
dropped, so offsets stay exact while the text stays clean.

All chunkers share one signature, `fn(text, chunk_size, overlap) -> list[Chunk]`, and are
registered in `CHUNKERS` so the UI can offer them by name:

* `fixed_chars`  - windows of `chunk_size` characters, each starting `chunk_size - overlap`
  characters after the previous one. Cuts through words; the baseline.
* `fixed_tokens` - the same over tokens. The default tokenizer is a whitespace split, which
  only approximates model tokens (English runs ~1.3 model tokens per word); pass
  `tokenizer=` to count real tokens.
* `recursive`    - splits on Markdown headings, then blank lines, lines, sentences, words
  and finally characters, only going finer where a piece is still longer than
  `chunk_size`, then greedily merges consecutive pieces up to `chunk_size` characters.
  Overlap is made of whole trailing pieces of the previous chunk totalling at most
  `overlap` characters, so it can be smaller than asked (even zero) when pieces are big:
  that keeps chunk starts on sentence or word boundaries.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # character offsets into the document text: text == document[start:end]
    end: int


def validate(chunk_size, overlap) -> None:
    """Raise ValueError with a message a user can act on."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive whole number, got {chunk_size!r}.")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f"overlap must be zero or a positive whole number, got {overlap!r}.")
    if overlap >= chunk_size:
        raise ValueError(
            f"overlap ({overlap}) must be smaller than chunk_size ({chunk_size}), "
            "otherwise the chunker would never move forward."
        )


def _trimmed(text: str, start: int, end: int) -> Chunk | None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    start += len(piece) - len(piece.lstrip())
    return Chunk(stripped, start, start + len(stripped))


def _windows(count: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[first, stop) index ranges of `size` consecutive units out of `count`, stepping `size - overlap`."""
    windows, i = [], 0
    while i < count:
        stop = min(i + size, count)
        windows.append((i, stop))
        if stop == count:
            break
        i += size - overlap
    return windows


def fixed_chars(text: str, chunk_size: int, overlap: int) -> list[Chunk]:
    """Windows of chunk_size characters that overlap by `overlap` characters."""
    validate(chunk_size, overlap)
    chunks = []
    for first, stop in _windows(len(text), chunk_size, overlap):
        chunk = _trimmed(text, first, stop)
        if chunk:
            chunks.append(chunk)
    return chunks


def word_spans(text: str) -> list[tuple[int, int]]:
    """The default tokenizer: runs of non-whitespace, as (start, end) character spans."""
    return [m.span() for m in re.finditer(r"\S+", text)]


def fixed_tokens(
    text: str, chunk_size: int, overlap: int, tokenizer: Callable[[str], Sequence[tuple[int, int]]] | None = None
) -> list[Chunk]:
    """Windows of chunk_size tokens that overlap by `overlap` tokens.

    `tokenizer(text)` must return the (start, end) character span of each token, in order,
    so chunks keep exact offsets; e.g. for a Hugging Face tokenizer
    `lambda t: tok(t, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]`.
    """
    validate(chunk_size, overlap)
    spans = [(int(s), int(e)) for s, e in (tokenizer or word_spans)(text)]
    chunks = []
    for first, stop in _windows(len(spans), chunk_size, overlap):
        chunk = _trimmed(text, spans[first][0], spans[stop - 1][1])
        if chunk:
            chunks.append(chunk)
    return chunks


# Coarsest first. "before" cuts in front of the match (a heading starts its section),
# "after" cuts behind it (the separator stays with the text it ends).
_LEVELS = [
    (re.compile(r"^#{1,6}[ \t]", re.MULTILINE), "before"),  # Markdown headings
    (re.compile(r"\n[ \t]*\n\s*"), "after"),  # paragraphs
    (re.compile(r"\n"), "after"),  # lines
    (re.compile(r"(?<=[.!?])[\"')\]]*\s+"), "after"),  # sentences
    (re.compile(r"\s+"), "after"),  # words
]


def _pieces(text: str, start: int, end: int, chunk_size: int, level: int = 0) -> list[tuple[int, int]]:
    """Contiguous spans covering text[start:end], each at most chunk_size long."""
    if end - start <= chunk_size:
        return [(start, end)]
    if level == len(_LEVELS):  # one unbroken run longer than a chunk: cut it by characters
        return [(s, min(s + chunk_size, end)) for s in range(start, end, chunk_size)]
    pattern, where = _LEVELS[level]
    cuts = {m.start() if where == "before" else m.end() for m in pattern.finditer(text, start, end)}
    bounds = [start, *sorted(c for c in cuts if start < c < end), end]
    pieces = []
    for s, e in zip(bounds, bounds[1:]):
        pieces.extend(_pieces(text, s, e, chunk_size, level + 1))
    return pieces


def recursive(text: str, chunk_size: int, overlap: int) -> list[Chunk]:
    """Structure-aware chunks: split by headings, paragraphs, sentences, words; merge up to chunk_size."""
    validate(chunk_size, overlap)
    pieces = _pieces(text, 0, len(text), chunk_size)
    chunks, i = [], 0
    while i < len(pieces):
        j = i
        while j + 1 < len(pieces) and pieces[j + 1][1] - pieces[i][0] <= chunk_size:
            j += 1
        chunk = _trimmed(text, pieces[i][0], pieces[j][1])
        if chunk:
            chunks.append(chunk)
        if j + 1 == len(pieces):
            break
        # Start the next chunk a few whole pieces back, as long as they fit in the overlap
        # and still leave room for the next new piece; always move forward by at least one.
        k = j + 1
        while (
            k - 1 > i
            and pieces[j][1] - pieces[k - 1][0] <= overlap
            and pieces[j + 1][1] - pieces[k - 1][0] <= chunk_size
        ):
            k -= 1
        i = k
    return chunks


CHUNKERS: dict[str, Callable[..., list[Chunk]]] = {
    "fixed_chars": fixed_chars,
    "fixed_tokens": fixed_tokens,
    "recursive": recursive,
}


def chunk_text(text: str, method: str, chunk_size: int, overlap: int, **options) -> list[Chunk]:
    """Run the named chunker; unknown names raise ValueError listing the known ones."""
    try:
        chunker = CHUNKERS[method]
    except KeyError:
        raise ValueError(f"Unknown chunking method {method!r}; choose one of: {', '.join(CHUNKERS)}.") from None
    return chunker(text, chunk_size, overlap, **options)


def config_hash(config: dict) -> str:
    """Short stable hash of an index configuration (chunker, sizes, embedding model, ...).

    Two indexes built with the same settings get the same hash, so chunk ids (and cached
    embeddings) can be reused; any change of setting gives new ids.
    """
    canonical = json.dumps(config, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:12]


def chunk_id(doc_id: str, start: int, end: int, index_config_hash: str = "") -> str:
    """Readable, stable id such as "billing-plans.md#120-610@3f9c2a1b0d4e".

    Readable on purpose: a chunk id in a results table tells you where to look.
    """
    base = f"{doc_id}#{start}-{end}"
    return f"{base}@{index_config_hash}" if index_config_hash else base


def parse_chunk_id(value: str) -> tuple[str, int, int, str]:
    """Inverse of chunk_id: (doc_id, start, end, index_config_hash). Document ids may contain '#' or '@'."""
    doc_id, sep, rest = value.rpartition("#")
    span, _, config = rest.partition("@")
    start, dash, end = span.partition("-")
    if not sep or not dash or not start.isdigit() or not end.isdigit():
        raise ValueError(f"Not a chunk id: {value!r} (expected 'doc_id#start-end[@config]').")
    return doc_id, int(start), int(end), config
