from streamlit.testing.v1 import AppTest

from workbench import prompts, sample

PAGE = "../../pages/1_Prompts.py"


def app():
    at = AppTest.from_file(PAGE, default_timeout=30)
    return at.run()


def test_lists_sample_prompts_and_versions():
    sample.load_all()
    at = app()
    assert not at.exception
    assert "support-answer" in at.dataframe[0].value["name"].tolist()
    assert at.selectbox(key="prompt_choice").value == "json-extractor"
    at.selectbox(key="prompt_choice").set_value("support-answer").run()
    versions = at.dataframe[1].value
    assert versions["version"].tolist() == [2, 1]
    assert versions["labels"].tolist() == ["staging", "production"]


def test_create_edit_and_save_versions():
    at = app()
    assert at.selectbox(key="prompt_choice").value == "➕ New prompt"
    at.text_input(key="name:➕ New prompt:0").input("haiku")
    at.text_area(key="tpl:➕ New prompt:0").input("Write a haiku about {{ topic }}.")
    at.button(key="save").click().run()
    assert not at.exception
    assert prompts.resolve("haiku").variables == ["topic"]
    assert at.selectbox(key="prompt_choice").value == "haiku"
    assert any("Saved haiku v1" in s.value for s in at.success)
    # Edit: a new version; the variables caption follows the template.
    at.text_area(key="tpl:haiku:1").input("Write a haiku about {{ topic }} in {{ language }}.")
    at.text_input(key="note:haiku:1").input("add language")
    at.button(key="save").click().run()
    assert [v.version for v in prompts.versions("haiku")] == [1, 2]
    assert prompts.get_version("haiku", 2).note == "add language"
    # Saving again unchanged stores nothing.
    at.button(key="save").click().run()
    assert len(prompts.versions("haiku")) == 2
    assert any("No change" in i.value for i in at.info)


def test_bad_template_shows_error_and_stores_nothing():
    at = app()
    at.text_input(key="name:➕ New prompt:0").input("broken")
    at.text_area(key="tpl:➕ New prompt:0").input("Hello {{ user.name }}")
    at.button(key="save").click().run()
    assert any("Invalid placeholder" in e.value for e in at.error)
    assert all(p["name"] != "broken" for p in prompts.list_prompts())


def test_label_rollback_and_diff():
    sample.load_all()
    at = app()
    at.selectbox(key="prompt_choice").set_value("support-answer").run()
    at.selectbox(key="label_name").set_value("production")
    at.selectbox(key="label_version:support-answer:2").set_value(2).run()
    at.button(key="move_label").click().run()
    assert prompts.labels_of("support-answer")["production"] == 2
    at.selectbox(key="label_version:support-answer:2").set_value(1).run()
    assert "Roll back" in at.button(key="move_label").label
    at.button(key="move_label").click().run()
    assert prompts.labels_of("support-answer")["production"] == 1
    assert not at.exception
    diff_html = " ".join(m.value for m in at.markdown)
    assert "concise, friendly support agent" in diff_html  # v2 text in the side-by-side diff
