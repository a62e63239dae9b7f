"""Datasets: turning uploaded or pasted bytes into rows, and rows back into files.

Uploads come from spreadsheets, scripts and other people's exports, so most of this
module is about failing well: every `DatasetError` message is shown to the user as is
and names the line, the byte or the column at fault, plus what to do about it.

Rows get stable keys (`row_keys`) so results from different runs and dataset versions
line up: an `id` column when there is a usable one, otherwise a hash of the row's
content, which only changes when that row does.

Stored datasets are named, with immutable versions written in one transaction each
(second half of the module).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from storage import datasets as repo
from storage.tables import DatasetVersion
from workbench import config, csv_safe, secrets
from workbench.errors import NotFound, WorkbenchError

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 1_000_000
# Rows are tables: more columns than this is a file of records with varying keys, and padding
# every row to every key is rows x columns work (a 64 KB file adding a key per line took 23 s).
MAX_COLUMNS = 1_000
# JSON values nested deeper than this are refused: Python's parser and encoder recurse, so a
# few thousand levels crash them, and no prompt variable needs a hundred.
MAX_NESTING = 100
CSV_DELIMITERS = ",;\t|"
DATASET_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
COLUMN_TYPES = ("integer", "number", "boolean", "text", "json", "empty")
SAVE_AS_UTF8 = (
    "Re-save it as UTF-8 (in Excel: File > Save As > 'CSV UTF-8'; "
    "in most editors: Save with Encoding > UTF-8) and upload it again."
)

# Cells holding whole documents easily pass the csv module's 128 KB default; the file
# size limit is the real guard.
csv.field_size_limit(2**31 - 1)


class DatasetError(WorkbenchError):
    """A file we cannot turn into rows. A ValueError; the message is shown to users as is."""


@dataclass
class ParsedDataset:
    columns: list[str]
    rows: list[dict]
    column_types: dict[str, str]
    format: str  # "csv" | "jsonl" | "json"
    delimiter: str | None = None  # for csv: what was detected, so the UI can say so


def max_dataset_bytes() -> int:
    """The upload size limit, read at call time so WORKBENCH_MAX_DATASET_MB can change it."""
    value = os.environ.get("WORKBENCH_MAX_DATASET_MB", "").strip()
    if not value:
        return DEFAULT_MAX_BYTES
    try:
        return int(float(value) * 1024 * 1024)
    except ValueError:
        raise DatasetError(f"WORKBENCH_MAX_DATASET_MB must be a number of megabytes, got {value!r}.") from None


def _mb(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def parse_dataset(
    data: bytes, filename: str = "", max_bytes: int | None = None, max_rows: int = MAX_ROWS
) -> ParsedDataset:
    """Parse an uploaded file. The format comes from the extension, else from the content.

    max_bytes defaults to `max_dataset_bytes()` (50 MB unless WORKBENCH_MAX_DATASET_MB says otherwise).
    """
    limit = max_dataset_bytes() if max_bytes is None else max_bytes
    if len(data) > limit:
        raise DatasetError(
            f"The file is {_mb(len(data))}; the limit is {_mb(limit)}. Split it, or raise the limit by "
            f"setting WORKBENCH_MAX_DATASET_MB (e.g. WORKBENCH_MAX_DATASET_MB={math.ceil(len(data) / 2**20) + 1}) "
            f"before starting the workbench."
        )
    text = decode(data)
    suffix = Path(filename or "").suffix.lower()
    if suffix in (".csv", ".txt"):
        return parse_csv(text, max_rows=max_rows)
    if suffix == ".tsv":
        return parse_csv(text, delimiter="\t", max_rows=max_rows)
    if suffix in (".jsonl", ".ndjson"):
        return parse_jsonl(text, max_rows=max_rows)
    if suffix == ".json":
        return parse_json(text, max_rows=max_rows)
    return _parse_sniffed(text, max_rows)


def parse_pasted(text: str, max_bytes: int | None = None, max_rows: int = MAX_ROWS) -> ParsedDataset:
    """Parse text pasted into the UI: JSON, JSON lines or CSV/TSV, told apart by content."""
    try:
        data = (text or "").encode("utf-8")
    except UnicodeEncodeError as e:
        raise DatasetError(f"{_where_in(text, e.start)}: {_SURROGATE}") from None
    limit = max_dataset_bytes() if max_bytes is None else max_bytes
    if len(data) > limit:
        raise DatasetError(
            f"The pasted text is {_mb(len(data))}; the limit is {_mb(limit)}. "
            f"Upload a file instead, or raise WORKBENCH_MAX_DATASET_MB."
        )
    return _parse_sniffed(text.lstrip("\ufeff"), max_rows)


def _parse_sniffed(text: str, max_rows: int) -> ParsedDataset:
    start = text.lstrip()[:1]
    if start == "[":
        return parse_json(text, max_rows=max_rows)
    if start == "{":
        return parse_jsonl(text, max_rows=max_rows)
    return parse_csv(text, max_rows=max_rows)


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) to text; anything else is an error that says how to fix it."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise DatasetError(f"The file is UTF-32 encoded. {SAVE_AS_UTF8}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetError(f"The file is UTF-16 encoded (Excel's 'Unicode Text' does this). {SAVE_AS_UTF8}")
    nul = data.find(b"\x00")
    if nul != -1:
        sample = data[:4096]
        if max(sample[0::2].count(0), sample[1::2].count(0)) > len(sample) // 4:
            raise DatasetError(f"The file looks UTF-16 encoded (no byte order mark). {SAVE_AS_UTF8}")
        raise DatasetError(
            f"This is not a text file: it contains a NUL byte at byte offset {nul}. "
            f"Upload CSV, TSV, JSON lines (.jsonl) or a JSON list of objects."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        bad = data[e.start : e.start + 1].hex().upper()
        raise DatasetError(
            f"The file is not valid UTF-8: byte 0x{bad} at line {line}, column {column} (byte offset {e.start}) "
            f"cannot be decoded. It is probably Latin-1/Windows-1252. {SAVE_AS_UTF8}"
        ) from None


_SURROGATE = (
    "the text contains a lone surrogate character (half of a UTF-16 pair, e.g. \\ud800), "
    "which is not valid Unicode and cannot be stored. Remove it or replace it with the full character."
)


def _where_in(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"Line {line}, column {offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def sniff_delimiter(text: str) -> str:
    """The delimiter of the first lines: csv.Sniffer, checked against the header, else comma."""
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    header = sample.split("\n", 1)[0]
    try:
        found = csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        found = None
    if found and found in header:
        return found
    # The sniffer can be fooled by quoted text; the header line's most common candidate is a fair guess.
    counts = {d: header.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    if counts[best]:
        return best
    # No delimiter in the header: a one-column file (e.g. a .txt of questions). Pick a delimiter
    # its lines do not contain, so commas inside the text do not split it.
    return next((d for d in CSV_DELIMITERS if d not in sample), ",")


def _check_header(names: list[str], where: str = "header") -> None:
    blank = [str(i + 1) for i, n in enumerate(names) if not n]
    if blank:
        raise DatasetError(
            f"Column(s) {', '.join(blank)} in the {where} have no name. "
            f"Give every column a name (they become {{{{ variables }}}} in prompts)."
        )
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        seen.setdefault(name, []).append(i + 1)
    dupes = {n: p for n, p in seen.items() if len(p) > 1}
    if dupes:
        described = "; ".join(f"{n!r} (columns {', '.join(map(str, p))})" for n, p in dupes.items())
        raise DatasetError(f"Duplicate column name(s) in the {where}: {described}. Column names must be unique.")


def _fields(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"


def _too_many_rows(max_rows: int) -> DatasetError:
    return DatasetError(
        f"The file has more than {max_rows:,} rows, the most a dataset can hold. Split it into smaller datasets."
    )


def parse_csv(text: str, delimiter: str | None = None, max_rows: int = MAX_ROWS) -> ParsedDataset:
    """CSV/TSV with a header line. Values stay strings; rows whose cells are all empty are skipped."""
    if not text.strip():
        raise DatasetError("The file is empty.")
    delimiter = delimiter or sniff_delimiter(text)
    name = DELIMITER_NAMES.get(delimiter, repr(delimiter))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[dict] = []
    starts: list[int] = []  # the line each row starts on, for messages about its values
    line = 1  # physical line where the next record starts
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not record or not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                _check_header(header, where="header (line %d)" % start)
                _check_column_count(len(header), f"The header (line {start})")
                continue
            if len(record) != len(header):
                raise DatasetError(
                    f"Line {start}: expected {_fields(len(header))}, found {len(record)} (ragged row; "
                    f"the delimiter is {name}). A value containing a {name} must be in double quotes."
                )
            if len(rows) >= max_rows:
                raise _too_many_rows(max_rows)
            rows.append(dict(zip(header, record)))
            starts.append(start)
    except csv.Error as e:
        raise DatasetError(
            f"Line {reader.line_num}: malformed CSV ({e}). Check the double quotes "
            f"around values on that line or the line before."
        ) from None
    if header is None:
        raise DatasetError("The file is empty.")
    if not rows:
        raise DatasetError(f"The file has a header ({', '.join(header)}) but no data rows.")
    types = infer_column_types(header, rows, where=lambda i: f"Line {starts[i]}")
    return ParsedDataset(header, rows, types, "csv", delimiter)


def _json_kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _check_column_count(count: int, what: str) -> None:
    if count > MAX_COLUMNS:
        raise DatasetError(
            f"{what} has more than {MAX_COLUMNS:,} columns, the most a dataset can have. If the records have "
            f"varying keys, keep a fixed set of keys and put the varying fields inside one object-valued field."
        )


def _check_values(obj, where: str) -> None:
    """Refuse what parsed but cannot be stored or handled: nesting past MAX_NESTING, lone surrogates
    (JSON allows the escape "\\ud800"; UTF-8 cannot encode it) and NUL characters ("\\u0000",
    which PostgreSQL refuses). Iterative, so the check itself cannot overflow the stack."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            bad = _BAD_CHARS.search(value)
            if bad:
                raise DatasetError(
                    f"{where}: a value contains the NUL character (\\u0000), which cannot be stored."
                    if bad.group(0) == "\x00"
                    else f"{where}: {_SURROGATE}"
                )
        elif isinstance(value, (dict, list)):
            if depth > MAX_NESTING:
                raise DatasetError(f"{where}: a value is nested more than {MAX_NESTING} levels deep.")
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)


