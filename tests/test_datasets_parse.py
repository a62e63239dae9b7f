"""Parsing uploads into rows: the happy paths, every failure message, stable row keys, export."""

from __future__ import annotations

import json

import pytest

from workbench.datasets import (
    DEFAULT_MAX_BYTES,
    DatasetError,
    check_against_prompt,
    infer_type,
    max_dataset_bytes,
    missing_variables,
    parse_dataset,
    parse_pasted,
    row_keys,
    to_csv_bytes,
    to_jsonl_bytes,
)

ROWS = [{"q": "1", "a": "one"}, {"q": "2", "a": "two"}]


@pytest.mark.parametrize(
    "data, delimiter",
    [
        (b"q,a\n1,one\n2,two\n", ","),
        (b"q;a\n1;one\n2;two\n", ";"),
        (b"q\ta\n1\tone\n2\ttwo\n", "\t"),
        (b"q|a\n1|one\n2|two\n", "|"),
        (b"q,a\r\n1,one\r\n2,two\r\n", ","),
    ],
)
def test_csv_delimiters(data, delimiter):
    parsed = parse_dataset(data, "data.csv")
    assert parsed.format == "csv"
    assert parsed.delimiter == delimiter
    assert parsed.columns == ["q", "a"]
    assert parsed.rows == ROWS
    assert parsed.column_types == {"q": "integer", "a": "text"}


def test_tsv_extension_is_tab_even_with_commas_in_values():
    parsed = parse_dataset(b"q\ta\nhello, there\tyes, no\n", "x.tsv")
    assert parsed.rows == [{"q": "hello, there", "a": "yes, no"}]


def test_semicolon_file_with_decimal_commas():
    parsed = parse_dataset(b"name;price;qty\nwidget;2,50;3\ngadget;10,00;1\n", "eu.csv")
    assert parsed.delimiter == ";"
    assert parsed.rows[0] == {"name": "widget", "price": "2,50", "qty": "3"}


def test_utf8_bom_is_dropped():
    parsed = parse_dataset("\ufeffname,city\nJosé,São Paulo\n".encode("utf-8"), "bom.csv")
    assert parsed.columns == ["name", "city"]
    assert parsed.rows == [{"name": "José", "city": "São Paulo"}]


def test_quoted_commas_newlines_and_quotes():
    data = b'id,text,note\n1,"Hello, world","line one\nline two"\n2,"She said ""hi""",plain\n'
    parsed = parse_dataset(data, "q.csv")
    assert parsed.rows == [
        {"id": "1", "text": "Hello, world", "note": "line one\nline two"},
        {"id": "2", "text": 'She said "hi"', "note": "plain"},
    ]


def test_blank_lines_and_header_whitespace():
    parsed = parse_dataset(b" q , a \n1,one\n\n,\n2,two\n\n", "x.csv")
    assert parsed.columns == ["q", "a"]
    assert parsed.rows == ROWS


def test_one_column_text_file_keeps_commas():
    parsed = parse_dataset(b"question\nWhat is 2+2, really?\nWho wrote Hamlet?\n", "questions.txt")
    assert parsed.columns == ["question"]
    assert parsed.rows[0] == {"question": "What is 2+2, really?"}


def test_jsonl_nested_values_and_union_of_keys():
    data = (
        b'{"id": "a", "input": {"text": "hi", "tags": ["x", "y"]}}\n'
        b"\n"
        b'{"id": "b", "expected": 3, "input": {"text": "yo"}}\n'
    )
    parsed = parse_dataset(data, "d.jsonl")
    assert parsed.format == "jsonl"
    assert parsed.columns == ["id", "input", "expected"]
    assert parsed.rows[0] == {"id": "a", "input": {"text": "hi", "tags": ["x", "y"]}, "expected": None}
    assert parsed.rows[1]["expected"] == 3
    assert parsed.column_types == {"id": "text", "input": "json", "expected": "integer"}


def test_json_list_and_ndjson_extension():
    parsed = parse_dataset(json.dumps([{"a": 1, "b": True}, {"a": 2.5, "b": False}]).encode(), "d.json")
    assert parsed.format == "json"
    assert parsed.rows == [{"a": 1, "b": True}, {"a": 2.5, "b": False}]
    assert parsed.column_types == {"a": "number", "b": "boolean"}
    assert parse_dataset(b'{"a": 1}\n', "d.ndjson").rows == [{"a": 1}]


def test_json_lines_saved_as_json_are_accepted():
    parsed = parse_dataset(b'{"a": 1}\n{"a": 2}\n', "mixup.json")
    assert parsed.format == "jsonl"
    assert [r["a"] for r in parsed.rows] == [1, 2]


@pytest.mark.parametrize(
    "data, fmt",
    [
        (b'[{"a": 1}]', "json"),
        (b'{"a": 1}\n{"a": 2}', "jsonl"),
        (b"a;b\n1;2\n", "csv"),
    ],
)
def test_unknown_extension_is_sniffed(data, fmt):
    assert parse_dataset(data, "upload.dat").format == fmt
    assert parse_pasted(data.decode()).format == fmt


