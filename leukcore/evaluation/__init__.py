"""From predictions to verdicts (the metrics themselves sit lower, in :mod:`leukcore.metrics`):

- :mod:`.claims`       the claims ledger: every number each paper prints, with its source location
- :mod:`.verdicts`     one verdict rule and the claims table (claim beside measurement, runs, reason)
- :mod:`.consistency`  the consistency checks: the papers' own arithmetic, tables that cannot all be true
"""
