"""Datasets in their published layouts, a synthetic stand-in, splits and a decoded-image cache.

Every loader returns a :class:`pandas.DataFrame`, one row per image, with the columns

``id``          path relative to the dataset root (posix), stable across machines
``path``        absolute path of the file
``label``       integer class index (``class_name`` order of the dataset, see :data:`DATASETS`)
``class_name``  the class as the dataset names it
``subject``     patient / subject id where the layout carries one, else ``None``
``sha256``      hex digest of the file's bytes
``split``       the published partition where the layout has one (C-NMC, Leukemia-0.2), else ``None``

plus dataset-specific columns (``variant``, ``fold``).  ``table.attrs`` holds ``dataset``,
``root`` and ``root_source`` (which rule of :func:`resolve_root` found it).

Data root resolution (:func:`resolve_root`): the ``root`` argument, else the ``LEUKCORE_DATA``
environment variable, else ``./data``, else ``../shared/data`` (both relative to the working
directory, then to the project checkout).  A data root holds one folder per dataset id
(``<root>/taleqani-all/Original/...``); a root that *is* the dataset folder works too.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
#: Images above this many pixels are refused before decoding (about 50 MP: a 7000x7000 RGB
#: image is 147 MB as uint8; microscope tiles of the studied datasets are < 1 MP).
MAX_PIXELS = 50_000_000
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class DataError(ValueError):
    """A data root, layout or file that cannot be used; the message names the path and the fix."""


class BadImageError(DataError):
    """One image file that cannot be decoded (empty, truncated, not an image, too large)."""

    def __init__(self, path: Path | str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{_show(path)}: {reason}")


def _show(path: Path | str) -> str:
    """A path as text, safe for names that are not valid UTF-8."""
    s = os.fsdecode(path) if not isinstance(path, str) else path
    return s.encode("utf-8", "backslashreplace").decode("utf-8") if _has_surrogates(s) else s


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


# --------------------------------------------------------------------------------------------
# Dataset registry
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Root resolution
# --------------------------------------------------------------------------------------------


def data_root_candidates() -> list[tuple[str, Path]]:
    """The fallback data roots in order, each with the rule that names it."""
    cands = [("./data", Path.cwd() / "data"), ("../shared/data", Path.cwd().parent / "shared" / "data"),
             ("<project>/data", PROJECT_ROOT / "data"),
             ("<project>/../shared/data", PROJECT_ROOT.parent / "shared" / "data")]
    seen, out = set(), []
    for rule, p in cands:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            out.append((rule, p))
    return out


def resolve_root(dataset_id: str, root: str | os.PathLike | None = None, *, verbose: bool = True) -> tuple[Path, str]:
    """Find the folder of ``dataset_id``; return ``(path, rule)`` and print which rule was used.

    Order: ``root`` argument, ``$LEUKCORE_DATA``, ``./data``, ``../shared/data`` (relative to
    the working directory, then to the project checkout).  An explicit root (argument or
    environment) is used as given; a fallback root is used only when it holds ``dataset_id``.
    Within a root, ``<root>/<dataset_id>`` is preferred; otherwise the root itself is the dataset.
    """
    dataset_info(dataset_id)
    if root is not None:
        base, rule = Path(root), "argument"
    elif os.environ.get("LEUKCORE_DATA"):
        base, rule = Path(os.environ["LEUKCORE_DATA"]), "LEUKCORE_DATA"
    else:
        base = rule = None
        for r, cand in data_root_candidates():
            if (cand / dataset_id).is_dir():
                base, rule = cand, r
                break
        if base is None:
            looked = ", ".join(os.path.abspath(c / dataset_id) for _, c in data_root_candidates())
            raise DataError(
                f"dataset {dataset_id!r} not found; looked at {looked}. Expected layout: "
                f"{DATASETS[dataset_id].layout}. Download it (`leukcore data fetch {dataset_id} --to DIR`) "
                f"and set LEUKCORE_DATA=DIR or pass root=DIR.")
    if not base.exists():
        raise DataError(f"data root {os.path.abspath(base)} (from {rule}) does not exist; expected layout for "
                        f"{dataset_id!r}: {DATASETS[dataset_id].layout}. Pass an existing folder (root=DIR, "
                        f"--data-root DIR or LEUKCORE_DATA=DIR), or download it with "
                        f"`leukcore data fetch {dataset_id} --to DIR`")
    path = base / dataset_id if (base / dataset_id).is_dir() else base
    if verbose:
        print(f"leukcore: {dataset_id} from {os.path.abspath(path)} (data root by {rule})")
    return path, rule


# --------------------------------------------------------------------------------------------
# Hashing and listing
# --------------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_HASHES: dict[tuple, str] = {}


def _sha256_cached(path: str | os.PathLike) -> str:
    """:func:`sha256_file`, remembered in this process under the file's (path, device, inode,
    size, modification time in ns): a dataset listed again (every experiment lists its data) is
    not read again, and a file changed in any way that alters its size or time is hashed anew."""
    st = os.stat(path)
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    h = _HASHES.get(key)
    if h is None:
        if len(_HASHES) > 500_000:
            _HASHES.clear()
        h = _HASHES[key] = sha256_file(path)
    return h


def _images_in(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                  key=lambda p: os.fsencode(p.name))


def _subdirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _layout_error(dataset_id: str, path: Path, problem: str) -> DataError:
    found = _subdirs(path)
    return DataError(f"{os.path.abspath(path)} is not a {dataset_id} folder: {problem}. Expected layout: "
                     f"{DATASETS[dataset_id].layout}. Folders found there: {found or 'none'}")


def _class_folders(dataset_id: str, base: Path, classes: Iterable[str], rel: str = "") -> list[tuple[str, Path]]:
    out = []
    for c in classes:
        d = base / c
        if not d.is_dir():
            raise _layout_error(dataset_id, base, f"missing class folder {rel + c!r}")
        out.append((c, d))
    return out


def _make_table(dataset_id: str, root: Path, rows: list[dict], rule: str, classes: tuple[str, ...]) -> pd.DataFrame:
    for r in rows:
        if not _has_surrogates(str(r["path"])):
            continue
        raise DataError(f"{_show(r['path'])}: file name is not valid UTF-8; rename it (e.g. "
                        f"`convmv -f latin1 -t utf8`) so it can be recorded in a run")
    table = pd.DataFrame(rows, columns=["id", "path", "label", "class_name", "subject", "split",
                                        *sorted({k for r in rows for k in r} - {"id", "path", "label", "class_name", "subject", "split"})])
    if table.empty:
        raise DataError(f"{os.path.abspath(root)}: no images found for {dataset_id!r}; expected layout: "
                        f"{DATASETS[dataset_id].layout}")
    table["path"] = table["path"].map(lambda p: os.path.abspath(p))
    table["sha256"] = table["path"].map(_sha256_cached)
    table["label"] = table["label"].astype(int)
    table.attrs.update(dataset=dataset_id, root=os.path.abspath(root), root_source=rule, classes=list(classes))
    return table


def _check_nonempty(dataset_id: str, folder: Path, files: list[Path]) -> None:
    if not files:
        raise DataError(f"{os.path.abspath(folder)}: empty class folder of {dataset_id!r}; the published "
                        f"layout has images there. Re-download the dataset or remove the folder's class "
                        f"from the run")


# --------------------------------------------------------------------------------------------
# Loaders, one per published layout
# --------------------------------------------------------------------------------------------


def _load_taleqani(root: Path, rule: str, variant: str = "original") -> pd.DataFrame:
    variants = {"original": "Original", "segmented": "Segmented"}
    if variant not in variants:
        raise ValueError(f"unknown taleqani-all variant {variant!r}; valid: original, segmented")
    info = DATASETS["taleqani-all"]
    base = root / variants[variant]
    if not base.is_dir():
        raise _layout_error("taleqani-all", root, f"no {variants[variant]!r} folder")
    rows = []
    for label, (c, d) in enumerate(_class_folders("taleqani-all", base, info.classes, variants[variant] + "/")):
        files = _images_in(d)
        _check_nonempty("taleqani-all", d, files)
        for p in files:
            rows.append(dict(id=p.relative_to(root).as_posix(), path=p, label=label, class_name=c,
                             subject=None, split=None, variant=variant))
    return _make_table("taleqani-all", root, rows, rule, info.classes)


_CNMC_NAME = re.compile(r"^UID_(H?\d+)_(\d+)_(\d+)_(all|hem)\.bmp$", re.IGNORECASE)


def _cnmc_base(root: Path) -> Path:
    for cand in (root, root / "C-NMC_Leukemia"):
        if (cand / "training_data").is_dir():
            return cand
    raise _layout_error("cnmc-2019", root, "no 'training_data' folder (nor 'C-NMC_Leukemia/training_data')")


def _load_cnmc(root: Path, rule: str, split: str = "train") -> pd.DataFrame:
    """C-NMC 2019: ``train`` (the three folds), ``prelim`` (labelled by CSV), ``final`` (unlabelled), ``all``."""
    splits = ("train", "prelim", "final", "all")
    if split not in splits:
        raise ValueError(f"unknown cnmc-2019 split {split!r}; valid: {', '.join(splits)}")
    info = DATASETS["cnmc-2019"]
    base = _cnmc_base(root)
    rows: list[dict] = []
    if split in ("train", "all"):
        td = base / "training_data"
        folds = [d for d in _subdirs(td) if re.fullmatch(r"fold_\d+", d)]
        if not folds:
            raise _layout_error("cnmc-2019", td, "no fold_N folders")
        for fold in folds:
            for c, d in _class_folders("cnmc-2019", td / fold, ("all", "hem"), f"training_data/{fold}/"):
                files = _images_in(d)
                _check_nonempty("cnmc-2019", d, files)
                for p in files:
                    m = _CNMC_NAME.match(p.name)
                    if m is None or m.group(4).lower() != c:
                        raise DataError(f"{os.path.abspath(p)}: name does not follow the C-NMC pattern "
                                        f"UID_<subject>_<image>_<cell>_{c}.bmp for folder {c!r}")
                    rows.append(dict(id=p.relative_to(root).as_posix(), path=p, label=info.classes.index(c),
                                     class_name=c, subject=m.group(1), split="train", fold=int(fold[5:])))
    if split in ("prelim", "all"):
        vd = base / "validation_data"
        csv = vd / "C-NMC_test_prelim_phase_data_labels.csv"
        imgs = vd / "C-NMC_test_prelim_phase_data"
        if not csv.is_file() or not imgs.is_dir():
            raise _layout_error("cnmc-2019", vd if vd.is_dir() else base,
                                "no validation_data/C-NMC_test_prelim_phase_data(+_labels.csv)")
        labels = pd.read_csv(csv)
        need = {"Patient_ID", "new_names", "labels"}
        if not need <= set(labels.columns):
            raise DataError(f"{os.path.abspath(csv)}: expected columns {sorted(need)}, found {list(labels.columns)}")
        for _, r in labels.iterrows():
            p = imgs / str(r["new_names"])
            if not p.is_file():
                raise DataError(f"{os.path.abspath(p)}: listed in {csv.name} but missing")
            m = _CNMC_NAME.match(str(r["Patient_ID"]))
            lab = int(r["labels"])  # 1 = ALL, 0 = HEM (the challenge's coding)
            rows.append(dict(id=p.relative_to(root).as_posix(), path=p, label=lab, class_name=info.classes[lab],
                             subject=m.group(1) if m else None, split="prelim", fold=None))
    if split in ("final", "all"):
        fd = base / "testing_data" / "C-NMC_test_final_phase_data"
        if not fd.is_dir():
            raise _layout_error("cnmc-2019", base, "no testing_data/C-NMC_test_final_phase_data")
        for p in _images_in(fd):
            rows.append(dict(id=p.relative_to(root).as_posix(), path=p, label=-1, class_name=None,
                             subject=None, split="final", fold=None))
    return _make_table("cnmc-2019", root, rows, rule, info.classes)


def _load_leukemia02(root: Path, rule: str, split: str = "all") -> pd.DataFrame:
    info = DATASETS["leukemia-0.2"]
    parts = {"all": ("train", "test"), "train": ("train",), "test": ("test",)}
    if split not in parts:
        raise ValueError(f"unknown leukemia-0.2 split {split!r}; valid: {', '.join(parts)}")
    rows = []
    for part in parts[split]:
        d0 = root / part
        if not d0.is_dir():
            raise _layout_error("leukemia-0.2", root, f"no {part!r} folder")
        for label, (c, d) in enumerate(_class_folders("leukemia-0.2", d0, info.classes, part + "/")):
            files = _images_in(d)
            _check_nonempty("leukemia-0.2", d, files)
            rows += [dict(id=p.relative_to(root).as_posix(), path=p, label=label, class_name=c,
                          subject=None, split=part) for p in files]
    return _make_table("leukemia-0.2", root, rows, rule, info.classes)


def _load_multicancer(root: Path, rule: str) -> pd.DataFrame:
    info = DATASETS["multicancer-all"]
    for cand in (root, root / "ALL", root / "Multi Cancer" / "ALL", root / "Multi Cancer" / "Multi Cancer" / "ALL"):
        if all((cand / c).is_dir() for c in info.classes):
            base = cand
            break
    else:
        raise _layout_error("multicancer-all", root, "no folder holding all_benign, all_early, all_pre, all_pro")
    rows = []
    for label, (c, d) in enumerate(_class_folders("multicancer-all", base, info.classes)):
        files = _images_in(d)
        _check_nonempty("multicancer-all", d, files)
        rows += [dict(id=p.relative_to(root).as_posix(), path=p, label=label, class_name=c, subject=None,
                      split=None) for p in files]
    return _make_table("multicancer-all", root, rows, rule, info.classes)


def _load_pbc(root: Path, rule: str) -> pd.DataFrame:
    for cand in (root / "Healthy", root / "lymphocyte", root / "PBC_dataset_normal_DIB" / "lymphocyte"):
        if cand.is_dir():
            break
    else:
        raise _layout_error("pbc-lymphocytes", root, "no 'Healthy' (or PBC 'lymphocyte') folder")
    files = _images_in(cand)
    _check_nonempty("pbc-lymphocytes", cand, files)
    rows = [dict(id=p.relative_to(root).as_posix(), path=p, label=0, class_name="Healthy", subject=None,
                 split=None) for p in files]
    return _make_table("pbc-lymphocytes", root, rows, rule, ("Healthy",))


_LOADERS: dict[str, Callable[..., pd.DataFrame]] = {
    "taleqani-all": _load_taleqani, "cnmc-2019": _load_cnmc, "leukemia-0.2": _load_leukemia02,
    "multicancer-all": _load_multicancer, "pbc-lymphocytes": _load_pbc,
}


def load_dataset(dataset_id: str, root: str | os.PathLike | None = None, **options) -> pd.DataFrame:
    """Load ``dataset_id`` from its published on-disk layout as a table (see module docstring).

    Options: ``taleqani-all``: ``variant="original"|"segmented"``; ``cnmc-2019``:
    ``split="train"|"prelim"|"final"|"all"``; ``leukemia-0.2``: ``split="all"|"train"|"test"``;
    ``synthetic``: ``layout``, ``n_per_class``, ``size``, ``seed`` and ``root`` (where to write;
    default a folder in the cache directory) plus the options of the layout's loader.
    A wrong or empty root raises :class:`DataError` naming the path and the expected layout.
    """
    dataset_info(dataset_id)
    if dataset_id == "synthetic":
        return load_synthetic(root=root, **options)
    path, rule = resolve_root(dataset_id, root, verbose=options.pop("verbose", True))
    return _LOADERS[dataset_id](path, rule, **options)


def fingerprint(table: pd.DataFrame) -> str:
    """Dataset fingerprint of the images a run used: SHA-256 of the sorted file hashes (hex, 16 chars)."""
    h = hashlib.sha256("\n".join(sorted(table["sha256"])).encode())
    return h.hexdigest()[:16]


def find_duplicates(table: pd.DataFrame) -> list[list[str]]:
    """Groups (lists of ``id``) of byte-identical images, largest first, each sorted; singletons omitted."""
    groups = [sorted(g["id"]) for _, g in table.groupby("sha256") if len(g) > 1]
    return sorted(groups, key=lambda g: (-len(g), g))


# --------------------------------------------------------------------------------------------
# Synthetic blood smears
# --------------------------------------------------------------------------------------------

_SYNTH_LAYOUTS = ("taleqani", "cnmc", "leukemia-0.2", "multicancer", "pbc")


def synthetic_image(label: int, n_classes: int, size: int, rng: np.random.Generator,
                    background: str = "smear") -> np.ndarray:
    """One blood-smear-like RGB uint8 image whose white cell depends on the class.

    Red-cell background (pink discs with pale centres on a light field, or black for
    segmented/C-NMC-style crops); one white cell (cytoplasm ring + purple nucleus) whose
    diameter grows with the class, whose nucleus gets more lobed/irregular with the class and
    whose chromatin texture gets finer and denser with the class.  Deterministic for ``rng``.
    """
    import cv2

    t = label / max(n_classes - 1, 1)  # 0 .. 1 along the classes
    s = size / 224.0
    if background == "black":
        img = np.zeros((size, size, 3), np.uint8)
    else:
        img = np.empty((size, size, 3), np.uint8)
        img[:] = (228 + rng.integers(-6, 6), 212 + rng.integers(-6, 6), 222 + rng.integers(-6, 6))  # RGB field
        for _ in range(int(26 + rng.integers(0, 10))):
            c = tuple(int(v) for v in rng.integers(0, size, 2))
            r = max(2, int(rng.normal(17, 2) * s))
            cv2.circle(img, c, r, (205, 120, 135), -1, lineType=cv2.LINE_AA)
            cv2.circle(img, c, max(1, r // 2), (222, 170, 178), -1, lineType=cv2.LINE_AA)
    cx, cy = (size // 2 + int(v) for v in rng.integers(-size // 12, size // 12 + 1, 2))
    cell_r = max(4, int((34 + 30 * t + rng.normal(0, 3)) * s))
    cv2.circle(img, (cx, cy), cell_r, (190, 170, 215), -1, lineType=cv2.LINE_AA)  # cytoplasm
    # nucleus: a polygon whose radius is modulated by lobes (more, deeper lobes for higher class)
    lobes = 2 + 2 * label
    depth = 0.08 + 0.25 * t
    ang = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    phase = rng.uniform(0, 2 * np.pi)
    rad = cell_r * (0.55 + 0.25 * t) * (1 + depth * np.sin(lobes * ang + phase) + 0.05 * rng.normal(size=ang.size))
    pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [pts], 1)
    # chromatin: noise low-passed at a class-dependent scale, darker and finer for higher classes
    noise = rng.normal(size=(size, size)).astype(np.float32)
    blur = max(0.5, (3.5 - 2.5 * t) * s)
    noise = cv2.GaussianBlur(noise, (0, 0), blur)
    noise /= noise.std() + 1e-6
    base = np.array([95 - 25 * t, 45, 140 - 20 * t], np.float32)
    nuc = base[None, None, :] + (12 + 10 * t) * noise[..., None]
    m = mask.astype(bool)
    img[m] = np.clip(nuc[m], 0, 255).astype(np.uint8)
    return img


def write_synthetic(root: str | os.PathLike, layout: str = "taleqani", *, n_per_class: int = 8, size: int = 64,
                    seed: int = 0) -> Path:
    """Write a deterministic synthetic dataset in a published layout under ``root``; return the dataset folder.

    Layouts: ``taleqani`` (Original + Segmented, 4 classes, JPEG, the Kaggle names), ``cnmc``
    (``training_data/fold_{0,1,2}/{all,hem}/UID_*.bmp`` on black, the preliminary test with its
    labels CSV and the final test; subject ids in names), ``leukemia-0.2`` (``train``/``test`` x 5
    classes), ``multicancer`` (``ALL/all_*``) and ``pbc`` (``Healthy/LY_*.jpg``).  The same
    arguments give byte-identical files.
    """
    import cv2

    if layout not in _SYNTH_LAYOUTS:
        raise ValueError(f"unknown synthetic layout {layout!r}; valid: {', '.join(_SYNTH_LAYOUTS)}")
    root = Path(root)
    rng = np.random.default_rng(seed)

    def save(p: Path, img: np.ndarray) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(p.suffix, cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 92] if p.suffix == ".jpg" else [])
        assert ok
        p.write_bytes(buf.tobytes())

    if layout == "taleqani":
        names = {"Benign": "WBC-Benign", "Early": "WBC-Malignant-Early", "Pre": "WBC-Malignant-Pre",
                 "Pro": "WBC-Malignant-Pro"}
        for label, c in enumerate(DATASETS["taleqani-all"].classes):
            for i in range(1, n_per_class + 1):
                img = synthetic_image(label, 4, size, rng)
                save(root / "Original" / c / f"{names[c]}-{i:03d}.jpg", img)
                seg = img.copy()
                yy, xx = np.ogrid[:size, :size]
                seg[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 > (0.38 * size) ** 2] = 0
                save(root / "Segmented" / c / f"{names[c]}-{i:03d}.jpg", seg)
    elif layout == "cnmc":
        base = root / "C-NMC_Leukemia"
        n_subj = 3
        for fold in range(3):
            for c, lab in (("all", 1), ("hem", 0)):
                for i in range(n_per_class):
                    subj = f"{fold * n_subj + i % n_subj + 1}"
                    subj = subj if c == "all" else f"H{subj}"
                    img = synthetic_image(lab, 2, size, rng, background="black")
                    save(base / "training_data" / f"fold_{fold}" / c / f"UID_{subj}_{i + 1}_{i % 4 + 1}_{c}.bmp", img)
        rows = []
        for i in range(2 * n_per_class):
            lab = i % 2
            subj = f"{100 + i % 3}" if lab else f"H{100 + i % 3}"
            save(base / "validation_data" / "C-NMC_test_prelim_phase_data" / f"{i + 1}.bmp",
                 synthetic_image(lab, 2, size, rng, background="black"))
            rows.append(dict(Patient_ID=f"UID_{subj}_{i + 1}_1_{'all' if lab else 'hem'}.bmp", new_names=f"{i + 1}.bmp",
                             labels=lab))
        pd.DataFrame(rows).to_csv(base / "validation_data" / "C-NMC_test_prelim_phase_data_labels.csv", index=False)
        for i in range(n_per_class):
            save(base / "testing_data" / "C-NMC_test_final_phase_data" / f"{i + 1}.bmp",
                 synthetic_image(i % 2, 2, size, rng, background="black"))
    elif layout == "leukemia-0.2":
        for part in ("train", "test"):
            for label, c in enumerate(DATASETS["leukemia-0.2"].classes):
                for i in range(n_per_class):
                    save(root / part / c / f"{c}_{part}_{i + 1:04d}.jpg", synthetic_image(label, 5, size, rng))
    elif layout == "multicancer":
        for label, c in enumerate(DATASETS["multicancer-all"].classes):
            for i in range(n_per_class):
                save(root / "ALL" / c / f"{c}_{i + 1:04d}.jpg", synthetic_image(label, 4, size, rng))
    elif layout == "pbc":
        for i in range(n_per_class):
            save(root / "Healthy" / f"LY_{100000 + i}.jpg", synthetic_image(0, 4, size, rng))
    (root / "SYNTHETIC.txt").write_text("Synthetic images generated by leukcore.data.write_synthetic; not real data.\n")
    return root


_SYNTH_LOADER = {"taleqani": "taleqani-all", "cnmc": "cnmc-2019", "leukemia-0.2": "leukemia-0.2",
                 "multicancer": "multicancer-all", "pbc": "pbc-lymphocytes"}


def load_synthetic(root: str | os.PathLike | None = None, *, layout: str = "taleqani", n_per_class: int = 8,
                   size: int = 64, seed: int = 0, **options) -> pd.DataFrame:
    """Generate (once) and load a synthetic dataset in ``layout``; the table says ``dataset='synthetic'``.

    ``table.attrs['stands_in_for']`` names the dataset whose layout it mimics.
    """
    if layout not in _SYNTH_LAYOUTS:
        raise ValueError(f"unknown synthetic layout {layout!r}; valid: {', '.join(_SYNTH_LAYOUTS)}")
    if root is None:
        root = cache_dir() / "synthetic" / f"{layout}-n{n_per_class}-s{size}-seed{seed}"
    root = Path(root)
    if not (root / "SYNTHETIC.txt").is_file():
        tmp = root.with_name(root.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        write_synthetic(tmp, layout, n_per_class=n_per_class, size=size, seed=seed)
        if root.exists():
            shutil.rmtree(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, root)
    stands_in = _SYNTH_LOADER[layout]
    table = _LOADERS[stands_in](root, "synthetic", **options)
    table.attrs.update(dataset="synthetic", stands_in_for=stands_in)
    return table


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def _group_keys(table: pd.DataFrame, group_by: str | None) -> np.ndarray:
    if group_by is None:
        return table["id"].to_numpy()
    if group_by == "duplicates":
        return table["sha256"].to_numpy()
    if group_by == "subject":
        if table["subject"].isna().any():
            raise DataError(f"a subject-disjoint split needs a subject id for every image; "
                            f"{table.attrs.get('dataset', 'this dataset')} has none "
                            f"(taleqani-all publishes no patient ids)")
        return table["subject"].astype(str).to_numpy()
    raise ValueError(f"unknown group_by {group_by!r}; valid: None, 'duplicates', 'subject'")


def split_fractions(table: pd.DataFrame, fractions: dict[str, float] | None = None, *, seed: int = 0,
                    group_by: str | None = None) -> dict[str, list[str]]:
    """Stratified partition into named parts by fractions (default train/val/test 0.75/0.05/0.20).

    Groups (``group_by='duplicates'``: byte-identical images; ``'subject'``: one patient) are kept
    whole: a group is assigned by its majority label and never straddles two parts.  Within each
    label, groups are shuffled with ``seed`` and cut at the cumulative fractions (largest-remainder
    rounding), so each part's class proportions match the table's.  Returns ``{part: [ids]}``.
    """
    fractions = fractions or {"train": 0.75, "val": 0.05, "test": 0.20}
    if abs(sum(fractions.values()) - 1) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    keys = _group_keys(table, group_by)
    df = pd.DataFrame({"id": table["id"].to_numpy(), "label": table["label"].to_numpy(), "g": keys})
    glabel = df.groupby("g")["label"].agg(lambda s: s.mode().iloc[0])
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in fractions}
    names = list(fractions)
    for lab in sorted(glabel.unique()):
        groups = np.array(sorted(glabel.index[glabel == lab]), dtype=object)
        groups = groups[rng.permutation(len(groups))]
        n = len(groups)
        raw = np.array([fractions[k] * n for k in names])
        counts = np.floor(raw).astype(int)
        for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
            counts[i] += 1
        start = 0
        for name, c in zip(names, counts):
            parts[name] += list(groups[start:start + c])
            start += c
    g2part = {g: name for name, gs in parts.items() for g in gs}
    out = {name: [] for name in names}
    for i, g in zip(df["id"], df["g"]):
        out[g2part[g]].append(i)
    return out


def split_kfold(table: pd.DataFrame, k: int = 5, *, seed: int = 0, group_by: str | None = None) -> list[dict[str, list[str]]]:
    """Stratified k-fold (sklearn ``StratifiedKFold`` / ``StratifiedGroupKFold`` with shuffling and ``seed``).

    Returns one ``{"train": ids, "test": ids}`` per fold; with ``group_by`` a group never straddles.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = table["label"].to_numpy()
    ids = table["id"].to_numpy()
    if group_by is None:
        it = StratifiedKFold(k, shuffle=True, random_state=seed).split(ids, y)
    else:
        it = StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(ids, y, _group_keys(table, group_by))
    return [{"train": list(ids[tr]), "test": list(ids[te])} for tr, te in it]


