"""Reading scores out of LLM judge replies.

Judges are asked for JSON, and mostly comply, but replies also come as "Score: 4/5",
"**Rating:** 4", a bare "4" on the last line, or JSON wrapped in a code fence and prose.
A parse that guesses wrong is worse than one that fails: a wrong score silently moves
an average, a failure shows up as an error cell the user can look at. So:

- candidates are tried in order of explicitness: a JSON object with a score key, then a
  labelled score ("Score: 4", "rating of 4", "Final score = 4/5"), then "4 out of 5" /
  "4/5", then a number alone on its own line; the first kind that yields a candidate
  decides, and within a kind the *last* occurrence wins (judges reason first and
  conclude last);
- a number outside the scale is an error, not clamped; "8/10" on a 1-5 scale is an
  error, not rescaled;
- a reply without any of these ("I think it's good", "It has 3 issues") is an error.
"""

from __future__ import annotations

import json
import math
import re


class JudgeParseError(ValueError):
    """The judge reply holds no usable score or verdict; the message says why."""


NUM = r"[-+]?\d+(?:\.\d+)?"
SCORE_KEYS = ("score", "rating", "grade", "overall_score", "final_score", "overall", "overall_rating", "points")
REASON_KEYS = (
    "reason",
    "reasoning",
    "explanation",
    "rationale",
    "justification",
    "feedback",
    "comment",
    "comments",
    "analysis",
    "critique",
)
LABELLED = re.compile(
    r"(?:^|[^\w])(?:final\s+|overall\s+|total\s+)?(?:score|rating|grade)\b[\"']?\s*\**\s*"
    r"(?:\((?:\s*\d+\s*-\s*\d+\s*)\)\s*)?(?:[:=]|is|of|-)\s*\**\s*"
    r"(" + NUM + r")(?:\s*(?:/|out\s+of)\s*(" + NUM + r"))?(?![\d.]*\w)",
    re.IGNORECASE,
)
OUT_OF = re.compile(r"(?<![\w./])(" + NUM + r")\s*(?:/|out\s+of)\s*(" + NUM + r")(?![\d.]*\w|/\d)", re.IGNORECASE)
ALONE = re.compile(r"^[ \t>*_#`\[(]*(" + NUM + r")[ \t*_`\])]*\.?[ \t]*$", re.MULTILINE)
REASON_LABEL = re.compile(
    r"(?:^|\n)\s*\**(?:reason|reasoning|explanation|rationale|justification)\**\s*[:\-]\**\s*"
    r"(.+?)(?=\n\s*\**(?:score|rating|grade)\b|\Z)",
    re.IGNORECASE | re.DOTALL,
)


def _check_scale(scale) -> tuple[float, float]:
    low, high = scale
    if not low < high:
        raise ValueError(f"bad scale {scale!r}: the low end must be below the high end")
    return float(low), float(high)


def _json_objects(text: str):
    """Every JSON object in the text, in order: fenced or bare, nested ones too."""
    decoder = json.JSONDecoder()
    position = 0
    while True:
        start = text.find("{", position)
        if start == -1:
            return
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        if isinstance(value, dict):
            yield value
        position = end


def _with_nested(value: dict):
    """The object, then the objects inside it, breadth first: a top-level key beats a nested one."""
    queue = [value]
    while queue:
        current = queue.pop(0)
        yield current
        queue.extend(child for child in current.values() if isinstance(child, dict))


def _lookup(obj: dict, keys) -> object:
    lowered = {str(k).lower().strip(): v for k, v in obj.items()}
    for key in keys:
        if key in lowered:
            return lowered[key]
    return None


