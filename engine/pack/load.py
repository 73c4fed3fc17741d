"""Loading a rule pack: YAML → validated models → compiled conditions, or every error at once.

A pack is a folder of ``*.yaml`` files.  Loading validates the structure
(pydantic), each rule's condition (parsed, type-checked against the
subject's fields, compiled to durable_rules), each message template's
placeholders, and that two versions of one rule id never overlap in time.
Nothing is discovered later, when a scheduled check runs.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engine import condition
from engine.condition.prefilter import NotVectorisable, Prefilter, compile_prefilter
from engine.errors import ConditionError
from engine.pack.errors import PackError, PackProblem
from engine.pack.model import Rule, RuleFile
from engine.pack.params import check_message, check_params
from engine.pack.tables import resolve_tables
from engine.subjects.schema import subject_fields
from facts.validate import suggest

FileLines = dict[int, dict[str, int]]  # rule index -> key -> line
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ten times faster


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    file: str
    line: int
    version: str  # short hash of the rule's own definition
    expr: Any  # parsed condition
    durable: dict[str, Any]  # durable_rules JSON condition
    fields: dict[str, str]
    params: dict[str, Any]
    prefilter: Prefilter | None = None  # the condition's vectorised form, when it has one

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def key(self) -> str:
        """Unique within a pack: the id and the version of its text."""
        return f"{self.rule.id}@{self.version}"


@dataclass
class Pack:
    root: str
    hash: str
    rules: list[CompiledRule]
    fixtures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # file -> shared test facts

    def ids(self) -> list[str]:
        return sorted({r.id for r in self.rules})

    def in_force(self, day: date) -> list[CompiledRule]:
        """The version of each rule in force on ``day``."""
        return [r for r in self.rules if r.rule.effective.in_force(day)]

    def by_id(self, rule_id: str) -> list[CompiledRule]:
        return [r for r in self.rules if r.id == rule_id]


def _lines(text: str) -> FileLines:
    """Line numbers of each rule and of each of its keys, from the YAML node tree."""
    out: FileLines = {}
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError:
        return out
    if not isinstance(root, yaml.MappingNode):
        return out
    for key_node, value in root.value:
        if key_node.value == "rules" and isinstance(value, yaml.SequenceNode):
            for i, item in enumerate(value.value):
                keys = {"": item.start_mark.line + 1}
                if isinstance(item, yaml.MappingNode):
                    for k, _v in item.value:
                        keys[str(k.value)] = k.start_mark.line + 1
                out[i] = keys
    return out


def _pydantic_problems(exc: ValidationError, file: str, raw: Any, lines: FileLines) -> list[PackProblem]:
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        rule_id = None
        line = 1
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            idx = loc[1]
            rules = raw.get("rules") if isinstance(raw, dict) else None
            if isinstance(rules, list) and idx < len(rules) and isinstance(rules[idx], dict):
                rule_id = rules[idx].get("id")
            keys = lines.get(idx, {})
            line = keys.get(str(loc[2]), keys.get("", 1)) if len(loc) > 2 else keys.get("", 1)
            loc = loc[2:]
        path = ".".join(str(p) for p in loc if not str(p).startswith("function-"))
        message = str(err["msg"])
        hint = None
        if err["type"] == "extra_forbidden":
            message = "unknown field"
            hint = _field_hint(str(loc[-1]))
        elif err["type"] == "union_tag_invalid":
            message = f"unknown kind: {err.get('input')!r}; expected one of {err['ctx'].get('expected_tags')}"
        problems.append(PackProblem(file, line, rule_id, path, message, hint))
    return problems


_KNOWN_RULE_KEYS = list(Rule.model_fields) + ["from"]


def _field_hint(name: str) -> str | None:
    text = suggest(name, _KNOWN_RULE_KEYS)
    return text.strip(" ()") or None


def _compile(
    rule: Rule, file: str, keys: dict[str, int], from_tables: frozenset[str] = frozenset()
) -> tuple[CompiledRule | None, list[PackProblem]]:
    fields = subject_fields(rule)
    params = rule.numeric_params()
    scalar_params = {k: v for k, v in params.items() if isinstance(v, int | float | str | bool)}
    problems: list[PackProblem] = []
    expr = durable = None
    try:
        expr = condition.parse(rule.when)
        condition.check(expr, fields, scalar_params)
        durable = condition.compile_durable(expr, fields, scalar_params)
    except ConditionError as exc:
        problems.append(
            PackProblem(file, keys.get("when", keys.get("", 1)), rule.id, "when", str(exc), exc.suggestion)
        )
    # typed params and message placeholders (engine.pack.params)
    issues = check_params(rule, expr, from_tables) + check_message(
        rule.message, fields, rule.params, rule.subject.type
    )
    for issue in issues:
        key = issue.field.split(".")[0]
        line = keys.get(key, keys.get("", 1))
        problems.append(PackProblem(file, line, rule.id, issue.field, issue.message, issue.hint))
    if problems or expr is None or durable is None:
        return None, problems
    version = hashlib.sha256(rule.model_dump_json(by_alias=True).encode()).hexdigest()[:10]
    try:
        prefilter: Prefilter | None = compile_prefilter(expr, fields, scalar_params)
    except NotVectorisable:  # its subjects are all posted to durable_rules, as before the pre-filter
        prefilter = None
    compiled = CompiledRule(rule, file, keys.get("", 1), version, expr, durable, dict(fields), params, prefilter)
    return compiled, []


def _overlaps(rules: list[CompiledRule]) -> list[PackProblem]:
    problems = []
    by_id: dict[str, list[CompiledRule]] = defaultdict(list)
    for r in rules:
        by_id[r.id].append(r)
    for rule_id, versions in by_id.items():
        versions.sort(key=lambda r: r.rule.effective.from_)
        for a, b in zip(versions, versions[1:], strict=False):
            a_to = a.rule.effective.to
            if a_to is None or a_to >= b.rule.effective.from_:
                problems.append(
                    PackProblem(
                        b.file,
                        b.line,
                        rule_id,
                        "effective",
                        f"two versions of {rule_id} are in force at once: {a.file}:{a.line} "
                        f"(from {a.rule.effective.from_}, to {a_to or 'open'}) and this one "
                        f"(from {b.rule.effective.from_})",
                        "end the earlier version (effective.to) the day before the later one starts",
                    )
                )
    return problems


MAX_FILE_BYTES = 5_000_000  # a rule file is text a person writes; the standard pack's largest is ~30 kB


MAX_ALIAS_NODES = 10_000  # values that YAML aliases may add to a file in all (the standard pack needs none)


def _alias_bomb(text: str) -> tuple[int, str] | None:
    """(line, what) where YAML aliases in ``text`` would expand past :data:`MAX_ALIAS_NODES` values.

    An alias is a copy of its anchor's value, so ten nested lists of ten aliases are 10^10 values
    ("billion laughs": 10^7 took 11–23 s and 0.26–2.3 GB, more exhausted memory).  The expanded size is
    counted on the event stream, before any node is built: each anchored value's size is remembered and
    each alias adds it.  Anchors that tools write for a few shared values (``yaml.dump``) still load."""
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = [[None, 0]]  # open collections: [anchor, values inside so far]
    expanded = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                size = sizes.get(str(event.anchor), 1)
                expanded += size
                stack[-1][1] += size
                if expanded > MAX_ALIAS_NODES:
                    line = event.start_mark.line + 1 if event.start_mark else 1
                    return line, f"alias *{event.anchor} brings the expanded values past {MAX_ALIAS_NODES:,}"
            elif isinstance(event, yaml.ScalarEvent):
                stack[-1][1] += 1
                if event.anchor is not None:
                    sizes[str(event.anchor)] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                stack.append([event.anchor, 0])
            elif isinstance(event, yaml.CollectionEndEvent) and len(stack) > 1:
                anchor, inside = stack.pop()
                if anchor is not None:
                    sizes[str(anchor)] = inside + 1
                stack[-1][1] += inside + 1
    except yaml.YAMLError:
        return None  # the load reports the syntax error with its line
    return None


def alias_problem(file: str, line: int, what: str) -> PackProblem:
    return PackProblem(
        file,
        line,
        None,
        "",
        f"YAML aliases expand too far ({what})",
        "write the values out, or put a long list in a decision table (params: {name: {table: file.csv}})",
    )


def pack_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


def load_pack(root: Path | str) -> Pack:
    """Load and validate a pack folder; raise :class:`PackError` listing every problem."""
    root = Path(root)
    if not root.is_dir():
        raise PackError([PackProblem(str(root), 0, None, "", "is not a folder of rule files", None)])
    files = pack_files(root)
    if not files:
        raise PackError([PackProblem(str(root), 0, None, "", "holds no .yaml rule files", None)])
    digest = hashlib.sha256()
    problems: list[PackProblem] = []
    compiled: list[CompiledRule] = []
    fixtures: dict[str, list[dict[str, Any]]] = {}
    for path in files:
        rel = str(path.relative_to(root))
        shown = str(path)
        data = path.read_bytes()
        digest.update(rel.encode() + b"\0" + data + b"\0")
        if len(data) > MAX_FILE_BYTES:
            problems.append(
                PackProblem(shown, 1, None, "", f"is {len(data):,} bytes, at most {MAX_FILE_BYTES:,} for a rule file", None)
            )
            continue
        try:
            text = data.decode("utf-8")
            alias = _alias_bomb(text)
            if alias is not None:
                problems.append(alias_problem(shown, *alias))
                continue
            raw = yaml.load(text, Loader=_LOADER)
        except UnicodeDecodeError as exc:
            problems.append(
                PackProblem(shown, 1, None, "", f"is not UTF-8 ({exc.reason} at byte {exc.start})", None)
            )
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else 1
            problems.append(PackProblem(shown, line, None, "", f"YAML syntax error: {exc}", None))
            continue
        if raw is None:
            continue
        tables, found, from_tables = resolve_tables(raw, path.parent)
        problems.extend(found)
        for table in tables:
            if table.is_file():
                digest.update(str(table.relative_to(root)).encode() + b"\0" + table.read_bytes() + b"\0")
        lines = _lines(text)
        try:
            rule_file = RuleFile.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, shown, raw, lines))
            continue
        fixtures[shown] = rule_file.fixture
        for i, rule in enumerate(rule_file.rules):
            result, found = _compile(rule, shown, lines.get(i, {}), from_tables.get(i, frozenset()))
            problems.extend(found)
            if result is not None:
                compiled.append(result)
    problems.extend(_overlaps(compiled))
    if problems:
        raise PackError(problems)
    return Pack(str(root), digest.hexdigest()[:16], compiled, fixtures)
