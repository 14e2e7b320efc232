"""Decision-support rules: facts from a patient's history, a safe condition language, an engine.

Pure modules over plain values; the caller reads the rule file (default_rules.toml beside
this package) and the patient's history and passes them in.
"""

from __future__ import annotations

from app.domain.rules.engine import (
    ACTIONS,
    Proposal,
    Rule,
    RuleFileError,
    RuleSet,
    evaluate,
    evaluate_history,
    load_rules,
)
from app.domain.rules.expressions import Condition, ExpressionError, compile_condition
from app.domain.rules.facts import (
    FACT_NAMES,
    AdverseEventFact,
    Assessment,
    FactSettings,
    History,
    RegimenVersion,
    TaperFact,
    compute_facts,
    total_improvement_score,
)

__all__ = [
    "ACTIONS",
    "FACT_NAMES",
    "AdverseEventFact",
    "Assessment",
    "Condition",
    "ExpressionError",
    "FactSettings",
    "History",
    "Proposal",
    "RegimenVersion",
    "Rule",
    "RuleFileError",
    "RuleSet",
    "TaperFact",
    "compile_condition",
    "compute_facts",
    "evaluate",
    "evaluate_history",
    "load_rules",
    "total_improvement_score",
]