_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def _collect(objects, max_rows: int, label, empty: str) -> tuple[list[str], list[dict], list[int]]:
    """Union of keys in first-seen order; rows padded with None for keys they lack.

    Padding is rows x columns, so it is refused when the table would be mostly holes (records
    with varying keys): the work stays proportional to the values in the file."""
    columns: dict[str, None] = {}
    rows: list[dict] = []
    positions: list[int] = []  # each row's line or item number, for messages about its values
    present = 0
    for position, obj in objects:
        if not isinstance(obj, dict):
            raise DatasetError(f"{label(position)}: expected a JSON object ({{...}}), found {_json_kind(obj)}.")
        if len(rows) >= max_rows:
            raise _too_many_rows(max_rows)
        for key in obj:
            if not key.strip():
                raise DatasetError(f"{label(position)}: a key is blank; every field needs a name.")
            if key not in columns:
                columns[key] = None
                _check_column_count(len(columns), f"{label(position)}: the file")
        _check_values(obj, label(position))
        present += len(obj)
        rows.append(obj)
        positions.append(position)
    if not rows:
        raise DatasetError(empty)
    names = list(columns)
    cells = len(rows) * len(names)
    if cells > 4 * present + 1_000_000:
        raise DatasetError(
            f"The records have {len(names):,} different keys but {present / len(rows):.1f} per record on "
            f"average: as a table that is {cells:,} cells, mostly empty. Keep a fixed set of keys, or put "
            f"the varying fields inside one object-valued field."
        )
    return names, [{c: row.get(c) for c in names} for row in rows], positions


