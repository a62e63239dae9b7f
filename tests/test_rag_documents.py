"""Loading a corpus: formats, encodings, broken files, hostile zips, and the sample data itself."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from workbench.rag import documents
from workbench.rag.documents import html_to_text, load_documents, load_uploaded

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def make_pdf(*lines: str) -> bytes:
    """A real one-page PDF with Helvetica text, xref offsets computed (no writer library needed)."""
    content = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def by_id(docs):
    return {doc.doc_id: doc for doc in docs}


def reasons(errors):
    return {error.source: error.reason for error in errors}


def test_folder_is_read_recursively_with_relative_ids(tmp_path):
    (tmp_path / "guides" / "deep").mkdir(parents=True)
    (tmp_path / "a.md").write_text("# A\n\nAlpha text.", encoding="utf-8")
    (tmp_path / "guides" / "b.txt").write_text("Bravo text.", encoding="utf-8")
    (tmp_path / "guides" / "deep" / "c.htm").write_text("<p>Charlie text.</p>", encoding="utf-8")
    (tmp_path / ".hidden.md").write_text("never loaded", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD.md").write_text("never loaded", encoding="utf-8")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n")

    docs, errors = load_documents(tmp_path)

    assert sorted(by_id(docs)) == ["a.md", "guides/b.txt", "guides/deep/c.htm"]
    assert [d.source_type for d in docs] == ["markdown", "text", "html"]
    assert by_id(docs)["guides/deep/c.htm"].text.strip() == "Charlie text."
    assert reasons(errors) == {"logo.png": "unsupported file type '.png'"}


def test_document_hash_is_sha256_of_text_and_line_endings_are_normalised(tmp_path):
    (tmp_path / "win.txt").write_bytes(b"line one\r\nline two\r\n")
    (tmp_path / "unix.txt").write_bytes(b"line one\nline two\n")
    docs, _ = load_documents([tmp_path / "win.txt", tmp_path / "unix.txt"])
    win, unix = docs
    assert win.text == "line one\nline two\n"
    assert win.content_hash == unix.content_hash == hashlib.sha256(b"line one\nline two\n").hexdigest()


def test_utf8_bom_is_stripped(tmp_path):
    (tmp_path / "bom.md").write_bytes("\ufeff# Café\n".encode("utf-8"))
    (doc,), errors = load_documents(tmp_path / "bom.md")
    assert errors == []
    assert doc.text == "# Café\n" and doc.encoding == "utf-8-sig"


def test_utf16_with_bom_is_decoded(tmp_path):
    (tmp_path / "notepad.txt").write_bytes("Grüße aus Wien".encode("utf-16"))
    (doc,), _ = load_documents(tmp_path / "notepad.txt")
    assert doc.text == "Grüße aus Wien" and doc.encoding == "utf-16"


def test_latin1_file_falls_back_to_windows_1252(tmp_path):
    (tmp_path / "legacy.txt").write_bytes("Déjà vu — “quoted” in São Paulo".encode("cp1252"))
    (tmp_path / "plain-latin1.txt").write_bytes("Ærøskøbing façade".encode("latin-1"))
    docs, errors = load_documents(tmp_path)
    assert errors == []
    assert by_id(docs)["legacy.txt"].text == "Déjà vu — “quoted” in São Paulo"
    assert by_id(docs)["legacy.txt"].encoding == "cp1252"
    assert by_id(docs)["plain-latin1.txt"].text == "Ærøskøbing façade"


def test_binary_file_with_text_suffix_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"PK\x03\x04\x00\x00binary")
    (tmp_path / "controls.md").write_bytes(bytes(range(1, 32)) * 20)
    docs, errors = load_documents(tmp_path)
    assert docs == []
    assert "binary" in reasons(errors)["notes.txt"]
    assert "binary" in reasons(errors)["controls.md"]


def test_empty_and_whitespace_files_are_skipped_with_a_reason(tmp_path):
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("  \n\n\t ", encoding="utf-8")
    (tmp_path / "only-script.html").write_text("<script>alert(1)</script>", encoding="utf-8")
    (tmp_path / "ok.md").write_text("content", encoding="utf-8")
    docs, errors = load_documents(tmp_path)
    assert [d.doc_id for d in docs] == ["ok.md"]
    assert reasons(errors) == {"empty.md": "empty", "blank.txt": "empty", "only-script.html": "empty"}


def test_html_drops_scripts_and_styles_and_keeps_headings_as_lines():
    html = """<html><head><title>Tab title</title><style>p { color: red }</style>
    <script>var secret = "<p>not text</p>";</script></head>
    <body><h1>Main  title</h1><p>First
    paragraph with <b>bold</b> &amp; entities &gt; here.</p>
    <h3>Sub</h3><ul><li>one</li><li>two</li></ul>
    <table><tr><th>Plan</th><th>Price</th></tr><tr><td>Plus</td><td>$8</td></tr></table>
    <pre>keep
  indented</pre><noscript>enable js</noscript></body></html>"""
    assert html_to_text(html) == (
        "# Main title\n\nFirst paragraph with bold & entities > here.\n\n### Sub\n\n- one\n- two\n\n"
        "Plan | Price\nPlus | $8\n\nkeep\n  indented\n"
    )


def test_real_pdf_is_read(tmp_path):
    (tmp_path / "guide.pdf").write_bytes(make_pdf("Lumen Notes PDF guide", "Plus costs 8 dollars."))
    (doc,), errors = load_documents(tmp_path / "guide.pdf")
    assert errors == []
    assert doc.source_type == "pdf" and doc.encoding is None
    assert "Lumen Notes PDF guide" in doc.text and "Plus costs 8 dollars." in doc.text


def test_corrupt_pdf_is_reported_and_loading_continues(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n\x8f\x12garbage that is not a pdf at all" * 10)
    (tmp_path / "random.pdf").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "good.md").write_text("still loaded", encoding="utf-8")
    docs, errors = load_documents(tmp_path)
    assert [d.doc_id for d in docs] == ["good.md"]
    assert set(reasons(errors)) == {"broken.pdf", "random.pdf"}
    assert all("PDF" in reason for reason in reasons(errors).values())


def test_pdf_without_text_is_reported_as_empty(tmp_path):
    (tmp_path / "scan.pdf").write_bytes(make_pdf())
    docs, errors = load_documents(tmp_path / "scan.pdf")
    assert docs == [] and "no extractable text" in errors[0].reason


def test_zip_is_read_in_memory_and_refuses_zip_slip(tmp_path):
    archive = tmp_path / "corpus.zip"
    archive.write_bytes(
        make_zip(
            {
                "docs/a.md": b"# A\nalpha",
                "b.txt": b"bravo",
                "../evil.md": b"escape attempt",
                "/etc/passwd.txt": b"absolute",
                "docs/../../sneaky.txt": b"escape attempt",
                "C:/windows.txt": b"drive letter",
                "__MACOSX/docs/._a.md": b"resource fork",
                "image.png": b"\x89PNG",
                "inner.zip": make_zip({"x.md": b"x"}),
            }
        )
    )
    docs, errors = load_documents(archive)
    assert sorted(by_id(docs)) == ["b.txt", "docs/a.md"]
    found = reasons(errors)
    for bad in ("../evil.md", "/etc/passwd.txt", "docs/../../sneaky.txt", "C:/windows.txt"):
        assert "unsafe path" in found[bad]
    assert "unsupported" in found["image.png"] and "inside archives" in found["inner.zip"]


def test_zip_member_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(documents, "MAX_FILE_BYTES", 1000)
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(make_zip({"big.txt": b"a" * 50_000, "small.txt": b"fine"}))
    assert archive.stat().st_size < 1000  # compresses well: only the declared size gives it away
    docs, errors = load_documents(archive)
    assert [d.doc_id for d in docs] == ["small.txt"]
    assert "larger than" in reasons(errors)["big.txt"]


def test_zip_total_uncompressed_size_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(documents, "MAX_ARCHIVE_BYTES", 2500)
    members = {f"part{i}.txt": b"x" * 1000 for i in range(5)}
    docs, errors = load_uploaded("parts.zip", make_zip(members))
    assert [d.doc_id for d in docs] == ["part0.txt", "part1.txt"]
    assert len(errors) == 1 and "decompresses to more than" in errors[0].reason


def test_zip_in_a_folder_gets_prefixed_ids_and_a_broken_zip_is_reported(tmp_path):
    (tmp_path / "bundle.zip").write_bytes(make_zip({"inside.md": b"inside"}))
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    docs, errors = load_documents(tmp_path)
    assert [d.doc_id for d in docs] == ["bundle.zip/inside.md"]
    assert "not a readable zip" in reasons(errors)["broken.zip"]


def test_uploads_keep_only_the_base_name_and_unpack_zips():
    docs, errors = load_uploaded("C:\\Users\\me\\notes.md", b"# Notes\nhello")
    assert [d.doc_id for d in docs] == ["notes.md"] and errors == []

    docs, errors = load_uploaded("corpus.zip", make_zip({"a.md": b"a", "../x.md": b"x"}))
    assert [d.doc_id for d in docs] == ["a.md"]
    assert "unsafe path" in reasons(errors)["../x.md"]

    docs, errors = load_uploaded("scan.pdf", b"garbage")
    assert docs == [] and "could not read PDF" in errors[0].reason


def test_missing_paths_and_duplicate_ids_are_errors_not_crashes(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "same.md").write_text("first", encoding="utf-8")
    (tmp_path / "two" / "same.md").write_text("second", encoding="utf-8")
    docs, errors = load_documents([tmp_path / "one", tmp_path / "two", tmp_path / "nope.md"])
    assert [d.text for d in docs] == ["first"]
    assert reasons(errors) == {
        "same.md": "duplicate document id (already loaded from another source)",
        str(tmp_path / "nope.md"): "not found",
    }


# --- the sample data stays consistent -------------------------------------------------


@pytest.fixture(scope="module")
def corpus():
    docs, errors = load_documents(SAMPLE / "rag_corpus")
    assert errors == []
    return by_id(docs)


def test_sample_corpus_has_the_promised_shape(corpus):
    assert 25 <= len(corpus) <= 35
    types = [doc.source_type for doc in corpus.values()]
    assert types.count("html") == 2 and 2 <= types.count("text") <= 3
    for doc_id, doc in corpus.items():
        assert 150 <= len(doc.text.split()) <= 600, doc_id


def test_every_relevant_passage_occurs_verbatim_in_its_source_documents(corpus):
    rows = [json.loads(line) for line in (SAMPLE / "rag_qa.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 45
    assert len({row["id"] for row in rows}) == len(rows)
    unanswerable = [row for row in rows if not row["source_documents"]]
    assert 2 <= len(unanswerable) <= 3
    assert all(
        row["reference"] == "The help centre does not say." and row["relevant_passages"] == [] for row in unanswerable
    )
    assert sum(len(row["source_documents"]) > 1 for row in rows) >= 3
    for row in rows:
        assert row["question"].strip() and row["reference"].strip()
        for doc_id in row["source_documents"]:
            assert doc_id in corpus, (row["id"], doc_id)
        texts = [corpus[doc_id].text for doc_id in row["source_documents"]]
        for passage in row["relevant_passages"]:
            assert any(passage in text for text in texts), (row["id"], passage)
        for text in texts:  # every listed source really contributes a passage
            assert any(passage in text for passage in row["relevant_passages"]), row["id"]


def test_support_csv_rows_have_four_columns_and_facts_from_the_corpus(corpus):
    with open(SAMPLE / "support_qa.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "question", "expected", "category"]
    assert len(rows) == 31 and all(len(row) == 4 for row in rows)
    assert any("," in row[1] for row in rows[1:])  # quoting is exercised
    everything = "\n".join(doc.text.lower() for doc in corpus.values())
    for row_id, question, expected, category in rows[1:]:
        assert question.strip() and category.strip()
        assert expected.lower() in everything, (row_id, expected)
