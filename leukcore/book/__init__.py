"""What the Jupyter Book shows, generated from the records:

- :mod:`.labels`            the papers' display names and the verdict badges
- :mod:`.units`             how a number is printed in its claim's unit (the one formatter)
- :mod:`.tables`            the claims table as a sortable, filterable HTML table (pandas Styler, escaped)
- :mod:`.assets`            DataTables from the installed itables, written into the build (works from disk)
- :mod:`.figures`           forest plots, summary figure, ROC, calibration, error galleries and the one
                            Grad-CAM writer (``leukcore figures gradcam``; the GPU lease calls it too)
- :mod:`.findings`          the prose: Jinja templates whose numbers are references filled from records
- :mod:`.evidence`          a paper page's evidence, rendered by one call from its notebook
- :mod:`.audit_conclusions` each audit's conclusion, rendered from its summary record
- :mod:`.performance`       the performance page, rendered from the benchmark records
- :mod:`.pages`             the generated fragments under ``book/_generated/`` (``leukcore book pages``) and
                            the helpers a page's notebook uses
- :mod:`.manifest`          the records a build read, one hash over them
- :mod:`.runner`            papermill: notebooks executed into the book's run pages (``leukcore reproduce``)
- :mod:`.citation`          the citation page (CITATION.cff, BibTeX, licences)
"""