def split_published_folds(table: pd.DataFrame) -> list[dict[str, list[str]]]:
    """C-NMC 2019's published training folds: fold ``f`` as test, the other folds as train."""
    if "fold" not in table or table["fold"].isna().all():
        raise DataError("published folds need the 'fold' column of cnmc-2019's training data")
    folds = sorted(int(f) for f in table["fold"].dropna().unique())
    return [{"train": list(table.loc[table["fold"] != f, "id"]), "test": list(table.loc[table["fold"] == f, "id"])}
            for f in folds]


def subset(table: pd.DataFrame, ids: Iterable[str]) -> pd.DataFrame:
    """Rows of ``table`` with these ids, in the given order."""
    ids = list(ids)
    out = table.set_index("id", drop=False).loc[ids].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def save_split(split: dict[str, list[str]], path: str | os.PathLike, table: pd.DataFrame | None = None) -> Path:
    """Write a split as JSON (``{part: [id ...]}``, plus each id's sha256 when ``table`` is given)."""
    doc: dict = {"parts": split}
    if table is not None:
        sha = dict(zip(table["id"], table["sha256"]))
        doc["sha256"] = {i: sha[i] for ids in split.values() for i in ids}
    path = Path(path)
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True))
    return path


def load_split(path: str | os.PathLike, table: pd.DataFrame | None = None) -> dict[str, list[str]]:
    """Read a split saved by :func:`save_split`; with ``table``, check every id exists with the same bytes."""
    doc = json.loads(Path(path).read_text())
    split = {k: list(v) for k, v in doc["parts"].items()}
    if table is not None:
        sha = dict(zip(table["id"], table["sha256"]))
        missing = [i for ids in split.values() for i in ids if i not in sha]
        changed = [i for i, h in doc.get("sha256", {}).items() if i in sha and sha[i] != h]
        if missing or changed:
            raise DataError(f"split {path} does not match the data: {len(missing)} ids missing "
                            f"(e.g. {missing[:3]}), {len(changed)} files changed (e.g. {changed[:3]})")
    return split


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, blob: bytes) -> None:
    """Write ``blob`` to ``path`` atomically; see :func:`atomic_write_with`."""
    atomic_write_with(path, lambda f: f.write(blob))


