"""Guardrails: cheap, deterministic checks on text going into or coming out of a model.

The same checks run as input/output guardrails (`check(text, guards)`) and as scorers
(`guard_pii`, `guard_secrets`, ... registered in workbench.scoring.assertions), so a
team can first *measure* how often outputs leak an email address over a dataset and
then *block* on it with the very same rule.

Findings never carry the raw match for PII and secrets: `snippet` is masked (an API key
shows its well-known prefix and its length, a card its last four digits), because
findings are stored in the database and shown in the UI.

Precision over recall. These are regular expressions, not a classifier; each pattern is
tightened with the validation the format allows (Luhn for cards, mod-97 for IBANs,
octet ranges for IPv4, `ipaddress` for IPv6, invalid SSN areas) and with boundaries so
that digits inside a longer token are not read as PII. Decisions, tested in
tests/test_guardrails.py:

- Phone numbers need a structure: a leading `+` and country code, US `(555) 123-4567` /
  `555-123-4567` with one consistent separator, or a national number with a trunk `0`
  and separated groups (`020 7946 0958`, `06 12 34 56 78`). A bare run of digits is not
  a phone number, nor are digits glued to letters or dashes (`ORD-2024-000123`), nor
  dates (`2024-05-17`, `17.05.2024`: fewer than 9 digits).
- A 13-19 digit number is a card only if it passes Luhn *and* starts with a known
  issuer prefix (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro).
- Dotted quads are IPv4 addresses, except when a version word (`version`, `v`,
  `release`, `build`, ...) directly precedes them: "upgrade to version 1.2.3.4" is a
  version number, "connect to 10.0.0.12" is an address. Part of a longer dotted run
  (`1.2.3.4.5`) is never an address.
- SSNs only in the dashed form `123-45-6789` (never area 000/666/9xx, group 00, serial
  0000); UK National Insurance numbers with valid prefix letters.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

ACTIONS = ("block", "flag")
GUARD_TYPES = ("prompt_injection", "pii", "secrets", "max_length", "banned_words")


class GuardConfigError(ValueError):
    pass


@dataclass(frozen=True)
class GuardFinding:
    """One thing a guard found. `snippet` is masked for PII and secrets."""

    guard: str  # prompt_injection | pii | secrets | max_length | banned_words
    kind: str  # e.g. email, card, openai_key, ignore_instructions, too_long
    snippet: str
    start: int = 0
    end: int = 0
    action: str = "block"

    def describe(self) -> str:
        return f"{self.kind}: {self.snippet}"


def blocked(findings: list[GuardFinding]) -> bool:
    """True when any finding comes from a guard whose action is `block`."""
    return any(f.action == "block" for f in findings)


# ---------------------------------------------------------------------------- masking


def mask(value: str, keep_start: int = 0, keep_end: int = 0) -> str:
    """Replace letters and digits with '*' except the first/last few; separators stay readable."""
    out = []
    for i, ch in enumerate(value):
        keep = i < keep_start or i >= len(value) - keep_end
        out.append(ch if keep or not ch.isalnum() else "*")
    return "".join(out)


def _mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


# ---------------------------------------------------------------------------- PII

EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![\w-])"
)

_LEFT = r"(?<![\w+./:-])"  # not glued to a word, a dash, a dot or a slash on the left
_RIGHT = r"(?![\w-]|[./:]\d)"  # nor on the right (a sentence-ending '.' is fine)
PHONE_PATTERNS = [
    # international: +44 20 7946 0958, +1 (415) 555-2671, +49-30-1234567, +33 6 12 34 56 78
    re.compile(_LEFT + r"\+\d{1,3}(?:[ .-]?\(\d{1,4}\)|[ .-]?\d{1,5}){1,6}" + _RIGHT),
    # US: (415) 555-2671, 415-555-2671, 415.555.2671, 1-415-555-2671
    re.compile(_LEFT + r"(?:1[ .-])?(?:\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}([ .-])\d{3}\1\d{4})" + _RIGHT),
    # national with trunk 0 (UK/EU): 020 7946 0958, 07700 900123, 06 12 34 56 78, 030/1234567
    re.compile(_LEFT + r"0[1-9]\d{0,3}(?:[ /-]\d{2,8}){1,4}" + _RIGHT),
]

CARD = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w-]|[.,]\d)")
CARD_PREFIX = re.compile(
    r"^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|6011|65|64[4-9]"
    r"|35(?:2[89]|[3-8]\d)|62|5[06-9]|6[37])"
)
IBAN = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![\w-])")
SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
NINO = re.compile(
    r"(?<![\w-])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![\w-])"
)
IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
IPV6_CANDIDATE = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?![\w:])")
VERSION_WORD = re.compile(
    r"(?:\bv|\bversions?|\bver\.?|\brelease|\bbuild|\bfirmware|\bupdate|\bupgrade to)\s*$", re.IGNORECASE
)

PII_KINDS = ("email", "phone", "card", "iban", "ssn", "nino", "ip")
PII_ALIASES = {
    "credit_card": ("card",),
    "national_id": ("ssn", "nino"),
    "ip_address": ("ip",),
    "ipv4": ("ip",),
    "ipv6": ("ip",),
}
LABELS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "ssn": "[SSN]",
    "nino": "[NATIONAL_ID]",
    "ip": "[IP]",
}


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_valid(value: str) -> bool:
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _phone_spans(text: str):
    for pattern in PHONE_PATTERNS:
        for m in pattern.finditer(text):
            n = len(_digits(m.group(0)))
            if m.group(0).startswith("+") and not 8 <= n <= 15:
                continue
            if m.group(0).startswith("0") and not 9 <= n <= 12:
                continue
            yield m.start(), m.end(), mask(m.group(0), keep_end=2)


def _card_spans(text: str):
    for m in CARD.finditer(text):
        digits = _digits(m.group(0))
        separators = set(re.sub(r"\d", "", m.group(0)))
        if len(separators) > 1 or not 13 <= len(digits) <= 19:
            continue
        if luhn_valid(digits) and CARD_PREFIX.match(digits):
            yield m.start(), m.end(), mask(m.group(0), keep_end=4)


def _ip_spans(text: str):
    for m in IPV4.finditer(text):
        if VERSION_WORD.search(text[max(0, m.start() - 20) : m.start()]):
            continue
        yield m.start(), m.end(), m.group(0).split(".")[0] + ".*.*.*"
    for m in IPV6_CANDIDATE.finditer(text):
        candidate = m.group(0)
        if sum(1 for part in candidate.split(":") if part) < 2:
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield m.start(), m.end(), candidate.split(":")[0] + ":****"


def _simple(pattern, masker, validator=None):
    def spans(text):
        for m in pattern.finditer(text):
            if validator is None or validator(m.group(0)):
                yield m.start(), m.end(), masker(m.group(0))

    return spans


PII_FINDERS = {
    "email": _simple(EMAIL, _mask_email),
    "card": _card_spans,
    "iban": _simple(IBAN, lambda v: v[:2] + mask(v[2:], keep_end=2), _iban_valid),
    "ssn": _simple(SSN, lambda v: mask(v, keep_end=4)),
    "nino": _simple(NINO, lambda v: mask(v, keep_end=1)),
    "ip": _ip_spans,
    "phone": _phone_spans,  # last: a card or IBAN span wins over a phone-shaped part of it
}


def _expand_kinds(kinds, known, aliases, what) -> list[str]:
    if kinds is None:
        return list(known)
    if isinstance(kinds, str):
        kinds = [kinds]
    out = []
    for kind in kinds:
        kind = str(kind).lower()
        expanded = aliases.get(kind, (kind,))
        for k in expanded:
            if k not in known:
                raise GuardConfigError(f"unknown {what} kind {kind!r}; known: {', '.join(known)}")
            if k not in out:
                out.append(k)
    return out


def _collect(text: str, finders: dict, kinds: list[str], guard: str, action: str) -> list[GuardFinding]:
    """Run finders in registry order; a span overlapping an earlier finding is dropped."""
    findings: list[GuardFinding] = []
    for kind, finder in finders.items():
        if kind not in kinds:
            continue
        for start, end, snippet in finder(text):
            if any(start < f.end and f.start < end for f in findings):
                continue
            findings.append(GuardFinding(guard, kind, snippet, start, end, action))
    return sorted(findings, key=lambda f: f.start)


def find_pii(text: str, kinds=None, action: str = "block") -> list[GuardFinding]:
    """PII in text. kinds: any of PII_KINDS (aliases: credit_card, national_id, ip_address); default all."""
    return _collect(text or "", PII_FINDERS, _expand_kinds(kinds, PII_KINDS, PII_ALIASES, "PII"), "pii", action)


# ---------------------------------------------------------------------------- secrets


def _has_letter_and_digit(value: str) -> bool:
    return bool(re.search(r"\d", value)) and bool(re.search(r"[A-Za-z]", value))


# kind -> (pattern, public prefix pattern): the prefix says what the secret is and is all we show
SECRET_PATTERNS = {
    "private_key": (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?"
        ),
        None,
    ),
    "anthropic_key": (re.compile(r"(?<![\w-])sk-ant-[A-Za-z0-9_-]{20,}"), r"sk-ant-(?:[a-z]+\d\d-)?"),
    "openai_key": (
        re.compile(r"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
        r"sk-(?:proj-|svcacct-|admin-)?",
    ),
    "stripe_key": (re.compile(r"(?<![\w-])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"), r"[a-z]{2}_[a-z]{4}_"),
    "aws_access_key": (re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Za-z0-9])"), r"[A-Z]{4}"),
    "aws_secret_key": (
        re.compile(r"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}"),
        r"(?i)aws_?secret_?(?:access_?)?key",
    ),
    "github_token": (
        re.compile(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
        r"gh[pousr]_|github_pat_",
    ),
    "google_api_key": (re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])"), r"AIza"),
    "slack_token": (re.compile(r"(?<![\w-])xox[abposr]-[A-Za-z0-9-]{10,}"), r"xox[abposr]-"),
    "jwt": (re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), r"eyJ"),
    "bearer_token": (re.compile(r"\bBearer\s+[A-Za-z0-9._~+/-]{16,}=*"), r"Bearer\s+"),
}
SECRET_KINDS = tuple(SECRET_PATTERNS)
SECRET_ALIASES = {
    "api_key": ("anthropic_key", "openai_key", "stripe_key", "google_api_key"),
    "aws": ("aws_access_key", "aws_secret_key"),
    "github": ("github_token",),
    "bearer": ("bearer_token",),
}


def _mask_secret(kind: str, value: str) -> str:
    """The kind's public prefix (sk-, AKIA, ghp_, Bearer) and the length; never a character of the secret."""
    if kind == "private_key":
        return value.split("-----")[1].strip() + " block (redacted)"
    prefix_pattern = SECRET_PATTERNS[kind][1]
    prefix = re.match(prefix_pattern, value) if prefix_pattern else None
    return f"{prefix.group(0) if prefix else ''}**** ({len(value)} chars)"


