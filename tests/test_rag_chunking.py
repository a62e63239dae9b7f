"""Chunkers: exact offsets, sizes, overlap, structure, argument checks, ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.rag.chunking import (
    CHUNKERS,
    Chunk,
    chunk_id,
    chunk_text,
    config_hash,
    fixed_chars,
    fixed_tokens,
    parse_chunk_id,
    recursive,
    word_spans,
)

BILLING = (Path(__file__).resolve().parent.parent / "sample_data" / "rag_corpus" / "billing-plans.md").read_text(
    encoding="utf-8"
)
MESSY = "  Leading spaces.\n\n\n# Title\r\nSome text   with  gaps.\tTabs too!\n\n" + "x" * 250 + "\n\nEnd."


def size_of(method, chunk):
    return len(word_spans(chunk.text)) if method == "fixed_tokens" else len(chunk.text)


@pytest.mark.parametrize("method", sorted(CHUNKERS))
@pytest.mark.parametrize("text", [BILLING, MESSY], ids=["billing", "messy"])
@pytest.mark.parametrize("size,overlap", [(40, 0), (120, 30), (500, 100)])
def test_offsets_round_trip_sizes_hold_and_all_text_is_covered(method, text, size, overlap):
    chunks = CHUNKERS[method](text, size, overlap)
    assert chunks
    covered = set()
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip() and chunk.text
        assert size_of(method, chunk) <= size
        covered.update(range(chunk.start, chunk.end))
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    missing = {i for i in range(len(text)) if not text[i].isspace()} - covered
    assert not missing


def test_fixed_chars_windows_by_hand():
    assert fixed_chars("abcdefghij", 4, 1) == [Chunk("abcd", 0, 4), Chunk("defg", 3, 7), Chunk("ghij", 6, 10)]
    assert fixed_chars("abcdefghij", 5, 0) == [Chunk("abcde", 0, 5), Chunk("fghij", 5, 10)]
    assert fixed_chars("abc", 10, 2) == [Chunk("abc", 0, 3)]
    assert fixed_chars("", 10, 2) == []


def test_fixed_chars_trims_whitespace_and_drops_blank_windows():
    assert fixed_chars("ab    cd", 4, 0) == [Chunk("ab", 0, 2), Chunk("cd", 6, 8)]
    assert fixed_chars("ab        cd", 4, 0) == [Chunk("ab", 0, 2), Chunk("cd", 10, 12)]


def test_fixed_tokens_windows_by_hand():
    text = "one two  three four five six seven"
    chunks = fixed_tokens(text, 3, 1)
    assert [c.text for c in chunks] == ["one two  three", "three four five", "five six seven"]
    assert all(text[c.start : c.end] == c.text for c in chunks)


def test_fixed_tokens_accepts_a_tokenizer_with_offsets():
    def characters(text):
        return [(i, i + 1) for i in range(len(text))]

    assert fixed_tokens("abcdefghij", 4, 1, tokenizer=characters) == fixed_chars("abcdefghij", 4, 1)
    assert chunk_text("abcdefghij", "fixed_tokens", 4, 1, tokenizer=characters)[1].text == "defg"


def test_recursive_keeps_small_sections_whole_and_starts_them_at_headings():
    text = "# One\n\nFirst section body.\n\n# Two\n\nSecond section body.\n"
    chunks = recursive(text, 30, 0)
    assert [c.text for c in chunks] == ["# One\n\nFirst section body.", "# Two\n\nSecond section body."]
    assert recursive(text, 1000, 100) == [Chunk(text.strip(), 0, len(text.strip()))]


def test_recursive_splits_on_sentences_and_overlaps_whole_sentences():
    sentences = [f"Sentence number {i} is here." for i in range(10)]
    text = " ".join(sentences)
    chunks = recursive(text, 90, 40)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.text.startswith("Sentence") and chunk.text.endswith(".")
    for previous, current in zip(chunks, chunks[1:]):
        assert current.start < previous.end  # they overlap ...
        assert previous.end - current.start <= 40  # ... by at most `overlap`
        assert current.start > previous.start  # and always move forward


def test_recursive_without_overlap_does_not_repeat_text():
    chunks = recursive(BILLING, 200, 0)
    assert all(b.start >= a.end for a, b in zip(chunks, chunks[1:]))


def test_recursive_cuts_an_unbroken_run_by_characters():
    chunks = recursive("y" * 25, 10, 3)
    assert [len(c.text) for c in chunks] == [10, 10, 5]


@pytest.mark.parametrize(
    "size,overlap,message",
    [
        (0, 0, "chunk_size must be a positive"),
        (-5, 0, "chunk_size must be a positive"),
        (10.5, 0, "chunk_size must be a positive"),
        (True, 0, "chunk_size must be a positive"),
        (10, -1, "overlap must be zero or a positive"),
        (10, 10, r"overlap \(10\) must be smaller than chunk_size \(10\)"),
        (10, 50, r"overlap \(50\) must be smaller than chunk_size \(10\)"),
    ],
)
@pytest.mark.parametrize("method", sorted(CHUNKERS))
def test_bad_arguments_raise_clear_value_errors(method, size, overlap, message):
    with pytest.raises(ValueError, match=message):
        CHUNKERS[method]("some text", size, overlap)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="fixed_chars, fixed_tokens, recursive"):
        chunk_text("text", "semantic", 100, 10)


def test_chunk_ids_are_readable_stable_and_parse_back():
    config = {"method": "recursive", "chunk_size": 500, "overlap": 100}
    digest = config_hash(config)
    assert digest == config_hash(dict(reversed(list(config.items()))))  # key order does not matter
    assert digest != config_hash({**config, "overlap": 50})
    assert len(digest) == 12

    cid = chunk_id("guides/a#b@c.md", 120, 610, digest)
    assert cid == f"guides/a#b@c.md#120-610@{digest}"
    assert parse_chunk_id(cid) == ("guides/a#b@c.md", 120, 610, digest)
    assert parse_chunk_id(chunk_id("a.md", 0, 5)) == ("a.md", 0, 5, "")
    with pytest.raises(ValueError, match="Not a chunk id"):
        parse_chunk_id("a.md")
