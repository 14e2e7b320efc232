"""Decision-support rules: TIS, facts, the condition language, rule files and scripted courses."""

from __future__ import annotations

import datetime as dt
import math
import operator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app.domain.rules as rules_package
from app.domain.rules import (
    ACTIONS,
    FACT_NAMES,
    AdverseEventFact,
    Assessment,
    ExpressionError,
    FactSettings,
    History,
    Proposal,
    RegimenVersion,
    RuleFileError,
    RuleSet,
    TaperFact,
    compile_condition,
    compute_facts,
    evaluate,
    evaluate_history,
    load_rules,
    total_improvement_score,
)

DEFAULT_TEXT = (Path(rules_package.__file__).parent / "default_rules.toml").read_text()
RULES = load_rules(DEFAULT_TEXT)
SETTINGS = RULES.settings

D0 = dt.date(2024, 1, 8)  # course start: day 1 of cycle 1


def week(n: int, days: int = 0) -> dt.date:
    return D0 + dt.timedelta(weeks=n, days=days)


def visits(*pairs: tuple[int, float | None]) -> tuple[Assessment, ...]:
    """Assessments by (week, CDASI activity), ids in order."""
    return tuple(
        Assessment(id=i, assessed_on=week(w), cdasi_activity=a)
        for i, (w, a) in enumerate(pairs, start=1)
    )


def regimen(version: int, starts_week: int, dose: float, interval: int) -> RegimenVersion:
    return RegimenVersion(version, week(starts_week), dose, interval, 2, "Octagam 10%")


def every(interval: int, start: int, stop: int) -> tuple[dt.date, ...]:
    return tuple(week(w) for w in range(start, stop, interval))


def history(**changes: object) -> History:
    base = History(
        patient_id=1,
        as_of=D0,
        course_started_on=D0,
        assessments=(),
        cycles_given=(),
        regimens=(regimen(1, 0, 2.0, 4),),
    )
    return replace(base, **changes)


def run(hist: History, as_of: dt.date, ruleset: RuleSet = RULES) -> list[Proposal]:
    return evaluate_history(ruleset, replace(hist, as_of=as_of))[1]


def actions(proposals: list[Proposal]) -> list[str]:
    return [p.action for p in proposals]


def change(proposal: Proposal) -> tuple[object, object, object]:
    return proposal.params["change"], proposal.params["from"], proposal.params["to"]


def with_rule(text: str, **fields: str | None) -> str:
    """The default settings and TIS table, one rule built from fields, then text."""
    head = DEFAULT_TEXT.split("[[rules]]", 1)[0]
    return f"{head}\n{rule_text(**fields)}\n{text}"


def rule_text(**fields: str | None) -> str:
    """A [[rules]] entry: a valid review rule, changed by fields (None drops a key)."""
    rule = {
        "id": '"r1"',
        "version": "1",
        "description": '"A rule"',
        "condition": '"activity > 10"',
        "action": '"review_nonresponse"',
        "priority": "1",
        "indicator": '"info"',
        "explanation": '"Activity {activity}."',
        **fields,
    }
    body = "\n".join(f"{k} = {v}" for k, v in rule.items() if v is not None)
    return f"[[rules]]\n{body}\n"


# ---------------------------------------------------------------------------- TIS

FULL_BASELINE = Assessment(
    id=1,
    assessed_on=D0,
    physician_global=6,
    patient_global=7,
    mmt8=40,
    haq=1.5,
    ck=1000,
    ck_uln=200,
    extramuscular_global=4,
)


def test_tis_full_improvement_is_100_and_none_is_0() -> None:
    best = replace(
        FULL_BASELINE,
        id=2,
        physician_global=0,
        patient_global=0,
        mmt8=80,
        haq=0,
        ck=0,
        extramuscular_global=0,
    )
    assert total_improvement_score(FULL_BASELINE, best, SETTINGS.tis_table) == 100
    assert total_improvement_score(FULL_BASELINE, FULL_BASELINE, SETTINGS.tis_table) == 0


def test_tis_worked_mixed_example() -> None:
    current = replace(
        FULL_BASELINE,
        id=2,
        physician_global=4.8,  # 20% better -> 15-24.9 band: 15
        patient_global=7.7,  # worse -> 0
        mmt8=44,  # 10% stronger -> 10-19.9 band: 20
        haq=1.2,  # 20% better -> 7.5
        ck=500,  # 50% lower -> >= 40: 7.5
        extramuscular_global=3.8,  # 5% better -> 5-14.9 band: 7.5
    )
    assert total_improvement_score(FULL_BASELINE, current, SETTINGS.tis_table) == 57.5


@pytest.mark.parametrize(
    ("physician_global", "points"),
    [(10.0, 0), (9.501, 0), (9.5, 7.5), (8.51, 7.5), (8.5, 15), (7.5, 17.5), (6.0, 20)],
)
def test_tis_band_edges(physician_global: float, points: float) -> None:
    baseline = replace(FULL_BASELINE, physician_global=10)
    current = replace(baseline, id=2, physician_global=physician_global)
    assert total_improvement_score(baseline, current, SETTINGS.tis_table) == points


