"""Datasets in their published layouts: root resolution, hashing, one loader per layout.

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
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from ..files import PROJECT_ROOT
from .errors import DataError, has_surrogates, show_path
from .images import cache_dir
from .registry import DATASETS, IMAGE_EXTENSIONS, dataset_info
from .synthetic import SYNTHETIC_LAYOUTS, write_synthetic


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


def list_subdirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def layout_error(dataset_id: str, path: Path, problem: str) -> DataError:
    found = list_subdirs(path)
    return DataError(f"{os.path.abspath(path)} is not a {dataset_id} folder: {problem}. Expected layout: "
                     f"{DATASETS[dataset_id].layout}. Folders found there: {found or 'none'}")


def _class_folders(dataset_id: str, base: Path, classes: Iterable[str], rel: str = "") -> list[tuple[str, Path]]:
    out = []
    for c in classes:
        d = base / c
        if not d.is_dir():
            raise layout_error(dataset_id, base, f"missing class folder {rel + c!r}")
        out.append((c, d))
    return out


def _make_table(dataset_id: str, root: Path, rows: list[dict], rule: str, classes: tuple[str, ...]) -> pd.DataFrame:
    for r in rows:
        if not has_surrogates(str(r["path"])):
            continue
        raise DataError(f"{show_path(r['path'])}: file name is not valid UTF-8; rename it (e.g. "
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
        raise layout_error("taleqani-all", root, f"no {variants[variant]!r} folder")
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
    raise layout_error("cnmc-2019", root, "no 'training_data' folder (nor 'C-NMC_Leukemia/training_data')")


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
        folds = [d for d in list_subdirs(td) if re.fullmatch(r"fold_\d+", d)]
        if not folds:
            raise layout_error("cnmc-2019", td, "no fold_N folders")
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
            raise layout_error("cnmc-2019", vd if vd.is_dir() else base,
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
            raise layout_error("cnmc-2019", base, "no testing_data/C-NMC_test_final_phase_data")
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
            raise layout_error("leukemia-0.2", root, f"no {part!r} folder")
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
        raise layout_error("multicancer-all", root, "no folder holding all_benign, all_early, all_pre, all_pro")
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
        raise layout_error("pbc-lymphocytes", root, "no 'Healthy' (or PBC 'lymphocyte') folder")
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
    return read_layout(dataset_id, path, rule, **options)


def read_layout(dataset_id: str, path: Path, rule: str, **options) -> pd.DataFrame:
    """List the images under ``path`` in ``dataset_id``'s published layout (``rule``: how the root was found)."""
    return _LOADERS[dataset_id](path, rule, **options)


def fingerprint(table: pd.DataFrame) -> str:
    """Dataset fingerprint of the images a run used: SHA-256 of the sorted file hashes (hex, 16 chars)."""
    h = hashlib.sha256("\n".join(sorted(table["sha256"])).encode())
    return h.hexdigest()[:16]


def find_duplicates(table: pd.DataFrame) -> list[list[str]]:
    """Groups (lists of ``id``) of byte-identical images, largest first, each sorted; singletons omitted."""
    groups = [sorted(g["id"]) for _, g in table.groupby("sha256") if len(g) > 1]
    return sorted(groups, key=lambda g: (-len(g), g))



_SYNTH_LOADER = {"taleqani": "taleqani-all", "cnmc": "cnmc-2019", "leukemia-0.2": "leukemia-0.2",
                 "multicancer": "multicancer-all", "pbc": "pbc-lymphocytes"}


def load_synthetic(root: str | os.PathLike | None = None, *, layout: str = "taleqani", n_per_class: int = 8,
                   size: int = 64, seed: int = 0, **options) -> pd.DataFrame:
    """Generate (once) and load a synthetic dataset in ``layout``; the table says ``dataset='synthetic'``.

    ``table.attrs['stands_in_for']`` names the dataset whose layout it mimics.
    """
    if layout not in SYNTHETIC_LAYOUTS:
        raise ValueError(f"unknown synthetic layout {layout!r}; valid: {', '.join(SYNTHETIC_LAYOUTS)}")
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
    table = read_layout(stands_in, root, "synthetic", **options)
    table.attrs.update(dataset="synthetic", stands_in_for=stands_in)
    return table