def _secret_spans(kind):
    pattern, _ = SECRET_PATTERNS[kind]

    def spans(text):
        for m in pattern.finditer(text):
            value = m.group(0)
            if kind in ("openai_key", "bearer_token") and not _has_letter_and_digit(value.split()[-1]):
                continue  # "sk-learn-is-a-library", "Bearer authentication-scheme" are prose
            yield m.start(), m.end(), _mask_secret(kind, value)

    return spans


SECRET_FINDERS = {kind: _secret_spans(kind) for kind in SECRET_KINDS}


def find_secrets(text: str, kinds=None, action: str = "block") -> list[GuardFinding]:
    """API keys, tokens and private keys. kinds: any of SECRET_KINDS (aliases: api_key, aws, github, bearer)."""
    kinds = _expand_kinds(kinds, SECRET_KINDS, SECRET_ALIASES, "secret")
    return _collect(text or "", SECRET_FINDERS, kinds, "secrets", action)


# ---------------------------------------------------------------------------- prompt injection

_W = r"(?:\s+\S+){0,3}?\s+"  # up to three filler words
INJECTION_PATTERNS = {
    "ignore_instructions": re.compile(
        r"\b(?:ignore|disregard|forget|skip|override|bypass|neglect)"
        + _W
        + r"(?:(?:all|any|the|your|my|these|those)\s+)*"
        r"(?:previous|prior|above|earlier|preceding|foregoing|initial|original|system|existing|all)\b"
        r"(?:\s+\S+){0,2}?\s+(?:instructions?|prompts?|rules|directions|directives|guidelines|guidance|"
        r"constraints|context|messages?|commands?)\b"
        r"|\b(?:ignore|disregard|forget)\s+(?:everything|anything|all)\s+(?:above|before|prior|previously|"
        r"(?:that\s+)?you\s+(?:were|have\s+been)\s+told)\b",
        re.IGNORECASE,
    ),
    "reveal_system_prompt": re.compile(
        r"\b(?:reveal|show|print|repeat|display|output|leak|dump|tell\s+me|give\s+me|share|what\s+(?:is|are|was|were))"
        r"(?:\s+(?:me|us))?\s+(?:\S+\s+){0,3}?(?:your|the)\s+(?:\S+\s+)?"
        r"(?:system\s+(?:prompt|message|instructions?)|initial\s+(?:prompt|instructions?)|hidden\s+(?:prompt|instructions?)|"
        r"original\s+(?:prompt|instructions?)|secret\s+(?:prompt|instructions?)|instructions\s+above|"
        r"(?:text|words|prompt)\s+above)\b",
        re.IGNORECASE,
    ),
    "jailbreak": re.compile(
        r"\bdo\s+anything\s+now\b"
        r"|\b(?:you\s+are|you're|act\s+as|become|pretend\s+to\s+be|enable|enter)\s+(?:now\s+)?(?-i:DAN)\b"
        r"|\b(?-i:DAN)\s+mode\b|\bjailbroken\b|\bjailbreak\s+(?:mode|prompt)\b"
        r"|\b(?:developer|god)\s+mode\s+(?:enabled|activated)\b"
        r"|\b(?:you\s+are|you're)\s+(?:now\s+)?in\s+(?:developer|god|unrestricted)\s+mode\b"
        r"|\b(?:respond|answer|reply|act|operate|talk|speak|behave)\w*\s+(?:\S+\s+){0,3}?(?:without|with\s+no)\s+"
        r"(?:any\s+)?(?:restrictions|filters|limitations|censorship|guidelines|rules|safety\s+guidelines)\b"
        r"|\b(?:bypass|disable|turn\s+off|ignore)\s+(?:your\s+|the\s+|all\s+)?(?:safety|content)\s+"
        r"(?:filters?|guidelines|polic(?:y|ies)|restrictions)\b",
        re.IGNORECASE,
    ),
    "role_override": re.compile(
        r"\byou\s+are\s+no\s+longer\s+(?:an?\s+)?(?:ai|assistant|language\s+model|chatgpt|claude|bound)\b"
        r"|\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must|shall)\s+(?:be\s+|act\s+|respond\s+as\s+|play\s+)"
        r"|\bpretend\s+(?:that\s+)?you\s+(?:have\s+no|are\s+not\s+bound|are\s+free|are\s+an?\s+unrestricted)"
        r"|\b(?:new|updated|real)\s+system\s+(?:prompt|instructions?)\s*:"
        r"|\bsystem\s+override\b|\[\s*system\s*\]|<\|im_start\|>\s*system",
        re.IGNORECASE,
    ),
}
BASE64_BLOB = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{80,}={0,2}(?![A-Za-z0-9+/=])")
INJECTION_KINDS = (*INJECTION_PATTERNS, "base64_blob")