def test_tis_enzyme_uses_multiples_of_uln_and_needs_all_six() -> None:
    # CK 1000 / ULN 200 = 5x; 500 / ULN 100 = 5x: no enzyme change despite a lab change.
    other_lab = replace(FULL_BASELINE, id=2, ck=500, ck_uln=100)
    assert total_improvement_score(FULL_BASELINE, other_lab, SETTINGS.tis_table) == 0
    no_uln = replace(FULL_BASELINE, id=2, ck=500, ck_uln=None)  # raw CK: 50% lower -> 7.5
    assert total_improvement_score(FULL_BASELINE, no_uln, SETTINGS.tis_table) == 7.5
    for measure in (
        "physician_global",
        "patient_global",
        "mmt8",
        "haq",
        "ck",
        "extramuscular_global",
    ):
        missing = replace(FULL_BASELINE, id=2, **{measure: None})
        assert total_improvement_score(FULL_BASELINE, missing, SETTINGS.tis_table) is None


# -------------------------------------------------------------------------- facts


def test_facts_without_assessments_are_unknown_and_nothing_fires() -> None:
    hist = history(cycles_given=every(4, 0, 12), as_of=week(8))
    facts, proposals = evaluate_history(RULES, hist)
    assert set(facts) == FACT_NAMES
    assert facts["cycles_given"] == 3
    for name in ("activity", "activity_improvement", "tis", "responder", "remission"):
        assert facts[name] is None
    assert facts["days_since_last_assessment"] is None
    assert facts["dose_g_per_kg"] == 2.0 and facts["next_dose_g_per_kg"] == 1.5
    assert proposals == []


def test_missing_scores_leave_facts_unknown_and_rules_quiet() -> None:
    hist = history(
        assessments=(
            Assessment(1, week(0), mmt8=60),
            Assessment(2, week(4), mmt8=62),
            Assessment(3, week(8), mmt8=63),
        ),
        cycles_given=every(4, 0, 12),
        as_of=week(8),
    )
    facts, proposals = evaluate_history(RULES, hist)
    assert facts["activity"] is None and facts["activity_improvement"] is None
    assert facts["tis"] is None and facts["responder"] is None
    assert facts["days_since_last_assessment"] == 0
    assert proposals == []  # no CDASI: the non-response rule must not fire


def test_baseline_is_latest_before_course_start_else_earliest() -> None:
    pre = history(
        assessments=(
            Assessment(1, week(-8), cdasi_activity=30),
            Assessment(2, week(-1), cdasi_activity=40),
            Assessment(3, week(4), cdasi_activity=32),
            Assessment(4, week(8), cdasi_activity=30),
            Assessment(5, week(12), cdasi_activity=99),  # after as_of: ignored
        ),
        as_of=week(8),
    )
    facts = compute_facts(pre, SETTINGS)
    assert facts["activity_baseline"] == 40 and facts["activity"] == 30
    assert facts["activity_improvement"] == 10 and facts["activity_improvement_percent"] == 25
    assert facts["activity_change_since_previous"] == -2
    assert facts["responder"] is True
    none_before = replace(pre, assessments=pre.assessments[2:])
    assert compute_facts(none_before, SETTINGS)["activity_baseline"] == 32


def test_trend_facts() -> None:
    hist = history(
        assessments=visits((0, 40), (4, 30), (8, 20), (12, 22), (16, 26)),
        as_of=week(16, 3),
    )
    facts = compute_facts(hist, SETTINGS)
    assert facts["activity_nadir"] == 20 and facts["activity_above_nadir"] == 6
    assert facts["worse_twice"] is True
    # 22 -> 26 is +4, under the MCID: stable; 20 -> 22 stable; 30 -> 20 and 40 -> 30 better.
    assert facts["consecutive_stable"] == 4
    assert facts["days_since_last_assessment"] == 3
    jump = replace(hist, assessments=visits((0, 40), (4, 30), (8, 20), (12, 25), (16, 24)))
    assert compute_facts(jump, SETTINGS)["consecutive_stable"] == 1  # +5 breaks the run
    flat = replace(hist, assessments=visits((0, 40), (4, 30), (8, 30), (12, 31)))
    assert compute_facts(flat, SETTINGS)["worse_twice"] is False


