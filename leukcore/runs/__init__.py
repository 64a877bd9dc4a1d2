"""Running the papers' experiments, in the order a run happens:

- :mod:`.profiles`     smoke / cpu / paper (and the audits' own): how much of a protocol runs
- :mod:`.experiments`  protocol files (one schema), the settings of an experiment, one run, its record
- :mod:`.records`      run records on disk: keys, provenance (commit, code diff, versions), predictions
- :mod:`.grid`         every pending experiment of some papers, on an executor
- :mod:`.distributed`  the Ray executor (optional extra) and the GPU-hour planning table
- :mod:`.gpu_lease`    the prepared procedure for a lent GPU (pack data, run, collect)
"""
