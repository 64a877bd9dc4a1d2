"""The datasets the study knows: classes, published layout, where to get each one."""
from __future__ import annotations

from dataclasses import dataclass

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

@dataclass(frozen=True)
class DatasetInfo:
    """What the study knows about one dataset: classes, published layout, where to get it."""

    id: str
    classes: tuple[str, ...]
    layout: str
    kaggle: str | None
    citation: str
    positive: tuple[str, ...] = ()


DATASETS: dict[str, DatasetInfo] = {
    "taleqani-all": DatasetInfo(
        "taleqani-all", ("Benign", "Early", "Pre", "Pro"),
        "<root>/{Original,Segmented}/{Benign,Early,Pre,Pro}/*.jpg "
        "(WBC-Benign-NNN.jpg, WBC-Malignant-{Early,Pre,Pro}-NNN.jpg)",
        "mehradaria/leukemia",
        "Aria et al., Acute Lymphoblastic Leukemia (ALL) image dataset, Kaggle, 2021",
        positive=("Early", "Pre", "Pro")),
    "cnmc-2019": DatasetInfo(
        "cnmc-2019", ("hem", "all"),
        "<root>/[C-NMC_Leukemia/]training_data/fold_{0,1,2}/{all,hem}/UID_*.bmp; "
        "validation_data/C-NMC_test_prelim_phase_data/*.bmp with "
        "validation_data/C-NMC_test_prelim_phase_data_labels.csv; "
        "testing_data/C-NMC_test_final_phase_data/*.bmp",
        "avk256/cnmc-leukemia",
        "Gupta & Gupta (eds.), ISBI 2019 C-NMC Challenge, TCIA, doi:10.7937/tcia.2019.dc64i46r",
        positive=("all",)),
    "leukemia-0.2": DatasetInfo(
        "leukemia-0.2", ("ALL", "AML", "CLL", "CML", "H"),
        "<root>/{train,test}/{ALL,AML,CLL,CML,H}/*",
        "priyaadharshinivs062/leukemia-dataset-02",
        "Leukemia Dataset 0.2, Kaggle (priyaadharshinivs062)"),
    "multicancer-all": DatasetInfo(
        "multicancer-all", ("all_benign", "all_early", "all_pre", "all_pro"),
        "<root>/[Multi Cancer/[Multi Cancer/]]ALL/{all_benign,all_early,all_pre,all_pro}/*.jpg",
        "obulisainaren/multi-cancer",
        "Obuli Sai Naren, Multi Cancer Dataset, Kaggle, 2022 (ALL subset)",
        positive=("all_early", "all_pre", "all_pro")),
    "pbc-lymphocytes": DatasetInfo(
        "pbc-lymphocytes", ("Healthy",),
        "<root>/Healthy/LY_*.jpg (or the PBC release's lymphocyte/LY_*.jpg)",
        None,
        "Acevedo et al., Data in Brief 30 (2020) 105474, CC BY 4.0, doi:10.17632/snkd93bnjr.1"),
    "synthetic": DatasetInfo(
        "synthetic", ("Benign", "Early", "Pre", "Pro"),
        "generated on demand in any published layout (see write_synthetic)",
        None, "leukcore synthetic blood-smear generator (not real data)"),
}


def list_datasets() -> list[str]:
    """The dataset ids :func:`load_dataset` accepts."""
    return list(DATASETS)


def dataset_info(dataset_id: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``dataset_id``; unknown ids raise a ValueError listing valid ones."""
    try:
        return DATASETS[dataset_id]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset_id!r}; valid ids: {', '.join(DATASETS)}") from None