def test_regimen_ladder_and_safety_facts() -> None:
    hist = history(
        regimens=(regimen(2, 10, 1.0, 6), regimen(1, 0, 2.0, 4), regimen(3, 30, 1.0, 8)),
        adverse_events=(
            AdverseEventFact(week(5), "headache", serious=False, resolved_on=None),
            AdverseEventFact(week(6), "thrombosis", serious=True, resolved_on=week(9)),
            AdverseEventFact(week(7), "renal injury", serious=True, resolved_on=None),
            AdverseEventFact(week(21), "hemolysis", serious=True, resolved_on=None),
        ),
        as_of=week(20, 6),
    )
    facts = compute_facts(hist, SETTINGS)
    assert facts["weeks_since_regimen_change"] == 10  # version 3 starts after as_of
    assert facts["dose_g_per_kg"] == 1.0 and facts["interval_weeks"] == 6
    assert facts["at_lowest_dose"] is True and facts["at_longest_interval"] is False
    assert facts["next_dose_g_per_kg"] is None and facts["next_interval_weeks"] == 8
    assert facts["open_serious_events"] == 1
    assert compute_facts(replace(hist, as_of=week(8)), SETTINGS)["open_serious_events"] == 2


def test_taper_facts() -> None:
    no_taper = compute_facts(history(), SETTINGS)
    assert no_taper["taper_step_due"] is False and no_taper["taper_mg"] is None
    assert no_taper["taper_at_floor"] is True
    above = compute_facts(history(taper=TaperFact(10, True, 5)), SETTINGS)
    assert (above["taper_step_due"], above["taper_mg"], above["taper_at_floor"]) == (
        True,
        10,
        False,
    )
    unknown = compute_facts(history(taper=TaperFact(None, False, 5)), SETTINGS)
    assert unknown["taper_at_floor"] is None


def test_months_in_remission_counts_the_unbroken_run() -> None:
    hist = history(
        assessments=visits((0, 40), (8, 12), (16, 15), (24, 14), (32, 10)),
        as_of=week(32),
    )
    facts = compute_facts(hist, SETTINGS)
    assert facts["remission"] is True
    assert facts["months_in_remission"] == pytest.approx(56 / 30.44, abs=1e-6)  # from week 24
    out = replace(hist, assessments=(*hist.assessments, Assessment(9, week(33), cdasi_activity=15)))
    facts = compute_facts(replace(out, as_of=week(33)), SETTINGS)
    assert facts["remission"] is False and facts["months_in_remission"] == 0


def test_last_controlled_version_skips_weaker_and_identical_regimens() -> None:
    hist = history(
        regimens=(
            regimen(1, 0, 2.0, 4),
            regimen(2, 16, 1.5, 4),
            regimen(3, 32, 1.0, 4),
            regimen(4, 44, 1.5, 4),  # the return after a flare on version 3
        ),
        assessments=visits((0, 40), (12, 18), (28, 17), (36, 17), (40, 25)),
        as_of=week(40),
    )
    assert compute_facts(hist, SETTINGS)["last_controlled_version"] == 2
    back = compute_facts(replace(hist, as_of=week(45)), SETTINGS)
    # Version 3 is weaker, version 2 identical: only version 1 is a step up.
    assert back["last_controlled_version"] == 1
    assert back["assessments_since_regimen_change"] == 0


# ---------------------------------------------------------------- condition language

NUMERIC = frozenset({"a", "b", "c"})
KNOWN = NUMERIC | {"p", "q", "n"}


def holds(source: str, **facts: object) -> bool:
    return compile_condition(source, KNOWN).evaluate(facts)


def test_language_basics() -> None:
    assert holds("a >= 3 and not p", a=3, p=False)
    assert holds("1 < a <= 2 < b", a=2, b=5)
    assert not holds("1 < a <= 2 < b", a=2, b=2)
    assert holds("abs(a - b) / 2 == 1.5 or q", a=1, b=4, q=False)
    assert holds("-a > -2", a=1)
    assert holds("n == None and a != None and is_none(n) and not_none(a)", a=1, n=None)
    assert compile_condition("a > b", KNOWN).facts == frozenset({"a", "b"})


def test_missing_facts_and_division_by_zero_never_fire() -> None:
    for source in ("a > 1", "not (a > 1)", "a != 3", "not p", "a / b > 1", "not (a / b > 1)"):
        assert not holds(source, a=None, b=0, p=None)
    assert holds("p or a > 1", p=True, a=None)  # True or unknown is True
    assert not holds("p and a > 1", p=True, a=None)
    assert not holds("a > 1", a="5")  # a non-number fact is unknown
    assert not holds("a > 1")  # absent from the facts


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("activity > 3", "unknown fact 'activity'"),
        ("aa > 3", "did you mean 'a'"),
        ("a.real > 1", "attribute access"),
        ("p[0]", "subscripts"),
        ("__import__('os').system('true')", "strings are not allowed"),
        ("__import__(a)", "calling '__import__' is not allowed"),
        ("max(a, b) > 1", "calling 'max'"),
        ("abs(a, b) > 1", "exactly one argument"),
        ("is_none(a + 1)", "takes a fact name"),
        ("(lambda: 1)() > 0", "calling 'this'"),
        ("lambda: 1", "lambda"),
        ("[x for x in a]", "comprehensions"),
        ("(n := 1)", "assignment"),
        ("a ** 2 > 1", "operator '**'"),
        ("a // 2 > 1", "operator '//'"),
        ("a is None", "operator 'is'"),
        ("a in b", "operator 'in'"),
        ("a if p else b", "conditional"),
        ("a < None", "None can only be compared"),
        ("a + None > 1", "None can only appear"),
        ("1j > 0", "complex values"),
        ("a > 1e999", "numbers must be finite"),
        ("a > 1; b", "not valid syntax"),
        ("abs > 1", "is a function"),
        ("", "empty"),
        ("a" + " + a" * 200, "limit is 500"),
        ("-" * 40 + "a > 0", "deeper than 30"),
        ("(" * 35 + "a" + ")" * 35 + " > 0", None),  # parentheses alone do not nest
    ],
)
def test_language_refusals(source: str, message: str | None) -> None:
    if message is None:
        compile_condition(source, KNOWN)
        return
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace("*", r"\*")):
        compile_condition(source, KNOWN)


