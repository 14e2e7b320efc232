"""The rule engine: load a rule file, evaluate its rules over facts, and propose actions.

Pure functions over plain values. The caller reads the rule file and the patient's history
and passes them in; nothing here touches a database, a file or the app.

Decisions:
- The rule file is parsed by strict pydantic models: no coercion (a bool is not a number, a
  float not a whole number), unknown sections and keys refused. The first problem is reported,
  named by section (`[settings]`), rule (`rule 'r1'`; `rules[0]` without a valid id) and key.
- A rule fires when its condition holds and its action can be resolved (a de-escalation with
  no ladder step left, or a flare return with no version to return to, does not fire).
- `blocks` of every fired rule apply, even of one that is itself blocked; a rule may not block
  its own action. Then, with steroids_first, a surviving taper step drops any de-escalation.
- Proposals come in priority order (lower first), ties in rule-file order.
"""

from __future__ import annotations

import math
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Literal, cast, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from app.domain.rules.expressions import Condition, ExpressionError, compile_condition
from app.domain.rules.facts import (
    EVIDENCE,
    FACT_NAMES,
    TIS_MEASURES,
    FactSettings,
    FactValue,
    History,
    check_tis_table,
    compute_facts,
)

Indicator = Literal["info", "warning", "critical"]

# Action kind -> the params a rule must give it (exactly these).
ACTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "review_nonresponse": frozenset(),
        "deescalate_ivig": frozenset({"strategy"}),
        "taper_step": frozenset(),
        "flare_return": frozenset(),
        "hold_taper": frozenset(),
        "discontinuation_review": frozenset(),
        "safety_hold": frozenset(),
    }
)
# Params whose value must be one of a fixed set.
PARAM_CHOICES: Mapping[str, Mapping[str, frozenset[str]]] = MappingProxyType(
    {"deescalate_ivig": MappingProxyType({"strategy": frozenset({"dose_first", "interval_first"})})}
)

# Display and format bounds only: no clinical meaning.
SUMMARY_MAX_CHARS = 139  # CDS Hooks: a card summary is under 140 characters
_ELLIPSIS = "…"
_RULE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
_EPS = 1e-9


class RuleFileError(ValueError):
    """A rule file that cannot be used; the message names the rule or section and the problem."""


@dataclass(frozen=True)
class Rule:
    """One checked rule of a rule file."""

    id: str
    version: int
    description: str
    condition: Condition
    condition_source: str
    action: str
    params: Mapping[str, object]
    priority: int
    indicator: Indicator
    explanation: str
    blocks: tuple[str, ...] = ()

    @property
    def evidence(self) -> frozenset[str]:
        """Return what the rule rests on (assessment, regimen, adverse_events, taper)."""
        sources = set().union(*(EVIDENCE[name] for name in self.condition.facts))
        if self.action in ("taper_step", "hold_taper"):
            sources.add("taper")
        return frozenset(sources)


@dataclass(frozen=True)
class RuleSet:
    """A loaded rule file: its rules in file order and the settings facts are computed with."""

    rules: tuple[Rule, ...]
    settings: FactSettings
    steroids_first: bool

    def rule(self, rule_id: str) -> Rule | None:
        """Return the rule with this id, or None."""
        return next((r for r in self.rules if r.id == rule_id), None)


@dataclass(frozen=True)
class Proposal:
    """One action a fired rule proposes, with the facts that justify it filled in."""

    rule_id: str
    rule_version: int
    action: str
    params: Mapping[str, object]
    indicator: str
    summary: str
    detail: str
    priority: int


# ------------------------------------------------------------------ the rule file's models
# A validator's ValueError message is the refusal after "<where>: ", so it names its key.


def _must(test: Callable[[Any], object], message: str) -> BeforeValidator:
    """Refuse a value that fails the test, with the message ({key} and {value} filled in)."""

    def check(value: object, info: ValidationInfo) -> object:
        if test(value):
            return value
        raise ValueError(message.format(key=info.field_name, value=value))

    return BeforeValidator(check)


