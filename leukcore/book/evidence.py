"""A paper page's evidence, rendered by one call from its notebook (:func:`show_evidence`).

A paper notebook holds what is that paper's own: its title, its "What we found", its knobs (the
parameters papermill sets, and the paper's own settings such as LoGMH's sigma), and its special
sections (LoGMH's filter, ALNet's layer table); then it calls :func:`show_evidence` once, which
renders what every paper page shows in the same order: how to rerun it, the protocol and our
deviations, the data, the experiments' records at the profile "What we found" cites, the figures
(learning curves, confusion matrices, ROC, calibration, Grad-CAM, misclassified cells), every
claim beside our measurement, the consistency checks of the paper's own numbers, and the runs at
reduced profiles (folded). Its headings are rendered in the cell's output (the book shows them as
headings; the page's contents list keeps the notebook's own).
"""
from __future__ import annotations

import base64
import io

from . import figures, pages, tables
from .labels import PAPER_NAMES

#: The parameters every paper notebook has (papermill sets them: ``leukcore reproduce``, or
#: ``papermill ... -p profile cpu``), with what each means; a notebook adds its paper's own knobs.
PARAMETERS = {
    "profile": "smoke | cpu | audit | paper (leukcore.runs.profiles)",
    "data_root": "folder holding the datasets (None: LEUKCORE_DATA, ./data, ../shared/data)",
    "device": "auto | cpu | cuda",
    "seed": "the seed of the runs",
    "seeds": "e.g. [0, 1, 2]: train and record every experiment once per seed (None: `seed` alone)",
    "output_dir": "results folder (None: the project's results/)",
    "force": "retrain even when a complete record with the same key exists",
    "train_missing": "False: render existing records only; experiments without one show as 'not run'",
}