def _json_lines(text: str):
    # split on "\n" only: str.splitlines() would also split on U+2028, which is legal inside JSON strings
    for n, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as e:
            hint = " The line looks truncated." if not line.endswith("}") else ""
            raise DatasetError(
                f"Line {n}, column {e.colno}: invalid JSON ({e.msg}).{hint} "
                f"Each line of a .jsonl file must be one complete JSON object."
            ) from None
        except RecursionError:
            raise DatasetError(f"Line {n}: a value is nested more than {MAX_NESTING} levels deep.") from None
        except ValueError as e:  # Python's limit on the digits of an integer
            raise DatasetError(f"Line {n}: {_number_problem(e)}") from None


def _number_problem(error: ValueError) -> str:
    return f"a number is too long to read ({error}). Quote it to keep it as text."


def _nesting_line(text: str) -> int:
    """The line where brackets first nest past MAX_NESTING (strings skipped); 1 if never."""
    depth = 0
    for token in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        mark = token.group(0)
        if mark in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return text.count("\n", 0, token.start()) + 1
        elif mark in "]}":
            depth -= 1
    return 1


def parse_jsonl(text: str, max_rows: int = MAX_ROWS) -> ParsedDataset:
    """One JSON object per non-blank line; nested values are kept as they are."""
    if not text.strip():
        raise DatasetError("The file is empty.")
    columns, rows, lines = _collect(_json_lines(text), max_rows, lambda n: f"Line {n}", "The file is empty.")
    return ParsedDataset(columns, rows, infer_column_types(columns, rows, where=lambda i: f"Line {lines[i]}"), "jsonl")