def _shorten(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _looks_like_base64_text(blob: str) -> bool:
    import base64
    import binascii

    try:
        decoded = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in decoded)
    return len(decoded) > 0 and printable / len(decoded) > 0.9


def find_prompt_injection(
    text: str, kinds=None, detect_base64: bool = False, action: str = "block"
) -> list[GuardFinding]:
    """Known injection phrasings; base64 blobs that decode to text only with detect_base64=True."""
    text = text or ""
    kinds = _expand_kinds(kinds, INJECTION_KINDS, {}, "prompt injection")
    findings = []
    for kind, pattern in INJECTION_PATTERNS.items():
        if kind in kinds:
            for m in pattern.finditer(text):
                snippet = _shorten(m.group(0))
                findings.append(GuardFinding("prompt_injection", kind, snippet, m.start(), m.end(), action))
    if detect_base64 and "base64_blob" in kinds:
        for m in BASE64_BLOB.finditer(text):
            if _looks_like_base64_text(m.group(0)):
                snippet = f"{m.group(0)[:12]}... ({len(m.group(0))} chars)"
                findings.append(GuardFinding("prompt_injection", "base64_blob", snippet, m.start(), m.end(), action))
    return sorted(findings, key=lambda f: f.start)


# ---------------------------------------------------------------------------- length and words