# A generated expression: ("num", value) | ("var", name) | ("neg", e) | ("abs", e) |
# ("bin", op, e, e) | ("bool", name) | ("const", bool) | ("not", e) | ("and"/"or", e, e) |
# ("cmp", (e, op, e, op, e, ...)).
_BIN = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_CMP = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
numbers = st.one_of(
    st.integers(-20, 20).map(lambda v: ("num", v)),
    st.sampled_from([0.5, 1.5, 2.25, 10.0]).map(lambda v: ("num", v)),
    st.sampled_from(sorted(NUMERIC)).map(lambda v: ("var", v)),
)
num_expr = st.recursive(
    numbers,
    lambda inner: st.one_of(
        inner.map(lambda e: ("neg", e)),
        inner.map(lambda e: ("abs", e)),
        st.tuples(st.just("bin"), st.sampled_from(sorted(_BIN)), inner, inner),
    ),
    max_leaves=6,
)
comparison = st.lists(st.sampled_from(sorted(_CMP)), min_size=1, max_size=3).flatmap(
    lambda ops: st.tuples(*[num_expr] * (len(ops) + 1)).map(
        lambda operands: ("cmp", tuple(operands), tuple(ops))
    )
)
bool_expr = st.recursive(
    st.one_of(
        comparison,
        st.sampled_from(["p", "q"]).map(lambda v: ("bool", v)),
        st.booleans().map(lambda v: ("const", v)),
    ),
    lambda inner: st.one_of(
        inner.map(lambda e: ("not", e)),
        st.tuples(st.sampled_from(["and", "or"]), inner, inner),
    ),
    max_leaves=5,
)


def render(e: tuple) -> str:
    kind = e[0]
    if kind in ("num", "const"):
        return f"({e[1]!r})"
    if kind in ("var", "bool"):
        return e[1]
    if kind == "neg":
        return f"(-{render(e[1])})"
    if kind == "abs":
        return f"abs({render(e[1])})"
    if kind == "bin":
        return f"({render(e[2])} {e[1]} {render(e[3])})"
    if kind == "not":
        return f"(not {render(e[1])})"
    if kind in ("and", "or"):
        return f"({render(e[1])} {kind} {render(e[2])})"
    operands, ops = e[1], e[2]
    parts = [render(operands[0])]
    for op, operand in zip(ops, operands[1:], strict=True):
        parts += [op, render(operand)]
    return "(" + " ".join(parts) + ")"


def _chain(e: tuple, env: dict[str, object]) -> object:
    operands, ops = e[1], e[2]
    left = reference(operands[0], env)
    for op, operand in zip(ops, operands[1:], strict=True):
        right = reference(operand, env)
        if not _CMP[op](left, right):
            return False
        left = right
    return True


_REFERENCE = {
    "num": lambda e, env: e[1],
    "const": lambda e, env: e[1],
    "var": lambda e, env: env[e[1]],
    "bool": lambda e, env: env[e[1]],
    "neg": lambda e, env: -reference(e[1], env),
    "abs": lambda e, env: abs(reference(e[1], env)),
    "bin": lambda e, env: _BIN[e[1]](reference(e[2], env), reference(e[3], env)),
    "not": lambda e, env: not reference(e[1], env),
    "and": lambda e, env: reference(e[1], env) and reference(e[2], env),
    "or": lambda e, env: reference(e[1], env) or reference(e[2], env),
}


def reference(e: tuple, env: dict[str, object]) -> object:
    """Plain Python semantics, short-circuits included; raises ZeroDivisionError like Python."""
    return _REFERENCE.get(e[0], _chain)(e, env)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expr=bool_expr,
    a=st.integers(-5, 5) | st.floats(-100, 100, allow_nan=False),
    b=st.integers(-5, 5),
    c=st.sampled_from([0, 0.5, 3.0]),
    p=st.booleans(),
    q=st.booleans(),
)
def test_language_agrees_with_python(
    expr: tuple, a: float, b: int, c: float, p: bool, q: bool
) -> None:
    env: dict[str, object] = {"a": a, "b": b, "c": c, "p": p, "q": q}
    condition = compile_condition(render(expr), KNOWN)
    result = condition.evaluate(env)
    assert isinstance(result, bool)
    try:
        expected = bool(reference(expr, env))
    except ZeroDivisionError:
        return  # Python raises; the language's three-valued answer is checked elsewhere
    assert result == expected


