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
