"""RAG answers and their evaluation: retrieval metrics, generated answers, ragas metrics, A/B.

Every function works on per-row *records*, plain dicts that can later be stored as run
items: row_key, question, reference, retrieved chunks (id, doc, offsets, score, text),
`scores` (one flat {metric: value or None}), the answer and its ledger `call_id`, judge
call ids, and `errors` ({metric or "answer": message}). Errors are data: a failed answer
or an unparseable judge reply leaves that metric None on that row and the rest goes on.

* Retrieval metrics come from `retrieval_metrics` (hit_rate, precision, recall, mrr,
  ndcg at k); a row with nothing marked relevant gets None and is skipped and counted.
* Answers: a RAG prompt version with `{{context}}` and `{{question}}`, called through the
  ledger (`models.complete`, source "rag") with bounded concurrency.
* ragas 0.4.3 metrics. Offline, with no judge: `non_llm_context_precision` and
  `non_llm_context_recall` (retrieved chunks against the row's relevant_passages; the
  string similarity is aligned to the passage's best window in the chunk, see
  `_aligned_similarity`), and, for generated answers, `semantic_similarity` (our
  embeddings) and `string_similarity` (Levenshtein) against the reference. With a judge
  model: `faithfulness`, `answer_relevancy`, `context_precision` and `context_recall`, run by
  ragas' own prompts through `LedgerLLM`, which sends each prompt through our ledger
  (source "judge") and parses the JSON reply into ragas' pydantic model, so judge calls
  are cached, priced and visible like every other call.
* `compare` pairs two index versions on the same QA rows with `stats.compare_variants`
  (McNemar for hit rate, paired permutation for the rest) and states a verdict per metric.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.rag import index
from workbench.rag.retrieval_metrics import METRICS as RETRIEVAL_METRICS
from workbench.rag.retrieval_metrics import mean_scores, retrieval_scores

OFFLINE_METRICS = ("non_llm_context_precision", "non_llm_context_recall", "semantic_similarity", "string_similarity")
JUDGE_METRICS = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")
DEFAULT_QA = "rag_qa.jsonl"
PASSAGE_THRESHOLD = 0.8  # aligned similarity at which a chunk counts as holding a passage

Progress = Callable[[int, int, str], None]


# --- QA sets -------------------------------------------------------------------------


def load_qa(source) -> list[dict]:
    """QA rows from a JSONL (or JSON list) path, bytes, or a list of dicts; each needs a question.

    The row key is the row's `id` when it has one, else `row-N`; keys pair rows across
    index versions, so they must be unique.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise WorkbenchError(f"QA file not found: {path}")
        source = path.read_bytes()
    if isinstance(source, bytes):
        text = source.decode("utf-8-sig")
        if text.lstrip().startswith("["):
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as exc:
                raise WorkbenchError(f"QA file is not valid JSON: {exc}") from None
        else:
            rows = []
            for number, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise WorkbenchError(f"QA file line {number} is not valid JSON: {exc.msg}") from None
        source = rows
    rows, seen = [], set()
    for number, row in enumerate(source, 1):
        if not isinstance(row, dict) or not str(row.get("question") or "").strip():
            raise WorkbenchError(f"QA row {number} has no question.")
        key = str(row.get("id") or f"row-{number}")
        if key in seen:
            raise WorkbenchError(f"QA row {number}: id {key!r} is used twice.")
        seen.add(key)
        rows.append({**row, "row_key": key})
    if not rows:
        raise WorkbenchError("The QA set is empty.")
    return rows


def default_qa_path() -> Path:
    from workbench import config

    return config.SAMPLE_DATA / DEFAULT_QA


# --- retrieval -----------------------------------------------------------------------


def _record(row: dict, retrieved: list[dict], k: int) -> dict:
    judged = retrieval_scores(retrieved, row, k)
    return {
        "row_key": row["row_key"],
        "question": row["question"],
        "reference": row.get("reference"),
        "relevant_passages": list(row.get("relevant_passages") or []),
        "retrieved": retrieved,
        "chunk_ids": [c["chunk_id"] for c in retrieved],
        "retrieval": {key: judged[key] for key in ("k", "mode", "n_relevant", "relevant")},
        "scores": {name: judged[name] for name in RETRIEVAL_METRICS},
        "answer": None,
        "call_id": None,
        "judge_call_ids": [],
        "errors": {},
    }


def evaluate_retrieval(index_ref, qa, k: int = 5) -> dict:
    """Retrieve top-k chunks for every QA row of one index version and score them."""
    version = index.resolve(index_ref)
    rows = load_qa(qa)
    found = index.query_many(version, [row["question"] for row in rows], k)
    records = [_record(row, retrieved, k) for row, retrieved in zip(rows, found)]
    return {
        "index": index.label(version),
        "version_id": version.id,
        "k": k,
        "config": _public(version.config),
        "rows": records,
        "summary": summarize(records),
    }