GARBAGE_TOKENS = [
    "a",
    "b",
    "p",
    "activity",
    "__import__",
    "os",
    "system",
    "exec",
    "eval",
    "open",
    "lambda",
    ":",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ".",
    ",",
    "'",
    '"',
    "f'",
    "x",
    "=",
    ":=",
    "+",
    "-",
    "*",
    "/",
    "**",
    "//",
    "%",
    "<",
    "<=",
    "==",
    "!=",
    "not",
    "and",
    "or",
    "is",
    "in",
    "if",
    "else",
    "for",
    "None",
    "True",
    "1",
    "2.5",
    "1e999",
    "0x10",
    "abs",
    "is_none",
    "\\",
    "\n",
    "#",
    ";",
    "@",
    "~",
    "^",
    "|",
    "&",
    "`",
    "$",
    "\x00",
    "yield",
    "await",
]


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=80),
        st.lists(st.sampled_from(GARBAGE_TOKENS), max_size=25).map(" ".join),
        st.lists(st.sampled_from(GARBAGE_TOKENS), max_size=25).map("".join),
    )
)
def test_garbage_either_compiles_or_is_refused(source: str) -> None:
    try:
        condition = compile_condition(source, KNOWN)
    except ExpressionError:
        return
    # Whatever compiled evaluates to a plain bool on any facts without raising.
    assert isinstance(condition.evaluate({"a": 1, "b": 0, "p": True}), bool)
    assert isinstance(condition.evaluate({}), bool)


# ----------------------------------------------------------------------- rule files


def test_default_rules_load() -> None:
    ids = [rule.id for rule in RULES.rules]
    assert ids == [
        "safety_hold",
        "flare_return",
        "flare_hold_taper",
        "non_response_review",
        "discontinuation_review",
        "ivig_deescalation",
        "taper_step",
    ]
    assert {rule.id: rule.version for rule in RULES.rules if rule.version != 1} == {
        "non_response_review": 2
    }
    assert RULES.steroids_first is True
    assert SETTINGS.mcid_points == 5 and SETTINGS.dose_ladder_g_per_kg == (2.0, 1.5, 1.0)
    assert SETTINGS.interval_ladder_weeks == (4, 5, 6, 8)
    assert {rule.action for rule in RULES.rules} == set(ACTIONS)
    assert load_rules(with_rule("")).rules[0].id == "r1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (with_rule("", condition='"activty > 3"'), "rule 'r1': condition: unknown fact 'activty'"),
        (with_rule("", condition='"activity >"'), "rule 'r1': condition: .*syntax"),
        (with_rule("", action='"reboot"'), "rule 'r1': unknown action 'reboot'"),
        (with_rule("", action='"deescalate_ivig"'), "rule 'r1': .*missing strategy"),
        (
            with_rule("", action='"deescalate_ivig"', params='{ strategy = "random" }'),
            "rule 'r1': param strategy must be one of",
        ),
        (with_rule("", params="{ extra = 1 }"), "rule 'r1': .*unknown key.*extra"),
        (with_rule(rule_text(priority="2")), "rule 'r1': duplicate id"),
        (with_rule("", indicator='"urgent"'), "rule 'r1': indicator must be one of"),
        (with_rule("", explanation='"Now {cdasi}."'), r"rule 'r1': .*\{cdasi\} is not a fact"),
        (with_rule("", explanation='"Now {activity:.1f}."'), "rule 'r1': .*plain fact name"),
        (with_rule("", blocks='["review_nonresponse"]'), "rule 'r1': a rule cannot block"),
        (with_rule("", blocks='["nap"]'), "rule 'r1': blocks names unknown action"),
        (with_rule("", priority=None), "rule 'r1': missing priority"),
        (with_rule("", version="0"), "rule 'r1': version must be"),
        (with_rule("", colour='"red"'), "rule 'r1': unknown key.*colour"),
        (with_rule("", id='"bad id"'), r"rules\[0\]: id must"),
        (with_rule("", id=None), r"rules\[0\]: missing id"),
        (with_rule("", condition='"activity >\n"'), "line"),
        (DEFAULT_TEXT.replace("mcid_points = 5", "mcid_points = -5"), r"\[settings\]: mcid"),
        (DEFAULT_TEXT.replace("[2.0, 1.5, 1.0]", "[1.0, 1.5]"), r"\[settings\]: dose_ladder"),
        (DEFAULT_TEXT.replace("steroids_first = true", ""), r"\[settings\]: missing steroids"),
        (DEFAULT_TEXT.replace("haq = ", "hax = "), r"\[tis\]: missing haq"),
        (
            DEFAULT_TEXT.replace("[15, 7.5], [25, 7.5]", "[25, 7.5], [15, 7.5]"),
            r"\[tis\]: .*thresholds must strictly ascend",
        ),
        (DEFAULT_TEXT + "\n[extras]\n", "unknown section"),
        (DEFAULT_TEXT.replace("[tis]", "[tis]\nbad = = 1", 1), "not valid TOML.*line"),
    ],
)
def test_rule_file_refusals(text: str, message: str) -> None:
    with pytest.raises(RuleFileError, match=message):
        load_rules(text)


