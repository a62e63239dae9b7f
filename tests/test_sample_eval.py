"""The sample eval config, for real: embedded model, assertions and an LLM judge, via the CLI."""

import csv

import pytest

from workbench import cli, config, runs

SAMPLE = str(config.SAMPLE_DATA / "eval_support.yaml")


@pytest.mark.slow
def test_sample_eval_scores_with_assertions_and_a_judge(tmp_path, capsys):
    assert cli.main(["init"]) == 0
    out = tmp_path / "results.csv"
    code = cli.main(["eval", SAMPLE, "--limit", "3", "--quiet", "--output", str(out)])
    assert code == 0
    run_id = runs.list_runs()[0]["id"]
    summary = {s["scorer"]: s for s in runs.summary(run_id)["scorers"]}
    assert set(summary) == {"has_key_fact", "not_rambling", "correctness"}
    assert all(s["n"] == 6 for s in summary.values())  # 3 rows x 2 prompt versions
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and all(r["output"] for r in rows)
    assert all(r["correctness.reason"] for r in rows)  # a judge reason, or why the reply was unreadable
    # The statistics of v1 vs v2 (one run, two prompt versions) from a terminal.
    capsys.readouterr()
    assert cli.main(["compare", str(run_id)]) == 0
    printed = capsys.readouterr().out
    assert "has_key_fact" in printed and "95% CI" in printed
    # A threshold the run cannot meet makes the CLI fail; the rerun is served from the cache.
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        open(SAMPLE)
        .read()
        .replace(
            "thresholds: {error_rate: 0.0, not_rambling.pass_rate: 0.5}", "thresholds: {has_key_fact.pass_rate: 1.01}"
        )
    )
    assert cli.main(["eval", str(strict), "--limit", "3", "--quiet"]) == 1
    # the 6 answers come from the cache; the constrained judge asks again (the ledger keeps no logprobs)
    assert runs.progress(runs.list_runs()[0]["id"])["cached"] == 6


@pytest.mark.slow
def test_sample_rag_eval_on_two_index_configs(tmp_path, capsys):
    """Two chunkings of the sample corpus, each evaluated through `workbench eval`, compared per row."""
    from workbench import stats

    assert cli.main(["init"]) == 0
    corpus = str(config.SAMPLE_DATA / "rag_corpus")
    assert cli.main(["index", "build", corpus, "--name", "help", "--chunk-size", "800", "--overlap", "100"]) == 0
    assert cli.main(["index", "build", corpus, "--name", "help-small", "--chunk-size", "256", "--overlap", "32"]) == 0
    text = open(config.SAMPLE_DATA / "eval_rag.yaml").read()
    small = tmp_path / "small.yaml"
    small.write_text(text.replace("index: help,", "index: help-small,"))
    assert cli.main(["eval", str(config.SAMPLE_DATA / "eval_rag.yaml"), "--limit", "4", "--quiet"]) == 0
    assert cli.main(["eval", str(small), "--limit", "4", "--quiet"]) in (0, 1)  # thresholds may differ
    big_run, small_run = sorted(r["id"] for r in runs.list_runs())

    def recall(run_id):
        return {r["row_key"]: r["retrieval_recall.score"] for r in runs.results(run_id, limit=None)}

    a, b = recall(big_run), recall(small_run)
    assert set(a) == set(b) and len(a) == 4
    result = stats.paired_difference([a[k] for k in sorted(a)], [b[k] for k in sorted(b)])
    assert result.n >= 3 and result.ci_low <= result.diff <= result.ci_high
    capsys.readouterr()
    assert cli.main(["compare", str(big_run), str(small_run)]) == 0  # which index retrieves better, with intervals
    assert "retrieval_recall" in capsys.readouterr().out