def _condition(value: object) -> Condition:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"condition must be non-empty text, got {value!r}")
    try:
        return compile_condition(value, FACT_NAMES)
    except ExpressionError as exc:
        raise ValueError(f"condition: {exc}") from None


def _placeholders(template: str) -> str:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"explanation is not a valid template: {exc}") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(
                f"explanation placeholder {{{field}}} must be a plain fact name like {{activity}}"
            )
        if field not in FACT_NAMES:
            raise ValueError(f"explanation placeholder {{{field}}} is not a fact")
    return template


def _blocks(value: object) -> object:
    """The actions a rule keeps from firing beside it: known ones, each once."""
    if not isinstance(value, list) or not all(isinstance(b, str) for b in value):
        raise ValueError("blocks must be a list of action names")
    for blocked in value:
        if blocked not in ACTIONS:
            raise ValueError(f"blocks names unknown action {blocked!r}")
    return tuple(dict.fromkeys(value))


_Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]  # int or float; not a bool
_Whole = Annotated[int, Strict()]
_Text = Annotated[str, Strict(), Field(pattern=r"\S")]  # not blank
_TisRows = Annotated[
    tuple[tuple[_Number, _Number], ...],
    _must(
        lambda rows: (
            isinstance(rows, list) and all(isinstance(r, list) and len(r) == 2 for r in rows)
        ),
        "{key} must be a list of [min_percent_improvement, points] pairs",
    ),
]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Tis(_Table):
    physician_global: _TisRows
    patient_global: _TisRows
    mmt8: _TisRows
    haq: _TisRows
    enzyme: _TisRows
    extramuscular_global: _TisRows

    @model_validator(mode="after")
    def _ascending(self) -> _Tis:
        check_tis_table(self.model_dump())
        return self


assert tuple(_Tis.model_fields) == TIS_MEASURES  # the six measures, in their order


class _Settings(_Table):
    mcid_points: _Number
    responder_min_percent: _Number
    responder_tis: _Number
    remission_activity_max: _Number
    dose_ladder_g_per_kg: tuple[_Number, ...]
    interval_ladder_weeks: tuple[_Whole, ...]
    steroids_first: Annotated[bool, Strict()]

    def facts(self, tis: _Tis) -> FactSettings:
        """Return the fact settings; FactSettings raises ValueError on values it cannot use."""
        return FactSettings(
            **self.model_dump(exclude={"steroids_first"}), tis_table=tis.model_dump()
        )


class _Rule(_Table):
    id: Annotated[
        str,
        _must(
            lambda v: isinstance(v, str) and _RULE_ID.fullmatch(v),
            "id must start with a letter and use letters, digits, _ . -; got {value!r}",
        ),
    ]
    version: Annotated[_Whole, Field(ge=1)]
    priority: _Whole
    description: Annotated[_Text, AfterValidator(lambda text: " ".join(text.split()))]
    explanation: Annotated[_Text, AfterValidator(_placeholders)]
    indicator: Annotated[
        Indicator,
        _must(
            lambda v: v in get_args(Indicator),
            f"indicator must be one of {', '.join(get_args(Indicator))}, got {{value!r}}",
        ),
    ]
    action: Annotated[
        str,
        _must(
            lambda v: isinstance(v, str) and v in ACTIONS,
            f"unknown action {{value!r}}; known actions: {', '.join(sorted(ACTIONS))}",
        ),
    ]
    params: Annotated[Mapping[str, object], AfterValidator(MappingProxyType)] = Field(
        default_factory=lambda: MappingProxyType({})
    )
    blocks: Annotated[tuple[str, ...], BeforeValidator(_blocks)] = ()
    condition: Annotated[Condition, PlainValidator(_condition)]

    @model_validator(mode="after")
    def _fits_action(self) -> _Rule:
        """Params exactly those the action takes, choices among theirs; not blocking itself."""
        wanted, given = ACTIONS[self.action], set(self.params)
        for problem, keys in (("missing", wanted - given), ("unknown key(s)", given - wanted)):
            if keys:
                raise ValueError(f"params of {self.action}: {problem} {', '.join(sorted(keys))}")
        for key, choices in PARAM_CHOICES.get(self.action, {}).items():
            value = self.params[key]
            if not isinstance(value, str) or value not in choices:
                raise ValueError(
                    f"param {key} must be one of {', '.join(sorted(choices))}, got {value!r}"
                )
        if self.action in self.blocks:
            raise ValueError(f"a rule cannot block its own action {self.action!r}")
        return self