def atomic_write_with(path: str | os.PathLike, write: Callable) -> None:
    """Call ``write(binary_file)`` on a temporary file in ``path``'s folder, fsync, then ``os.replace``.

    A crash or error before the rename leaves the previous file untouched and removes the
    temporary file; readers see the old content or the new, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# --------------------------------------------------------------------------------------------
# Decoding and the decoded-image cache
# --------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$LEUKCORE_CACHE``, else ``~/.cache/leukcore``."""
    return Path(os.environ.get("LEUKCORE_CACHE") or Path.home() / ".cache" / "leukcore")


def read_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """Decode one image file to RGB uint8 ``(H, W, 3)``; return it with notes on any conversion.

    Refuses (``BadImageError``): an empty file, a file that is not an image, a truncated image,
    an image over ``max_pixels`` (checked from the header, before decoding).  Converts, and says
    so in the notes: grey-scale and palette to RGB, RGBA / LA to RGB (alpha discarded), 16-bit
    grey to 8-bit (``round(v / 257)``), 16-bit per channel RGB(A) to 8-bit (PIL keeps the high
    byte, ``v // 256``).  Headers above PIL's own decompression-bomb limit are refused the same way.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise BadImageError(p, f"cannot read ({e.strerror})") from None
    if size == 0:
        raise BadImageError(p, "empty file (0 bytes)")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # PIL warns above ~89 MP and raises above ~179 MP; our own limit below is lower and clearer
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)
        with im:
            w, h = im.size
            if w * h > max_pixels:
                raise BadImageError(p, f"{w}x{h} pixels exceeds the limit of {max_pixels:,} "
                                       f"(refused before decoding; resize it or raise max_pixels)")
            mode = im.mode
            raw16 = any(";16" in _rawmode(t) for t in (im.tile or ()))
            im.load()
            if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                arr = np.asarray(im, dtype=np.float64)
                scale = 257.0 if mode != "I" or arr.max() > 255 else 1.0
                arr = np.clip(np.rint(arr / scale), 0, 255).astype(np.uint8)
                notes.append(f"{'16-bit' if scale > 1 else '32-bit integer'} {mode} converted to 8-bit grey"
                             f"{' (/257)' if scale > 1 else ' (values already 0..255)'} then RGB")
                return np.repeat(arr[..., None], 3, axis=2), notes
            if raw16:
                notes.append(f"16-bit per channel {mode} converted to 8 bits (high byte, about /257)")
            if mode != "RGB":
                notes.append(f"{mode} converted to RGB" + (" (alpha discarded)" if "A" in mode else ""))
                im = im.convert("RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except BadImageError:
        raise
    except Image.DecompressionBombError as e:
        raise BadImageError(p, f"header claims more pixels than the limit of {max_pixels:,} ({e}); refused "
                               f"before decoding; resize it") from None
    except UnidentifiedImageError:
        raise BadImageError(p, "not an image (unrecognised format) despite its extension") from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = str(e)
        reason = "truncated image" if "truncat" in msg.lower() else f"cannot decode ({msg})"
        raise BadImageError(p, reason) from None
    return np.ascontiguousarray(arr), notes


def _rawmode(tile) -> str:
    """The raw mode of one PIL tile descriptor (``'RGB;16B'`` for a 48-bit PNG), or ``''``."""
    args = tile[3] if len(tile) > 3 else None
    if isinstance(args, tuple):
        args = args[0] if args else None
    return args if isinstance(args, str) else ""


def _resize(img: np.ndarray, size: int | None) -> np.ndarray:
    import cv2

    if size is None or img.shape[:2] == (size, size):
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


class ImageCache:
    """Decoded images kept as uint8 ``(size, size, 3)``, in memory and on disk.

    Keys are ``(sha256, size)``: each file is decoded once, ever, per size.  On disk each image is
    ``<cache_dir>/decoded/<size>/<sha[:2]>/<sha>.npy``.  ``disk=False`` keeps memory only.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, disk: bool = True):
        self.root = Path(root) if root is not None else cache_dir()
        self.disk = disk
        self._mem: dict[tuple[str, int | None], np.ndarray] = {}

    def _file(self, sha: str, size: int | None) -> Path:
        return self.root / "decoded" / str(size or "native") / sha[:2] / f"{sha}.npy"

    def get(self, path: str | os.PathLike, sha: str, size: int | None) -> np.ndarray:
        """The decoded, resized image of ``path`` (content ``sha``), from memory, disk or the file."""
        key = (sha, size)
        if key in self._mem:
            return self._mem[key]
        f = self._file(sha, size)
        img = None
        if self.disk and f.is_file():
            try:
                img = np.load(f, allow_pickle=False)
            except (OSError, ValueError):
                img = None
        if img is None:
            img, notes = read_image(path)
            if notes:
                warnings.warn(f"{_show(path)}: " + "; ".join(notes), stacklevel=3)
            img = _resize(img, size)
            if self.disk:
                f.parent.mkdir(parents=True, exist_ok=True)
                tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp.npy")
                np.save(tmp, img, allow_pickle=False)
                os.replace(tmp, f)
        self._mem[key] = img
        return img


