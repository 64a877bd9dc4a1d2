"""Running the papers' experiments, in the order a run happens:

- :mod:`.profiles`     smoke / cpu / audit / paper: how much of a protocol runs, and their one order
- :mod:`.protocols`    protocol files (one schema) -> experiments, their settings, where each setting comes from
- :mod:`.deviations`   a run's deviation lines, generated from its settings
- :mod:`.routes`       how an experiment runs: the route registry, one module per route (cnn, features,
                       fusion, aggregate)
- :mod:`.inputs`       what one experiment trains and tests on: data (or its stand-in), split, images
- :mod:`.experiments`  one run resolved once (:class:`~.experiments.Run`), executed, its record reused
- :mod:`.folds`        a cross-validated experiment one fold at a time, pooled into its record
- :mod:`.records`      run records on disk: keys, provenance (commit, code diff, versions, device), predictions
- :mod:`.grid`         every pending experiment of some papers, on an executor
- :mod:`.distributed`  the Ray executor (optional extra) and the GPU-hour planning table
"""