def _usable(settings: _Settings, info: ValidationInfo) -> _Settings:
    if "tis" in info.data:  # else [tis] is refused already
        settings.facts(info.data["tis"])
    return settings


class _RuleFile(_Table):
    tis: _Tis  # before [settings]: the settings are checked with the table
    settings: Annotated[_Settings, AfterValidator(_usable)]
    rules: Annotated[
        tuple[_Rule, ...],
        _must(lambda v: isinstance(v, list), "rules must be an array of tables ([[rules]])"),
    ] = ()


# Pydantic's error types in the rule file's words ("array" and "table" as in TOML).
_WORDS: Mapping[str, str] = {
    **dict.fromkeys(("float_type", "finite_number"), "must be a finite number"),
    **dict.fromkeys(("string_type", "string_pattern_mismatch"), "must be non-empty text"),
    **dict.fromkeys(("dict_type", "model_type"), "must be a table"),
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "tuple_type": "must be an array",
    "greater_than_equal": "must be {ge} or more",
}


def _place(loc: tuple[int | str, ...], document: Mapping[str, object]) -> str:
    """Name a section or rule: rule file, [tis], rule 'r1' or (no valid id yet) rules[0]."""
    if len(loc) < 2 or loc[0] != "rules":
        return f"[{loc[0]}]" if loc else "rule file"
    entry = cast(list[object], document["rules"])[cast(int, loc[1])]
    rule_id = entry.get("id") if isinstance(entry, dict) else None
    if isinstance(rule_id, str) and _RULE_ID.fullmatch(rule_id):
        return f"rule {rule_id!r}"
    return f"rules[{loc[1]}]"


def _refusal(exc: ValidationError, document: Mapping[str, object]) -> RuleFileError:
    """The first problem of a validation error, in the words of a rule file."""
    errors = exc.errors()
    # An unknown section first: it is likely a misspelt one, reported missing too.
    top = [e for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1]
    first = (top or errors)[0]
    loc, kind = first["loc"], first["type"]
    if kind in ("missing", "extra_forbidden"):  # of a table; at the top, of sections
        keys = sorted(
            str(e["loc"][-1]) for e in errors if e["type"] == kind and e["loc"][:-1] == loc[:-1]
        )
        section = len(loc) == 1
        words = {
            "missing": f"missing [{keys[0]}] section" if section else f"missing {', '.join(keys)}",
            "extra_forbidden": f"unknown {'section' if section else 'key'}(s) {', '.join(keys)}",
        }[kind]
        return RuleFileError(f"{_place(loc[:-1], document)}: {words}")
    # The section ([settings]) or the rule (rules, 0) the error is in; then the key.
    depth = (2 if len(loc) > 1 else 0) if loc[0] == "rules" else 1
    where, key = _place(loc[:depth], document), loc[depth:]
    if kind == "value_error":
        return RuleFileError(f"{where}: {first['ctx']['error']}")
    words = _WORDS.get(kind, "is not valid").format(**first.get("ctx", {}))
    if not key:
        return RuleFileError(f"{where} {words}")
    return RuleFileError(f"{where}: {key[0]} {words}, got {first['input']!r}")


def load_rules(toml_text: str) -> RuleSet:
    """Parse and check a rule file, or raise RuleFileError naming the rule or section at fault."""
    try:
        document = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleFileError(f"rule file is not valid TOML: {exc}") from None
    try:
        parsed = _RuleFile.model_validate(document)
    except ValidationError as exc:
        raise _refusal(exc, document) from None
    ids = [rule.id for rule in parsed.rules]
    duplicate = next((rule_id for n, rule_id in enumerate(ids) if rule_id in ids[:n]), None)
    if duplicate is not None:
        raise RuleFileError(f"rule {duplicate!r}: duplicate id")
    rules = tuple(Rule(**dict(r), condition_source=r.condition.source) for r in parsed.rules)
    return RuleSet(rules, parsed.settings.facts(parsed.tis), parsed.settings.steroids_first)