_DEFAULT_CACHE: ImageCache | None = None


def default_cache() -> ImageCache:
    """The process-wide :class:`ImageCache` (memory + ``cache_dir()`` on disk)."""
    global _DEFAULT_CACHE
    if _DEFAULT_CACHE is None or _DEFAULT_CACHE.root != cache_dir():
        _DEFAULT_CACHE = ImageCache()
    return _DEFAULT_CACHE


def load_images(table: pd.DataFrame, size: int | None = 224, *, cache: ImageCache | None = None,
                on_bad: str = "raise") -> tuple[np.ndarray, pd.DataFrame]:
    """Decoded images of ``table`` as one uint8 array ``(N, size, size, 3)``, through the cache.

    ``on_bad="raise"`` (default) stops at the first bad file with a message naming it;
    ``on_bad="skip"`` leaves it out.  Returns ``(images, kept)`` where ``kept`` is the table of
    the images returned and ``kept.attrs['skipped']`` lists ``{"id", "reason"}`` of every file
    left out (record it in the run).
    """
    if on_bad not in ("raise", "skip"):
        raise ValueError(f"unknown on_bad {on_bad!r}; valid: 'raise', 'skip'")
    cache = cache or default_cache()
    imgs, keep, skipped = [], [], []
    for i, (path, sha, id_) in enumerate(zip(table["path"], table["sha256"], table["id"])):
        try:
            imgs.append(cache.get(path, sha, size))
            keep.append(i)
        except BadImageError as e:
            if on_bad == "raise":
                raise BadImageError(e.path, e.reason + "; fix or remove the file, or pass on_bad='skip' "
                                                       "to leave it out (it is then listed in the run record)") from None
            skipped.append({"id": id_, "reason": e.reason})
    kept = table.iloc[keep].reset_index(drop=True)
    kept.attrs = dict(table.attrs)
    kept.attrs["skipped"] = skipped
    if size is None and len({im.shape for im in imgs}) > 1:
        raise DataError("images differ in size; pass size=N to resize them to one size")
    arr = np.stack(imgs) if imgs else np.zeros((0, size or 0, size or 0, 3), np.uint8)
    return arr, kept