def _public(config: dict) -> dict:
    return {key: config.get(key) for key in ("chunker", "chunk_size", "overlap", "embedding_model")}


def summarize(records: list[dict]) -> dict:
    """{metric: {mean, n, skipped}} over the rows that have a value for it."""
    names = list(RETRIEVAL_METRICS) + sorted({m for r in records for m in r["scores"]} - set(RETRIEVAL_METRICS))
    retrieval = mean_scores(r["scores"] for r in records)
    out = {}
    for name in names:
        values = [r["scores"].get(name) for r in records if r["scores"].get(name) is not None]
        mean = retrieval[name] if name in RETRIEVAL_METRICS else (sum(values) / len(values) if values else None)
        out[name] = {"mean": mean, "n": len(values), "skipped": len(records) - len(values)}
    return out


# --- answers -------------------------------------------------------------------------


def format_context(chunks: list[dict]) -> str:
    """Numbered chunks with their source document: what `{{context}}` becomes."""
    return "\n\n".join(f"[{c.get('rank', i)}] ({c['doc_id']})\n{c['text']}" for i, c in enumerate(chunks, 1))


def rag_prompt(prompt_ref):
    """The prompt version, checked to take exactly the variables context and question."""
    from workbench import prompts

    version = prompts.resolve(prompt_ref) if isinstance(prompt_ref, str) else prompt_ref
    variables = set(version.variables or [])
    if not {"context", "question"} <= variables or variables - {"context", "question"}:
        raise WorkbenchError(
            f"A RAG prompt uses {{{{context}}}} and {{{{question}}}} and no other variables; "
            f"this version uses: {', '.join(sorted(variables)) or 'none'}."
        )
    return version


def rag_prompt_refs() -> list[str]:
    """`name@version` of every prompt version that takes exactly {{context}} and {{question}}."""
    from workbench import prompts

    return [
        f"{p['name']}@{v.version}"
        for p in prompts.list_prompts()
        for v in prompts.versions(p["name"])
        if set(v.variables or []) == {"context", "question"}
    ]


async def _answer(spec, version, record: dict, semaphore: asyncio.Semaphore) -> None:
    from workbench import prompts
    from workbench.models import client as models

    async with semaphore:
        messages = prompts.render_messages(
            version, {"context": format_context(record["retrieved"]), "question": record["question"]}
        )
        result, call_id = await models.complete(spec, messages, source="rag", prompt_version_id=version.id)
    record["call_id"] = call_id
    if result.ok:
        record["answer"] = result.output
    else:
        record["errors"]["answer"] = f"{result.error_type}: {result.error}"


def generate_answers(records: list[dict], prompt_ref, model: str | None = None, concurrency: int = 4) -> list[dict]:
    """Fill each record's answer and call_id from a RAG prompt version (its own model unless `model`)."""
    from workbench.llm import ModelSpec

    version = rag_prompt(prompt_ref)
    spec = ModelSpec(id=model or version.model, params=dict(version.params))

    async def run():
        semaphore = asyncio.Semaphore(max(1, concurrency))
        await asyncio.gather(*(_answer(spec, version, r, semaphore) for r in records))

    asyncio.run(run())
    return records


def answer_question(index_ref, question: str, prompt_ref=None, k: int = 5, model: str | None = None) -> dict:
    """Retrieve top-k chunks, and with a prompt also generate an answer: {chunks, answer, call_id, error}."""
    chunks = index.query(index_ref, question, k)
    record: dict[str, Any] = {"question": question, "retrieved": chunks, "answer": None, "call_id": None, "errors": {}}
    if prompt_ref:
        generate_answers([record], prompt_ref, model=model, concurrency=1)
    return {
        "chunks": chunks,
        "answer": record["answer"],
        "call_id": record["call_id"],
        "error": record["errors"].get("answer"),
    }


# --- ragas ---------------------------------------------------------------------------


def _json_text(output: str) -> str:
    """The JSON object in a model reply that may wrap it in prose or a ``` fence."""
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", output, re.DOTALL)
    if fenced:
        return fenced.group(1)
    start, end = output.find("{"), output.rfind("}")
    return output[start : end + 1] if start != -1 and end > start else output


