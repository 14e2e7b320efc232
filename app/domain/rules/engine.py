"""The rule engine: load a rule file, evaluate its rules over facts, and propose actions.

Pure functions over plain values. The caller reads the rule file and the patient's history
and passes them in; nothing here touches a database, a file or the app.

Decisions:
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
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, cast, get_args

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

_SETTING_NUMBERS = (
    "mcid_points",
    "responder_min_percent",
    "responder_tis",
    "remission_activity_max",
)
_SETTING_KEYS = frozenset(
    {*_SETTING_NUMBERS, "dose_ladder_g_per_kg", "interval_ladder_weeks", "steroids_first"}
)
_RULE_REQUIRED = frozenset(
    {
        "id",
        "version",
        "description",
        "condition",
        "action",
        "priority",
        "indicator",
        "explanation",
    }
)
_RULE_OPTIONAL = frozenset({"params", "blocks"})
_SECTIONS = frozenset({"settings", "tis", "rules"})


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


def _number(where: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleFileError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def _whole(where: str, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleFileError(f"{where}: {key} must be a whole number, got {value!r}")
    return value


def _text(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleFileError(f"{where}: {key} must be non-empty text, got {value!r}")
    return value


def _table(where: str, value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise RuleFileError(f"{where} must be a table")
    return value


def _check_keys(
    where: str,
    found: Mapping[str, object],
    required: frozenset[str],
    optional: frozenset[str] = frozenset(),
) -> None:
    missing = sorted(required - set(found))
    unknown = sorted(set(found) - required - optional)
    if missing:
        raise RuleFileError(f"{where}: missing {', '.join(missing)}")
    if unknown:
        raise RuleFileError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _load_tis(raw: object) -> dict[str, tuple[tuple[float, float], ...]]:
    section = _table("[tis]", raw)
    _check_keys("[tis]", section, frozenset(TIS_MEASURES))
    table: dict[str, tuple[tuple[float, float], ...]] = {}
    for measure in TIS_MEASURES:
        rows = section[measure]
        if not isinstance(rows, list) or not all(
            isinstance(row, list) and len(row) == 2 for row in rows
        ):
            raise RuleFileError(
                f"[tis]: {measure} must be a list of [min_percent_improvement, points] pairs"
            )
        table[measure] = tuple(
            (_number("[tis]", measure, low), _number("[tis]", measure, points))
            for low, points in rows
        )
    try:
        check_tis_table(table)
    except ValueError as exc:
        raise RuleFileError(f"[tis]: {exc}") from None
    return table


def _load_settings(
    raw: object, tis: Mapping[str, tuple[tuple[float, float], ...]]
) -> tuple[FactSettings, bool]:
    section = _table("[settings]", raw)
    _check_keys("[settings]", section, _SETTING_KEYS)
    numbers = {key: _number("[settings]", key, section[key]) for key in _SETTING_NUMBERS}
    doses, intervals = section["dose_ladder_g_per_kg"], section["interval_ladder_weeks"]
    if not isinstance(doses, list) or not isinstance(intervals, list):
        raise RuleFileError("[settings]: the dose and interval ladders must be lists")
    steroids_first = section["steroids_first"]
    if not isinstance(steroids_first, bool):
        raise RuleFileError(
            f"[settings]: steroids_first must be true or false, got {steroids_first!r}"
        )
    try:
        settings = FactSettings(
            mcid_points=numbers["mcid_points"],
            responder_min_percent=numbers["responder_min_percent"],
            responder_tis=numbers["responder_tis"],
            remission_activity_max=numbers["remission_activity_max"],
            dose_ladder_g_per_kg=tuple(
                _number("[settings]", "dose_ladder_g_per_kg", d) for d in doses
            ),
            interval_ladder_weeks=tuple(
                _whole("[settings]", "interval_ladder_weeks", w) for w in intervals
            ),
            tis_table=tis,
        )
    except ValueError as exc:
        if isinstance(exc, RuleFileError):
            raise
        raise RuleFileError(f"[settings]: {exc}") from None
    return settings, steroids_first


def _placeholders(where: str, template: str) -> frozenset[str]:
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RuleFileError(f"{where}: explanation is not a valid template: {exc}") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise RuleFileError(
                f"{where}: explanation placeholder {{{field}}} must be a plain fact name "
                "like {activity}"
            )
        if field not in FACT_NAMES:
            raise RuleFileError(f"{where}: explanation placeholder {{{field}}} is not a fact")
        names.add(field)
    return frozenset(names)


def _load_params(where: str, action: str, raw: object) -> Mapping[str, object]:
    params = _table(f"{where}: params", raw)
    _check_keys(f"{where}: params of {action}", params, ACTIONS[action])
    for key, choices in PARAM_CHOICES.get(action, {}).items():
        if params[key] not in choices:
            raise RuleFileError(
                f"{where}: param {key} must be one of {', '.join(sorted(choices))}, "
                f"got {params[key]!r}"
            )
    return MappingProxyType(dict(params))


def _rule_id(where: str, rule_id: object) -> str:
    if isinstance(rule_id, str) and _RULE_ID.fullmatch(rule_id):
        return rule_id
    if rule_id is None:
        raise RuleFileError(f"{where}: missing id")
    raise RuleFileError(
        f"{where}: id must start with a letter and use letters, digits, _ . -; got {rule_id!r}"
    )


def _blocks(where: str, raw: object, action: str) -> tuple[str, ...]:
    """The actions a rule keeps from firing beside it: known ones, not its own."""
    if not isinstance(raw, list) or not all(isinstance(b, str) for b in raw):
        raise RuleFileError(f"{where}: blocks must be a list of action names")
    for blocked in raw:
        if blocked not in ACTIONS:
            raise RuleFileError(f"{where}: blocks names unknown action {blocked!r}")
        if blocked == action:
            raise RuleFileError(f"{where}: a rule cannot block its own action {action!r}")
    return tuple(dict.fromkeys(raw))


def _load_rule(index: int, raw: object) -> Rule:
    where = f"rules[{index}]"
    entry = _table(where, raw)
    rule_id = _rule_id(where, entry.get("id"))
    where = f"rule {rule_id!r}"
    _check_keys(where, entry, _RULE_REQUIRED, _RULE_OPTIONAL)

    version = _whole(where, "version", entry["version"])
    if version < 1:
        raise RuleFileError(f"{where}: version must be 1 or more, got {version}")
    priority = _whole(where, "priority", entry["priority"])
    description = " ".join(_text(where, "description", entry["description"]).split())
    explanation = _text(where, "explanation", entry["explanation"])
    _placeholders(where, explanation)

    indicator = entry["indicator"]
    if indicator not in get_args(Indicator):
        raise RuleFileError(
            f"{where}: indicator must be one of {', '.join(get_args(Indicator))}, got {indicator!r}"
        )
    action = entry["action"]
    if not isinstance(action, str) or action not in ACTIONS:
        raise RuleFileError(
            f"{where}: unknown action {action!r}; known actions: {', '.join(sorted(ACTIONS))}"
        )
    params = _load_params(where, action, entry.get("params", {}))

    blocks = _blocks(where, entry.get("blocks", []), action)

    source = _text(where, "condition", entry["condition"])
    try:
        condition = compile_condition(source, FACT_NAMES)
    except ExpressionError as exc:
        raise RuleFileError(f"{where}: condition: {exc}") from None

    return Rule(
        id=rule_id,
        version=version,
        description=description,
        condition=condition,
        condition_source=condition.source,
        action=action,
        params=params,
        priority=priority,
        indicator=cast(Indicator, indicator),
        explanation=explanation,
        blocks=blocks,
    )


def load_rules(toml_text: str) -> RuleSet:
    """Parse and check a rule file, or raise RuleFileError naming the rule or section at fault."""
    try:
        document = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleFileError(f"rule file is not valid TOML: {exc}") from None
    unknown = sorted(set(document) - _SECTIONS)
    if unknown:
        raise RuleFileError(f"rule file: unknown section(s) {', '.join(unknown)}")
    for section in ("settings", "tis"):
        if section not in document:
            raise RuleFileError(f"rule file: missing [{section}] section")
    tis = _load_tis(document["tis"])
    settings, steroids_first = _load_settings(document["settings"], tis)

    raw_rules = document.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RuleFileError("rule file: rules must be an array of tables ([[rules]])")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules):
        rule = _load_rule(index, raw)
        if rule.id in seen:
            raise RuleFileError(f"rule {rule.id!r}: duplicate id")
        seen.add(rule.id)
        rules.append(rule)
    return RuleSet(rules=tuple(rules), settings=settings, steroids_first=steroids_first)


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
