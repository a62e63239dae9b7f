"""error_rate is checked in CI even when the config sets no thresholds (issue 17)."""

from __future__ import annotations

import yaml

from workbench import cli, runs
from workbench.fake_server import start_fake_server

RESULT = {"pass_rate": 0.9, "error_rate": 0.075, "scorers": [{"scorer": "contains", "mean": 0.9, "pass_rate": 0.9}]}


def test_no_thresholds_still_fails_on_errored_rows():
    failures = runs.check_thresholds(RESULT, {})
    assert failures == ["error_rate 0.075 > 0.0 (the default; set thresholds: {error_rate: null} to allow errors)"]
    assert runs.check_thresholds(RESULT, None) == failures
    assert runs.check_thresholds(RESULT, {"pass_rate": 0.5}) == failures


def test_error_rate_null_turns_it_off_and_an_explicit_limit_wins():
    assert runs.check_thresholds(RESULT, {"error_rate": None}) == []
    assert runs.check_thresholds(RESULT, {"error_rate": 0.1}) == []
    assert runs.check_thresholds(RESULT, {"error_rate": 0.05}) == ["error_rate 0.075 > 0.05"]
    assert runs.check_thresholds({**RESULT, "error_rate": 0.0}, {}) == []
    assert runs.check_thresholds({**RESULT, "error_rate": None}, {}) == []  # nothing finished: the status says so
    assert runs.check_thresholds(RESULT, {"pass_rate": None, "error_rate": None}) == [
        "pass_rate: give a number (only error_rate can be null, to turn it off)"
    ]


def test_workbench_eval_exits_1_on_errors_without_thresholds(tmp_path):
    dataset = tmp_path / "qa.csv"
    dataset.write_text("id,question\n" + "".join(f"r{i},q{i}\n" for i in range(12)))
    with start_fake_server(fail_rate=0.3, fail_statuses=[400], seed=2) as server:
        config = {
            "prompts": [{"name": "ask", "template": "{{ question }}"}],
            "dataset": str(dataset),
            "models": [{"id": "openai/fake", "api_base": server.url, "api_key": "x"}],
            "concurrency": 2,
            "cache": False,
        }
        path = tmp_path / "eval.yaml"
        path.write_text(yaml.safe_dump(config))
        assert cli.main(["eval", str(path), "--quiet"]) == 1
        assert 0 < runs.summary(runs.list_runs()[0]["id"])["error_rate"] < 1
        path.write_text(yaml.safe_dump({**config, "thresholds": {"error_rate": None}}))
        assert cli.main(["eval", str(path), "--quiet"]) == 0