# --------------------------------------------------------------------------------------------
# Verification (``leukcore data verify``)
# --------------------------------------------------------------------------------------------


def detect_dataset(root: str | os.PathLike) -> str:
    """Guess which dataset a folder holds from its layout; raise DataError listing the layouts."""
    root = Path(root)
    if (root / "Original").is_dir() or (root / "Segmented").is_dir():
        return "taleqani-all"
    if (root / "training_data").is_dir() or (root / "C-NMC_Leukemia").is_dir():
        return "cnmc-2019"
    if (root / "train").is_dir() and (root / "test").is_dir():
        return "leukemia-0.2"
    if any((c / "all_benign").is_dir() for c in (root, root / "ALL", root / "Multi Cancer" / "ALL",
                                                  root / "Multi Cancer" / "Multi Cancer" / "ALL")):
        return "multicancer-all"
    if (root / "Healthy").is_dir() or (root / "lymphocyte").is_dir():
        return "pbc-lymphocytes"
    for d in DATASETS:
        if (root / d).is_dir() and d != "synthetic":
            return d
    layouts = "; ".join(f"{k}: {v.layout}" for k, v in DATASETS.items() if k != "synthetic")
    raise DataError(f"{os.path.abspath(root)}: no known dataset layout. Known layouts: {layouts}. "
                    f"Folders found: {_subdirs(root) or 'none'}")