def _display(value: object) -> str:
    """Show a fact as a clinician reads it: 5 not 5.0, 33.33 not 33.333333, yes/no, unknown."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "unknown"
        if abs(value - round(value)) < _EPS:
            return str(round(value))
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _resolve(rule: Rule, facts: Mapping[str, object]) -> dict[str, object] | None:
    """Return the proposal's params for the facts, or None when the action has nothing to do."""
    params: dict[str, object] = dict(rule.params)
    if rule.action == "deescalate_ivig":
        dose_step = ("dose", facts.get("dose_g_per_kg"), facts.get("next_dose_g_per_kg"))
        interval_step = (
            "interval",
            facts.get("interval_weeks"),
            facts.get("next_interval_weeks"),
        )
        order = (
            (dose_step, interval_step)
            if params["strategy"] == "dose_first"
            else (interval_step, dose_step)
        )
        for change, current, target in order:
            if current is not None and target is not None:
                params.update({"change": change, "from": current, "to": target})
                return params
        return None
    if rule.action == "flare_return":
        version = facts.get("last_controlled_version")
        if version is None:
            return None
        params["to_version"] = version
    elif rule.action in ("taper_step", "hold_taper"):
        params["current_mg"] = facts.get("taper_mg")
    elif rule.action == "safety_hold":
        params["open_serious_events"] = facts.get("open_serious_events")
    return params


def _change_text(params: Mapping[str, object]) -> str:
    if params.get("change") == "dose":
        return f"dose {_display(params['from'])} → {_display(params['to'])} g/kg"
    if params.get("change") == "interval":
        return f"every {_display(params['from'])} → {_display(params['to'])} weeks"
    if "to_version" in params:
        return f"back to regimen version {_display(params['to_version'])}"
    return ""


def _summary(description: str, params: Mapping[str, object]) -> str:
    change = _change_text(params)
    text = " ".join(f"{description} ({change})".split()) if change else description
    if len(text) <= SUMMARY_MAX_CHARS:
        return text
    cut = text[: SUMMARY_MAX_CHARS - len(_ELLIPSIS)]
    space = cut.rfind(" ")
    if space > SUMMARY_MAX_CHARS // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + _ELLIPSIS


class _FactView(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "unknown"


def evaluate(ruleset: RuleSet, facts: Mapping[str, object]) -> list[Proposal]:
    """Return the proposals of the rules that fire on these facts, in priority order."""
    fired: list[tuple[int, Rule, dict[str, object]]] = []
    for order, rule in enumerate(ruleset.rules):
        if not rule.condition.evaluate(facts):
            continue
        params = _resolve(rule, facts)
        if params is not None:
            fired.append((order, rule, params))

    blocked = {action for _order, rule, _params in fired for action in rule.blocks}
    kept = [item for item in fired if item[1].action not in blocked]
    if ruleset.steroids_first and any(rule.action == "taper_step" for _o, rule, _p in kept):
        kept = [item for item in kept if item[1].action != "deescalate_ivig"]
    kept.sort(key=lambda item: (item[1].priority, item[0]))

    view = _FactView({name: _display(value) for name, value in facts.items()})
    return [
        Proposal(
            rule_id=rule.id,
            rule_version=rule.version,
            action=rule.action,
            params=params,
            indicator=rule.indicator,
            summary=_summary(rule.description, params),
            detail=" ".join(rule.explanation.format_map(view).split()),
            priority=rule.priority,
        )
        for _order, rule, params in kept
    ]


def evaluate_history(
    ruleset: RuleSet, history: History
) -> tuple[dict[str, FactValue], list[Proposal]]:
    """Compute the history's facts with the rule set's settings, then evaluate the rules."""
    facts = compute_facts(history, ruleset.settings)
    return facts, evaluate(ruleset, facts)
