"""Load a corpus (files, folders, zip archives, uploads) into plain-text Documents.

Loading never stops at the first bad file. Every problem becomes a `LoadError` returned
next to the documents that did load, so the UI can say "31 loaded, 2 skipped" and name
the two, instead of failing a whole folder because one PDF is broken.

Decisions worth knowing:

* `doc_id` is the path relative to the folder or archive that was loaded (POSIX
  separators), or the file name for a single file or upload. QA rows refer to documents
  by this id, so it must not depend on where the corpus sits on disk.
* Text encoding: UTF-8 with or without a BOM, UTF-16 when a BOM says so, and otherwise
  Windows-1252 (then Latin-1, which never fails). Legacy files that are not UTF-8 are
  nearly always Windows-1252/Latin-1, and a user who uploads one cannot easily re-encode
  it, so we read it rather than refuse it; `Document.encoding` records the fallback so
  the UI can point it out. Because those fallbacks decode any bytes, binary files are
  caught first (NUL bytes or many control characters) and refused with a clear reason.
  HTML goes through the same chain; a `<meta charset>` declaration is not consulted.
* Line endings are normalised to "\\n" so the content hash and chunk offsets do not
  depend on the platform the file was written on.
* HTML is reduced to text with the standard library parser: scripts, styles and
  templates are dropped, block elements become lines, and headings become Markdown
  "## " lines so the recursive chunker can split HTML pages on headings too.
* Zip archives are read in memory. Members with absolute or `..` paths are refused
  (zip-slip), as are members over `MAX_FILE_BYTES`, and reading stops once the archive
  has produced `MAX_ARCHIVE_BYTES` of uncompressed data (zip bombs).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

SOURCE_TYPES = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
MAX_FILE_BYTES = 50 * 1024 * 1024  # one file, or one archive member once decompressed
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024  # all members of one archive, decompressed
MAX_ARCHIVE_MEMBERS = 10_000


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    content_hash: str  # sha256 of `text`: re-indexing can skip documents that did not change
    source_type: str  # "markdown", "text", "html" or "pdf"
    encoding: str | None = None  # how the bytes were decoded; None for PDF


@dataclass(frozen=True)
class LoadError:
    source: str  # the doc_id it would have had, or the path that was given
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class _Skip(Exception):
    """A file that cannot become a Document; its message is the LoadError reason."""


def make_document(doc_id: str, text: str, source_type: str, encoding: str | None = None) -> Document:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return Document(doc_id, text, hashlib.sha256(text.encode("utf-8")).hexdigest(), source_type, encoding)


def load_documents(sources) -> tuple[list[Document], list[LoadError]]:
    """Load one path or a list of paths: files, folders (recursively) and .zip archives."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    entries: list = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            entries.append(_folder_entries(path))
        elif path.is_file() and path.suffix.lower() == ".zip":
            entries.append(_archive_entries(path, label=path.name, prefix=""))
        elif path.is_file():
            entries.append(_file_entries(path, path.name))
        else:
            entries.append([LoadError(str(source), "not found")])
    return _collect(entries)


def load_uploaded(name: str, data: bytes) -> tuple[list[Document], list[LoadError]]:
    """Load one uploaded file (e.g. Streamlit's `UploadedFile.name`, `.getvalue()`); a .zip is unpacked.

    Only the base name is kept: browsers may send a path, and it must not leak into ids.
    """
    name = PurePosixPath(name.replace("\\", "/")).name or "upload"
    entries: Iterable
    if name.lower().endswith(".zip"):
        entries = _archive_entries(io.BytesIO(data), label=name, prefix="")
    elif len(data) > MAX_FILE_BYTES:
        entries = [LoadError(name, f"file is larger than {_mb(MAX_FILE_BYTES)}")]
    else:
        entries = [(name, data)]
    return _collect([entries])