def ledger_llm(judge_model: str, call_ids: list | None = None):
    """A ragas InstructorBaseRagasLLM whose calls go through our ledger; call ids are appended to call_ids."""
    from ragas.llms.base import InstructorBaseRagasLLM  # lazy: ragas is heavy

    from workbench.llm import ModelSpec
    from workbench.models import client as models

    spec = ModelSpec.parse(judge_model)
    if "temperature" not in spec.params:
        spec.params = {**spec.params, "temperature": 0}

    class LedgerLLM(InstructorBaseRagasLLM):
        model = spec.id

        async def agenerate(self, prompt, response_model):
            result, call_id = await models.complete(spec, [{"role": "user", "content": prompt}], source="judge")
            if call_ids is not None:
                call_ids.append(call_id)
            if not result.ok:
                raise WorkbenchError(f"judge call failed ({result.error_type}): {result.error}")
            try:
                return response_model.model_validate_json(_json_text(result.output or ""))
            except ValueError as exc:
                first = str(exc).splitlines()[0]
                raise WorkbenchError(
                    f"judge reply is not the JSON ragas asked for ({first}): {(result.output or '')[:200]!r}"
                ) from None

        def generate(self, prompt, response_model):
            return asyncio.run(self.agenerate(prompt, response_model))

    return LedgerLLM()


def ragas_embeddings(model: str):
    """Our embeddings (bundled MiniLM, a local model or a hosted one) as a ragas BaseRagasEmbedding."""
    from ragas.embeddings.base import BaseRagasEmbedding  # lazy: ragas is heavy

    class WorkbenchEmbeddings(BaseRagasEmbedding):
        def embed_text(self, text, **kwargs):
            return index.embed_texts([text], model)[0].tolist()

        async def aembed_text(self, text, **kwargs):
            return await asyncio.to_thread(self.embed_text, text)

        def embed_texts(self, texts, **kwargs):
            return index.embed_texts(list(texts), model).tolist()

        async def aembed_texts(self, texts, **kwargs):
            return await asyncio.to_thread(self.embed_texts, texts)

    return WorkbenchEmbeddings()


def _value(result) -> float | None:
    value = getattr(result, "value", result)
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


async def _ragas_row(record: dict, metrics: dict, judge_model: str | None, embed, semaphore) -> None:
    """All ragas metrics that apply to one record; a metric that cannot apply stays absent."""
    from ragas.dataset_schema import SingleTurnSample
    from ragas.metrics.collections import AnswerRelevancy, ContextPrecisionWithReference, ContextRecall, Faithfulness

    contexts = [c["text"] for c in record["retrieved"]]
    passages, reference, answer = record.get("relevant_passages"), record.get("reference"), record.get("answer")
    jobs = {}
    if passages and contexts:
        sample = SingleTurnSample(retrieved_contexts=contexts, reference_contexts=passages)
        jobs["non_llm_context_precision"] = lambda: metrics["precision"].single_turn_ascore(sample)
        jobs["non_llm_context_recall"] = lambda: metrics["recall"].single_turn_ascore(sample)
    if answer and reference:
        jobs["semantic_similarity"] = lambda: metrics["semantic"].ascore(reference=reference, response=answer)
        jobs["string_similarity"] = lambda: metrics["string"].ascore(reference=reference, response=answer)
    if judge_model:
        llm = ledger_llm(judge_model, record["judge_call_ids"])
        question = record["question"]
        if answer and contexts:
            jobs["faithfulness"] = lambda: Faithfulness(llm=llm).ascore(
                user_input=question, response=answer, retrieved_contexts=contexts
            )
        if answer:
            jobs["answer_relevancy"] = lambda: AnswerRelevancy(llm=llm, embeddings=embed).ascore(
                user_input=question, response=answer
            )
        if reference and contexts:
            jobs["context_precision"] = lambda: ContextPrecisionWithReference(llm=llm).ascore(
                user_input=question, reference=reference, retrieved_contexts=contexts
            )
            jobs["context_recall"] = lambda: ContextRecall(llm=llm).ascore(
                user_input=question, retrieved_contexts=contexts, reference=reference
            )
    async with semaphore:
        for name, job in jobs.items():
            try:
                record["scores"][name] = _value(await job())
            except Exception as exc:  # one metric's failure is stored on the row; the others go on
                record["scores"][name] = None
                record["errors"][name] = str(exc) if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {exc}"


def _aligned_similarity():
    """ragas' string similarity, but of the best-aligned part of the chunk (rapidfuzz partial_ratio).

    ragas compares whole strings, and the Levenshtein similarity of an 800-character chunk
    and the one-sentence passage it contains is far below any threshold, so its non-LLM
    context metrics would be 0 for every chunk. Aligning the passage with its best window
    in the chunk (case and punctuation ignored) separates the sample corpus cleanly: chunks
    holding a passage score 1.0, others at most about 0.7.
    """
    from ragas.metrics._string import NonLLMStringSimilarity
    from rapidfuzz import fuzz, utils

    class AlignedStringSimilarity(NonLLMStringSimilarity):
        async def _single_turn_ascore(self, sample, callbacks):
            return fuzz.partial_ratio(sample.reference, sample.response, processor=utils.default_process) / 100.0

    return AlignedStringSimilarity(name="aligned_string_similarity")


