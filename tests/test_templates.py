import pytest

from workbench.templates import TemplateError, render, variables


def test_variables_in_order_without_duplicates():
    assert variables("Hi {{ name }}, {{question}} and {{ name }} again") == ["name", "question"]


def test_render_substitutes_and_keeps_values_literal():
    assert render("Q: {{ q }}", {"q": "{{ secret }}"}) == "Q: {{ secret }}"
    assert render("{{a}}{{b}}", {"a": 1, "b": {"k": [1]}}) == '1{"k": [1]}'


def test_missing_variable_is_named():
    with pytest.raises(TemplateError, match="question"):
        render("{{ question }} {{ name }}", {"name": "x"})


@pytest.mark.parametrize(
    "template",
    [
        "{{ question.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ self.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ config.items() }}",
        "{{ name | upper }}",
        "{{ 7*7 }}",
    ],
)
def test_sandbox_refuses_anything_but_names(template):
    with pytest.raises(TemplateError):
        render(template, {"question": "q", "name": "n", "self": object(), "config": {}, "x": 1})


def test_block_syntax_is_plain_text_not_code():
    assert render("{% for i in range(3) %}{{ x }}{% endfor %}", {"x": 1}) == "{% for i in range(3) %}1{% endfor %}"


def test_attribute_access_never_reaches_python_objects():
    """Even a value that is a Python object only contributes its text."""

    class Secretive:
        secret = "do-not-leak"

        def __str__(self):
            return "visible"

    assert render("{{ obj }}", {"obj": Secretive()}) == "visible"


@pytest.mark.parametrize("template,where", [("{{ x", "line 1, column 1"), ("a\nb }}", "line 2"), ("{{}}", "line 1")])
def test_syntax_errors_name_the_position(template, where):
    with pytest.raises(TemplateError, match=where):
        variables(template)


def test_unclosed_braces_are_linear_not_quadratic():
    # 80 KB of unclosed `{{` took a minute with a lazy DOTALL regex (issue 17)
    import time

    template = "{{ " * 80_000
    started = time.perf_counter()
    with pytest.raises(TemplateError, match="Unclosed '{{' at line 1, column 1"):
        variables(template)
    assert time.perf_counter() - started < 1.0
    many = "{{ a }} text {{" + " x {{" * 50_000
    started = time.perf_counter()
    with pytest.raises(TemplateError, match="Unclosed"):
        variables(many)
    assert time.perf_counter() - started < 1.0


def test_render_after_the_scanner_rewrite():
    assert render("a{{x}}b{{ y }}c{{x}}", {"x": 1, "y": "{{z"}) == "a1b{{zc1"
    with pytest.raises(TemplateError, match=r"Unmatched '}}' at line 2, column 1"):
        variables("{{a}}\n}} {{b}}")