def _collect(entry_lists: Iterable[Iterable]) -> tuple[list[Document], list[LoadError]]:
    documents: list[Document] = []
    errors: list[LoadError] = []
    seen: set[str] = set()
    for entries in entry_lists:
        for entry in entries:
            if isinstance(entry, LoadError):
                errors.append(entry)
                continue
            doc_id, data = entry
            if doc_id in seen:
                errors.append(LoadError(doc_id, "duplicate document id (already loaded from another source)"))
                continue
            try:
                documents.append(parse_document(doc_id, data))
                seen.add(doc_id)
            except _Skip as exc:
                errors.append(LoadError(doc_id, str(exc)))
    return documents, errors


def parse_document(doc_id: str, data: bytes) -> Document:
    """Bytes to Document, choosing the reader from the id's suffix; raises `_Skip` with the reason."""
    source_type = SOURCE_TYPES.get(PurePosixPath(doc_id).suffix.lower())
    if source_type is None:
        raise _Skip(f"unsupported file type {PurePosixPath(doc_id).suffix or '(no extension)'!r}")
    if not data:
        raise _Skip("empty")
    if source_type == "pdf":
        text, encoding = pdf_to_text(data), None
        if not text.strip():
            raise _Skip("empty: the PDF has no extractable text (a scanned PDF needs OCR first)")
    else:
        text, encoding = decode_text(data)
        if source_type == "html":
            text = html_to_text(text)
    if not text.strip():
        raise _Skip("empty")
    return make_document(doc_id, text, source_type, encoding)


# --- reading sources -------------------------------------------------------------------


def _file_entries(path: Path, doc_id: str) -> Iterator:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            yield LoadError(doc_id, f"file is larger than {_mb(MAX_FILE_BYTES)}")
            return
        data = path.read_bytes()
    except OSError as exc:
        yield LoadError(doc_id, f"could not read file: {exc.strerror or exc}")
        return
    yield doc_id, data


def _folder_entries(root: Path) -> Iterator:
    """Every file under root, sorted; hidden files and folders (".git", ".DS_Store") are ignored."""
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            path = Path(folder) / filename
            doc_id = path.relative_to(root).as_posix()
            if path.suffix.lower() == ".zip":
                yield from _archive_entries(path, label=doc_id, prefix=doc_id + "/")
            elif path.suffix.lower() not in SOURCE_TYPES:
                yield LoadError(doc_id, f"unsupported file type {path.suffix or '(no extension)'!r}")
            else:
                yield from _file_entries(path, doc_id)