def test_pasted_csv():
    parsed = parse_pasted("q\ta\n1\tone\n2\ttwo")
    assert parsed.rows == ROWS


# --- failures: each message says where and what to do ---


def test_truncated_jsonl_line():
    with pytest.raises(DatasetError, match=r"Line 3, column \d+: invalid JSON .*truncated"):
        parse_dataset(b'{"a": 1}\n{"a": 2}\n{"a": "cut of', "d.jsonl")


def test_jsonl_line_that_is_not_an_object():
    with pytest.raises(DatasetError, match=r"Line 2: expected a JSON object .*found a list"):
        parse_dataset(b'{"a": 1}\n[1, 2]\n', "d.jsonl")


def test_json_that_is_not_a_list_of_objects():
    with pytest.raises(DatasetError, match="single object with keys rows"):
        parse_dataset(b'{"rows": [{"a": 1}]}', "d.json")
    with pytest.raises(DatasetError, match="Item 2: expected a JSON object"):
        parse_dataset(b'[{"a": 1}, "x"]', "d.json")
    with pytest.raises(DatasetError, match="Invalid JSON at line 2, column"):
        parse_dataset(b'[{"a": 1},\n {"a": }]', "d.json")
    with pytest.raises(DatasetError, match="list is empty"):
        parse_dataset(b"[]", "d.json")


def test_ragged_csv_row():
    data = b"a,b,c\n1,2,3\n" + b"4,5,6\n" * 11 + b"7,8,9,10\n"
    with pytest.raises(DatasetError) as info:
        parse_dataset(data, "r.csv")
    assert str(info.value).startswith("Line 14: expected 3 fields, found 4 (ragged row")


def test_ragged_row_line_counts_quoted_newlines():
    with pytest.raises(DatasetError, match="Line 4: expected 2 fields, found 1"):
        parse_dataset(b'a,b\n1,"two\nlines"\nonly\n', "r.csv")


def test_unclosed_quote():
    with pytest.raises(DatasetError, match="malformed CSV"):
        parse_dataset(b'a,b\n1,"never closed\n2,3\n', "q.csv")


def test_latin1_bytes():
    with pytest.raises(DatasetError) as info:
        parse_dataset("name,city\nJosé,Zürich\n".encode("latin-1"), "l.csv")
    message = str(info.value)
    assert "not valid UTF-8" in message
    assert "byte 0xE9 at line 2, column 4 (byte offset 13)" in message
    assert "Re-save it as UTF-8" in message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_utf16(encoding):
    with pytest.raises(DatasetError, match="UTF-16 encoded.*Re-save it as UTF-8"):
        parse_dataset("name,city\nJosé,Zürich\n".encode(encoding), "u.csv")


def test_binary_garbage():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256))
    with pytest.raises(DatasetError, match="not a text file: it contains a NUL byte at byte offset 8"):
        parse_dataset(png, "image.csv")


@pytest.mark.parametrize("data", [b"", b"  \n\n", b"\xef\xbb\xbf"])
def test_empty_file(data):
    for name in ("e.csv", "e.jsonl", "e.json"):
        with pytest.raises(DatasetError, match="empty"):
            parse_dataset(data, name)


def test_header_only():
    with pytest.raises(DatasetError, match=r"has a header \(question, answer\) but no data rows"):
        parse_dataset(b"question,answer\n", "h.csv")


def test_duplicate_and_blank_headers():
    with pytest.raises(DatasetError, match=r"Duplicate column name\(s\).*'a' \(columns 1, 3\)"):
        parse_dataset(b"a,b,a\n1,2,3\n", "d.csv")
    with pytest.raises(DatasetError, match=r"Column\(s\) 2 in the header \(line 1\) have no name"):
        parse_dataset(b"a,,c\n1,2,3\n", "d.csv")


def test_too_large(monkeypatch):
    data = b"a,b\n" + b"1,2\n" * 1000
    with pytest.raises(DatasetError) as info:
        parse_dataset(data, "big.csv", max_bytes=1024)
    message = str(info.value)
    assert message.startswith("The file is 3.9 KB; the limit is 1.0 KB.")
    assert "WORKBENCH_MAX_DATASET_MB" in message
    with pytest.raises(DatasetError, match="pasted text"):
        parse_pasted(data.decode(), max_bytes=1024)
    # the limit is read from the environment at call time
    assert max_dataset_bytes() == DEFAULT_MAX_BYTES == 50 * 1024 * 1024
    big = b"a\n" + b"x" * (2 * 1024 * 1024) + b"\n"
    monkeypatch.setenv("WORKBENCH_MAX_DATASET_MB", "1")
    with pytest.raises(DatasetError, match=r"The file is 2\.0 MB; the limit is 1\.0 MB"):
        parse_dataset(big, "big.csv")
    monkeypatch.setenv("WORKBENCH_MAX_DATASET_MB", "3")
    assert len(parse_dataset(big, "big.csv").rows[0]["a"]) == 2 * 1024 * 1024


def test_too_many_rows():
    data = b"a\n" + b"x\n" * 4
    with pytest.raises(DatasetError, match="more than 3 rows"):
        parse_dataset(data, "rows.csv", max_rows=3)
    with pytest.raises(DatasetError, match="more than 3 rows"):
        parse_dataset(b'{"a": 1}\n' * 4, "rows.jsonl", max_rows=3)


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


