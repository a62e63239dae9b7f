import pytest
from litellm.llms.custom_llm import CustomLLMError

from workbench import calls, llm, playground, prompts
from workbench.errors import WorkbenchError


def test_playground_calls_every_model_and_records_each_call(fake_model):
    version = prompts.save_version("p", template="Say {{ word }}").version
    fake_model.queue("first answer", "second answer")
    results = playground.run(version, {"word": "hi"}, ["fake/a", "fake/b"])
    assert sorted(r.output for _, r in results) == ["first answer", "second answer"]
    assert all(r.input_tokens == 2 and r.latency_ms >= 0 for _, r in results)
    recorded = calls.recent(source="playground")
    assert len(recorded) == 2
    assert {c.model for c in recorded} == {"fake/a", "fake/b"}
    assert all(c.prompt_version_id == version.id and c.messages[0]["content"] == "Say hi" for c in recorded)


def test_cache_serves_identical_calls_and_never_caches_errors(fake_model):
    version = prompts.save_version("p", template="{{ q }}").version
    fake_model.queue(CustomLLMError(status_code=400, message="provider exploded"))
    [(_, failed)] = playground.run(version, {"q": "x"}, ["fake/m"], use_cache=True)
    assert failed.error_type == "bad_request" and "exploded" in failed.error
    fake_model.queue("real answer")
    [(_, ok)] = playground.run(version, {"q": "x"}, ["fake/m"], use_cache=True)
    [(_, hit)] = playground.run(version, {"q": "x"}, ["fake/m"], use_cache=True)
    assert ok.output == hit.output == "real answer" and hit.cached and not ok.cached
    assert len(fake_model.history) == 2  # the cached call never reached the provider
    assert [c.cached for c in calls.recent()] == [True, False, False]


def test_missing_variable_is_refused_before_any_call(fake_model):
    version = prompts.save_version("p", template="{{ a }} {{ b }}").version
    with pytest.raises(WorkbenchError, match="b"):
        playground.run(version, {"a": "1"}, ["fake/m"])
    assert fake_model.history == [] and calls.recent() == []


def test_unknown_model_and_unreachable_server_are_errors_not_crashes():
    unknown = llm.call(llm.ModelSpec("nosuchprovider/zzz"), [{"role": "user", "content": "x"}])
    assert unknown.error_type == "unknown_model"
    unknown_local = llm.call(llm.ModelSpec("local/nope"), [{"role": "user", "content": "x"}])
    assert unknown_local.error_type == "unknown_model" and "local/smollm2" in unknown_local.error
    down = llm.call(
        llm.ModelSpec("openai/x", api_base="http://127.0.0.1:9/v1", api_key="k"),
        [{"role": "user", "content": "x"}],
        timeout=5,
    )
    assert down.error_type in ("connection", "server_error") and down.retryable


def test_unknown_parameter_is_refused():
    with pytest.raises(WorkbenchError, match="Unknown model parameter"):
        llm.call(llm.ModelSpec("fake/m", params={"temprature": 1}), [{"role": "user", "content": "x"}])


def test_api_key_is_never_in_the_public_spec(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-value")
    monkeypatch.setenv("WORKBENCH_ALLOWED_KEY_VARS", "MY_KEY")  # not a provider's key variable
    spec = llm.ModelSpec.parse({"id": "openai/x", "api_key": "${MY_KEY}", "api_base": "http://h/v1"})
    assert spec.api_key == "sk-secret-value"
    assert "sk-secret" not in repr(spec) and "sk-secret" not in str(spec.public())


def test_available_models_follow_the_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("WORKBENCH_MODELS", raising=False)
    assert llm.available_models()[0] == "local/smollm2"
    assert not any(m.startswith("openai/") for m in llm.available_models())
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    assert "openai/gpt-4o-mini" in llm.available_models()


@pytest.mark.slow
def test_embedded_model_really_generates():
    version = prompts.save_version(
        "capital",
        template="What is the capital of {{ country }}? One word.",
        params={"temperature": 0, "max_tokens": 20},
    ).version
    [(_, result)] = playground.run(version, {"country": "France"}, ["local/smollm2"])
    assert result.ok, result.error
    assert "paris" in result.output.lower()
    assert result.input_tokens > 5 and result.output_tokens > 0 and result.cost_usd == 0.0


@pytest.mark.slow
def test_embedded_model_returns_top_logprobs_for_weighted_judging():
    result = llm.call(
        llm.ModelSpec("local/smollm2", params={"max_tokens": 4, "logprobs": True, "top_logprobs": 3}),
        [{"role": "user", "content": "Reply with one digit from 1 to 5."}],
    )
    assert result.ok and result.logprobs
    first = result.logprobs[0]
    assert len(first["top"]) == 3 and all(t["logprob"] <= 0 for t in first["top"])


@pytest.mark.slow
def test_converted_checkpoint_generates_what_the_loaded_model_does(tmp_path):
    """The cache written on first load (de-quantized safetensors) must be the same model, or
    every later process would quietly answer differently from the GGUF."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench import local_model

    model, tokenizer = local_model.load()
    target = tmp_path / "checkpoint"
    local_model._save_checkpoint(model, tokenizer, target)
    assert (target / "complete").exists() and not list(tmp_path.glob(".*partial"))
    assert "quantization_config" not in (target / "config.json").read_text()
    reloaded = AutoModelForCausalLM.from_pretrained(str(target)).eval()
    reloaded_tokenizer = AutoTokenizer.from_pretrained(str(target))
    messages = [{"role": "user", "content": "Name a colour."}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    again = reloaded_tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert torch.equal(inputs["input_ids"], again["input_ids"])
    with torch.inference_mode():
        assert torch.equal(model(**inputs).logits, reloaded(**again).logits)