def _json_score(value) -> tuple[float, float | None] | None:
    """A JSON score value: 4, 4.5, "4", "4/5"; returns (score, denominator or None)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value), None
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(" + NUM + r")\s*(?:(?:/|out\s+of)\s*(" + NUM + r"))?\s*", value, re.IGNORECASE)
        if match:
            return float(match.group(1)), float(match.group(2)) if match.group(2) else None
    return None


def _validated(score: float, denominator: float | None, low: float, high: float, source: str) -> float:
    if denominator is not None and denominator != high:
        raise JudgeParseError(f"the judge scored {score:g}/{denominator:g} but the scale is {low:g}-{high:g}")
    if not math.isfinite(score) or not low <= score <= high:
        raise JudgeParseError(f"the judge's score {score:g} ({source}) is outside the scale {low:g}-{high:g}")
    return score


JSON_REASON = re.compile(r'"(?:' + "|".join(REASON_KEYS) + r')"\s*:\s*"((?:[^"\\]|\\.)*)', re.IGNORECASE)


def _reason_from_text(text: str, span: tuple[int, int]) -> str:
    in_json = JSON_REASON.search(text)  # a truncated or slightly broken JSON object
    if in_json:
        try:
            return json.loads('"' + in_json.group(1) + '"').strip()
        except json.JSONDecodeError:
            return in_json.group(1).strip()
    labelled = REASON_LABEL.search(text)
    if labelled:
        return labelled.group(1).strip()
    line_start = text.rfind("\n", 0, span[0]) + 1
    line_end = text.find("\n", span[1])
    line_end = len(text) if line_end == -1 else line_end
    rest = (text[:line_start] + text[line_end:]).strip()
    rest = re.sub(r"```\w*\s*```", "", rest).strip()
    return rest


def parse_judge_reply(text: str, scale=(1, 5)) -> tuple[float, str]:
    """(score, reason) from a judge reply; JudgeParseError when there is no usable score."""
    low, high = _check_scale(scale)
    if text is None or not str(text).strip():
        raise JudgeParseError("the judge reply is empty")
    text = str(text)

    found = None
    for top in _json_objects(text):
        for obj in _with_nested(top):
            raw = _lookup(obj, SCORE_KEYS)
            parsed = _json_score(raw) if raw is not None else None
            if parsed is not None:
                found = (parsed, obj)
                break
    if found is not None:
        (score, denominator), obj = found
        reason = _lookup(obj, REASON_KEYS)
        return _validated(score, denominator, low, high, "JSON"), "" if reason is None else str(reason).strip()
    # a truncated JSON object ({"score": 4, "reason": "...) is read by LABELLED below

    matches = list(LABELLED.finditer(text))
    if matches:
        m = matches[-1]
        denominator = float(m.group(2)) if m.group(2) else None
        score = _validated(float(m.group(1)), denominator, low, high, "labelled")
        return score, _reason_from_text(text, m.span())

    matches = [m for m in OUT_OF.finditer(text) if float(m.group(2)) == high]
    if matches:
        m = matches[-1]
        return _validated(float(m.group(1)), None, low, high, "'x out of y'"), _reason_from_text(text, m.span())
    other = OUT_OF.search(text)
    if other:
        raise JudgeParseError(f"the judge scored {other.group(1)}/{other.group(2)} but the scale is {low:g}-{high:g}")

    matches = list(ALONE.finditer(text))
    if matches:
        m = matches[-1]
        return _validated(float(m.group(1)), None, low, high, "alone on a line"), _reason_from_text(text, m.span())

    shown = " ".join(text.split())
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise JudgeParseError(f"no score found in the judge reply: {shown!r}")


def _score_token(token: str, low: float, high: float) -> int | None:
    stripped = token.strip().strip("\"'*")
    if not re.fullmatch(r"\d+", stripped or "x"):
        return None
    value = int(stripped)
    return value if low <= value <= high else None


def weighted_score_from_logprobs(top_logprobs: list[dict[str, float]], scale=(1, 5)) -> float | None:
    """G-Eval style score: the probability-weighted mean over the valid score tokens.

    `top_logprobs` is one {token: logprob} dict per generated position (what OpenAI-style
    APIs return with top_logprobs=N). The score position is the first one whose most
    likely token is a valid integer score within the scale (tokens like " 4" or "4" count;
    "10" counts on a 1-10 scale when the tokenizer emits it as one token). Probabilities
    are renormalised over the valid score tokens at that position only. None when no
    position has a score token on top (the caller then falls back to parsing the text).
    """
    low, high = _check_scale(scale)
    for position in top_logprobs or []:
        if not position:
            continue
        best = max(position.items(), key=lambda item: item[1])[0]
        if _score_token(best, low, high) is None:
            continue
        weights: dict[int, float] = {}
        for token, logprob in position.items():
            value = _score_token(token, low, high)
            if value is not None and logprob is not None and math.isfinite(logprob):
                weights[value] = weights.get(value, 0.0) + math.exp(logprob)
        total = sum(weights.values())
        if total <= 0:
            return None
        return sum(value * p for value, p in weights.items()) / total
    return None


VERDICT_KEYS = (
    "winner",
    "verdict",
    "preference",
    "preferred",
    "choice",
    "better",
    "better_response",
    "answer",
    "result",
    "decision",
)
TIE_WORDS = r"tie|draw|equal|equally\s+good|both|neither|same|c"
LETTER = re.compile(r"^\s*(?:response|output|answer|assistant|option|model|candidate)?\s*([AB])\s*$", re.IGNORECASE)
BRACKETED = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)
VERDICT_LABEL = re.compile(
    r"(?:winner|verdict|preference|preferred|choice|better\s+(?:response|output|answer)|final\s+(?:answer|verdict))"
    r"\s*\**\s*[:=\-]\s*\**\s*(?:response|output|answer|assistant|option|model|candidate)?\s*"
    r"(A|B|tie|draw|equal|neither|both)\b",
    re.IGNORECASE,
)
PREFERS = re.compile(
    r"\b(?:response|output|answer|assistant|option|candidate)\s+([AB])\s+(?:is|was)\s+(?:clearly\s+|slightly\s+|much\s+)?"
    r"(?:better|preferred|superior|stronger|more\s+\w+|the\s+(?:better|winner|best))\b"
    r"|\b(?:prefer|choose|pick|select)\s+(?:response|output|answer|assistant|option|candidate)\s+([AB])\b"
    # a bare capital letter ("A is the winner.", "B wins"); lower-case "a" is the article
    r"|(?:^|(?<=[\s\"'*(]))((?-i:[AB]))\s+(?:is\s+(?:clearly\s+)?(?:the\s+)?(?:winner|better|best|preferred)|wins)\b",
    re.IGNORECASE,
)
TIE_PHRASE = re.compile(
    r"\b(?:it'?s\s+a\s+tie|tie|draw|equally\s+good|both\s+(?:are|responses\s+are)\s+equally)\b", re.IGNORECASE
)


def _verdict_word(value) -> str | None:
    word = str(value).strip().strip("\"'.*[]()").lower()
    word = re.sub(r"^(?:response|output|answer|assistant|option|model|candidate)\s+", "", word)
    if word in ("a", "b"):
        return word.upper()
    if re.fullmatch(TIE_WORDS, word):
        return "tie"
    return None


def parse_pairwise_reply(text: str) -> str:
    """'A', 'B' or 'tie' from a pairwise judge reply; JudgeParseError when it cannot be told.

    Order: a JSON object with a verdict key; MT-Bench style [[A]] / [[B]] / [[C]] (C = tie);
    a labelled verdict ("Winner: B"); a reply that is just the letter; "Response A is better"
    (an error if it is said of both); a tie phrase.
    """
    if text is None or not str(text).strip():
        raise JudgeParseError("the judge reply is empty")
    text = str(text)
    for obj in reversed(list(_json_objects(text))):
        value = _lookup(obj, VERDICT_KEYS)
        if value is not None:
            verdict = _verdict_word(value)
            if verdict is None:
                raise JudgeParseError(f"the judge's verdict {value!r} is not A, B or tie")
            return verdict
    bracketed = BRACKETED.findall(text)
    if bracketed:
        last = bracketed[-1].upper()
        return "tie" if last in ("C", "TIE") else last
    labelled = VERDICT_LABEL.findall(text)
    if labelled:
        return _verdict_word(labelled[-1]) or "tie"
    alone = LETTER.match(text.strip().strip(".*`\"'"))
    if alone:
        return alone.group(1).upper()
    preferred = {"".join(groups).upper() for groups in PREFERS.findall(text)}
    if len(preferred) == 1:
        return preferred.pop()
    if len(preferred) > 1:
        raise JudgeParseError("the judge prefers both A and B; no clear verdict")
    if TIE_PHRASE.search(text):
        return "tie"
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise JudgeParseError(f"no verdict (A, B or tie) found in the judge reply: {shown!r}")


def score_distribution(position: dict[str, float], scale=(1, 5)) -> dict[int, float] | None:
    """{score: probability} over the valid integer score tokens at one position, renormalised.

    This is how a constrained judge answers: after a forced "Score: " the model's next token
    is read as a distribution over the scale (G-Eval's weighting), so there is always a
    verdict as long as any score token is among the top logprobs. None when none is.
    """
    low, high = _check_scale(scale)
    weights: dict[int, float] = {}
    for token, logprob in (position or {}).items():
        value = _score_token(token, low, high)
        if value is not None and logprob is not None and math.isfinite(logprob):
            weights[value] = weights.get(value, 0.0) + math.exp(logprob)
    total = sum(weights.values())
    if total <= 0:
        return None
    return {value: weight / total for value, weight in sorted(weights.items())}


def expected_score(distribution: dict[int, float]) -> float:
    """The probability-weighted mean score of a distribution from score_distribution."""
    return sum(value * p for value, p in distribution.items())


def pairwise_distribution(position: dict[str, float]) -> dict[str, float] | None:
    """{"A", "B", "tie": probability} from one position's top logprobs after a forced "Winner:".

    Only a capital A or B counts (" a" is the article), and "tie", "draw" or "C" for a tie;
    probabilities are renormalised over those. None when no verdict token is among them.
    """
    weights: dict[str, float] = {}
    for token, logprob in (position or {}).items():
        word = token.strip().strip("\"'*[]().:")
        verdict = word if word in ("A", "B") else ("tie" if word.lower() in ("tie", "draw", "c") else None)
        if verdict is not None and logprob is not None and math.isfinite(logprob):
            weights[verdict] = weights.get(verdict, 0.0) + math.exp(logprob)
    total = sum(weights.values())
    if total <= 0:
        return None
    return {verdict: weight / total for verdict, weight in weights.items()}