HEAD = DEFAULT_TEXT.split("[[rules]]", 1)[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (with_rule("", version="true"), r"^rule 'r1': version must be a whole number, got True$"),
        (with_rule("", priority="1.5"), r"^rule 'r1': priority must be a whole number, got 1\.5$"),
        (with_rule("", priority='"1"'), r"^rule 'r1': priority must be a whole number, got '1'$"),
        (with_rule("", description='""'), r"^rule 'r1': description must be non-empty text"),
        (with_rule("", description='"  "'), r"^rule 'r1': description must be non-empty text"),
        (with_rule("", explanation="5"), r"^rule 'r1': explanation must be non-empty text, got 5$"),
        (with_rule("", condition="5"), r"^rule 'r1': condition must be non-empty text, got 5$"),
        (with_rule("", id="5"), r"^rules\[0\]: id must start with a letter"),
        (with_rule("", id=None, priority=None), r"^rules\[0\]: missing id, priority$"),
        (with_rule("", colour="1", size="2"), r"^rule 'r1': unknown key\(s\) colour, size$"),
        (with_rule("", params="1"), r"^rule 'r1': params must be a table"),
        (
            with_rule("", action='"deescalate_ivig"', params='{ strategy = ["dose_first"] }'),
            r"^rule 'r1': param strategy must be one of dose_first, interval_first",
        ),
        (with_rule("", action="5"), r"^rule 'r1': unknown action 5; known actions"),
        (with_rule("", indicator="5"), r"^rule 'r1': indicator must be one of .*, got 5$"),
        (with_rule("", blocks='"taper_step"'), r"^rule 'r1': blocks must be a list of action"),
        (with_rule("", blocks="[1]"), r"^rule 'r1': blocks must be a list of action names$"),
        ("rules = 1\n" + HEAD, r"^rule file: rules must be an array of tables \(\[\[rules\]\]\)$"),
        (HEAD + "[rules]\n", r"^rule file: rules must be an array of tables"),
        ("rules = [1]\n" + HEAD, r"^rules\[0\] must be a table$"),
        (
            DEFAULT_TEXT.replace("mcid_points = 5", "mcid_points = true"),
            r"^\[settings\]: mcid_points must be a finite number, got True$",
        ),
        (
            DEFAULT_TEXT.replace("mcid_points = 5", 'mcid_points = "5"'),
            r"^\[settings\]: mcid_points must be a finite number, got '5'$",
        ),
        (
            DEFAULT_TEXT.replace("mcid_points = 5", "mcid_points = inf"),
            r"^\[settings\]: mcid_points must be a finite number, got inf$",
        ),
        (
            DEFAULT_TEXT.replace("[2.0, 1.5, 1.0]", "2.0"),
            r"^\[settings\]: dose_ladder_g_per_kg must be an array, got 2\.0$",
        ),
        (
            DEFAULT_TEXT.replace("[4, 5, 6, 8]", "[4, 5.5]"),
            r"^\[settings\]: interval_ladder_weeks must be a whole number, got 5\.5$",
        ),
        (
            DEFAULT_TEXT.replace("steroids_first = true", "steroids_first = 1"),
            r"^\[settings\]: steroids_first must be true or false, got 1$",
        ),
        (
            DEFAULT_TEXT.replace("steroids_first = true", "steroids_first = true\nfoo = 1"),
            r"^\[settings\]: unknown key\(s\) foo$",
        ),
        (
            DEFAULT_TEXT.replace("haq = [[0, 0],", "haq = [[0],"),
            r"^\[tis\]: haq must be a list of \[min_percent_improvement, points\] pairs$",
        ),
        (
            DEFAULT_TEXT.replace("haq = [[0, 0],", "haq = [[0, 'x'],"),
            r"^\[tis\]: haq must be a finite number, got 'x'$",
        ),
        (DEFAULT_TEXT.replace("[tis]", "tis = 1\n[x]", 1), r"unknown section\(s\) x$"),
        ("tis = 1\n" + HEAD.split("[tis]")[0], r"^\[tis\] must be a table$"),
        (
            DEFAULT_TEXT.replace("[settings]", "[setings]"),
            r"^rule file: unknown section\(s\) setings$",
        ),
        ("", r"^rule file: missing \[settings\] section$"),
        (HEAD.split("[tis]")[0], r"^rule file: missing \[tis\] section$"),
    ],
)
def test_rule_file_type_refusals(text: str, message: str) -> None:
    """Strict types: no coercion; each refusal names the section or rule and the key."""
    with pytest.raises(RuleFileError, match=message):
        load_rules(text)


