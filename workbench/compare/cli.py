"""`workbench compare`: compare runs from the command line, print or save the summary, write a report."""

from __future__ import annotations

import json
import sys

from workbench import secrets
from workbench.compare.result import ALPHA
from workbench.compare.saved import save
from workbench.compare.summary import compare
from workbench.errors import WorkbenchError


def add_cli(subparsers) -> None:
    """Register `workbench compare RUN_A RUN_B [RUN_C ...] [--baseline ...] [--json]`."""
    parser = subparsers.add_parser("compare", help="compare runs' prompt versions and models with paired statistics")
    parser.add_argument(
        "runs",
        nargs="+",
        type=int,
        metavar="RUN",
        help="run ids (one run with several prompt versions or models is enough)",
    )
    parser.add_argument(
        "--baseline",
        help="baseline variant: its label, its position (1, 2, ...) or a run id "
        "holding one variant (default: the first)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--alpha", type=float, default=ALPHA, help="significance level (default 0.05)")
    parser.add_argument("--save", metavar="NAME", help="store the comparison under this name")
    parser.add_argument("--report", metavar="FILE", help="also write a report: .html, .md or .csv (rows)")
    parser.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    from workbench import report

    try:
        result = compare(args.runs, args.baseline, alpha=args.alpha)
        if args.report:
            report.write(result, args.report)
        saved = save(result, args.save) if args.save else None
    except WorkbenchError as exc:
        print(f"error: {secrets.mask(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**result.summary, "comparison_id": saved}, indent=2, default=str))
    else:
        report.print_summary(result.summary)
        if saved:
            print(f"\nsaved as comparison {saved}")
    if args.report:
        print(f"wrote {args.report}", file=sys.stderr)
    return 0
