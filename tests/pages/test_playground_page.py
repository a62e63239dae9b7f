from streamlit.testing.v1 import AppTest

from workbench import calls, prompts

PAGE = "../../pages/2_Playground.py"


def test_empty_state():
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert any("No prompts yet" in i.value for i in at.info)


def test_run_on_two_models_side_by_side(fake_model):
    prompts.save_version("ask", template="Answer: {{ question }}", model="fake/model")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.text_area(key="pg_var:ask:question").input("What is 2+2?")
    at.multiselect(key="pg_models:ask").set_value(["fake/model"])
    at.text_input(key="pg_extra_id").input("fake/other")
    fake_model.queue("four", "4")
    at.button[0].click().run()
    assert not at.exception
    answers = sorted(c.value for c in at.code[1:])  # the first code block is the prompt itself
    assert answers == ["4", "four"]
    assert any("in /" in c.value and "tokens" in c.value for c in at.caption)
    assert len(calls.recent(source="playground")) == 2
    assert fake_model.history[0]["messages"][0]["content"] == "Answer: What is 2+2?"


def test_provider_error_is_shown_not_raised(fake_model):
    from litellm.llms.custom_llm import CustomLLMError

    prompts.save_version("ask", template="{{ q }}", model="fake/model")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.text_area(key="pg_var:ask:q").input("hello")
    at.multiselect(key="pg_models:ask").set_value(["fake/model"])
    fake_model.queue(CustomLLMError(status_code=401, message="invalid api key"))
    at.button[0].click().run()
    assert not at.exception
    assert any("auth" in e.value and "invalid api key" in e.value for e in at.error)


def test_key_variable_outside_the_allow_list_is_refused(fake_model, monkeypatch):
    # issue 17: any server variable could be sent as a Bearer token to a URL typed on this page
    monkeypatch.setenv("INTERNAL_DB_URL", "postgresql://admin:pw@db/prod")
    monkeypatch.delenv("WORKBENCH_ALLOWED_KEY_VARS", raising=False)
    prompts.save_version("ask", template="{{ q }}", model="fake/model")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.text_area(key="pg_var:ask:q").input("hello")
    at.multiselect(key="pg_models:ask").set_value(["fake/model"])
    at.text_input(key="pg_extra_id").input("openai/x")
    at.text_input(key="pg_extra_base").input("http://127.0.0.1:9/v1")
    at.text_input(key="pg_extra_key").input("INTERNAL_DB_URL")
    at.button[0].click().run()
    assert not at.exception
    assert any("not an API key variable" in e.value for e in at.error)
    assert not fake_model.history and not calls.recent(source="playground")


def test_provider_error_echoing_the_key_is_masked(fake_model, monkeypatch):
    from litellm.llms.custom_llm import CustomLLMError

    monkeypatch.setenv("FAKE_API_KEY", "echoed-secret-value-123456")
    prompts.save_version("ask", template="{{ q }}", model="fake/model")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.text_area(key="pg_var:ask:q").input("hello")
    at.multiselect(key="pg_models:ask").set_value(["fake/model"])
    fake_model.queue(CustomLLMError(status_code=401, message="bad key echoed-secret-value-123456"))
    at.button[0].click().run()
    assert any("bad key ***" in e.value for e in at.error), [e.value for e in at.error]
    assert all("echoed-secret" not in (c.error or "") for c in calls.recent(source="playground"))