def test_summary_is_under_140_characters_and_detail_is_filled() -> None:
    long = "Lower the IVIG regimen " + "very carefully and " * 20 + "slowly"
    ruleset = load_rules(with_rule("", description=f'"{long}"'))
    [proposal] = evaluate(ruleset, {"activity": 12.345})
    assert len(proposal.summary) < 140 and proposal.summary.endswith("…")
    assert proposal.detail == "Activity 12.35."
    for rule in RULES.rules:
        assert len(rule.description) < 100  # room for the resolved change


# ------------------------------------------------------------- scripted courses

# (a) A responder: 40 -> 18 by week 12 on 2 g/kg every 4 weeks, then stable while the
# regimen steps down; each change starts at the cycle after the visit that proposed it.
RESPONDER = history(
    assessments=visits(
        (0, 40), (4, 30), (8, 22), (12, 18),
        (16, 17), (20, 16), (24, 16), (28, 15),
        (32, 15), (36, 15), (40, 14.5), (44, 14.5),
        (53, 14.5), (58, 14.5),
    ),
    regimens=(
        regimen(1, 0, 2.0, 4),
        regimen(2, 16, 1.5, 4),
        regimen(3, 32, 1.0, 4),
        regimen(4, 48, 1.0, 5),
    ),
    cycles_given=every(4, 0, 48) + every(5, 48, 64),
)  # fmt: skip


def test_a_responder_is_deescalated_step_by_step() -> None:
    for before in (week(4), week(8), week(12, -1)):
        assert run(RESPONDER, before) == []
    [first] = run(RESPONDER, week(12))
    assert (first.rule_id, first.action, first.indicator) == (
        "ivig_deescalation",
        "deescalate_ivig",
        "info",
    )
    assert change(first) == ("dose", 2.0, 1.5)
    assert first.params["strategy"] == "dose_first"
    assert first.summary == "Stable responder: lower the IVIG regimen one step (dose 2 → 1.5 g/kg)"
    assert "down 22 points from 40" in first.detail

    assert run(RESPONDER, week(27, 6)) == []  # 11 weeks on version 2
    [second] = run(RESPONDER, week(28))
    assert change(second) == ("dose", 1.5, 1.0)

    assert run(RESPONDER, week(43, 6)) == []
    [third] = run(RESPONDER, week(44))
    assert change(third) == ("interval", 4, 5)  # lowest dose reached: the interval follows

    assert run(RESPONDER, week(59, 6)) == []
    [fourth] = run(RESPONDER, week(60))
    assert change(fourth) == ("interval", 5, 6)


def test_a_interval_first_strategy_and_end_of_ladder() -> None:
    text = DEFAULT_TEXT.replace('strategy = "dose_first"', 'strategy = "interval_first"')
    [proposal] = run(RESPONDER, week(12), load_rules(text))
    assert change(proposal) == ("interval", 4, 5)
    at_end = replace(RESPONDER, regimens=(regimen(1, 0, 1.0, 8),))
    assert run(at_end, week(12)) == []  # nothing left to lower: the rule does not fire


# (b) A non-responder: CDASI 40 -> 38.5 after three cycles.
NON_RESPONDER = history(
    assessments=visits((0, 40), (4, 39), (8, 38.5), (12, 39)),
    cycles_given=every(4, 0, 16),
)


def test_b_non_responder_is_reviewed_after_three_cycles() -> None:
    for before in (week(0), week(4), week(8, -1)):
        assert run(NON_RESPONDER, before) == []
    [proposal] = run(NON_RESPONDER, week(8))
    assert (proposal.action, proposal.indicator) == ("review_nonresponse", "warning")
    assert proposal.params == {}
    assert proposal.detail.startswith(
        "CDASI activity improved 1.5 points from 40 (now 38.5) after 3 cycles"
    )
    assert actions(run(NON_RESPONDER, week(12))) == ["review_nonresponse"]


# (c) De-escalated at week 12, flares under 1.5 g/kg (18 -> 19 -> 24) while tapering
# prednisone, and returns to 2 g/kg (version 3) from week 24.
FLARE = history(
    assessments=visits((0, 40), (4, 30), (8, 22), (12, 18), (16, 19), (20, 24), (28, 17)),
    regimens=(regimen(1, 0, 2.0, 4), regimen(2, 16, 1.5, 4), regimen(3, 24, 2.0, 4)),
    cycles_given=every(4, 0, 32),
    taper=TaperFact(current_mg_prednisone=10, next_step_due=False, floor_mg=5),
)
TAPER_DUE = TaperFact(current_mg_prednisone=10, next_step_due=True, floor_mg=5)


