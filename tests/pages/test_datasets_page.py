from streamlit.testing.v1 import AppTest

from workbench import datasets, prompts

PAGE = "../../pages/3_Datasets.py"


def test_paste_preview_coverage_and_save():
    prompts.save_version("ask", template="{{ question }} {{ context }}")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.radio(key="ds_source").set_value("Paste rows").run()
    at.text_area(key="ds_paste").input("question;expected\nWhat is 2+2?;4\nCapital of France?;Paris\n").run()
    assert not at.exception
    assert any("2 rows" in s.value for s in at.success)
    coverage = at.dataframe[2].value
    assert coverage.loc[0, "missing"] == "context" and not coverage.loc[0, "ok"]
    at.text_input(key="ds_name").input("quiz")
    at.button(key="ds_save").click().run()
    assert any("Saved quiz v1" in s.value for s in at.success)
    assert datasets.get_version("quiz").row_count == 2
    at.button(key="ds_save").click().run()
    assert any("No change" in i.value for i in at.info)


def test_broken_input_names_the_line_and_stores_nothing():
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.radio(key="ds_source").set_value("Paste rows").run()
    at.text_area(key="ds_paste").input('{"q": 1}\n{"q": 2\n').run()
    assert any("Line 2" in e.value and "truncated" in e.value for e in at.error)
    assert datasets.list_datasets() == []


def test_browse_edit_and_export():
    datasets.save_version("quiz", datasets.parse_pasted("id,question\na,one\nb,two\n"))
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert at.selectbox(key="ds_browse").value == "quiz"
    assert [b.label for b in at.get("download_button")] == ["Export CSV", "Export JSONL"]
    assert len(at.dataframe) == 2  # the listing and the editable rows table
    assert at.dataframe[1].value["question"].tolist() == ["one", "two"]
    assert at.button(key="ds_save_edits").label == "Save edits as a new version"
