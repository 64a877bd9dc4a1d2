"""Each audit's concluding paragraph for a reader, rendered from its summary record.

The paragraphs are Jinja templates beside the book's other findings
(``book/findings/audit_<audit>.md.j2``) and go through :mod:`leukcore.book.findings`: every number is
a reference to a record (``audit(...)``), a reference that nothing fills fails the render, and the
prose check keeps typed measurements out of them.
"""
from __future__ import annotations

from ..files import PROJECT_ROOT

TEMPLATE = "audit_{audit}.md.j2"


def has_conclusion(audit_id: str) -> bool:
    """Whether ``audit_id`` has a conclusion template."""
    from .findings import TEMPLATE_DIR

    return (TEMPLATE_DIR / TEMPLATE.format(audit=audit_id)).is_file()


def conclusion(audit_id: str) -> str:
    """The audit's conclusion as Markdown (raises :class:`leukcore.book.findings.MissingReference` when a
    number it cites has no record)."""
    from .findings import clear_cache, render

    clear_cache()  # records written since the last render
    return render(TEMPLATE.format(audit=audit_id), audit_id=audit_id)


def show_conclusion(audit_id: str) -> None:
    """Display the conclusion in a notebook, or say plainly why there is none yet."""
    from IPython.display import Markdown, display

    from .findings import MissingReference

    if not has_conclusion(audit_id):
        return
    try:
        display(Markdown(conclusion(audit_id)))
    except MissingReference as e:
        display(Markdown(f"*No conclusion yet: {e}. Run `leukcore audits run --audit {audit_id}` "
                         f"(records under `{PROJECT_ROOT.name}/results/audits/`).*"))


def audit_card(audit_id: str, profile: str = "audit") -> str:
    """One audit as an HTML card: its title and question, its summary's headline, and each of its declared
    conclusions (:mod:`leukcore.conclusions`, ids starting with the audit's id) with its status badge."""
    import html

    from ..audits import AUDITS, load_summary
    from ..conclusions import evaluate, list_conclusions
    from .labels import status_badge

    rec = load_summary(audit_id, profile)
    head = html.escape(rec["headline"]) if rec and rec.get("status") == "complete" else "not run yet at this profile"
    items = []
    for c in list_conclusions("audits"):
        if c.id.split("-", 1)[0] != audit_id:
            continue
        try:
            status = evaluate(c.id).status
        except (LookupError, ValueError):  # no record yet
            status = None
        badge = status_badge(status) if status else '<span class="status">no record</span>'
        items.append(f"<li>{badge} {html.escape(c.claim)}</li>")
    return (f'<div class="audit-card" style="border:1px solid #d0d7de;border-radius:6px;padding:0.6em 0.9em;'
            f'margin:0.4em 0"><strong>{html.escape(AUDITS[audit_id]["title"])}</strong> '
            f'<code>{audit_id}</code><br><em>{html.escape(AUDITS[audit_id]["question"])}</em>'
            f'<p style="margin:0.4em 0">{head}</p><ul style="margin:0">{"".join(items)}</ul></div>')


def audit_cards(audit_ids, profile: str = "audit") -> str:
    """:func:`audit_card` for each audit, in order (the audits page's overview)."""
    return "\n".join(audit_card(a, profile) for a in audit_ids)