def test_c_flare_returns_to_last_controlled_version_and_holds_taper() -> None:
    assert actions(run(FLARE, week(12))) == ["deescalate_ivig"]
    for before in (week(16), week(19)):
        assert run(FLARE, before) == []

    proposals = run(replace(FLARE, taper=TAPER_DUE), week(20))
    assert actions(proposals) == ["flare_return", "hold_taper"]  # the due taper step is held
    flare, hold = proposals
    assert (flare.indicator, flare.params) == ("warning", {"to_version": 1})
    assert flare.summary.endswith("(back to regimen version 1)")
    assert "6 points above its lowest value of 18" in flare.detail
    assert hold.params == {"current_mg": 10}

    # Back on 2 g/kg: no second return before a visit on it, but the taper stays held.
    assert actions(run(FLARE, week(25))) == ["hold_taper"]
    assert run(FLARE, week(28)) == []  # settled (17)
    assert actions(run(replace(FLARE, taper=TAPER_DUE), week(28))) == ["taper_step"]


def test_c_steroids_first() -> None:
    due = replace(FLARE, taper=TAPER_DUE)
    [step] = run(due, week(12))  # both due: the steroid step alone
    assert (step.action, step.params) == ("taper_step", {"current_mg": 10})
    both = replace(RULES, steroids_first=False)
    assert actions(run(due, week(12), both)) == ["deescalate_ivig", "taper_step"]


# (d) The responder of (a) has a thrombosis at week 10, resolved at week 14.
SAE = replace(
    RESPONDER,
    adverse_events=(
        AdverseEventFact(week(6), "headache", serious=False, resolved_on=None),
        AdverseEventFact(week(10), "thrombosis", serious=True, resolved_on=week(14)),
    ),
)


def test_d_serious_adverse_event_holds_everything() -> None:
    assert run(SAE, week(9)) == []
    [hold] = run(SAE, week(12))
    assert (hold.action, hold.indicator, hold.params) == (
        "safety_hold",
        "critical",
        {"open_serious_events": 1},
    )
    # The hold blocks de-escalation and taper steps even when their own conditions hold.
    lenient = DEFAULT_TEXT.replace("and open_serious_events == 0\n", "")
    due = replace(SAE, taper=TaperFact(10, True, 5))
    assert actions(run(due, week(12), load_rules(lenient))) == ["safety_hold"]
    [after] = run(SAE, week(14))
    assert change(after) == ("dose", 2.0, 1.5)


# (e) Lowest dose, longest interval, prednisone at the 5 mg floor, in remission from week 16.
REMISSION = history(
    assessments=visits((0, 40), (8, 20), (16, 12), (24, 10), (32, 10), (40, 11)),
    regimens=(regimen(1, 0, 2.0, 4), regimen(2, 24, 1.0, 8)),
    cycles_given=every(4, 0, 24) + every(8, 24, 56),
    taper=TaperFact(current_mg_prednisone=5, next_step_due=False, floor_mg=5),
)


def test_e_long_remission_prompts_discontinuation_review() -> None:
    for before in (week(24), week(40), week(42)):  # week 42: 5.98 months
        assert run(REMISSION, before) == []
    [review] = run(REMISSION, week(43))
    assert (review.action, review.indicator) == ("discontinuation_review", "info")
    assert "remission for 6.21 months (now 11) on 1 g/kg every 8 weeks" in review.detail
    above_floor = replace(REMISSION, taper=TaperFact(7.5, False, 5))
    assert run(above_floor, week(43)) == []
    broken = replace(
        REMISSION, assessments=(*REMISSION.assessments, Assessment(9, week(28), cdasi_activity=15))
    )
    assert run(broken, week(43)) == []  # the run restarts at week 32


def test_evaluate_is_the_rule_set_over_facts() -> None:
    facts, proposals = evaluate_history(RULES, replace(RESPONDER, as_of=week(12)))
    assert evaluate(RULES, facts) == proposals
    assert facts["responder"] is True and facts["consecutive_stable"] == 3
    assert math.isclose(facts["activity_improvement_percent"], 55.0)


def test_fact_settings_are_checked_and_frozen() -> None:
    with pytest.raises(ValueError, match="interval_ladder_weeks must strictly ascend"):
        replace(SETTINGS, interval_ladder_weeks=(4, 4, 8))
    with pytest.raises(ValueError, match="mcid_points must be positive"):
        replace(SETTINGS, mcid_points=0)
    table = dict(SETTINGS.tis_table)
    table["haq"] = ((0.0, 5.0), (10.0, 2.5))
    with pytest.raises(ValueError, match="haq: points must not decrease"):
        FactSettings(**{**vars(SETTINGS), "tis_table": table})
    with pytest.raises(TypeError):
        SETTINGS.tis_table["haq"] = ()  # type: ignore[index]
