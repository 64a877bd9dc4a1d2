"""Our own conclusions, held to the standard we hold the papers to.

Every sentence in which this study concludes something (a landing finding, an audit's
conclusion, a comparison in a paper's "What we found") is a declared test:

- :mod:`~leukcore.conclusions.rule`: the one rule, :func:`judge` (supported / inconclusive /
  not supported) from the effect in each run;
- :mod:`~leukcore.conclusions.registry`: :func:`declare`, :func:`evaluate`, :func:`list_conclusions`;
- the declarations, by page: :mod:`~leukcore.conclusions.landing`, :mod:`~leukcore.conclusions.papers`,
  :mod:`~leukcore.conclusions.audits`; their shared readers of records in
  :mod:`~leukcore.conclusions.sources`.

``leukcore findings --format json|md`` lists them; the book prints each one's sentence for its status.
"""
from .registry import CONCLUSIONS, Conclusion, Evidence, Result, clear_cache, declare, evaluate, get_conclusion, list_conclusions
from .rule import INCONCLUSIVE, MIN_RUNS, NOT_SUPPORTED, RULE_TEXT, STATUSES, SUPPORTED, Judgement, judge

__all__ = ["CONCLUSIONS", "Conclusion", "Evidence", "Result", "clear_cache", "declare", "evaluate", "get_conclusion",
           "list_conclusions", "INCONCLUSIVE", "MIN_RUNS", "NOT_SUPPORTED", "RULE_TEXT", "STATUSES", "SUPPORTED",
           "Judgement", "judge"]
