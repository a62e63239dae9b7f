"""Retrieval evaluation, answers through the ledger, ragas metrics (offline and judged), comparison, CLI."""

from __future__ import annotations

import argparse
import json

import pytest
from litellm.llms.custom_llm import CustomLLMError
from sqlmodel import select

from storage.db import session
from storage.tables import LlmCall
from workbench import embeddings, prompts
from workbench.errors import WorkbenchError
from workbench.rag import evaluate, index
from workbench.rag.cli import add_cli

RAG_PROMPT = "Answer from the context.\n\nContext:\n{{ context }}\n\nQuestion: {{ question }}"


@pytest.fixture(autouse=True)
def hashing():
    with embeddings.use_embedder(embeddings.hashing_embedder(dim=1024)):
        yield


@pytest.fixture
def tiny(tmp_path):
    """Three one-chunk documents whose words do not overlap: retrieval order is predictable by hand."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "cars.md").write_text("engines wheels brakes gears\n", encoding="utf-8")
    (folder / "fruit.md").write_text("apples bananas cherries grapes\n", encoding="utf-8")
    (folder / "tools.md").write_text("hammers saws drills nails\n", encoding="utf-8")
    index.build_index("tiny", folder)
    return folder


QA = [
    {"id": "a", "question": "apples bananas", "source_documents": ["fruit.md"]},  # fruit first
    {"id": "b", "question": "engines wheels apples", "source_documents": ["fruit.md"]},  # cars, then fruit
    {"id": "c", "question": "hammers saws engines", "source_documents": ["fruit.md", "tools.md"]},  # tools, cars
    {"id": "d", "question": "what is the weather", "source_documents": []},  # unanswerable
]


def test_retrieval_numbers_on_a_tiny_corpus(tiny):
    result = evaluate.evaluate_retrieval("tiny", QA, k=2)
    rows = {r["row_key"]: r for r in result["rows"]}
    assert rows["a"]["chunk_ids"][0].startswith("fruit.md#")
    assert rows["a"]["scores"] == {"hit_rate": 1.0, "precision": 0.5, "recall": 1.0, "mrr": 1.0, "ndcg": 1.0}
    assert [c["doc_id"] for c in rows["b"]["retrieved"]] == ["cars.md", "fruit.md"]
    assert rows["b"]["scores"]["mrr"] == 0.5 and rows["b"]["scores"]["hit_rate"] == 1.0
    assert rows["b"]["retrieval"]["relevant"] == [False, True]
    assert [c["doc_id"] for c in rows["c"]["retrieved"]] == ["tools.md", "cars.md"]
    assert rows["c"]["scores"]["recall"] == 0.5 and rows["c"]["scores"]["precision"] == 0.5
    assert rows["d"]["scores"]["hit_rate"] is None
    summary = result["summary"]
    assert summary["hit_rate"] == {"mean": 1.0, "n": 3, "skipped": 1}
    assert summary["mrr"]["mean"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert summary["recall"]["mean"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert result["index"] == "tiny@1" and result["k"] == 2 and result["config"]["chunker"] == "recursive"
    record = rows["a"]  # what a run item will later store
    assert {
        "row_key",
        "question",
        "reference",
        "retrieved",
        "chunk_ids",
        "scores",
        "answer",
        "call_id",
        "judge_call_ids",
        "errors",
    } <= set(record)


def test_passages_decide_relevance_when_given(tiny):
    qa = [{"id": "p", "question": "apples", "relevant_passages": ["hammers saws drills nails"]}]
    row = evaluate.evaluate_retrieval("tiny", qa, k=3)["rows"][0]
    assert row["retrieval"]["mode"] == "passages"
    assert [c["doc_id"] for c in row["retrieved"]][0] == "fruit.md"
    assert row["retrieval"]["relevant"][[c["doc_id"] for c in row["retrieved"]].index("tools.md")]
    assert row["scores"]["mrr"] < 1.0


def test_qa_files_are_checked(tmp_path):
    assert len(evaluate.load_qa(evaluate.default_qa_path())) == 66
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\n{not json\n', encoding="utf-8")
    with pytest.raises(WorkbenchError, match="line 2"):
        evaluate.load_qa(bad)
    with pytest.raises(WorkbenchError, match="no question"):
        evaluate.load_qa([{"reference": "x"}])
    with pytest.raises(WorkbenchError, match="used twice"):
        evaluate.load_qa([{"id": 1, "question": "a"}, {"id": 1, "question": "b"}])
    with pytest.raises(WorkbenchError, match="not found"):
        evaluate.load_qa(tmp_path / "missing.jsonl")
    assert [r["row_key"] for r in evaluate.load_qa(b'[{"question": "a"}, {"question": "b"}]')] == ["row-1", "row-2"]


def test_compare_two_chunk_sizes_on_the_sample_set():
    index.build_index("docs", "sample", chunk_size=256, overlap=32)
    index.build_index("docs", "sample", chunk_size=800, overlap=100)
    result = evaluate.compare("docs@1", "docs@2", k=5)
    metrics = {m["metric"]: m for m in result["metrics"]}
    assert set(metrics) == {"hit_rate", "precision", "recall", "mrr", "ndcg"}
    hit = metrics["hit_rate"]
    assert hit["n"] == 63 and hit["dropped"] == 0  # the 3 unanswerable rows have no value on either side
    assert hit["docs@1"] == pytest.approx(result["a"]["summary"]["hit_rate"]["mean"])
    assert hit["docs@2"] == pytest.approx(result["b"]["summary"]["hit_rate"]["mean"])
    assert hit["diff"] == pytest.approx(hit["docs@2"] - hit["docs@1"])
    assert hit["test"].startswith("McNemar") and "permutation" in metrics["mrr"]["test"]
    for m in result["metrics"]:
        assert m["verdict"].startswith(("docs@2 is", "no detectable difference")) and m["metric"] in m["verdict"]
    with pytest.raises(WorkbenchError, match="two different"):
        evaluate.compare("docs@1", "docs@1")


def test_answers_go_through_the_ledger_and_errors_stay_on_their_row(tiny, fake_model):
    prompts.save_version("rag", template=RAG_PROMPT, model="fake/model")
    fake_model.queue("Apples and bananas are fruit.", CustomLLMError(status_code=400, message="provider exploded"))
    result = evaluate.evaluate("tiny", QA[:2], k=2, prompt="rag", concurrency=1)
    first, second = result["rows"]
    assert first["answer"] == "Apples and bananas are fruit." and not first["errors"]
    assert "apples bananas cherries grapes" in fake_model.history[0]["messages"][0]["content"]
    assert "(fruit.md)" in fake_model.history[0]["messages"][0]["content"]
    assert second["answer"] is None and "provider exploded" in second["errors"]["answer"]
    with session() as s:
        call = s.get(LlmCall, first["call_id"])
        assert call.source == "rag" and call.prompt_version_id == prompts.resolve("rag").id
        assert s.get(LlmCall, second["call_id"]).error_type is not None
    assert result["prompt"] == "rag"
    found = evaluate.answer_question("tiny", "apples bananas", "rag@1", k=1)
    assert found["chunks"][0]["doc_id"] == "fruit.md" and found["answer"].startswith("ECHO:")


def test_a_rag_prompt_must_take_context_and_question(tiny, fake_model):
    prompts.save_version("plain", template="{{ question }}", model="fake/model")
    prompts.save_version("rag", template=RAG_PROMPT, model="fake/model")
    with pytest.raises(WorkbenchError, match="context"):
        evaluate.evaluate("tiny", QA[:1], prompt="plain")
    assert evaluate.rag_prompt_refs() == ["rag@1"]


def test_offline_ragas_metrics_without_a_judge(tiny, fake_model):
    prompts.save_version("rag", template=RAG_PROMPT, model="fake/model")
    qa = [
        {
            "id": "x",
            "question": "apples bananas",
            "reference": "Apples and bananas.",
            "relevant_passages": ["apples bananas cherries grapes"],
        },
        {
            "id": "y",
            "question": "engines wheels",
            "reference": "Engines.",
            "relevant_passages": ["hammers saws drills nails"],
        },
    ]
    fake_model.queue("Apples and bananas.", "Something else entirely")
    result = evaluate.evaluate("tiny", qa, k=1, prompt="rag", concurrency=1)
    x, y = result["rows"]
    assert x["scores"]["non_llm_context_precision"] == pytest.approx(1.0)
    assert x["scores"]["non_llm_context_recall"] == 1.0
    assert x["scores"]["semantic_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert x["scores"]["string_similarity"] == 1.0
    assert y["scores"]["non_llm_context_precision"] == pytest.approx(0.0)  # cars retrieved, tools relevant
    assert y["scores"]["non_llm_context_recall"] == 0.0
    assert y["scores"]["semantic_similarity"] < 0.5 and y["scores"]["string_similarity"] < 0.5
    assert not any(name in x["scores"] for name in evaluate.JUDGE_METRICS)
    assert result["summary"]["non_llm_context_recall"] == {"mean": 0.5, "n": 2, "skipped": 0}


def judge_reply(prompt: str) -> str:
    """A well-behaved judge: answers each ragas prompt by the output schema it asks for."""
    if '"title": "StatementGeneratorOutput"' in prompt:
        return '```json\n{"statements": ["Apples are fruit.", "Bananas are blue."]}\n```'
    if '"title": "NLIStatementOutput"' in prompt:
        return json.dumps(
            {
                "statements": [
                    {"statement": "Apples are fruit.", "reason": "in context", "verdict": 1},
                    {"statement": "Bananas are blue.", "reason": "not in context", "verdict": 0},
                ]
            }
        )
    if '"title": "AnswerRelevanceOutput"' in prompt:
        return 'Sure: {"question": "apples bananas", "noncommittal": 0}'
    if '"title": "ContextPrecisionOutput"' in prompt:
        return '{"reason": "useful", "verdict": 1}'
    if '"title": "ContextRecallOutput"' in prompt:
        return json.dumps(
            {
                "classifications": [
                    {"statement": "Apples are fruit.", "reason": "there", "attributed": 1},
                    {"statement": "Kiwis too.", "reason": "absent", "attributed": 0},
                ]
            }
        )
    return "I refuse to answer in JSON."


def test_ragas_llm_metrics_through_the_ledger(tiny, fake_model, monkeypatch):
    def reply(model, messages):
        fake_model.history.append({"model": model, "messages": messages})
        return judge_reply(messages[-1]["content"])

    monkeypatch.setattr(fake_model, "next_reply", reply)
    records = evaluate.evaluate_retrieval(
        "tiny", [{"id": "x", "question": "apples bananas", "reference": "Apples are fruit. Kiwis too."}], k=1
    )["rows"]
    records[0]["answer"] = "Apples are fruit. Bananas are blue."
    evaluate.ragas_metrics(records, judge_model="fake/model")
    scores, row = records[0]["scores"], records[0]
    assert scores["faithfulness"] == 0.5
    assert scores["answer_relevancy"] == pytest.approx(1.0, abs=1e-5)  # generated question == the question
    assert scores["context_precision"] == pytest.approx(1.0)
    assert scores["context_recall"] == 0.5
    assert not row["errors"]
    with session() as s:
        judged = s.exec(select(LlmCall).where(LlmCall.source == "judge")).all()
    assert {c.id for c in judged} == set(row["judge_call_ids"]) and len(judged) == len(row["judge_call_ids"]) >= 5
    assert all(c.params == {"temperature": 0} for c in judged)


def test_an_unparseable_judge_reply_is_an_error_on_that_metric(tiny, fake_model, monkeypatch):
    monkeypatch.setattr(fake_model, "next_reply", lambda model, messages: "no JSON here")
    records = evaluate.evaluate_retrieval(
        "tiny",
        [
            {
                "id": "x",
                "question": "apples",
                "reference": "Apples.",
                "relevant_passages": ["apples bananas cherries grapes"],
            }
        ],
        k=1,
    )["rows"]
    records[0]["answer"] = "Apples."
    evaluate.ragas_metrics(records, judge_model="fake/model")
    row = records[0]
    for name in ("faithfulness", "context_precision", "context_recall"):
        assert row["scores"][name] is None and "not the JSON ragas asked for" in row["errors"][name]
    assert row["scores"]["non_llm_context_recall"] == 1.0  # the offline metrics still ran
    assert row["scores"]["string_similarity"] == 1.0


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="workbench")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_build_list_query_eval_and_compare(tiny, tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "index", "build", str(tiny), "--name", "cli", "--chunk-size", "100", "--overlap", "0"
    )
    assert code == 0 and out.startswith("cli@1: 3 documents, 3 chunks (3 documents embedded, 0 reused)")
    assert "3/3" in err
    code, out, _ = run_cli(
        capsys,
        "index",
        "build",
        str(tiny),
        "--name",
        "cli",
        "--chunker",
        "fixed_chars",
        "--chunk-size",
        "12",
        "--overlap",
        "2",
        "--quiet",
    )
    assert code == 0 and out.startswith("cli@2:")
    code, out, _ = run_cli(capsys, "index", "list")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["index", "version", "status"]
    assert any(line.split()[:4] == ["cli", "1", "ready", "recursive"] for line in lines)
    assert any(line.split()[:4] == ["cli", "2", "ready", "fixed_chars"] for line in lines)
    code, out, _ = run_cli(capsys, "index", "query", "cli@1", "hammers saws", "-k", "2")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["1", out.splitlines()[1].split()[1], "tools.md"]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(r) for r in QA), encoding="utf-8")
    code, out, _ = run_cli(capsys, "index", "eval", "cli@1", str(qa), "-k", "2")
    assert code == 0 and "hit_rate" in out and "cli@1" in out
    hit = next(line for line in out.splitlines() if line.startswith("hit_rate"))
    assert hit.split() == ["hit_rate", "1.000", "3", "1"]
    code, out, _ = run_cli(capsys, "index", "eval", "cli@1", str(qa), "-k", "2", "--compare", "cli@2")
    assert code == 0 and "cli@2" in out and "on hit_rate" in out and "warning: only 3 paired rows" in out
    code, _, err = run_cli(capsys, "index", "build", str(tmp_path / "nowhere"), "--name", "cli")
    assert code == 2 and "No documents to index" in err
    code, _, err = run_cli(capsys, "index", "query", "nope", "hello")
    assert code == 2 and "No index named 'nope'" in err