def parse_json(text: str, max_rows: int = MAX_ROWS) -> ParsedDataset:
    """A JSON list of objects. JSON lines saved as .json are accepted too (a common mix-up)."""
    if not text.strip():
        raise DatasetError("The file is empty.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" and text.lstrip().startswith("{"):
            return parse_jsonl(text, max_rows)
        raise DatasetError(f"Invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}.") from None
    except RecursionError:
        raise DatasetError(
            f"Line {_nesting_line(text)}: a value is nested more than {MAX_NESTING} levels deep."
        ) from None
    except ValueError as e:  # Python's limit on the digits of an integer
        long_number = re.search(r"\d{4000,}", text)
        line = text.count("\n", 0, long_number.start()) + 1 if long_number else 1
        raise DatasetError(f"Line {line}: {_number_problem(e)}") from None
    if isinstance(data, dict):
        raise DatasetError(
            f"Expected a JSON list of objects ([{{...}}, {{...}}]), found a single object with "
            f"keys {', '.join(list(data)[:5])}. Put the rows in a list, or use one object per line (.jsonl)."
        )
    if not isinstance(data, list):
        raise DatasetError(f"Expected a JSON list of objects, found {_json_kind(data)}.")
    columns, rows, items = _collect(
        ((i + 1, obj) for i, obj in enumerate(data)), max_rows, lambda i: f"Item {i}", "The JSON list is empty."
    )
    return ParsedDataset(columns, rows, infer_column_types(columns, rows, where=lambda i: f"Item {items[i]}"), "json")


INTEGER = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")  # "007" is an identifier, not a number
NUMBER = re.compile(r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")


def value_type(value) -> str:
    """The type of one cell; strings (all CSV cells) are judged by what they look like."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, (dict, list)):
        return "json"
    text = str(value).strip()
    if not text:
        return "empty"
    if INTEGER.match(text):
        return "integer"
    if NUMBER.match(text):
        return "number"
    if text.lower() in ("true", "false"):
        return "boolean"
    if text[0] in "[{" and text[-1] in "]}":
        try:
            if isinstance(json.loads(text), (dict, list)):
                return "json"
        except ValueError:
            pass
        except RecursionError:
            raise DatasetError(f"a JSON value is nested more than {MAX_NESTING} levels deep") from None
    return "text"


def infer_type(values) -> str:
    """One of integer, number, boolean, text, json, empty; empty cells do not count."""
    return _combine_kinds({value_type(v) for v in values})


def infer_column_types(columns: list[str], rows: list[dict], where=None) -> dict[str, str]:
    """Each column's type (see infer_type); `where(i)` names row i's place in the file in errors."""
    kinds: dict[str, set] = {c: set() for c in columns}
    for index, row in enumerate(rows):
        for column, value in row.items():
            if column in kinds:
                try:
                    kinds[column].add(value_type(value))
                except DatasetError as exc:
                    place = where(index) if where else f"Row {index + 1}"
                    raise DatasetError(f"{place}, column {column!r}: {exc}") from None
    return {c: _combine_kinds(kinds[c]) for c in columns}


def _combine_kinds(kinds: set) -> str:
    kinds = kinds - {"empty"}
    if not kinds:
        return "empty"
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {"integer", "number"}:
        return "number"
    return "text"


def _canonical(row: dict) -> str:
    # None values are dropped so a column added later (None in old rows) leaves old keys alone.
    return json.dumps(
        {k: v for k, v in row.items() if v is not None},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def row_keys(columns: list[str], rows: list[dict]) -> list[str]:
    """A stable key per row: the `id` column when its values are unique and non-empty, else a content hash.

    Content keys are the first 16 hex digits of sha1(canonical JSON of the row); identical rows
    get `-2`, `-3`... in order. Editing a row changes only its key, and appending rows keeps
    every existing key, so results line up across dataset versions.
    """
    if "id" in columns:
        ids = ["" if row.get("id") is None else str(row.get("id")).strip() for row in rows]
        if all(ids) and len(set(ids)) == len(ids):
            return ids
    keys: list[str] = []
    seen: dict[str, int] = {}
    for row in rows:
        digest = hashlib.sha1(_canonical(row).encode("utf-8")).hexdigest()[:16]
        seen[digest] = seen.get(digest, 0) + 1
        keys.append(digest if seen[digest] == 1 else f"{digest}-{seen[digest]}")
    return keys


def missing_variables(columns: list[str], required_variables) -> list[str]:
    """Prompt variables with no column of that name, in the prompt's order."""
    present = set(columns)
    return list(dict.fromkeys(v for v in required_variables if v not in present))


def check_against_prompt(columns: list[str], variables) -> tuple[bool, str]:
    """(ok, message) for showing next to a dataset/prompt pair before a run starts."""
    variables = list(dict.fromkeys(variables))
    missing = missing_variables(columns, variables)
    if not missing:
        if not variables:
            return True, "The prompt has no variables; every row gets the same prompt."
        return True, f"All {len(variables)} prompt variable(s) have a column: {', '.join(variables)}."
    lower = {c.lower(): c for c in columns}
    hints = [f"{{{{ {m} }}}} vs column {lower[m.lower()]!r}" for m in missing if m.lower() in lower]
    message = (
        f"The dataset has no column for prompt variable(s): {', '.join(missing)}. "
        f"Its columns are: {', '.join(columns) or '(none)'}."
    )
    if hints:
        message += f" Names are case-sensitive: {'; '.join(hints)}."
    return False, message


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def to_csv_bytes(columns: list[str], rows: list[dict]) -> bytes:
    """UTF-8 CSV with a header; nested values JSON-encoded, None as an empty cell. Cells a spreadsheet
    would run as formulas are neutralised (workbench.csv_safe) and known secrets masked. Lines end in
    CRLF (RFC 4180) because the writer quotes exactly the cells holding a line terminator's
    characters: with "\n" alone a bare CR went out unquoted, and spreadsheets start a new row there."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(csv_safe.row(columns))
    for row in rows:
        writer.writerow(csv_safe.row(_cell(row.get(c)) for c in columns))
    return secrets.mask(out.getvalue()).encode("utf-8")


def to_jsonl_bytes(rows: list[dict]) -> bytes:
    """One JSON object per line, UTF-8, non-ASCII kept readable."""
    text = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
    return secrets.mask(text).encode("utf-8")


# ---- stored datasets: named, immutable versions -------------------------------------------


def _content_hash(columns: list[str], keys: list[str], rows: list[dict]) -> str:
    body = json.dumps(
        {"columns": columns, "rows": list(zip(keys, rows))}, sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(body.encode()).hexdigest()


def save_version(
    name: str,
    parsed,
    note: str = "",
    source_filename: str = "",
    description: str | None = None,
    author: str | None = None,
) -> tuple[DatasetVersion, bool]:
    """Append a version (all rows in one transaction); unchanged content returns the latest, created=False."""
    name = (name or "").strip()
    if not name or "@" in name:
        raise WorkbenchError("Give the dataset a name (without '@').")
    if not parsed.rows:
        raise WorkbenchError("The dataset has no rows.")
    keys = row_keys(parsed.columns, parsed.rows)
    digest = _content_hash(parsed.columns, keys, parsed.rows)
    fields = {
        "columns": list(parsed.columns),
        "column_types": dict(parsed.column_types),
        "row_count": len(parsed.rows),
        "content_hash": digest,
        "source_filename": source_filename,
        "note": note,
        "author": author or config.author(),
    }
    return repo.save_version(name, description, fields, list(zip(keys, parsed.rows)))


def list_datasets() -> list[dict]:
    return [
        {
            "name": entry["dataset"].name,
            "description": entry["dataset"].description,
            "versions": latest.version if latest else 0,
            "rows": latest.row_count if latest else 0,
            "columns": ", ".join(latest.columns) if latest else "",
        }
        for entry in repo.listing()
        for latest in [entry["latest"]]
    ]


def versions(name: str) -> list[DatasetVersion]:
    dataset = repo.find(name)
    if dataset is None or dataset.id is None:
        raise NotFound(f"No dataset named {name!r}.")
    return repo.versions(dataset.id)


def get_version(name: str, version: int | None = None) -> DatasetVersion:
    found = versions(name)
    if not found:
        raise NotFound(f"Dataset {name!r} has no versions.")
    if version is None:
        return found[-1]
    for v in found:
        if v.version == version:
            return v
    raise NotFound(f"Dataset {name!r} has no version {version}.")


def version_by_id(version_id: int) -> DatasetVersion:
    found = repo.version_by_id(version_id)
    if found is None:
        raise NotFound(f"No dataset version {version_id}.")
    return found


def label_of(version: DatasetVersion) -> str:
    dataset = repo.by_id(version.dataset_id)
    return f"{dataset.name if dataset else '?'}@{version.version}"


def rows(version_id: int, limit: int | None = None, offset: int = 0) -> list[tuple[str, dict]]:
    """(row_key, data) in order; paginated for big datasets."""
    return repo.rows(version_id, limit, offset)


def row_count(version_id: int) -> int:
    return repo.row_count(version_id)


def resolve_for_run(ref: str, base_dir: str | None = None) -> DatasetVersion:
    """A file path (registered as a dataset named after the file, idempotently) or `name[@version]`."""
    candidates = [Path(ref)] + ([Path(base_dir) / ref] if base_dir else []) + [config.REPO_ROOT / ref]
    path = next((p for p in candidates if p.is_file()), None)
    if path is not None:
        parsed = parse_dataset(path.read_bytes(), path.name)
        version, _ = save_version(path.stem, parsed, note=f"from {path.name}", source_filename=path.name)
        return version
    name, _, number = ref.partition("@")
    if Path(ref).suffix.lower() in DATASET_SUFFIXES or "/" in ref or "\\" in ref:
        raise WorkbenchError(f"Dataset file {ref!r} does not exist (looked in {', '.join(map(str, candidates))}).")
    if number.strip() and not number.strip().isdigit():
        raise WorkbenchError(f"Dataset version must be a number: {ref!r}")
    try:
        return get_version(name.strip(), int(number) if number.strip() else None)
    except NotFound:
        raise WorkbenchError(f"Dataset {ref!r} is neither a file nor a stored dataset.") from None


def prompt_coverage(columns: list[str]) -> list[dict]:
    """For each prompt's latest version: does a dataset with these columns satisfy its variables?"""
    from storage import prompts as prompt_repo

    out = []
    for name, version in prompt_repo.latest_versions():
        missing = [v for v in version.variables if v not in columns]
        out.append(
            {
                "prompt": name,
                "version": version.version,
                "variables": ", ".join(version.variables),
                "ok": not missing,
                "missing": ", ".join(missing),
            }
        )
    return out


def from_records(columns: list[str], records: list[dict]):
    """Rows edited in the UI table back into a ParsedDataset (blank rows dropped, NaN as empty)."""
    import math

    clean = []
    for record in records:
        row = {
            c: ("" if (isinstance(v, float) and math.isnan(v)) or v is None else v)
            for c, v in record.items()
            if c in columns
        }
        if any(str(v).strip() for v in row.values()):
            clean.append(row)
    lines = "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in clean)
    return parse_pasted(lines)
