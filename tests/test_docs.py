"""The project's own docs stay true: the generated field reference is current, every fact type and field
and every standard rule is documented, no pointer leaves the repository, every command has help."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from engine.cli import main
from engine.pack.load import load_pack
from engine.subjects import reference
from facts.models import MODELS
from rules import STANDARD_PACK

ROOT = Path(__file__).resolve().parent.parent
FACTS_DOC = ROOT / "docs" / "facts-format.md"
RULES_DOC = ROOT / "docs" / "rule-packs.md"
REGENERATE = "partyrules rules fields --format md --update docs/rule-packs.md"


def test_the_generated_field_reference_in_rule_packs_md_is_current():
    text = RULES_DOC.read_text(encoding="utf-8")
    assert reference.BEGIN in text and reference.END in text
    current = text[text.index(reference.BEGIN) + len(reference.BEGIN) : text.index(reference.END)]
    assert current == "\n" + reference.markdown(), f"docs/rule-packs.md is stale: run `{REGENERATE}`"


def test_every_subject_field_and_derive_source_has_its_meaning_written():
    assert reference.undocumented() == [], "write their meaning in engine/subjects/reference.py"


def test_the_fields_command_prints_and_rewrites_the_reference(tmp_path):
    runner = CliRunner()
    printed = runner.invoke(main, ["rules", "fields", "--format", "md"])
    assert printed.exit_code == 0 and printed.output == reference.markdown()
    assert "| `attendance_ratio` | number |" in printed.output
    doc = tmp_path / "d.md"
    doc.write_text(f"before\n{reference.BEGIN}\nold\n{reference.END}\nafter\n", encoding="utf-8")
    done = runner.invoke(main, ["rules", "fields", "--update", str(doc)])
    assert done.exit_code == 0, done.output
    assert (
        doc.read_text(encoding="utf-8")
        == f"before\n{reference.BEGIN}\n{reference.markdown()}{reference.END}\nafter\n"
    )
    doc.write_text("no markers\n", encoding="utf-8")
    refused = runner.invoke(main, ["rules", "fields", "--update", str(doc)])
    assert refused.exit_code == 1 and "markers" in refused.output
    table = runner.invoke(main, ["rules", "fields"])
    assert table.exit_code == 0 and "copy_similarity" in table.output


def _sections(text: str) -> dict[str, str]:
    """``### `name``` heading -> the text up to the next heading of that level or above."""
    parts = re.split(r"^(#{1,3} .*)$", text, flags=re.M)
    out = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        m = re.fullmatch(r"### `(\w+)`", heading.strip())
        if m:
            out[m.group(1)] = body
    return out


def _nested_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = []
    for info in model.model_fields.values():
        stack = [info.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                found.append(t)
            else:
                stack.extend(typing.get_args(t))
    return found


@pytest.mark.parametrize("fact_type", sorted(MODELS))
def test_every_fact_type_and_field_is_in_facts_format_md(fact_type):
    sections = _sections(FACTS_DOC.read_text(encoding="utf-8"))
    assert fact_type in sections, f"docs/facts-format.md has no section ### `{fact_type}`"
    body = sections[fact_type]
    model = MODELS[fact_type]
    for nested in _nested_models(model):
        for name in nested.model_fields:
            assert f"`{name}`" in body, (
                f"{fact_type}: nested field {nested.__name__}.{name} is not documented"
            )
    for name in model.model_fields:
        assert f"`{name}`" in body, f"docs/facts-format.md: {fact_type}.{name} is not documented"


def test_every_standard_rule_is_listed_in_rule_packs_md():
    text = RULES_DOC.read_text(encoding="utf-8")
    missing = [r for r in load_pack(STANDARD_PACK).ids() if f"| `{r}` |" not in text]
    assert missing == [], f"add these rules to the table in docs/rule-packs.md: {missing}"


def test_readme_and_docs_point_nowhere_outside_the_repository():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text and "/work/" not in text, f"{path.name} points outside the repository"
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):  # relative links resolve
            assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


def test_the_readme_links_the_docs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/facts-format.md)" in text and "(docs/rule-packs.md)" in text


def _commands(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, click.Context(command, parent=ctx), (*path, name))


def test_every_cli_command_has_help_text():
    ctx = click.Context(main)
    commands = list(_commands(main, ctx))
    assert len(commands) > 30
    runner = CliRunner()
    for path, command in commands:
        assert (command.help or "").strip(), f"`partyrules {' '.join(path)}` has no help text"
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        first = " ".join(command.help.split()[:3])  # click wraps (and hyphen-breaks) the rest
        assert first in " ".join(result.output.split()), path
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"`partyrules {' '.join(path)}` option {param.opts[0]} has no help"