def _archive_entries(source, label: str, prefix: str) -> Iterator:
    """Members of a zip (a path or a file object), with the zip-slip and zip-bomb defences."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        yield LoadError(label, f"not a readable zip archive: {exc}")
        return
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MAX_ARCHIVE_MEMBERS:
            yield LoadError(label, f"archive has {len(members)} files; the limit is {MAX_ARCHIVE_MEMBERS}")
            return
        total = 0
        for info in members:
            name = info.filename.replace("\\", "/")
            if _is_junk(name):
                continue
            doc_id = prefix + name
            if not _is_safe_member(name):
                yield LoadError(doc_id, "unsafe path in archive (absolute or containing '..'); refused")
                continue
            suffix = PurePosixPath(name).suffix.lower()
            if suffix == ".zip":
                yield LoadError(doc_id, "archives inside archives are not read")
                continue
            if suffix not in SOURCE_TYPES:
                yield LoadError(doc_id, f"unsupported file type {suffix or '(no extension)'!r}")
                continue
            if info.flag_bits & 0x1:
                yield LoadError(doc_id, "encrypted archive member")
                continue
            if info.file_size > MAX_FILE_BYTES:
                yield LoadError(doc_id, f"file is larger than {_mb(MAX_FILE_BYTES)} once decompressed")
                continue
            if total + info.file_size > MAX_ARCHIVE_BYTES:
                yield LoadError(
                    label, f"archive decompresses to more than {_mb(MAX_ARCHIVE_BYTES)}; stopped before {name}"
                )
                return
            try:
                # Bounded read: the declared size is only a claim made by the archive.
                with archive.open(info) as member:
                    data = member.read(MAX_FILE_BYTES + 1)
            except Exception as exc:  # BadZipFile (CRC), zlib.error, NotImplementedError (compression)
                yield LoadError(doc_id, f"could not decompress: {exc}")
                continue
            if len(data) > MAX_FILE_BYTES:
                yield LoadError(doc_id, f"file is larger than {_mb(MAX_FILE_BYTES)} once decompressed")
                continue
            total += len(data)
            yield doc_id, data


def _is_junk(name: str) -> bool:
    """macOS resource forks and hidden files that archivers add; never content."""
    parts = PurePosixPath(name).parts
    return name.startswith("__MACOSX/") or any(part.startswith(".") and part not in (".", "..") for part in parts)


def _is_safe_member(name: str) -> bool:
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return False
    return ".." not in PurePosixPath(name).parts


def _mb(n: int) -> str:
    return f"{n // (1024 * 1024)} MB"


# --- bytes to text ---------------------------------------------------------------------


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode text bytes; returns (text, encoding used). See the module docstring for the order."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise _Skip(
                f"starts with a UTF-8 byte order mark but is not valid UTF-8 ({exc.reason} at byte {exc.start + 3})"
            ) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise _Skip("starts with a UTF-16 byte order mark but is not valid UTF-16") from None
    if b"\x00" in data:
        raise _Skip("looks like a binary file, not text (contains NUL bytes)")
    for encoding in ("utf-8", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    controls = sum(1 for ch in text if ch not in "\t\n\r\f\v" and unicodedata.category(ch) == "Cc")
    if controls > max(8, len(text) // 100):
        raise _Skip("looks like a binary file, not text (many control characters)")
    return text, encoding


_BLOCK = {
    "address",
    "article",
    "aside",
    "blockquote",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "ul",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
}
_PARAGRAPH = {
    "article",
    "blockquote",
    "dl",
    "figure",
    "footer",
    "header",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
}
_SKIP = {"script", "style", "noscript", "template", "title", "svg", "iframe", "object"}


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0

    def flush(self, blank: bool = False):
        line = "".join(self.current)
        self.current = []
        if not self.pre_depth:
            line = " ".join(line.split())
        if line.strip():
            self.lines.append(line)
        if blank and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip_depth += 1
        elif self.skip_depth:
            return
        elif tag in _BLOCK:
            self.flush(blank=tag in _PARAGRAPH)
            if tag == "pre":
                self.pre_depth += 1
            elif tag == "li":
                self.current.append("- ")
            elif tag[0] == "h" and tag[1:].isdigit():
                self.current.append("#" * int(tag[1:]) + " ")
        elif tag in ("td", "th") and "".join(self.current).strip():
            self.current.append(" | ")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif self.skip_depth:
            return
        elif tag in _BLOCK:
            self.flush(blank=tag in _PARAGRAPH)
            if tag == "pre":
                self.pre_depth = max(0, self.pre_depth - 1)

    def handle_data(self, data):
        if self.skip_depth:
            return
        if self.pre_depth:
            *complete, rest = data.split("\n")
            for line in complete:
                self.current.append(line)
                self.flush()
            self.current.append(rest)
        else:
            self.current.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, one block per line, headings as Markdown headings."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    parser.flush()
    return "\n".join(parser.lines).strip() + "\n"


def pdf_to_text(data: bytes) -> str:
    """Text of every page, pages separated by a blank line.

    Any exception is turned into `_Skip`: pypdf raises many different types on damaged
    files, and one broken PDF must not stop the rest of the corpus from loading.
    """
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _Skip("the PDF is password-protected")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except _Skip:
        raise
    except Exception as exc:
        raise _Skip(f"could not read PDF ({type(exc).__name__}: {exc})") from None
    return "\n\n".join(page for page in pages if page)
