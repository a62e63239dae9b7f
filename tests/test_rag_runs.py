"""RAG evals as runs: retrieval fills {{context}} per row and retrieval metrics are per-row scores."""

import json

import pytest

from workbench import datasets, embeddings, prompts, runs
from workbench.errors import WorkbenchError
from workbench.jobs import runs as run_jobs
from workbench.rag import index

QA = [
    {"id": "a", "question": "apples bananas", "expected": "fruit", "source_documents": ["fruit.md"]},
    {"id": "b", "question": "engines wheels apples", "expected": "fruit", "source_documents": ["fruit.md"]},
    {"id": "c", "question": "what is the weather", "expected": "unknown", "source_documents": []},
]


@pytest.fixture
def rag_setup(tmp_path, fake_model):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "cars.md").write_text("engines wheels brakes gears\n", encoding="utf-8")
    (folder / "fruit.md").write_text("apples bananas cherries grapes\n", encoding="utf-8")
    with embeddings.use_embedder(embeddings.hashing_embedder(dim=1024)):
        index.build_index("tiny", folder)
        prompts.save_version("rag", template="Context:\n{{ context }}\nQuestion: {{ question }}", model="fake/model")
        datasets.save_version("qa", datasets.parse_pasted("\n".join(json.dumps(r) for r in QA)))
        yield fake_model


def config(**rag):
    return {
        "prompts": ["rag@1"],
        "dataset": "qa",
        "models": ["fake/model"],
        "concurrency": 1,
        "rag": {"index": "tiny", "k": 2, **rag},
        "scorers": [{"type": "retrieval", "metric": "hit_rate", "k": 1}, {"type": "retrieval", "metric": "mrr"}],
    }


def test_rag_run_retrieves_context_and_scores_retrieval_per_row(rag_setup):
    run_id = runs.create_run(runs.plan_from_config(config()))
    assert run_jobs.run_now(run_id) == "done"
    sent = rag_setup.history[0]["messages"][0]["content"]
    assert "(fruit.md)\napples bananas cherries grapes" in sent and "Question: apples bananas" in sent
    rows = {r["row_key"]: r for r in runs.results(run_id, limit=None)}
    assert rows["a"]["retrieval_hit_rate.score"] == 1.0  # fruit ranked first
    assert rows["b"]["retrieval_hit_rate.score"] == 0.0 and rows["b"]["retrieval_mrr.score"] == 0.5  # cars first
    assert rows["c"]["retrieval_mrr.score"] is None and "unanswerable" in rows["c"]["retrieval_mrr.reason"]
    summary = {s["scorer"]: s for s in runs.summary(run_id)["scorers"]}
    assert summary["retrieval_mrr"]["mean"] == pytest.approx(0.75)
    assert runs.get_run(run_id).config["rag"]["index"] == "tiny@1"


def test_rag_section_is_validated_before_any_call(rag_setup):
    with pytest.raises(WorkbenchError, match="rag.index"):
        runs.plan_from_config(config(index="nope"))
    with pytest.raises(WorkbenchError, match="question_column"):
        runs.plan_from_config(config(question_column="query"))
    plain = config()
    del plain["rag"]
    with pytest.raises(WorkbenchError, match="context"):  # without rag:, {{context}} must be a column
        runs.plan_from_config(plain)
    assert rag_setup.history == []
