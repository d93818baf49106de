"""Every rule's script calls one library function with the rule's named inputs, outputs and params, by name.

Read from the workflow as Snakemake loads it (the rules' named inputs, outputs,
params and wildcards) and from each script's source (the keyword arguments of
its call). A renamed output, a script that passes a file under another name,
or a library function whose parameters no longer match fails here, not at the
first real run.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("input", "output", "params", "wildcards")


@dataclass(frozen=True)
class RuleNames:
    name: str
    script: Path
    input: frozenset[str]
    output: frozenset[str]
    params: frozenset[str]
    wildcards: frozenset[str]


def load_rules() -> list[RuleNames]:
    """The workflow's rules that run a script, with their named inputs, outputs, params and wildcards."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

    with tempfile.TemporaryDirectory() as workdir, SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[ROOT / ".test/config.yaml"]),
            storage_settings=StorageSettings(),
            snakefile=ROOT / "Snakefile",
            workdir=Path(workdir),
        )._workflow
        return [
            RuleNames(
                rule.name,
                (ROOT / "rules" / rule.script).resolve(),
                frozenset(rule.input._names),
                frozenset(rule.output._names),
                frozenset(rule.params._names),
                frozenset(rule.wildcard_names),
            )
            for rule in workflow.rules
            if rule.script
        ]


@pytest.fixture(scope="module")
def rules() -> list[RuleNames]:
    return load_rules()


def _snakemake_source(node: ast.expr) -> tuple[str, str, str | None] | None:
    """(section, name, key) of ``snakemake.<section>.<name>[<key>]``; ("threads", ...) for ``snakemake.threads``."""
    key = None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        key, node = str(node.slice.value), node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "snakemake":
        return node.attr, node.attr, key  # snakemake.threads
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "snakemake"
    ):
        return node.value.attr, node.attr, key
    return None


@dataclass(frozen=True)
class ScriptCall:
    function: object
    keywords: dict[str, tuple[str, str, str | None]]


def script_call(source: str) -> ScriptCall:
    """The one call of a script that passes the rule's values, and the library function it calls."""
    tree = ast.parse(source)
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("poolup"):
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}:{alias.name}"
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and any(_snakemake_source(k.value) for k in node.keywords)
    ]
    assert len(calls) == 1, f"expected one call with the rule's values, found {len(calls)}"
    call = calls[0]
    assert not [a for a in call.args if _snakemake_source(a)], "the rule's values go by keyword, not by position"
    if isinstance(call.func, ast.Name):
        module, name = imported[call.func.id].split(":")
        function = getattr(importlib.import_module(module), name)
    else:
        assert isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
        module, name = imported[call.func.value.id].split(":")
        function = getattr(importlib.import_module(f"{module}.{name}"), call.func.attr)
    keywords = {k.arg: _snakemake_source(k.value) for k in call.keywords}
    assert all(keywords.values()), f"keywords not taken from the rule: {[k for k, v in keywords.items() if not v]}"
    return ScriptCall(function, keywords)


def naming_problems(rule: RuleNames, call: ScriptCall) -> list[str]:
    """What does not match between a rule's names and its script's call (empty when all is well)."""
    problems = []
    used: dict[str, set[str]] = {section: set() for section in SECTIONS}
    for keyword, (section, name, key) in call.keywords.items():
        if section == "threads":
            if keyword != "threads":
                problems.append(f"{keyword}=snakemake.threads: name it threads")
            continue
        if section not in SECTIONS:
            problems.append(f"{keyword}=snakemake.{section}: not a rule's input, output, params or wildcard")
            continue
        if name not in getattr(rule, section):
            problems.append(f"{keyword}=snakemake.{section}.{name}: the rule has no {section} named {name}")
        used[section].add(name)
        if keyword not in (name, key):
            problems.append(f"{keyword}=snakemake.{section}.{name}: the keyword is not named like the rule's {name}")
    for section in ("input", "output"):
        for name in sorted(getattr(rule, section) - used[section]):
            problems.append(f"the rule's {section} {name} is not passed to {call.function.__name__}")
    for name in sorted(rule.params - used["params"]):
        problems.append(f"the rule's params {name} is not used")
    try:
        inspect.signature(call.function).bind(**dict.fromkeys(call.keywords))
    except TypeError as error:
        problems.append(f"{call.function.__module__}.{call.function.__name__} does not take these keywords: {error}")
    return problems


def test_every_script_passes_its_rule_names_by_name(rules):
    assert len(rules) >= 15
    problems = {
        rule.name: naming_problems(rule, script_call(rule.script.read_text(encoding="utf-8"))) for rule in rules
    }
    assert {name: found for name, found in problems.items() if found} == {}


def test_one_script_per_rule(rules):
    """Seven figures once shared a script that dispatched on the rule's name: now each rule has its own.

    The training rules are generated, one per block of seeds, from one rule
    definition: they share its script.
    """
    by_script: dict[Path, set[str]] = {}
    for rule in rules:
        family = "train_seeds" if rule.name.startswith("train_seeds_") else rule.name
        by_script.setdefault(rule.script, set()).add(family)
    assert {script.name: families for script, families in by_script.items() if len(families) > 1} == {}
    used = set(by_script)
    assert sorted(p.name for p in (ROOT / "workflow/scripts").glob("*.py") if p.resolve() not in used) == []
    assert not [s for s in (ROOT / "workflow/scripts").glob("*.py") if "snakemake.rule" in s.read_text()]


def test_a_renamed_output_or_a_wrong_keyword_is_found(rules):
    """The check itself: a script that passes an output under another name, or misses one, is reported."""
    store = next(rule for rule in rules if rule.name == "store")
    good = store.script.read_text(encoding="utf-8")
    assert naming_problems(store, script_call(good)) == []
    renamed = good.replace("storage=snakemake.output.storage", "summary=snakemake.output.storage")
    assert any("not named like the rule's storage" in p for p in naming_problems(store, script_call(renamed)))
    assert any("does not take these keywords" in p for p in naming_problems(store, script_call(renamed)))
    missing = good.replace("        storage=snakemake.output.storage,\n", "")
    assert any("output storage is not passed" in p for p in naming_problems(store, script_call(missing)))
    other_rule = RuleNames(**{**store.__dict__, "output": frozenset({"stored", "record"})})
    assert any("has no output named storage" in p for p in naming_problems(other_rule, script_call(good)))