WORD_PIECE = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """Words and punctuation marks: a tokenizer-free estimate, close to real counts for English prose."""
    return len(WORD_PIECE.findall(text or ""))


def check_max_length(
    text: str, max_chars: int | None = None, max_tokens: int | None = None, action: str = "block"
) -> list[GuardFinding]:
    text = text or ""
    findings = []
    if max_chars is not None and len(text) > int(max_chars):
        findings.append(
            GuardFinding("max_length", "too_long", f"{len(text)} chars > {int(max_chars)}", 0, len(text), action)
        )
    if max_tokens is not None:
        tokens = estimate_tokens(text)
        if tokens > int(max_tokens):
            findings.append(
                GuardFinding(
                    "max_length", "too_many_tokens", f"~{tokens} tokens > {int(max_tokens)}", 0, len(text), action
                )
            )
    return findings


def _word_pattern(word: str) -> re.Pattern:
    parts = [re.escape(p) for p in str(word).split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)", re.IGNORECASE)


def find_banned_words(text: str, words, action: str = "block") -> list[GuardFinding]:
    """Whole words or phrases, case-insensitive; 'ass' does not match 'class'."""
    if isinstance(words, str):
        words = [words]
    findings = []
    for word in words or []:
        if not str(word).strip():
            continue
        for m in _word_pattern(word).finditer(text or ""):
            findings.append(GuardFinding("banned_words", str(word).lower(), m.group(0), m.start(), m.end(), action))
    return sorted(findings, key=lambda f: f.start)