# --- types, keys, prompt checks, export ---


@pytest.mark.parametrize(
    "values, expected",
    [
        (["1", "-2", "+3", ""], "integer"),
        (["1", "2.5", "1e3"], "number"),
        (["true", "False"], "boolean"),
        (["007", "12"], "text"),
        (["0.5", "-1.", ".25", "0"], "number"),
        (['{"a": 1}', "[1, 2]"], "json"),
        ([{"a": 1}, [1]], "json"),
        (["", None, "  "], "empty"),
        (["1", "one"], "text"),
        ([1, 2], "integer"),
        ([True, None], "boolean"),
    ],
)
def test_infer_type(values, expected):
    assert infer_type(values) == expected


def test_row_keys_use_unique_id_column():
    rows = [{"id": "q1", "x": "a"}, {"id": 2, "x": "b"}]
    assert row_keys(["id", "x"], rows) == ["q1", "2"]


@pytest.mark.parametrize("ids", [["1", "1"], ["1", ""], ["1", None]])
def test_row_keys_fall_back_to_hash_when_id_unusable(ids):
    rows = [{"id": i, "x": "same"} for i in ids]
    keys = row_keys(["id", "x"], rows)
    assert all(len(k.split("-")[0]) == 16 for k in keys)
    assert len(set(keys)) == 2


def test_content_keys_are_stable():
    rows = [{"q": str(i), "a": f"answer {i}"} for i in range(5)]
    keys = row_keys(["q", "a"], rows)
    assert len(set(keys)) == 5
    assert row_keys(["q", "a"], [dict(r) for r in rows]) == keys  # deterministic
    assert row_keys(["a", "q"], [{"a": r["a"], "q": r["q"]} for r in rows]) == keys  # column order ignored

    edited = [dict(r) for r in rows]
    edited[2]["a"] = "changed"
    new_keys = row_keys(["q", "a"], edited)
    assert [k1 == k2 for k1, k2 in zip(keys, new_keys)] == [True, True, False, True, True]

    appended = rows + [{"q": "5", "a": "answer 5"}, {"q": "0", "a": "answer 0"}]
    appended_keys = row_keys(["q", "a"], appended)
    assert appended_keys[:5] == keys
    assert appended_keys[6] == keys[0] + "-2"  # an identical row gets a suffix


def test_content_keys_survive_a_new_jsonl_column():
    old = parse_dataset(b'{"q": "a"}\n{"q": "b"}\n', "v1.jsonl")
    new = parse_dataset(b'{"q": "a"}\n{"q": "b"}\n{"q": "c", "extra": 1}\n', "v2.jsonl")
    assert new.rows[0] == {"q": "a", "extra": None}
    assert row_keys(new.columns, new.rows)[:2] == row_keys(old.columns, old.rows)


def test_identical_rows_get_suffixes():
    keys = row_keys(["x"], [{"x": "a"}, {"x": "a"}, {"x": "a"}])
    assert keys[1:] == [keys[0] + "-2", keys[0] + "-3"]


def test_prompt_variable_checks():
    columns = ["id", "Question", "context"]
    assert missing_variables(columns, ["question", "context", "question"]) == ["question"]
    assert missing_variables(columns, ["context"]) == []
    ok, message = check_against_prompt(columns, ["question", "context"])
    assert not ok
    assert "no column for prompt variable(s): question." in message
    assert "Its columns are: id, Question, context" in message
    assert "case-sensitive" in message and "'Question'" in message
    ok, message = check_against_prompt(columns, ["context"])
    assert ok and "context" in message


def test_export_round_trip():
    rows = [
        {"id": "1", "text": 'Hello, "world"\nsecond line', "meta": {"k": [1, 2]}, "score": 0.5, "ok": True},
        {"id": "2", "text": "naïve café", "meta": None, "score": None, "ok": False},
    ]
    columns = ["id", "text", "meta", "score", "ok"]

    jsonl = parse_dataset(to_jsonl_bytes(rows), "out.jsonl")
    assert jsonl.columns == columns and jsonl.rows == rows

    csv_back = parse_dataset(to_csv_bytes(columns, rows), "out.csv")
    assert csv_back.columns == columns
    assert csv_back.rows[0]["text"] == rows[0]["text"]
    assert json.loads(csv_back.rows[0]["meta"]) == {"k": [1, 2]}
    assert csv_back.rows[1] == {"id": "2", "text": "naïve café", "meta": "", "score": "", "ok": "false"}
    assert csv_back.column_types == {
        "id": "integer",
        "text": "text",
        "meta": "json",
        "score": "number",
        "ok": "boolean",
    }

    csv_rows = parse_dataset(b"q,a\n1,one\n2,two\n", "x.csv")
    again = parse_dataset(to_csv_bytes(csv_rows.columns, csv_rows.rows), "x.csv")
    assert again.rows == csv_rows.rows
    assert row_keys(again.columns, again.rows) == row_keys(csv_rows.columns, csv_rows.rows)
