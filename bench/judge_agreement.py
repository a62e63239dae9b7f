"""How well each judge model agrees with the human labels in sample_data/judge_labels.jsonl.

Runs the embedded model and every hosted model whose key is set (or the --models given),
prints one table per model, and saves the results where the Scorers page reads them
(the normal WORKBENCH_HOME unless --home is given). Judge calls go to the ledger as
source `judge`, so hosted ones show up on the Dashboard with their cost.

    python bench/judge_agreement.py [--models local/smollm2,openai/gpt-4o-mini] [--rubrics correctness]
                                    [--concurrency 2] [--home DIR] [--no-save] [--compare-free-text]

Besides agreement it prints the parse rate (verdicts / items) and the judge's latency per
verdict (median and 90th percentile of the calls' own latency). `--compare-free-text` also
runs each model with the constrained reply off (the "before": a free-text reply parsed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def default_models() -> list[str]:
    """The embedded judge plus every non-local model the environment makes available."""
    from workbench.llm import EMBEDDED_MODEL, available_models

    return [EMBEDDED_MODEL] + [m for m in available_models() if not m.startswith("local/")]


def _fmt(value, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(q * len(values)))]


def table(model: str, results: dict) -> str:
    """One row per rubric and a pooled row over all labelled items."""
    from workbench.judge_quality import agreement

    header = (
        f"{'rubric':<14} {'n':>3} {'unparseable':>11} {'Spearman':>8} {'exact':>6} {'within-1':>8} {'MAE':>5}"
        f" {'p50 s':>6} {'p90 s':>6}"
    )
    lines = [f"judge: {model}", header, "-" * len(header)]
    pooled = [(item["judge"], item["human"]) for entry in results.values() for item in entry["items"]]
    everything = [item for entry in results.values() for item in entry["items"]]
    for rubric, entry in [*results.items(), ("all", {**agreement(pooled), "items": everything})]:
        seconds = sorted(item["latency_ms"] / 1000 for item in entry["items"] if item.get("latency_ms") is not None)
        lines.append(
            f"{rubric:<14} {entry['n']:>3} {entry['n'] - entry['n_scored']:>11} "
            f"{_fmt(entry['spearman'], '{:+.2f}'):>8} {_fmt(entry['exact']):>6} "
            f"{_fmt(entry['within_1']):>8} {_fmt(entry['mean_abs_error']):>5}"
            f" {_fmt(_quantile(seconds, 0.5)):>6} {_fmt(_quantile(seconds, 0.9)):>6}"
        )
    scored = sum(1 for item in everything if item["judge"] is not None)
    lines.append(f"parse rate {scored}/{len(everything)} ({100 * scored / max(1, len(everything)):.0f}%)")
    failed = [
        item["error"]
        for entry in results.values()
        for item in entry["items"]
        if item["error"] and item["error"].startswith("judge call failed")
    ]
    if failed:  # a missing key or a dead endpoint is not the judge's fault: say so
        lines.append(f"{len(failed)} of the unscored were failed calls, e.g. {failed[0]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated judge model ids (default: embedded + hosted with keys)")
    parser.add_argument("--rubrics", help="comma-separated rubrics (default: all labelled)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--home", help="WORKBENCH_HOME to save into (default: the normal one)")
    parser.add_argument("--no-save", action="store_true", help="print only; do not save for the Scorers page")
    parser.add_argument(
        "--compare-free-text", action="store_true", help="also run with the constrained reply off (before/after)"
    )
    args = parser.parse_args(argv)
    if args.home:
        os.environ["WORKBENCH_HOME"] = str(Path(args.home).expanduser())

    from workbench.judge_quality import evaluate, save_results

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else default_models()
    rubrics = [r.strip() for r in args.rubrics.split(",") if r.strip()] if args.rubrics else None
    for model in models:
        if args.compare_free_text:
            started = time.perf_counter()
            before = evaluate(model, rubrics=rubrics, concurrency=args.concurrency, constrained=False)
            print(table(f"{model} (free-text reply, parsed)", before))
            print(f"({time.perf_counter() - started:.0f} s)\n")
        started = time.perf_counter()
        results = evaluate(model, rubrics=rubrics, concurrency=args.concurrency)
        print(table(model, results))
        print(f"({time.perf_counter() - started:.0f} s)\n")
        if not args.no_save:
            save_results(results)
    if not args.no_save:
        from workbench import config

        print(f"saved under app_setting 'judge_agreement' in {config.database_url()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
