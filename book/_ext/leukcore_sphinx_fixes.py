"""Small Sphinx fixes for an offline book that loads without console errors.

Sphinx 7.4 with sphinx-thebe / sphinx-togglebutton adds some inline scripts twice to a page
(``Identifier 'THEBE_JS_URL' has already been declared``); drop exact duplicates.
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for js in context.get("script_files", []):
        key = (getattr(js, "filename", None) or "", getattr(js, "priority", None),
               tuple(sorted((getattr(js, "attributes", {}) or {}).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    if "script_files" in context:
        context["script_files"][:] = kept


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