# ---------------------------------------------------------------------------- configs and redaction

GUARD_KEYS = {
    "prompt_injection": ("kinds", "detect_base64"),
    "pii": ("kinds",),
    "secrets": ("kinds",),
    "max_length": ("max_chars", "max_tokens"),
    "banned_words": ("words",),
}


def validate_guard_config(config) -> list[str]:
    """Problems with one guard config ({type, action, ...}); empty when it can run."""
    if not isinstance(config, dict):
        return ["a guard must be a mapping with a 'type'"]
    guard = config.get("type")
    if guard not in GUARD_KEYS:
        return [f"unknown guard type {guard!r}; known: {', '.join(GUARD_TYPES)}"]
    problems = []
    action = config.get("action", "block")
    if action not in ACTIONS:
        problems.append(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    allowed = {"type", "action", "name", *GUARD_KEYS[guard]}
    problems += [f"unknown key {key!r} for guard {guard}" for key in config if key not in allowed]
    try:
        if guard == "pii":
            _expand_kinds(config.get("kinds"), PII_KINDS, PII_ALIASES, "PII")
        elif guard == "secrets":
            _expand_kinds(config.get("kinds"), SECRET_KINDS, SECRET_ALIASES, "secret")
        elif guard == "prompt_injection":
            _expand_kinds(config.get("kinds"), INJECTION_KINDS, {}, "prompt injection")
    except GuardConfigError as exc:
        problems.append(str(exc))
    if guard == "max_length":
        limits = [config.get("max_chars"), config.get("max_tokens")]
        if all(v is None for v in limits):
            problems.append("max_length needs max_chars and/or max_tokens")
        for key in ("max_chars", "max_tokens"):
            value = config.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                problems.append(f"{key} must be a non-negative integer")
    if guard == "banned_words":
        words = config.get("words")
        if not words or not isinstance(words, (list, str)):
            problems.append("banned_words needs 'words': a list of words or phrases")
    return problems


def run_guard(text: str, config: dict) -> list[GuardFinding]:
    """Run one guard config; raises GuardConfigError for a bad config."""
    problems = validate_guard_config(config)
    if problems:
        raise GuardConfigError("; ".join(problems))
    guard, action = config["type"], config.get("action", "block")
    if guard == "pii":
        return find_pii(text, config.get("kinds"), action=action)
    if guard == "secrets":
        return find_secrets(text, config.get("kinds"), action=action)
    if guard == "prompt_injection":
        return find_prompt_injection(text, config.get("kinds"), bool(config.get("detect_base64", False)), action)
    if guard == "max_length":
        return check_max_length(text, config.get("max_chars"), config.get("max_tokens"), action)
    return find_banned_words(text, config.get("words"), action)


def check(text: str, guards: list[dict]) -> list[GuardFinding]:
    """Run every guard on text; findings in text order. Use blocked(findings) to decide."""
    findings = []
    for config in guards or []:
        findings += run_guard(text, config)
    return sorted(findings, key=lambda f: (f.start, f.guard))


def redact(text: str, kinds=None) -> str:
    """Mask PII (and secrets) in place: 'mail me at a@b.com' -> 'mail me at [EMAIL]'.

    kinds: PII kinds and/or secret kinds (or "secrets" for all of them); default all PII
    kinds and all secrets. Secrets become [SECRET].
    """
    text = text or ""
    if kinds is None:
        pii_kinds, secret_kinds = list(PII_KINDS), list(SECRET_KINDS)
    else:
        requested = [kinds] if isinstance(kinds, str) else list(kinds)
        pii_req = [k for k in requested if k in PII_KINDS or k in PII_ALIASES]
        secret_req = [k for k in requested if k not in pii_req]
        if "secrets" in secret_req:
            secret_req = list(SECRET_KINDS)
        pii_kinds = _expand_kinds(pii_req, PII_KINDS, PII_ALIASES, "PII") if pii_req else []
        secret_kinds = _expand_kinds(secret_req, SECRET_KINDS, SECRET_ALIASES, "PII or secret") if secret_req else []
    findings = find_secrets(text, secret_kinds) if secret_kinds else []
    for finding in find_pii(text, pii_kinds) if pii_kinds else []:
        if not any(finding.start < f.end and f.start < finding.end for f in findings):
            findings.append(finding)
    for finding in sorted(findings, key=lambda f: f.start, reverse=True):
        label = LABELS.get(finding.kind, "[SECRET]")
        text = text[: finding.start] + label + text[finding.end :]
    return text
