"""The malformed-file corpus from issue 17, generated: every file gets a DatasetError or a sensible
parse, quickly, and whatever parses can be stored whole (nothing half-stored)."""

from __future__ import annotations

import functools
import json
import random
import time

import pytest
from sqlmodel import func, select

from storage.db import session
from storage.tables import Dataset, DatasetRow, DatasetVersion
from workbench import datasets
from workbench.datasets import DatasetError, parse_dataset, parse_pasted
from workbench.errors import WorkbenchError

SECONDS = 5.0  # each file; the slow cases of issue 17 took 23 s to minutes


def _sparse_jsonl(size: int) -> bytes:
    lines, n = [], 0
    while sum(map(len, lines)) < size:
        lines.append(json.dumps({f"key_{n}": n}) + "\n")
        n += 1
    return "".join(lines).encode()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@functools.cache
def corpus() -> dict[str, tuple[bytes, str]]:
    rng = random.Random(17)
    wide_then_thin = json.dumps({f"c{i}": i for i in range(900)}) + "\n" + '{"c0": 1}\n' * 3000
    return {
        "empty": (b"", "e.csv"),
        "blank lines": (b"\n\n  \n", "e.jsonl"),
        "header only": (b"a,b\n", "h.csv"),
        "binary": (bytes(rng.randrange(256) for _ in range(4096)), "b.csv"),
        "png": (b"\x89PNG\r\n\x1a\n" + bytes(200), "p.json"),
        "utf-16 bom": ("q,a\nx,y\n".encode("utf-16"), "u.csv"),
        "utf-16 no bom": ("q,a\nx,y\n".encode("utf-16-le"), "u.csv"),
        "utf-32": ("q,a\nx,y\n".encode("utf-32"), "u.csv"),
        "latin-1": ("q,a\ncafé,y\n".encode("latin-1"), "l.csv"),
        "ragged": (b"a,b\n1,2\n3\n", "r.csv"),
        "duplicate headers": (b"a,a\n1,2\n", "d.csv"),
        "blank header": (b"a,,c\n1,2,3\n", "d.csv"),
        "unclosed quote": (b'a,b\n"1,2\n3,4\n', "q.csv"),
        "huge field": (b"a,b\n" + b"x" * 3_000_000 + b",1\n", "f.csv"),
        "many columns": (
            (",".join(f"c{i}" for i in range(5000)) + "\n" + ",".join("1" * 5000) + "\n").encode(),
            "w.csv",
        ),
        "csv cell nested 10000 deep": (f'a,b\n1,"{_deep(10_000)}"\n'.encode(), "n.csv"),
        "csv cell nested 50 deep": (f'a,b\n1,"{_deep(50)}"\n'.encode(), "n.csv"),
        "jsonl nested 10000 deep": (f'{{"a": 1}}\n{{"a": {_deep(10_000)}}}\n'.encode(), "n.jsonl"),
        "jsonl nested 150 deep": (f'{{"a": 1}}\n{{"a": {_deep(150)}}}\n'.encode(), "n.jsonl"),
        "json nested 10000 deep": (f'[{{"a": 1}},\n{{"a": {_deep(10_000)}}}]'.encode(), "n.json"),
        "jsonl string holding deep json": (json.dumps({"a": _deep(10_000)}).encode() + b"\n", "s.jsonl"),
        "jsonl 5000-digit number": (b'{"a": 1}\n{"a": ' + b"9" * 5000 + b"}\n", "big.jsonl"),
        "json 5000-digit number": (b'[{"a": 1},\n{"a": ' + b"9" * 5000 + b"}]", "big.json"),
        "csv 5000-digit number": (b"a\n" + b"9" * 5000 + b"\n", "big.csv"),
        "jsonl lone surrogate": (b'{"a": "ok"}\n{"a": "\\ud800"}\n', "s.jsonl"),
        "jsonl surrogate key": (b'{"\\udfff": "x"}\n', "s.jsonl"),
        "jsonl escaped nul": (b'{"a": "x\\u0000y"}\n', "z.jsonl"),
        "raw nul byte": (b"a,b\n1,\x002\n", "z.csv"),
        "jsonl valid surrogate pair": (b'{"a": "\\ud83d\\ude00"}\n', "ok.jsonl"),
        "sparse keys 64 KB": (_sparse_jsonl(64 * 1024), "sparse.jsonl"),
        "sparse keys 129 KB": (_sparse_jsonl(129 * 1024), "sparse.jsonl"),
        "wide first row then thin rows": (wide_then_thin.encode(), "wide.jsonl"),
        "json not a list": (b'{"a": 1}', "o.json"),
        "jsonl scalar line": (b'{"a": 1}\n42\n', "s.jsonl"),
        "truncated jsonl": (b'{"a": 1}\n{"a": \n', "t.jsonl"),
        "over the size limit": (b"a\n" + b"1\n" * 600_000, "big.csv"),
    }


