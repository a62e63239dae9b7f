"""Secrets never at rest (issue 17): the allow-list of key variables, masking, and an eval whose
provider echoes the key in its error bodies, searched for every key string everywhere it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workbench import llm, runs, secrets
from workbench.errors import WorkbenchError
from workbench.fake_server import start_fake_server
from workbench.scoring import store, validate_scorer_config

ROOT = Path(__file__).resolve().parent.parent

ENV_KEY = "sk-envkey-3f9a1c77d2e84b10"
MODEL_LITERAL = "sk-literal-model-8c2d4e6f0a1b"
JUDGE_LITERAL = "sk-literal-judge-5e7f9a1b3c4d"
KEYS = (ENV_KEY, MODEL_LITERAL, JUDGE_LITERAL)


def test_only_key_variables_resolve(monkeypatch):
    monkeypatch.setenv("HOME_SECRET_PATH", "/root/.ssh/id_rsa")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123456")
    monkeypatch.delenv(secrets.ALLOW_VAR, raising=False)
    assert llm.expand_env("${OPENAI_API_KEY}") == "sk-from-env-123456"
    with pytest.raises(WorkbenchError, match=r"\$\{HOME_SECRET_PATH\} is not an API key variable.*WORKBENCH_ALLOWED"):
        llm.ModelSpec.parse({"id": "openai/x", "api_base": "http://127.0.0.1:9/v1", "api_key": "${HOME_SECRET_PATH}"})
    with pytest.raises(WorkbenchError, match="not an API key variable"):
        llm.expand_env("${PATH}")
    monkeypatch.setenv(secrets.ALLOW_VAR, "MY_KEY, HOME_SECRET_PATH")
    assert llm.expand_env("${HOME_SECRET_PATH}") == "/root/.ssh/id_rsa"


def test_a_judge_naming_a_variable_outside_the_allow_list_is_a_config_error(monkeypatch):
    monkeypatch.delenv(secrets.ALLOW_VAR, raising=False)
    problems = validate_scorer_config({"type": "llm_judge", "rubric": "correctness", "api_key": "${PATH}"})
    assert any("not an API key variable" in p for p in problems)
    assert not validate_scorer_config({"type": "llm_judge", "rubric": "correctness", "api_key": "${GROQ_API_KEY}"})


def test_mask_hides_keys_in_use_and_every_key_like_variable(monkeypatch):
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-abcdefgh12345")
    monkeypatch.setenv("DB_PASSWORD", "hunter2hunter2")
    monkeypatch.setenv("EDITOR_THEME", "solarized-dark")
    text = "sent tok-abcdefgh12345 and hunter2hunter2 and extra-key-999999 with solarized-dark"
    masked = secrets.mask(text, extra=["extra-key-999999", None, "short"])
    assert masked == "sent *** and *** and *** with solarized-dark"
    assert secrets.mask(None) is None and secrets.mask(3) == 3


def test_strip_keys_keeps_references_only():
    config = {
        "models": [{"id": "openai/x", "api_key": "${OPENAI_API_KEY}"}],
        "scorers": [{"type": "llm_judge", "api_key": "sk-typed-in-1234567", "params": {"max_tokens": 9}}],
        "guardrails": {"input": [{"type": "pii", "token": "abc-literal-9876543"}]},
    }
    stored = secrets.strip_keys(config)
    text = json.dumps(stored)
    assert "sk-typed-in" not in text and "abc-literal" not in text
    assert stored["models"][0]["api_key"] == "${OPENAI_API_KEY}"
    assert stored["scorers"][0]["params"] == {"max_tokens": 9}
    assert llm.expand_env(stored["scorers"][0]["api_key"]) == "sk-typed-in-1234567"  # this process only


def test_a_saved_scorer_never_stores_a_literal_key():
    row, _ = store.save(
        "judge-k", {"type": "llm_judge", "rubric": "correctness", "api_key": "sk-saved-literal-42424242"}
    )
    assert "sk-saved-literal" not in json.dumps(row.config)
    assert row.config["api_key"].startswith("${literal:")


def _cli(args, env, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_no_key_string_anywhere_after_an_eval_whose_provider_echoes_keys(tmp_path, workbench_home, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # this process must not mask what the eval stored
    dataset = tmp_path / "qa.csv"
    dataset.write_text("id,question,expected\n" + "".join(f"r{i},What is {i}+{i}?,{2 * i}\n" for i in range(16)))
    with start_fake_server(fail_rate=0.5, fail_statuses=[401], echo_key=True, seed=1) as server:
        config = {
            "description": "secrets",
            "prompts": [{"name": "adder", "template": "Answer: {{ question }}"}],
            "dataset": str(dataset),
            "models": [
                {"id": "openai/fake-env", "api_base": server.url, "api_key": "${OPENAI_API_KEY}"},
                {"id": "openai/fake-literal", "api_base": server.url, "api_key": MODEL_LITERAL},
            ],
            "scorers": [
                {
                    "type": "llm_judge",
                    "rubric": "correctness",
                    "model": "openai/judge",
                    "api_base": server.url,
                    "api_key": JUDGE_LITERAL,
                },
                {"type": "contains", "value": "{{expected}}"},
            ],
            "concurrency": 4,
        }
        path = tmp_path / "eval.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**os.environ, "WORKBENCH_HOME": str(workbench_home), "OPENAI_API_KEY": ENV_KEY, "PYTHONPATH": str(ROOT)}
        output = tmp_path / "results.jsonl"
        evals = [_cli(["eval", str(path), "--output", str(output), "--quiet", "--no-cache"], env, tmp_path)]
        assert evals[0].returncode in (0, 1), evals[0].stderr[-2000:]
        echoed = server.stats()
        assert echoed["failures"] > 0  # the provider did echo keys back

        run_id = runs.list_runs()[0]["id"]
        reports = [tmp_path / f"report.{ext}" for ext in ("html", "md", "csv")]
        compares = [_cli(["compare", str(run_id), "--report", str(r), "--json"], env, tmp_path) for r in reports]
        assert all(c.returncode == 0 for c in compares), [c.stderr[-2000:] for c in compares]

    errors = [r["error"] for r in runs.results(run_id, limit=None) if r["error"]]
    assert errors and any("***" in e for e in errors), errors[:3]
    places = {f"stdout/stderr of {p.args[3:5]}": p.stdout + p.stderr for p in evals + compares}
    places |= {str(f): f.read_bytes().decode("utf-8", "replace") for f in [output, *reports]}
    places |= {str(f): f.read_bytes().decode("latin-1") for f in workbench_home.glob("workbench.db*")}
    places["export csv"] = runs.export(run_id, "csv").decode()
    places["export jsonl"] = runs.export(run_id, "jsonl").decode()
    assert any("-wal" in p or p.endswith(".db") for p in places)
    for key in KEYS:
        leaked = [where for where, text in places.items() if key in text]
        assert not leaked, f"{key} found in {leaked}"
