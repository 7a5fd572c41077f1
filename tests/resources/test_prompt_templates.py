"""The prompt template library: built-ins, user templates, required variables, the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from resources.plugins.prompts import (
    BUILTIN_DIR,
    PromptTemplateError,
    available_templates,
    find_template,
)

BUILTINS = ["code_review", "documentation", "extract_json", "summarize", "test_generation"]
SAMPLES = {
    "code_review": {},
    "documentation": {"code": "def f(): pass"},
    "extract_json": {"text": "Ada Lovelace, born 1815", "schema": {"type": "object"}},
    "summarize": {"text": "A long text about pipelines."},
    "test_generation": {"code": "def f(): pass"},
}


def test_the_builtin_library() -> None:
    assert sorted(available_templates()) == BUILTINS
    assert sorted(p.name for p in BUILTIN_DIR.glob("*.j2")) == [f"{n}.j2" for n in BUILTINS]


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_renders_with_its_required_variables(name: str) -> None:
    template = find_template(name)
    assert template.description  # the header says what it is for
    assert template.missing(SAMPLES[name]) == []
    text = template.render(SAMPLES[name])
    assert text.strip() and "{{" not in text and "None" not in text
    for value in SAMPLES[name].values():
        if isinstance(value, str):
            assert value in text


def test_required_and_optional_variables() -> None:
    template = find_template("summarize")
    assert template.required == {"text"}
    assert template.optional == {"max_words", "audience"}
    assert "at most 150 words" in template.render({"text": "x"})
    assert "at most 40 words" in template.render({"text": "x", "max_words": 40})
    with pytest.raises(PromptTemplateError, match="needs template_variables: text"):
        template.render({})


def test_code_review_needs_nothing_and_uses_what_it_gets() -> None:
    """The seed workflow calls code_review without variables."""
    bare = find_template("code_review").render({})
    assert "Review the project in the current working copy" in bare
    full = find_template("code_review").render(
        {"code": "x = 1", "language": "python", "files": ["a.py", "b.py"]}
    )
    assert "```python\nx = 1\n```" in full and "- a.py\n- b.py" in full


def test_user_templates_add_and_override(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "summarize.j2").write_text("{# Ours. #}TL;DR: {{ text }}")
    (prompts / "haiku.j2").write_text("{# A haiku. optional: season #}Haiku about {{ topic }}")
    assert find_template("summarize", tmp_path).render({"text": "x"}) == "TL;DR: x\n"
    assert find_template("haiku", tmp_path).required == {"topic"}
    assert "haiku" in available_templates(tmp_path)
    assert find_template("summarize").path.parent == BUILTIN_DIR  # other workflows unaffected


def test_unknown_and_invalid_names(tmp_path: Path) -> None:
    with pytest.raises(PromptTemplateError, match="unknown prompt template 'nope'; known"):
        find_template("nope", tmp_path)
    with pytest.raises(PromptTemplateError, match="invalid prompt template name"):
        find_template("../../etc/passwd", tmp_path)


def test_templates_render_in_a_sandbox(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "evil.j2").write_text("{{ text.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(PromptTemplateError, match="unsafe"):
        find_template("evil", tmp_path).render({"text": "x"})


def test_a_template_with_a_syntax_error_names_its_file(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "broken.j2").write_text("Hello {{ name ")
    with pytest.raises(PromptTemplateError, match=r"prompt template 'broken' \(.*broken.j2\)"):
        find_template("broken", tmp_path)