_TALEQANI_NAME = re.compile(r"^WBC-(Benign|Malignant-(Early|Pre|Pro))-\d+\.jpe?g$", re.IGNORECASE)


def verify(root: str | os.PathLike, dataset: str | None = None) -> dict:
    """Check a dataset folder: counts per class, duplicate groups, and every bad or misplaced file.

    Returns ``{"dataset", "root", "parts": [{"name", "counts", "n", "duplicate_groups"}], "bad":
    [{"path", "reason"}], "ok"}``.  Bad: unreadable, empty, truncated, not an image, too large,
    non-UTF-8 name; misplaced: a file outside the class folders, a non-image file in a class
    folder, a Taleqani name whose class contradicts its folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{os.path.abspath(root)} does not exist or is not a folder")
    dataset = dataset or detect_dataset(root)
    dataset_info(dataset)
    if (root / dataset).is_dir():
        root = root / dataset
    bad: list[dict] = []
    parts = []
    if dataset == "taleqani-all":
        variants = [v for v in ("original", "segmented") if (root / v.capitalize()).is_dir()]
        if not variants:
            raise _layout_error(dataset, root, "neither 'Original' nor 'Segmented' found")
        tables = [(v.capitalize(), load_dataset(dataset, root, variant=v, verbose=False)) for v in variants]
        class_dirs = [root / v.capitalize() / c for v in variants for c in DATASETS[dataset].classes]
        top_dirs = [root] + [root / v.capitalize() for v in variants]
    else:
        t = load_dataset(dataset, root, verbose=False)
        tables = [(p, g.reset_index(drop=True)) for p, g in t.groupby(t["split"].fillna("all"))] if t["split"].notna().any() \
            else [("all", t)]
        class_dirs = sorted({Path(p).parent for p in t["path"]})
        top_dirs = [root]
    for name, t in tables:
        dups = find_duplicates(t)
        for path, cls in zip(t["path"], t["class_name"]):
            try:
                read_image(path)
            except BadImageError as e:
                bad.append({"path": e.path, "reason": e.reason})
            if dataset == "taleqani-all":
                m = _TALEQANI_NAME.match(Path(path).name)
                named = None if m is None else (m.group(2) or "Benign")
                if named is not None and named.lower() != str(cls).lower():
                    bad.append({"path": path, "reason": f"misplaced: named {named} but in folder {cls}"})
        parts.append({"name": name, "n": int(len(t)),
                      "counts": {str(k): int(v) for k, v in t["class_name"].value_counts(sort=False).items()},
                      "duplicate_groups": len(dups), "duplicates": dups})
    for d in class_dirs:
        for p in sorted(d.iterdir(), key=lambda p: os.fsencode(p.name)) if d.is_dir() else []:
            if _has_surrogates(str(p)):
                bad.append({"path": _show(p), "reason": "file name is not valid UTF-8"})
            elif p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS and p.name not in ("SHA256SUMS",):
                bad.append({"path": str(p), "reason": "misplaced: not an image file in a class folder"})
    for d in top_dirs:
        for p in d.iterdir():
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                bad.append({"path": str(p), "reason": "misplaced: image outside the class folders"})
    return {"dataset": dataset, "root": os.path.abspath(root), "parts": parts, "bad": bad, "ok": not bad}


# --------------------------------------------------------------------------------------------
# Download (``leukcore data fetch``)
# --------------------------------------------------------------------------------------------


def _kaggle_credentials_present() -> bool:
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    if os.environ.get("KAGGLE_API_TOKEN"):
        return True
    cfg = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    return (cfg / "kaggle.json").is_file() or (cfg / "access_token").is_file()


def fetch_dataset(dataset_id: str, to: str | os.PathLike, *, downloader: Callable[[str], str] | None = None) -> Path:
    """Download ``dataset_id`` through kagglehub and place it at ``<to>/<dataset_id>``.

    Needs Kaggle credentials (``~/.kaggle/kaggle.json`` or ``KAGGLE_USERNAME``/``KAGGLE_KEY``) and
    internet.  Without them, or offline, raises :class:`DataError` saying how to download by
    hand.  Credentials are never printed or stored.  ``downloader`` replaces
    ``kagglehub.dataset_download`` (tests).
    """
    info = dataset_info(dataset_id)
    dest = Path(to) / dataset_id
    manual = (f"Download it by hand ({'Kaggle dataset ' + info.kaggle if info.kaggle else info.citation}), "
              f"unpack it so that {dest} follows the layout {info.layout}, then run with "
              f"LEUKCORE_DATA={Path(to)} (or --data-root {Path(to)}).")
    if info.kaggle is None:
        raise DataError(f"{dataset_id} is not on Kaggle. {manual}")
    if downloader is None:
        if not _kaggle_credentials_present():
            raise DataError(f"no Kaggle credentials found (~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY). "
                            f"Create an API token on kaggle.com, or: {manual}")
        try:
            import kagglehub
        except ImportError:
            raise DataError(f"kagglehub is not installed (pip install kagglehub). {manual}") from None
        downloader = kagglehub.dataset_download
    try:
        src = Path(downloader(info.kaggle))
    except Exception as e:  # network, auth, API errors: all mean "do it by hand"
        raise DataError(f"download of {info.kaggle} failed ({type(e).__name__}: {_redact(str(e))}). {manual}") from None
    if dest.exists():
        raise DataError(f"{dest} already exists; remove it or choose another --to")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest)
    return dest


def _redact(text: str) -> str:
    for var in ("KAGGLE_KEY", "KAGGLE_USERNAME", "KAGGLE_API_TOKEN"):
        if os.environ.get(var):
            text = text.replace(os.environ[var], "***")
    return text[:300]
