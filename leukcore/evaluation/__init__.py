"""From predictions to verdicts:

- :mod:`.metrics`      accuracy, per-class and averaged scores, bootstrap and Wilson intervals, McNemar
                       (public face :mod:`leukcore.metrics`)
- :mod:`.claims`       the claims ledger: every number each paper prints, with its source location
- :mod:`.verdicts`     one verdict rule and the claims table (claim beside measurement, runs, reason)
- :mod:`.consistency`  the papers' own arithmetic: tables that cannot all be true
"""
