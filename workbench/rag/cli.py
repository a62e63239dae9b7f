"""`workbench index ...`: build, list, query and evaluate RAG indexes from the terminal.

`add_cli(subparsers)` registers the `index` command on the main parser; each command
calls the same functions as the RAG page and prints a plain table. Exit codes: 0 done,
2 bad input or a failed build (the message says what to fix), 1 an unexpected error.
"""

from __future__ import annotations

import sys

from workbench import secrets
from workbench.errors import WorkbenchError


def add_cli(subparsers) -> None:
    from workbench.rag import chunking
    from workbench.rag.index import DEFAULT_CHUNK_SIZE, DEFAULT_CHUNKER, DEFAULT_EMBEDDING_MODEL, DEFAULT_OVERLAP

    parser = subparsers.add_parser("index", help="build, query and evaluate RAG indexes")
    sub = parser.add_subparsers(dest="index_command", required=True)

    build = sub.add_parser("build", help="build the next version of an index from a folder, zip or file")
    build.add_argument(
        "docs", metavar="DOCS", help="folder, .zip or file of .md/.txt/.html/.pdf ('sample' for the sample corpus)"
    )
    build.add_argument("--name", required=True, help="index name")
    build.add_argument("--chunker", default=DEFAULT_CHUNKER, choices=sorted(chunking.CHUNKERS))
    build.add_argument(
        "--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="characters (tokens for fixed_tokens) per chunk"
    )
    build.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP)
    build.add_argument(
        "--embedding",
        default=DEFAULT_EMBEDDING_MODEL,
        help="embedding model: the bundled default, a local sentence-transformers directory, "
        "or a hosted litellm id such as openai/text-embedding-3-small",
    )
    build.add_argument("--quiet", action="store_true", help="no progress lines")
    build.set_defaults(func=cmd_build)

    query = sub.add_parser("query", help="top-k chunks for a question")
    query.add_argument("name", metavar="NAME[@VERSION]")
    query.add_argument("question")
    query.add_argument("-k", type=int, default=5)
    query.add_argument("--prompt", help="also answer with this RAG prompt version ({{context}}, {{question}})")
    query.set_defaults(func=cmd_query)

    listing = sub.add_parser("list", help="indexes and their versions")
    listing.set_defaults(func=cmd_list)

    evaluate = sub.add_parser("eval", help="retrieval (and answer) metrics of an index version on a QA set")
    evaluate.add_argument("name", metavar="NAME[@VERSION]")
    evaluate.add_argument("qa", metavar="QA.jsonl")
    evaluate.add_argument("-k", type=int, default=5)
    evaluate.add_argument(
        "--compare", metavar="OTHER[@VERSION]", help="compare with this index version (NAME is the baseline)"
    )
    evaluate.add_argument("--prompt", help="generate answers with this RAG prompt version")
    evaluate.add_argument("--model", help="answer with this model instead of the prompt version's")
    evaluate.add_argument("--judge", help="judge model for ragas' LLM metrics (faithfulness, ...)")
    evaluate.add_argument("--ragas", action="store_true", help="add ragas' non-LLM context metrics")
    evaluate.add_argument("--concurrency", type=int, default=4)
    evaluate.set_defaults(func=cmd_eval)


def _fail(exc: Exception) -> int:
    print(f"error: {secrets.mask(str(exc))}", file=sys.stderr)
    return 2


def _table(rows: list[dict], columns: list[str]) -> str:
    """A left-aligned plain-text table; floats with three decimals, None as '-'."""

    def cell(value):
        if value is None:
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def cmd_build(args) -> int:
    from workbench.rag import index

    def show(done: int, total: int, message: str) -> None:
        if not args.quiet:
            print(f"  {done}/{total} {message}", file=sys.stderr)

    try:
        version = index.build_index(
            args.name,
            args.docs,
            chunker=args.chunker,
            chunk_size=args.chunk_size,
            overlap=args.overlap,
            embedding_model=args.embedding,
            on_progress=show,
        )
    except WorkbenchError as exc:
        return _fail(exc)
    except Exception as exc:
        print(f"error: build failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    build = version.config["build"]
    print(
        f"{args.name}@{version.version}: {len(version.documents)} documents, {version.chunk_count} chunks "
        f"({build['embedded_documents']} documents embedded, {build['reused_documents']} reused) "
        f"in {build['seconds']} s"
    )
    for skipped in build.get("skipped") or []:
        print(f"  skipped {skipped['source']}: {skipped['reason']}")
    return 0


def cmd_query(args) -> int:
    from workbench.rag import evaluate

    try:
        found = evaluate.answer_question(args.name, args.question, prompt_ref=args.prompt, k=args.k)
    except WorkbenchError as exc:
        return _fail(exc)
    rows = [{**c, "text": " ".join(c["text"].split())[:80]} for c in found["chunks"]]
    print(_table(rows, ["rank", "score", "doc_id", "start", "end", "text"]))
    if args.prompt:
        print()
        print(found["answer"] if found["error"] is None else f"answer failed: {found['error']}")
    return 0


def cmd_list(args) -> int:
    from workbench.rag import index

    rows = [row for item in index.list_indexes() for row in item["rows"]]
    if not rows:
        print("no indexes yet: `workbench index build DOCS --name NAME`")
        return 0
    print(
        _table(
            rows,
            [
                "index",
                "version",
                "status",
                "chunker",
                "chunk_size",
                "overlap",
                "embedding_model",
                "documents",
                "chunks",
                "embedded_documents",
                "reused_documents",
                "skipped_files",
            ],
        )
    )
    return 0


def cmd_eval(args) -> int:
    from workbench.rag import evaluate

    options = {
        "prompt": args.prompt,
        "model": args.model,
        "judge": args.judge,
        "ragas": True if args.ragas else None,
        "concurrency": args.concurrency,
    }
    try:
        if args.compare:
            result = evaluate.compare(args.name, args.compare, args.qa, args.k, **options)
            runs = [result["a"], result["b"]]
        else:
            runs = [evaluate.evaluate(args.name, args.qa, args.k, **options)]
    except WorkbenchError as exc:
        return _fail(exc)
    for run in runs:
        print(f"{run['index']}  k={run['k']}  {run['config']}")
    summary = [
        {
            "metric": name,
            **{run["index"]: run["summary"][name]["mean"] for run in runs},
            "rows": runs[0]["summary"][name]["n"],
            "skipped": runs[0]["summary"][name]["skipped"],
        }
        for name in runs[0]["summary"]
    ]
    print(_table(summary, ["metric", *[run["index"] for run in runs], "rows", "skipped"]))
    errors = [
        (run["index"], r["row_key"], what, message)
        for run in runs
        for r in run["rows"]
        for what, message in r["errors"].items()
    ]
    if errors:
        print(f"\n{len(errors)} error(s), e.g. {errors[0][0]} {errors[0][1]} {errors[0][2]}: {errors[0][3]}")
    if args.compare:
        print()
        for metric in result["metrics"]:
            print(metric["verdict"])
            for warning in metric["warnings"]:
                print(f"  warning: {warning}")
    return 0
