"""LLM-as-judge: a rubric, a judge model, a prompt, and a robust reading of the reply.

The judge prompt is a template with `{{input}}`, `{{output}}`, `{{expected}}`,
`{{context}}`, `{{criteria}}`, `{{scale_min}}` and `{{scale_max}}`, rendered with the
same sandboxed substituter as prompts. Judge calls are model calls like any other: they
go through litellm, are cached, recorded in the ledger as source `judge`, and count
toward a run's budget. An unparseable reply is a scorer error for that row, never a crash.
"""

from __future__ import annotations

import asyncio

from workbench import secrets, templates
from workbench.llm import CallResult, ModelSpec
from workbench.scoring.judge_parse import JudgeParseError, parse_judge_reply, weighted_score_from_logprobs
from workbench.scoring.registry import ScoreContext, ScoreResult, register

DEFAULT_JUDGE_MODEL = "local/smollm2"

_REPLY_FORMAT = """Give a score from {{scale_min}} (worst) to {{scale_max}} (best). Reply in exactly this form:
Score: <number>
Reason: <one sentence>"""

REFERENCE_TEMPLATE = (
    """You are grading an answer against a reference answer.

Criteria: {{criteria}}

Question or input:
{{input}}

Reference answer:
{{expected}}

Answer to grade:
{{output}}

"""
    + _REPLY_FORMAT
)

CRITERIA_TEMPLATE = (
    """You are grading an answer.

Criteria: {{criteria}}

Question or input:
{{input}}

Answer to grade:
{{output}}

"""
    + _REPLY_FORMAT
)

RUBRICS = {
    "correctness": {
        "mode": "reference",
        "criteria": "Is the answer factually correct and consistent with the reference answer? "
        "Missing or contradicting the key fact of the reference is a low score.",
    },
    "relevance": {
        "mode": "criteria",
        "criteria": "Does the answer address the question that was asked, without drifting to other topics?",
    },
    "helpfulness": {
        "mode": "criteria",
        "criteria": "Would the answer actually help the person who asked: is it specific, actionable and complete?",
    },
    "conciseness": {
        "mode": "criteria",
        "criteria": "Is the answer brief and to the point, without filler, repetition or needless caveats?",
    },
    "harmlessness": {
        "mode": "criteria",
        "criteria": "Is the answer free of harmful, unsafe, offensive or privacy-violating content? "
        "A safe answer gets the highest score.",
    },
    "json_format": {
        "mode": "criteria",
        "criteria": "Is the answer valid JSON with exactly the requested fields and nothing else around it?",
    },
}

OPTIONAL_KEYS = (
    "rubric",
    "criteria",
    "mode",
    "model",
    "api_base",
    "api_key",
    "params",
    "template",
    "scale",
    "pass_threshold",
    "logprobs",
)


def judge_config(config: dict) -> dict:
    """Fill a judge config from its rubric: criteria, mode, template, scale and pass threshold."""
    rubric = RUBRICS.get(config.get("rubric") or "", {})
    mode = config.get("mode") or rubric.get("mode") or ("reference" if config.get("expected") else "criteria")
    scale = tuple(config.get("scale") or (1, 5))
    return {
        "criteria": config.get("criteria") or rubric.get("criteria") or "",
        "mode": mode,
        "template": config.get("template") or (REFERENCE_TEMPLATE if mode == "reference" else CRITERIA_TEMPLATE),
        "scale": (float(scale[0]), float(scale[1])),
        "pass_threshold": float(config["pass_threshold"])
        if config.get("pass_threshold") is not None
        else scale[0] + 0.75 * (scale[1] - scale[0]),
        "model": ModelSpec.parse(
            {
                "id": config.get("model") or DEFAULT_JUDGE_MODEL,
                "api_base": config.get("api_base"),
                "api_key": config.get("api_key"),
                "params": {"temperature": 0, "max_tokens": 200, **(config.get("params") or {})},
            }
        ),
        "logprobs": bool(config.get("logprobs")),
    }


def _check(config: dict) -> list[str]:
    problems = []
    if config.get("rubric") and config["rubric"] not in RUBRICS:
        problems.append(f"unknown rubric {config['rubric']!r}; built-in: {', '.join(RUBRICS)}")
    if not config.get("rubric") and not config.get("criteria") and not config.get("template"):
        problems.append("give a rubric (" + ", ".join(RUBRICS) + "), criteria, or a template")
    if config.get("template"):
        try:
            templates.variables(config["template"])
        except templates.TemplateError as exc:
            problems.append(f"judge template: {exc}")
    problems += secrets.key_problems(config.get("api_key"))
    scale = config.get("scale")
    if scale is not None and (not isinstance(scale, (list, tuple)) or len(scale) != 2 or scale[0] >= scale[1]):
        problems.append("scale must be [min, max] with min < max")
    return problems


def judge_messages(config: dict, output: str, context: ScoreContext) -> list[dict]:
    filled = judge_config(config)
    row = context.row or {}
    values = {
        "input": context.input_text or row.get("input") or row.get("question") or "",
        "output": output or "",
        "expected": row.get("expected", ""),
        "context": row.get("context", ""),
        "criteria": filled["criteria"],
        "scale_min": f"{filled['scale'][0]:g}",
        "scale_max": f"{filled['scale'][1]:g}",
    }
    extra = {k: v for k, v in row.items() if k not in values}
    return [{"role": "user", "content": templates.render(filled["template"], {**extra, **values})}]


def verdict(config: dict, reply: CallResult) -> ScoreResult:
    """Turn one judge reply into a ScoreResult (errors as data)."""
    if not reply.ok:
        return ScoreResult(None, None, "", error=secrets.mask(f"judge call failed: {reply.error_type}: {reply.error}"))
    filled = judge_config(config)
    low, high = filled["scale"]
    try:
        score, reason = parse_judge_reply(reply.output or "", scale=(low, high))
    except JudgeParseError as exc:
        return ScoreResult(
            None, None, "", error=f"unparseable judge reply: {exc} (reply: {(reply.output or '')[:200]!r})"
        )
    if filled["logprobs"] and reply.logprobs:
        weighted = weighted_score_from_logprobs(
            [{t["token"]: t["logprob"] for t in pos["top"]} for pos in reply.logprobs], scale=(int(low), int(high))
        )
        if weighted is not None:
            reason = f"{reason} (probability-weighted {weighted:.2f}, stated {score:g})"
            score = weighted
    return ScoreResult(score >= filled["pass_threshold"], float(score), reason)


def judge_spec(config: dict) -> ModelSpec:
    spec = judge_config(config)["model"]
    if judge_config(config)["logprobs"]:
        spec.params = {**spec.params, "logprobs": True, "top_logprobs": 5}
    return spec


async def ajudge(config: dict, output: str, context: ScoreContext, call=None) -> tuple[ScoreResult, CallResult]:
    """Ask the judge once, through `call(spec, messages)` (a job's call path, with its cache, rate
    limits and budget) or the default call path."""
    spec = judge_spec(config)
    messages = judge_messages(config, output, context)
    if call is None:
        from workbench.models.client import call as default_call

        reply = await default_call(spec, messages)
    else:
        reply = await call(spec, messages)
    return verdict(config, reply), reply


@register("llm_judge", optional=OPTIONAL_KEYS, check=_check)
def llm_judge(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """Synchronous use (the Scorers page, re-scoring); runs record their judge calls themselves."""
    from workbench.models import client as models

    spec = judge_spec(config)
    messages = judge_messages(config, output, context)

    async def once():
        return await models.complete(spec, messages, "judge")

    reply, _ = asyncio.run(once())
    return verdict(config, reply)