def ragas_metrics(
    records: list[dict],
    judge_model: str | None = None,
    embedding_model: str = index.DEFAULT_EMBEDDING_MODEL,
    concurrency: int = 4,
) -> list[dict]:
    """Add ragas scores to records (see the module docstring for which run when)."""
    try:
        from ragas.metrics._context_precision import NonLLMContextPrecisionWithReference
        from ragas.metrics._context_recall import NonLLMContextRecall
        from ragas.metrics.collections import NonLLMStringSimilarity, SemanticSimilarity
    except ImportError as exc:
        raise WorkbenchError(f"ragas metrics are not available: {exc}") from None
    embed = ragas_embeddings(embedding_model)
    try:
        aligned = _aligned_similarity()
        recall = NonLLMContextRecall(threshold=PASSAGE_THRESHOLD)
        recall._distance_measure = aligned  # its setter only takes ragas' whole-string measures
        metrics = {
            "precision": NonLLMContextPrecisionWithReference(distance_measure=aligned, threshold=PASSAGE_THRESHOLD),
            "recall": recall,
            "semantic": SemanticSimilarity(embeddings=embed),
            "string": NonLLMStringSimilarity(),
        }
    except ImportError as exc:  # rapidfuzz, for the string distances
        raise WorkbenchError(f"ragas' non-LLM metrics need an extra package: {exc}") from None

    async def run():
        semaphore = asyncio.Semaphore(max(1, concurrency))
        await asyncio.gather(*(_ragas_row(r, metrics, judge_model, embed, semaphore) for r in records))

    asyncio.run(run())
    return records


# --- one evaluation, and a comparison ------------------------------------------------


def evaluate(
    index_ref,
    qa=None,
    k: int = 5,
    prompt=None,
    model: str | None = None,
    judge: str | None = None,
    ragas: bool | None = None,
    concurrency: int = 4,
    on_progress: Progress | None = None,
) -> dict:
    """Retrieval metrics; with `prompt`, answers; with ragas (default: when answering or judging), ragas metrics."""

    def step(done, message):
        if on_progress:
            on_progress(done, 3, message)

    step(0, "retrieving")
    result = evaluate_retrieval(index_ref, default_qa_path() if qa is None else qa, k)
    if prompt:
        step(1, "generating answers")
        generate_answers(result["rows"], prompt, model=model, concurrency=concurrency)
        result["prompt"] = _prompt_label(prompt)
    if ragas if ragas is not None else bool(prompt or judge):
        step(2, "ragas metrics")
        ragas_metrics(
            result["rows"],
            judge_model=judge,
            embedding_model=result["config"]["embedding_model"],
            concurrency=concurrency,
        )
        result["judge"] = judge
    result["summary"] = summarize(result["rows"])
    step(3, "done")
    return result


def _prompt_label(prompt_ref) -> str:
    if isinstance(prompt_ref, str):
        return prompt_ref
    from workbench import prompts

    return f"{prompts.prompt_name_of(prompt_ref)}@{prompt_ref.version}"


def compare_results(a: dict, b: dict, alpha: float = 0.05) -> list[dict]:
    """Per metric, B against baseline A paired by row key: means, difference, CI, p, verdict, warnings."""
    from workbench import stats

    if a["index"] == b["index"]:
        raise WorkbenchError(f"Pick two different index versions to compare (both are {a['index']}).")
    names = [n for n in a["summary"] if n in b["summary"]]
    out = []
    for name in names:
        values = {
            a["index"]: {r["row_key"]: r["scores"].get(name) for r in a["rows"]},
            b["index"]: {r["row_key"]: r["scores"].get(name) for r in b["rows"]},
        }
        # A row with no value on either side (an unanswerable question) is not applicable,
        # not dropped: only one-sided gaps (an error on one side) count as dropped.
        keys = {key for side in values.values() for key, value in side.items() if value is not None}
        values = {variant: {key: v for key, v in side.items() if key in keys} for variant, side in values.items()}
        kind = "pass" if name == "hit_rate" else "score"
        result = stats.compare_variants(values, baseline=a["index"], kind=kind)[0]
        out.append(
            {
                "metric": name,
                "n": result.n,
                "dropped": result.dropped,
                a["index"]: result.mean_a,
                b["index"]: result.mean_b,
                "diff": result.diff,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
                "p_value": result.p_value,
                "test": result.test,
                "wins": result.wins,
                "ties": result.ties,
                "losses": result.losses,
                "verdict": stats.verdict(name, result, alpha),
                "warnings": stats.warnings_for(result, alpha, scale=1.0),
            }
        )
    return out


def compare(index_a, index_b, qa=None, k: int = 5, **options) -> dict:
    """Evaluate two index versions on the same QA rows and compare them metric by metric."""
    a = evaluate(index_a, qa, k, **options)
    b = evaluate(index_b, qa, k, **options)
    return {"a": a, "b": b, "metrics": compare_results(a, b)}
