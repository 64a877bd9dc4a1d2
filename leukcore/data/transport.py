"""A dataset carried to another machine in numbered parts, and checked there before anything trains.

A lent GPU machine takes at most 64 MiB per call, less than the Taleqani originals (about 76 MB):
:func:`pack_dataset` writes them as uncompressed tar parts with a manifest (every file's path,
SHA-256, size and part; the dataset fingerprint :func:`leukcore.data.fingerprint`; the SHA-256 of
the dataset's ``SHA256SUMS``); the machine adds the parts it was given to one folder across
back-to-back calls (:func:`unpack_parts`), and :func:`check_dataset` refuses until the assembled
folder matches the manifest and ``SHA256SUMS`` (naming the missing parts).
"""
from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

from ..files import atomic_write_text
from .datasets import fingerprint, load_dataset, sha256_file
from .errors import DataError


def manifest_path(folder: Path) -> Path:
    """``<folder>/manifest.json``."""
    return Path(folder) / "manifest.json"


def safe_members(tar: tarfile.TarFile):
    """The members of ``tar``, refusing (ValueError) an absolute path, ``..`` or anything but files
    and folders."""
    for m in tar.getmembers():
        p = Path(m.name)
        if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
            raise ValueError(f"{tar.name}: unsafe member {m.name!r}")
        yield m


def pack_dataset(data_root: str | os.PathLike, out: str | os.PathLike, *, dataset: str = "taleqani-all",
                 variant: str = "original", part_mib: float = 38.0) -> dict:
    """Write ``dataset``'s images as numbered uncompressed tar parts of at most ``part_mib`` MiB, and a manifest.

    The manifest lists every file (path under the data root, SHA-256, size, part), the dataset
    fingerprint of the loaded table and the SHA-256 of the dataset's ``SHA256SUMS`` (shipped in part 1).
    """
    table = load_dataset(dataset, data_root, variant=variant, verbose=False)
    root = Path(table.attrs["root"])
    files = [(f"{dataset}/{Path(p).relative_to(root).as_posix()}", Path(p)) for p in sorted(table["path"])]
    sums = root / "SHA256SUMS"
    extra = [(f"{dataset}/SHA256SUMS", sums)] if sums.is_file() else []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{dataset}.part*.tar"):
        old.unlink()
    limit = int(part_mib * 2**20)
    parts: list[list[tuple[str, Path]]] = [[]]
    size = 0
    for rel, p in extra + files:
        n = p.stat().st_size + 1024  # tar header and padding
        if parts[-1] and size + n > limit:
            parts.append([])
            size = 0
        parts[-1].append((rel, p))
        size += n
    entries = []
    for i, part in enumerate(parts, 1):
        name = f"{dataset}.part{i}of{len(parts)}.tar"
        tmp = out / f".{name}.tmp"
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for rel, p in part:
                info = tar.gettarinfo(str(p), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                with open(p, "rb") as fh:
                    tar.addfile(info, fh)
        os.replace(tmp, out / name)
        for rel, p in part:
            entries.append({"path": rel, "sha256": sha256_file(p), "bytes": p.stat().st_size, "part": name})
    manifest = {"dataset": dataset, "variant": variant, "fingerprint": fingerprint(table),
                "n_images": int(len(table)), "parts": [f"{dataset}.part{i}of{len(parts)}.tar" for i in range(1, len(parts) + 1)],
                "sha256sums": sha256_file(sums) if sums.is_file() else None, "files": entries}
    atomic_write_text(manifest_path(out), json.dumps(manifest, indent=1) + "\n")
    return manifest

def unpack_parts(src: str | os.PathLike, dest: str | os.PathLike) -> dict:
    """Extract the parts present in ``src`` into ``dest`` (kept across calls), with the manifest.

    Returns ``{"have": [...], "missing": [...]}`` (parts, by the manifest's names).
    """
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if manifest_path(src).is_file():
        shutil.copyfile(manifest_path(src), manifest_path(dest))
    if not manifest_path(dest).is_file():
        raise DataError(f"no manifest.json in {src} or {dest}: carry the pack's manifest.json "
                        f"(made by `leukcore gpu pack`)")
    manifest = json.loads(manifest_path(dest).read_text())
    done = dest / ".parts"
    done.mkdir(exist_ok=True)
    for name in manifest["parts"]:
        p = src / name
        if p.is_file():
            with tarfile.open(p) as tar:
                tar.extractall(dest, members=list(safe_members(tar)), filter="data")
            (done / name).write_text("ok\n")
    have = [n for n in manifest["parts"] if (done / n).is_file()]
    return {"have": have, "missing": [n for n in manifest["parts"] if n not in have]}

def check_dataset(root: str | os.PathLike) -> dict:
    """Refuse (:class:`~leukcore.data.DataError`) unless ``root`` holds the manifest's complete dataset.

    Checks: every part unpacked, every file's SHA-256, the lines of ``SHA256SUMS`` for the variant,
    and the fingerprint of the table :func:`leukcore.data.load_dataset` loads from ``root``.
    """
    root = Path(root)
    mp = manifest_path(root)
    if not mp.is_file():
        raise DataError(f"{root}: no manifest.json; run `leukcore gpu unpack` with the carried parts first")
    m = json.loads(mp.read_text())
    missing_parts = [n for n in m["parts"] if not (root / ".parts" / n).is_file()]
    bad = []
    for f in m["files"]:
        p = root / f["path"]
        if not p.is_file() or p.stat().st_size != f["bytes"] or sha256_file(p) != f["sha256"]:
            bad.append(f)
    if missing_parts or bad:
        parts = sorted(set(missing_parts) | {f["part"] for f in bad})
        raise DataError(f"{root}: dataset {m['dataset']} incomplete: {len(bad)} of {len(m['files'])} files missing "
                          f"or different; carry and unpack the part(s) {', '.join(parts)} (made by `leukcore gpu pack`)")
    ds_dir = root / m["dataset"]
    sums = ds_dir / "SHA256SUMS"
    if m.get("sha256sums"):
        if not sums.is_file() or sha256_file(sums) != m["sha256sums"]:
            raise DataError(f"{sums}: missing or not the SHA256SUMS the manifest names")
        prefix = {"original": "./Original/", "segmented": "./Segmented/"}.get(m["variant"], "./")
        want = {}
        for line in sums.read_text().splitlines():
            h, _, rel = line.partition("  ")
            if rel.startswith(prefix):
                want[f"{m['dataset']}/{rel[2:]}"] = h
        have = {f["path"]: f["sha256"] for f in m["files"] if not f["path"].endswith("SHA256SUMS")}
        if want != have:
            diff = sorted(set(want) ^ set(have)) or sorted(k for k in want if want[k] != have.get(k))
            raise DataError(f"{root}: the assembled files disagree with {sums} ({len(diff)} paths, e.g. {diff[:3]})")
    table = load_dataset(m["dataset"], root, variant=m["variant"], verbose=False)
    fp = fingerprint(table)
    if fp != m["fingerprint"]:
        raise DataError(f"{root}: dataset fingerprint {fp} is not the manifest's {m['fingerprint']}")
    return {"dataset": m["dataset"], "variant": m["variant"], "fingerprint": fp, "n_images": int(len(table))}
