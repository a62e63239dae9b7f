import pytest

from workbench import prompts, sample
from workbench.errors import NotFound, WorkbenchError


def save(name="greet", template="Hello {{ name }}", **kw):
    return prompts.save_version(name, template=template, **kw)


def test_every_save_is_a_new_immutable_version_with_hash():
    first = save(note="one").version
    second = save(template="Hi {{ name }}!", note="two").version
    assert (first.version, second.version) == (1, 2)
    assert first.content_hash != second.content_hash and len(first.content_hash) == 64
    assert prompts.get_version("greet", 1).template == "Hello {{ name }}"
    assert [v.note for v in prompts.versions("greet")] == ["one", "two"]


def test_unchanged_save_creates_nothing():
    save()
    again = save(note="same again")
    assert again.created is False and again.version.version == 1
    assert len(prompts.versions("greet")) == 1


def test_model_and_params_are_part_of_the_version():
    save(params={"temperature": 0})
    changed = save(params={"temperature": 0.7})
    assert changed.created and changed.version.params == {"temperature": 0.7}
    other_model = save(params={"temperature": 0.7}, model="openai/gpt-4o-mini")
    assert other_model.version.version == 3 and other_model.version.model == "openai/gpt-4o-mini"


def test_chat_prompt_variables_across_messages():
    v = prompts.save_version(
        "chat",
        kind="chat",
        messages=[
            {"role": "system", "content": "You speak {{ language }}."},
            {"role": "user", "content": "{{ question }} ({{ language }})"},
        ],
    ).version
    assert v.variables == ["language", "question"]
    assert prompts.render_messages(v, {"language": "French", "question": "Hi"})[0]["content"] == "You speak French."


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"template": "   "}, "empty"),
        ({"template": "{{ a.b }}"}, "syntax"),
        ({"template": "{{ a "}, "Unclosed"),
        ({"template": "x", "model": ""}, "model"),
    ],
)
def test_bad_input_is_refused_and_nothing_stored(kwargs, message):
    with pytest.raises(WorkbenchError, match=message):
        prompts.save_version("bad", **kwargs)
    with pytest.raises(NotFound):
        prompts.versions("bad")


def test_labels_move_and_rollback_keeps_history():
    for text in ["a {{x}}", "b {{x}}", "c {{x}}"]:
        save(template=text)
    prompts.set_label("greet", "production", 3)
    prompts.set_label("greet", "production", 2, evidence="comparison 7")  # roll back
    assert prompts.labels_of("greet") == {"production": 2}
    assert prompts.resolve("greet@production").version == 2
    assert prompts.resolve("greet@1").template == "a {{x}}"
    assert prompts.resolve("greet").version == 3
    events = prompts.label_history("greet")
    assert [(e["from"], e["to"], e["evidence"]) for e in events] == [(3, 2, "comparison 7"), (None, 3, "")]
    assert len(prompts.versions("greet")) == 3  # history never rewritten


def test_unknown_label_or_version_is_a_clear_error():
    save()
    with pytest.raises(NotFound, match="no label 'staging'"):
        prompts.resolve("greet@staging")
    with pytest.raises(NotFound, match="no version 9"):
        prompts.set_label("greet", "production", 9)


def test_diff_side_by_side_and_settings():
    save(template="line one\nline two {{x}}", params={"temperature": 0})
    save(template="line one\nline 2 {{x}}\nline three", params={"temperature": 0.5})
    result = prompts.diff(prompts.get_version("greet", 1), prompts.get_version("greet", 2))
    tags = [r["tag"] for r in result["rows"]]
    assert tags[0] == "equal" and "replace" in tags
    assert result["settings"] == {"temperature": (0, 0.5)}
    assert "+line three" in result["unified"]


def test_sample_data_loads_once():
    first = sample.load_all()
    assert first["prompts"] == ["support-answer", "summarizer", "json-extractor", "rag-answer"]
    assert first["datasets"] == ["support_qa", "rag_qa"]
    assert sample.load_all() == {"prompts": [], "datasets": [], "review_queues": []}
    assert len(prompts.versions("support-answer")) == 2
    assert prompts.labels_of("support-answer") == {"production": 1, "staging": 2}
