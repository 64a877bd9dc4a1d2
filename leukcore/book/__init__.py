"""What the Jupyter Book shows, generated from the records:

- :mod:`.labels`    the papers' display names and the verdict badges
- :mod:`.tables`    the claims table as a sortable, filterable HTML table (pandas Styler, escaped)
- :mod:`.figures`   forest plots, summary figure, ROC, calibration, Grad-CAM panels, error galleries
- :mod:`.findings`  the prose: Jinja templates whose numbers are references filled from records
- :mod:`.pages`     the generated fragments under ``book/_generated/`` (``leukcore book pages``)
- :mod:`.runner`    papermill: notebooks executed into the book's run pages (``leukcore reproduce``)
- :mod:`.citation`  the citation page (CITATION.cff, BibTeX, licences)
"""
