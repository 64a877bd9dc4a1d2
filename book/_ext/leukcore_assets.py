"""Write the assets the book takes from installed packages into the build (leukcore.book.assets):
DataTables from the installed itables, into ``_static/datatables/`` of every HTML build."""


def _write_assets(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    from pathlib import Path

    from leukcore.book.assets import write_datatables

    write_datatables(Path(app.outdir) / "_static")


def setup(app):
    app.connect("build-finished", _write_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