def _markdown(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def _html(text: str) -> None:
    from IPython.display import HTML, display

    display(HTML(text))


def _show(fig) -> None:
    """Show a figure (None: a section that said why it has none)."""
    import matplotlib.pyplot as plt

    if fig is not None:
        plt.show()


def _folded_figure(fig) -> str:
    """A figure as an ``<img>`` (PNG, inline), for a folded section; '' for None."""
    import matplotlib.pyplot as plt

    if fig is None:
        return ""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def evidence_note(evidence_profile: str, profile: str, reduced: list[dict]) -> str:
    """What the records below are: the profile "What we found" cites, the profile this page was
    executed at when it differs, and how many runs of lower profiles are folded at the end."""
    s = f"The runs below are those at the `{evidence_profile}` profile, the one \"What we found\" cites"
    if evidence_profile and evidence_profile != profile:
        s += f" (this page was executed at the `{profile}` profile: its runs are reused, not shown twice)"
    n = len(reduced)
    return s + (f"; {n} run{'s' if n != 1 else ''} at lower profiles are folded at the end." if n else ".")


def show_evidence(paper: str, profile: str = "smoke", *, data_root=None, device: str = "auto", seed: int = 0,
                  seeds: list[int] | None = None, output_dir=None, force: bool = False, train_missing: bool = True,
                  overrides: dict | None = None) -> list[dict]:
    """Render ``paper``'s evidence at ``profile`` in a notebook; return the records it shows.

    The runs come from :func:`leukcore.runs.experiments.run_paper` (complete records with the same
    key are reused; ``train_missing=False`` renders existing records only; ``overrides``: the
    notebook's own knobs), and the evidence shown is the profile "What we found" cites
    (:func:`leukcore.book.pages.evidence_split`); the other arguments are the notebook's
    parameters (:data:`PARAMETERS`).
    """
    from ..runs.experiments import run_paper

    pages.notebook_setup()
    name = PAPER_NAMES.get(paper, paper)
    _markdown(f"## The evidence\n\nThis page reruns {name} (`{paper}`) with `leukcore` at the chosen profile and "
              f"puts every number the paper claims beside the number we measured.\n\n" + pages.rerun_box(paper)
              + "\n" + pages.paper_intro(paper))

    _markdown(f"## Protocol and our deviations\n\nFrom the paper's protocol file "
              f"(`leukcore/protocols/{paper}.yaml`); nothing here is typed in.")
    _html(pages.df_to_html(pages.protocol_table(paper), "protocol-table", escape=True))
    _html(pages.df_to_html(pages.deviations_table(paper), "deviations-table", escape=True))

    _markdown("## Data")
    datasets = pages.experiment_datasets(paper, profile, data_root=data_root, seed=seed)
    for data in datasets:
        _markdown(pages.data_banner(data, profile))
        print(pages.data_summary_text(data))
        _show(pages.example_images(data.table, n_per_class=4))

    _markdown("## Experiments\n\nEvery experiment of the paper's claims tables, at this profile. A complete "
              "record with the same key (paper, experiment, profile, data fingerprint, seed, settings) is reused, "
              "not rerun.")
    records = run_paper(paper, profile, data_root=data_root, device=device, seed=seed, seeds=seeds,
                        results_dir=output_dir, force=force, progress=False, train_missing=train_missing,
                        overrides=overrides)
    # the evidence is the profile "What we found" cites (the best recorded one); lower profiles are folded at the end
    evidence, reduced, evidence_profile = pages.evidence_split(paper, records)
    _markdown(evidence_note(evidence_profile, profile, reduced))
    _html(pages.df_to_html(pages.records_table(evidence), "records-table", escape=True))

    _markdown("## Figures\n\nLearning curves (loss on the left axis, accuracy on the right), confusion matrices "
              "(rows: the true class, with counts and row percentages) and ROC curves whose areas are the AUCs of the "
              "tables (two classes: the positive class' curve; more: the macro mean of the one-vs-rest curves, as "
              "the legend says). A run whose predictions collapse to one class did not train: its panel says so, "
              "and it is left out of the reliability diagrams, Grad-CAM and the gallery below.")
    _show(figures.plot_learning_curves(evidence))
    _show(figures.plot_confusion_matrices(evidence))
    _show(figures.plot_roc(evidence))
    _markdown("### Calibration\n\nReliability diagrams of the runs that trained: the accuracy of the test images "
              "in each confidence bin against the confidence the model gave them, and the expected calibration "
              "error (ECE; 0 for a model whose confidence is its accuracy).")
    _show(figures.plot_reliability(evidence))
    _markdown("### Where the model looks (Grad-CAM)\n\nGrad-CAM maps of a run that trained, on test images, with "
              "the true and the predicted class above each (red: an error). Trained weights are not committed: "
              "where they are absent, the page shows the image rendered on the machine that held them "
              "(`leukcore figures gradcam`).")
    _show(figures.show_grad_cam(figures.gradcam_record(evidence), data_root=data_root))
    _markdown("### Misclassified cells\n\nThe test images the most accurate run that trained got wrong with the "
              "most confidence, with their true and predicted classes.")
    _show(figures.plot_misclassified(figures.best_trained_record(evidence), data_root=data_root))

    _markdown(f"## Claimed vs measured\n\nEvery claim of this paper in the ledger (`leukcore/ledger/{paper}.yaml`), "
              "beside our real-data measurement for its experiment (from `results/`), with the verdict rule of the "
              "methods page: firm verdicts first. The forest plot shows the same numbers; the table sorts, searches "
              "and filters in the page. Runs on synthetic data never count.")
    _show(figures.plot_forest(figures.claims_frame(paper),
                              title="claimed (diamond) and measured 95 % interval per claim"))
    _html(tables.claims_html(paper))

    _markdown("## What the paper's own numbers say\n\nThe consistency checks of this paper's claims "
              "(`leukcore.evaluation.consistency`).")
    _html(pages.consistency_html(paper))

    _markdown("## Runs at reduced profiles\n\nThe runs of this paper at profiles below the one the evidence above "
              "comes from (fewer epochs, images or folds, smaller inputs). They test the pipeline; a collapse here "
              "is a fact about that run, never a verdict on the paper.")
    if reduced:
        _html("<details><summary>Show the runs at reduced profiles</summary>\n"
              + pages.df_to_html(pages.records_table(reduced), "records-table", escape=True)
              + _folded_figure(figures.plot_learning_curves(reduced))
              + _folded_figure(figures.plot_confusion_matrices(reduced)) + "\n</details>")
    else:
        _markdown("No run at a lower profile.")
    return evidence
