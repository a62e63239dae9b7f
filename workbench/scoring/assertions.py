"""Deterministic scorers: string checks, JSON, length, latency/cost, numbers, text metrics,
semantic similarity, restricted Python expressions, and the guardrails used as scorers.

Conventions (so a grid of mixed scorers reads the same everywhere):
- pass/fail scorers return score 1.0 or 0.0;
- metric scorers (bleu, rouge_l, semantic_similarity, a numeric `python` expression)
  return the metric as score, and passed = score >= threshold when a threshold is set,
  else None;
- reasons are short and specific: "missing 'Paris'", "latency 812 ms > 500 ms".

Scorers that compare with a reference read the config's `expected` key when given
(templated like any value, e.g. "{{ answer }}") and otherwise the row's `expected` column.
"""

from __future__ import annotations

import json
import re

from workbench import guardrails
from workbench.scoring import expression as expr_lang
from workbench.scoring.registry import ScoreContext, ScorerError, ScoreResult, metric, passed, register
from workbench.scoring.text_metrics import bleu, rouge_l


def _quote(value: str, limit: int = 40) -> str:
    value = str(value)
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def _flag(config: dict, key: str, default: bool) -> bool:
    value = config.get(key, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _is_template(value) -> bool:
    return isinstance(value, str) and "{{" in value


def _number(config: dict, key: str, default=None):
    value = config.get(key, default)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ScorerError(f"{key} must be a number, not {value!r}") from None


def _reference(config: dict, context: ScoreContext):
    """The reference text: config `expected` (already rendered) or the row's `expected` column."""
    value = config.get("expected")
    if value is None:
        value = (context.row or {}).get("expected")
    if value is None or value == "" or value == []:
        raise ScorerError("no reference: the row has no 'expected' value (or set 'expected' in the scorer)")
    return value


def _text(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _check_number_keys(*keys):
    def check(config):
        problems = []
        for key in keys:
            value = config.get(key)
            if value is None or _is_template(value):
                continue
            if isinstance(value, bool):
                problems.append(f"{key} must be a number")
                continue
            try:
                float(value)
            except (TypeError, ValueError):
                problems.append(f"{key} must be a number, not {value!r}")
        return problems

    return check


def _combine(*checks):
    def check(config):
        problems = []
        for c in checks:
            problems += c(config)
        return problems

    return check


# ---------------------------------------------------------------------------- strings


@register("equals", optional=("value", "case_sensitive", "strip"))
def equals(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """Exact match; value defaults to the row's expected. case_sensitive default true, strip default true."""
    expected = _text(config["value"]) if config.get("value") is not None else _text(_reference(config, context))
    got = output
    if _flag(config, "strip", True):
        expected, got = expected.strip(), got.strip()
    if not _flag(config, "case_sensitive", True):
        expected, got = expected.casefold(), got.casefold()
    if got == expected:
        return passed(True, "equal")
    return passed(False, f"expected {_quote(expected)}, got {_quote(got)}")


def _values(config: dict) -> list[str]:
    value = config.get("value")
    raw = value if isinstance(value, list) else [value]
    values = [str(v) for v in raw if v is not None and str(v) != ""]
    if not values:
        raise ScorerError("'value' is empty")
    return values


def _check_mode(config):
    mode = config.get("mode", "all")
    return [] if mode in ("any", "all") else [f"mode must be 'any' or 'all', not {mode!r}"]


def _contains(config: dict, output: str, negate: bool) -> ScoreResult:
    values = _values(config)
    mode = config.get("mode", "all")
    if mode not in ("any", "all"):
        raise ScorerError(f"mode must be 'any' or 'all', not {mode!r}")
    haystack = output if _flag(config, "case_sensitive", False) else output.casefold()
    present = {v: (v if _flag(config, "case_sensitive", False) else v.casefold()) in haystack for v in values}
    # contains: the quantifier is over "present"; not_contains: over "absent"
    good = [v for v in values if present[v] != negate]
    bad = [v for v in values if present[v] == negate]
    ok = bool(good) if mode == "any" else not bad
    if ok:
        shown = good if mode == "any" else values
        verb = "absent" if negate else "found"
        return passed(True, f"{verb}: " + ", ".join(_quote(v) for v in shown[:5]))
    verb = "found" if negate else "missing"
    return passed(False, f"{verb} " + ", ".join(_quote(v) for v in bad[:5]) + (" ..." if len(bad) > 5 else ""))


@register("contains", required=("value",), optional=("mode", "case_sensitive"), check=_check_mode)
def contains(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """value: a string or a list; mode all (default: every value present) or any (at least one)."""
    return _contains(config, output, negate=False)


@register("not_contains", required=("value",), optional=("mode", "case_sensitive"), check=_check_mode)
def not_contains(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """mode all (default: every value absent, i.e. fail if any is present) or any (at least one absent)."""
    return _contains(config, output, negate=True)


@register("starts_with", required=("value",), optional=("case_sensitive", "strip"))
def starts_with(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """Leading whitespace is ignored unless strip is false; case-insensitive unless case_sensitive."""
    values = _values(config)
    text = output.lstrip() if _flag(config, "strip", True) else output
    if not _flag(config, "case_sensitive", False):
        text = text.casefold()
    for value in values:
        if text.startswith(value if _flag(config, "case_sensitive", False) else value.casefold()):
            return passed(True, f"starts with {_quote(value)}")
    return passed(False, f"starts with {_quote(text[:20])}, not {', '.join(_quote(v) for v in values[:3])}")


REGEX_FLAGS = {
    "i": re.IGNORECASE,
    "m": re.MULTILINE,
    "s": re.DOTALL,
    "x": re.VERBOSE,
    "ignorecase": re.IGNORECASE,
    "multiline": re.MULTILINE,
    "dotall": re.DOTALL,
    "verbose": re.VERBOSE,
}
REGEX_TIMEOUT = 2.0


def _regex_flags(flags) -> int:
    if not flags:
        return 0
    names = (
        flags
        if isinstance(flags, list)
        else (
            [f for f in re.split(r"[\s,|]+", flags) if f]
            if len(flags) > 1 and not set(flags) <= set("imsx")
            else list(flags)
        )
    )
    bits = 0
    for name in names:
        bit = REGEX_FLAGS.get(str(name).lower().removeprefix("re."))
        if bit is None:
            raise ScorerError(
                f"unknown regex flag {name!r}; use i, m, s, x (or IGNORECASE, MULTILINE, DOTALL, VERBOSE)"
            )
        bits |= bit
    return bits


def _check_regex(config):
    pattern = config.get("pattern")
    if _is_template(pattern):
        return []
    import regex as engine  # the engine that runs it, so validation accepts exactly what runs

    try:
        engine.compile(str(pattern), _regex_flags(config.get("flags")))
    except ScorerError as exc:
        return [str(exc)]
    except engine.error as exc:
        return [f"bad regular expression {pattern!r}: {exc}"]
    return []


@register("regex", required=("pattern",), optional=("flags",), check=_check_regex)
def regex(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """re.search semantics, run by the `regex` package with a timeout, so a catastrophically
    backtracking pattern becomes an error after REGEX_TIMEOUT seconds instead of a hung worker."""
    import regex as engine

    pattern, flags = str(config["pattern"]), _regex_flags(config.get("flags"))
    try:
        match = engine.search(pattern, output, flags, timeout=REGEX_TIMEOUT)
    except TimeoutError:
        raise ScorerError(f"regex {pattern!r} took longer than {REGEX_TIMEOUT:g} s") from None
    except Exception as exc:
        raise ScorerError(f"bad regular expression {pattern!r}: {exc}") from None
    if match:
        return passed(True, f"matched {_quote(match.group(0))}")
    return passed(False, f"no match for /{pattern}/")


# ---------------------------------------------------------------------------- JSON

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)```", re.DOTALL)


def extract_json(output: str):
    """The JSON value in an output: the whole output, or the first fenced block holding JSON.

    Models asked for JSON often wrap it in ```json ... ```; that is accepted (a fence with
    no language tag too, one tagged python is skipped). JSON buried in prose without a
    fence is not: "valid JSON" should mean a program can take the output as is, or after
    stripping the fence.
    """
    try:
        return json.loads(output.strip())
    except json.JSONDecodeError as exc:
        error = f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    block_error = None
    for match in FENCE.finditer(output):
        if match.group(1).lower() not in ("", "json", "json5", "jsonc"):
            continue
        try:
            return json.loads(match.group(2))
        except json.JSONDecodeError as exc:
            where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            block_error = block_error or f"invalid JSON in code block: {where}"
    raise ValueError(block_error or error)


@register("json_valid")
def json_valid(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    try:
        value = extract_json(output)
    except ValueError as exc:
        return passed(False, str(exc))
    return passed(True, f"valid JSON {type(value).__name__}".replace("dict", "object").replace("list", "array"))


def _check_schema(config):
    from jsonschema import exceptions, validators

    schema = config.get("schema")
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            return [f"schema is not valid JSON: {exc.msg}"]
    if not isinstance(schema, (dict, bool)):
        return ["schema must be a JSON Schema object"]
    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        return [f"invalid JSON Schema: {exc.message}"]
    return []


@register("json_schema", required=("schema",), check=_check_schema)
def json_schema(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """Validate the output's JSON against a JSON Schema; the reason names the failing path."""
    from jsonschema import validators

    schema = config["schema"]
    if isinstance(schema, str):
        schema = json.loads(schema)
    try:
        value = extract_json(output)
    except ValueError as exc:
        return passed(False, str(exc))
    from jsonschema.exceptions import best_match

    validator = validators.validator_for(schema)(schema)
    errors = list(validator.iter_errors(value))
    if not errors:
        return passed(True, "matches schema")
    first = best_match(errors)
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return passed(False, f"at {first.json_path}: {first.message}{more}")


# ---------------------------------------------------------------------------- length, latency, cost


def _check_length(config):
    return _check_number_keys("min", "max", "min_tokens", "max_tokens")(config)


@register(
    "length",
    optional=("min", "max", "min_tokens", "max_tokens"),
    one_of=("min", "max", "min_tokens", "max_tokens"),
    check=_check_length,
)
def length(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """min/max in characters; min_tokens/max_tokens in tokens.

    Tokens are the model's own count (context.output_tokens) when the call reported one,
    otherwise a tokenizer-free estimate: words plus punctuation marks. The reason says
    which was used.
    """
    problems = []
    chars = len(output)
    lo, hi = _number(config, "min"), _number(config, "max")
    if lo is not None and chars < lo:
        problems.append(f"{chars} chars < {lo:g}")
    if hi is not None and chars > hi:
        problems.append(f"{chars} chars > {hi:g}")
    parts = [f"{chars} chars"]
    lo_t, hi_t = _number(config, "min_tokens"), _number(config, "max_tokens")
    if lo_t is not None or hi_t is not None:
        if context.output_tokens is not None:
            tokens, source = int(context.output_tokens), "reported"
        else:
            tokens, source = guardrails.estimate_tokens(output), "estimated"
        if lo_t is not None and tokens < lo_t:
            problems.append(f"{tokens} tokens ({source}) < {lo_t:g}")
        if hi_t is not None and tokens > hi_t:
            problems.append(f"{tokens} tokens ({source}) > {hi_t:g}")
        parts.append(f"{tokens} tokens ({source})")
    if problems:
        return passed(False, "; ".join(problems))
    return passed(True, ", ".join(parts))


@register("latency", required=("max_ms",), check=_check_number_keys("max_ms"))
def latency(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    limit = _number(config, "max_ms")
    if context.latency_ms is None:
        raise ScorerError("latency unknown for this output (e.g. served from cache)")
    ms = float(context.latency_ms)
    ok = ms <= limit
    return passed(ok, f"latency {ms:.0f} ms {'<=' if ok else '>'} {limit:g} ms")


@register("cost", required=("max_usd",), check=_check_number_keys("max_usd"))
def cost(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    limit = _number(config, "max_usd")
    if context.cost_usd is None:
        raise ScorerError("cost unknown for this output (no price for the model)")
    usd = float(context.cost_usd)
    ok = usd <= limit
    return passed(ok, f"cost ${usd:.6f} {'<=' if ok else '>'} ${limit:g}")


# ---------------------------------------------------------------------------- numbers

NUMBER = re.compile(r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")


def first_number(text: str) -> float | None:
    """The first number in text: handles -3, +2.5, .5, 1,234,567.89, 6.02e23; not digits inside words (v2, A4)."""
    for match in NUMBER.finditer(text.replace("\u2212", "-")):
        raw = match.group(0)
        if not re.search(r"\d", raw):
            continue
        try:
            return float(raw.replace(",", ""))
        except ValueError:
            continue
    return None


@register(
    "numeric",
    optional=("value", "tolerance", "rel_tolerance", "min", "max"),
    one_of=("value", "min", "max"),
    check=_check_number_keys("value", "tolerance", "rel_tolerance", "min", "max"),
)
def numeric(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """Compare the first number in the output with `value` (within tolerance) and/or a min/max range.

    With both tolerance (absolute) and rel_tolerance, the larger allowed difference wins.
    """
    got = first_number(output)
    if got is None:
        return passed(False, f"no number in output {_quote(output, 30)}")
    target = _number(config, "value")
    if target is not None:
        tol = _number(config, "tolerance", 0.0) or 0.0
        rel = _number(config, "rel_tolerance", 0.0) or 0.0
        allowed = max(tol, rel * abs(target), 1e-9)
        if abs(got - target) > allowed:
            return passed(False, f"{got:g} != {target:g} (diff {abs(got - target):g} > {allowed:g})")
    lo, hi = _number(config, "min"), _number(config, "max")
    if lo is not None and got < lo:
        return passed(False, f"{got:g} < min {lo:g}")
    if hi is not None and got > hi:
        return passed(False, f"{got:g} > max {hi:g}")
    return passed(True, f"{got:g} ok" if target is None else f"{got:g} ~ {target:g}")


# ---------------------------------------------------------------------------- reference metrics


def _threshold_check(config):
    return _check_number_keys("threshold")(config)


@register("bleu", optional=("threshold", "expected"), check=_threshold_check)
def bleu_scorer(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """Sentence BLEU (1-4 grams, add-one smoothing) against expected; a list means several references."""
    return metric(bleu(output, _reference(config, context)), config.get("threshold"), "BLEU")


@register("rouge_l", optional=("threshold", "expected"), check=_threshold_check)
def rouge_l_scorer(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """ROUGE-L F1 (longest common subsequence of tokens) against expected."""
    return metric(rouge_l(output, _reference(config, context)), config.get("threshold"), "ROUGE-L")


@register("semantic_similarity", optional=("threshold", "expected", "model"), check=_threshold_check)
def semantic_similarity(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """Cosine similarity of sentence embeddings (all-MiniLM-L6-v2 by default); threshold default 0.7.

    Several references: the best similarity counts.
    """
    from workbench import embeddings

    reference = _reference(config, context)
    references = [_text(r) for r in reference] if isinstance(reference, list) else [_text(reference)]
    vectors = embeddings.embed([output, *references], model=config.get("model") or embeddings.DEFAULT_EMBEDDING_MODEL)
    similarity = max(embeddings.cosine(vectors[0], v) for v in vectors[1:])
    threshold = config.get("threshold", 0.7)
    return metric(similarity, threshold, "similarity")


# ---------------------------------------------------------------------------- python expressions

EXPRESSION_VARIABLES = ("output", "expected", "row", "input", "latency_ms", "cost_usd", "input_tokens", "output_tokens")


def _check_expression(config):
    try:
        expr_lang.compile_expression(config.get("expr"), EXPRESSION_VARIABLES)
    except expr_lang.ExpressionError as exc:
        return [f"expr: {exc}"]
    return _check_number_keys("threshold", "timeout")(config)


@register("python", required=("expr",), optional=("threshold", "timeout"), check=_check_expression)
def python(config: dict, output: str, context: ScoreContext) -> ScoreResult:
    """A restricted Python expression (see workbench.scoring.expression).

    Variables: output, expected (row's expected or None), row (the whole row), input
    (the rendered prompt), latency_ms, cost_usd, input_tokens, output_tokens.
    A bool result is pass/fail; a number is a score (passed = score >= threshold when
    set, else bool(score)). Any other result type is an error, so a typo that returns a
    string cannot silently pass.
    """
    row = context.row or {}
    variables = {
        "output": output,
        "expected": row.get("expected"),
        "row": row,
        "input": context.input_text or "",
        "latency_ms": context.latency_ms,
        "cost_usd": context.cost_usd,
        "input_tokens": context.input_tokens,
        "output_tokens": context.output_tokens,
    }
    compiled = expr_lang.compile_expression(config["expr"], EXPRESSION_VARIABLES)
    timeout = _number(config, "timeout", expr_lang.DEFAULT_TIMEOUT)
    value = expr_lang.evaluate(compiled, variables, timeout=min(timeout, 10.0))
    if isinstance(value, bool):
        return passed(value, "expression is true" if value else "expression is false")
    if isinstance(value, (int, float)):
        threshold = config.get("threshold")
        if threshold is not None:
            return metric(value, threshold, "value")
        return ScoreResult(passed=bool(value), score=float(value), reason=f"value {value:g}")
    raise ScorerError(
        f"expression returned {type(value).__name__} {expr_lang.describe(value)}; "
        "return a bool (pass/fail) or a number (score)"
    )


# ---------------------------------------------------------------------------- guardrails as scorers


def _guard_scorer(guard: str):
    keys = guardrails.GUARD_KEYS[guard]

    def check(config):
        guard_config = {k: v for k, v in config.items() if k in keys}
        return guardrails.validate_guard_config({"type": guard, **guard_config}) + (
            []
            if config.get("target", "output") in ("output", "input")
            else [f"target must be 'output' or 'input', not {config.get('target')!r}"]
        )

    def scorer(config: dict, output: str, context: ScoreContext) -> ScoreResult:
        target = config.get("target", "output")
        if target not in ("output", "input"):
            raise ScorerError(f"target must be 'output' or 'input', not {target!r}")
        text = output if target == "output" else (context.input_text or "")
        guard_config = {"type": guard, **{k: v for k, v in config.items() if k in keys}}
        findings = guardrails.run_guard(text, guard_config)
        if not findings:
            return passed(True, f"no {guard.replace('_', ' ')} found")
        shown = "; ".join(f.describe() for f in findings[:3])
        more = f" (+{len(findings) - 3} more)" if len(findings) > 3 else ""
        return passed(False, f"found {shown}{more}")

    scorer.__name__ = f"guard_{guard}"
    scorer.__doc__ = (
        f"Fails when the `{guard}` guardrail finds something in the output (or in the input with target: input)."
    )
    one_of = ("max_chars", "max_tokens") if guard == "max_length" else ()
    required = ("words",) if guard == "banned_words" else ()
    optional = tuple(k for k in keys if k not in required and k not in one_of) + ("target",)
    return register(f"guard_{guard}", required=required, optional=optional, one_of=one_of, check=check)(scorer)


for _guard in guardrails.GUARD_TYPES:
    _guard_scorer(_guard)