# What issue 17 found crashing or hanging: each must now be a DatasetError that names the line.
MUST_NAME_THE_LINE = {
    "csv cell nested 10000 deep": "Line 2",
    "jsonl nested 10000 deep": "Line 2",
    "jsonl nested 150 deep": "Line 2",
    "json nested 10000 deep": "Line 2",
    "jsonl string holding deep json": "Line 1",
    "jsonl 5000-digit number": "Line 2",
    "json 5000-digit number": "Line 2",
    "jsonl lone surrogate": "Line 2",
    "jsonl surrogate key": "Line 1",
    "jsonl escaped nul": "Line 1",
    "sparse keys 64 KB": "Line 1001",
    "sparse keys 129 KB": "Line 1001",
}
SENSIBLE = {"huge field", "csv cell nested 50 deep", "csv 5000-digit number", "jsonl valid surrogate pair"}


@pytest.mark.parametrize("family", list(corpus()))
def test_every_malformed_file_is_an_error_or_a_sensible_parse(family):
    data, filename = corpus()[family]
    started = time.perf_counter()
    try:
        parsed = parse_dataset(data, filename, max_bytes=1024 * 1024 if family == "over the size limit" else None)
    except DatasetError as exc:
        elapsed = time.perf_counter() - started
        assert family not in SENSIBLE, f"{family}: {exc}"
        assert str(exc)
        if family in MUST_NAME_THE_LINE:
            assert MUST_NAME_THE_LINE[family] in str(exc), str(exc)
        assert _stored() == (0, 0, 0)
    else:
        elapsed = time.perf_counter() - started
        assert family in SENSIBLE, f"{family} parsed: {parsed.columns[:5]}"
        assert parsed.rows and parsed.columns
        version, created = datasets.save_version("fuzz", parsed)
        assert created
        assert _stored() == (1, 1, len(parsed.rows))
    assert elapsed < SECONDS, f"{family} took {elapsed:.1f} s"


def _stored() -> tuple[int, int, int]:
    with session() as s:
        return (
            s.exec(select(func.count()).select_from(Dataset)).one(),
            s.exec(select(func.count()).select_from(DatasetVersion)).one(),
            s.exec(select(func.count()).select_from(DatasetRow)).one(),
        )


def test_pasted_lone_surrogate_is_an_error_naming_the_line():
    with pytest.raises(DatasetError, match="Line 2, column 3: .*surrogate"):
        parse_pasted("q,a\nok\ud800,x\n")


def test_sparse_keys_under_the_column_limit_but_mostly_empty_are_refused():
    lines = [json.dumps({f"c{i}": i for i in range(900)})] + ['{"c0": 1}'] * 3000
    with pytest.raises(DatasetError, match="mostly empty"):
        datasets.parse_jsonl("\n".join(lines))


def test_a_missing_dataset_path_says_the_file_does_not_exist(tmp_path):
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(WorkbenchError, match="does not exist") as caught:
        datasets.resolve_for_run(missing)
    assert "must be a number" not in str(caught.value)
    with pytest.raises(WorkbenchError, match="must be a number"):
        datasets.resolve_for_run("quiz@latest")
    with pytest.raises(WorkbenchError, match="neither a file nor a stored dataset"):
        datasets.resolve_for_run("quiz@2")
