"""Reference-based text metrics: sentence BLEU and ROUGE-L, written out in full.

We implement them here instead of pulling in nltk / rouge-score / sacrebleu: each is a
few dozen lines, the libraries bring downloads (punkt) or heavy dependencies, and the
exact definitions below are what the README documents, so a score means the same thing
on every machine.

Tokenization is deliberately simple and shared by both metrics: lower-cased words
(`\\w+`) and single punctuation marks. Both metrics accept several references (a list);
BLEU clips n-gram counts against the best reference for each n-gram, ROUGE-L takes the
best-scoring reference.
"""

from __future__ import annotations

import math
import re
from collections import Counter

TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks; the tokenization both metrics use."""
    return TOKEN.findall((text or "").lower())


def _references(reference) -> list[list[str]]:
    if isinstance(reference, (list, tuple)):
        refs = [tokenize(str(r)) for r in reference]
    else:
        refs = [tokenize(str(reference))]
    return refs or [[]]


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu(candidate: str, reference, max_n: int = 4) -> float:
    """Sentence BLEU (Papineni et al. 2002) with add-one smoothing (Lin & Och 2004).

    Unsmoothed sentence BLEU is 0 whenever any 4-gram is missing, which makes it useless
    for short outputs. Add-one smoothing adds 1 to the matched and total counts of every
    n-gram order above 1 (unigram precision is left unsmoothed, so an output sharing no
    word with the reference still scores 0). Uniform weights over orders 1..max_n; the
    brevity penalty uses the reference length closest to the candidate length.
    When the candidate is shorter than max_n tokens, only the orders it has are used.
    """
    cand = tokenize(candidate)
    refs = _references(reference)
    if not cand or not any(refs):
        return 0.0
    orders = min(max_n, len(cand))
    log_sum = 0.0
    for n in range(1, orders + 1):
        cand_counts = _ngrams(cand, n)
        max_ref: Counter = Counter()
        for ref in refs:
            for gram, count in _ngrams(ref, n).items():
                if count > max_ref[gram]:
                    max_ref[gram] = count
        matched = sum(min(count, max_ref[gram]) for gram, count in cand_counts.items())
        total = sum(cand_counts.values())
        if n > 1:
            matched, total = matched + 1, total + 1
        if matched == 0:
            return 0.0
        log_sum += math.log(matched / total)
    c = len(cand)
    r = min((len(ref) for ref in refs), key=lambda length: (abs(length - c), length))
    brevity = 1.0 if c > r else math.exp(1 - r / c)
    return brevity * math.exp(log_sum / orders)


def lcs_length(a: list, b: list) -> int:
    """Length of the longest common subsequence, bit-parallel (Allison-Dix / Hyyrö).

    One big-integer operation per token of `a` instead of a len(a) x len(b) table, so two
    5,000-token texts take milliseconds rather than seconds in pure Python.
    """
    if not a or not b:
        return 0
    masks: dict = {}
    for i, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(b)) - 1
    v = full
    for token in a:
        m = masks.get(token, 0)
        u = v & m
        v = ((v + u) | (v - u)) & full
    return len(b) - bin(v).count("1")


def rouge_l(candidate: str, reference) -> float:
    """ROUGE-L F1 (Lin 2004): F1 of LCS-precision and LCS-recall over tokens; best over references."""
    cand = tokenize(candidate)
    best = 0.0
    for ref in _references(reference):
        lcs = lcs_length(cand, ref)
        if lcs == 0:
            continue
        precision, recall = lcs / len(cand), lcs / len(ref)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best
