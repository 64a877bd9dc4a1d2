"""``leukcore bench``: how fast the study's data path, training steps and whole reproduction are.

Each measurement runs against the plain alternative; the record goes to ``results/bench/latest.json``
(``gpu.json`` from a lent GPU) and the book's performance page renders it
(:mod:`leukcore.book.performance`), which is where the figures and what they taught live. This
package measures only:

- :mod:`.timing`      medians over interleaved repetitions after a warm-up, the machine's load
                      (a shared machine is said so), what the machine is
- :mod:`.data_path`   one epoch of augmented, normalised batches the way :func:`leukcore.engine.fit` makes
                      them (:func:`leukcore.engine.batching.batches`), against a PIL + torchvision ``DataLoader``
- :mod:`.train_step`  ``fit``'s training steps against a plain fp32 eager loop
- :mod:`.study`       the smoke reproduction and the book build on temporary copies; the recorded
                      ``cpu``- and ``audit``-profile run times
- :mod:`.grid`        the experiment grid one at a time against several at once on one GPU; local
                      against Ray
- :mod:`.record`      the record: the parts in order, written after each, and its targets
- :mod:`.cli`         the ``leukcore bench`` command
"""
from __future__ import annotations

from .record import BENCH_FORMAT, PARTS, default_gpu_out, default_out, run_bench, targets

__all__ = ["BENCH_FORMAT", "PARTS", "default_gpu_out", "default_out", "run_bench", "targets"]
