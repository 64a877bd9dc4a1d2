"""What a book build was made from: the commit, and the SHA-256 of every record and predictions
file it read (:func:`leukcore.runs.records.files_read`) with one hash over them, the manifest hash.

Two builds from different records have different manifest hashes. The methods page includes
``records_manifest.md``; ``claims.manifest.sha256`` lies beside ``claims.csv`` (which stays a plain
CSV) in the format ``sha256sum -c`` checks from the repository root.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..files import atomic_write_text
from ..runs.records import files_read, shown_path
from .citation import commit

MANIFEST_FILE = "claims.manifest.sha256"


def manifest_lines(reads: dict[str, str] | None = None) -> list[str]:
    """``"<sha256>  <path>"`` per file read (``sha256sum``'s format), sorted by path; paths relative
    to the project when inside it. ``reads``: ``{path: SHA-256}`` (default: this process's reads)."""
    reads = files_read() if reads is None else reads
    return [f"{digest}  {path}" for path, digest in sorted((shown_path(p), d) for p, d in reads.items())]


def manifest_hash(lines: list[str]) -> str:
    """The one hash over a build's files: the SHA-256 of its manifest lines, each ending in a newline
    (``grep -v '^#' claims.manifest.sha256 | sha256sum``)."""
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()


def _built_from(code: str = "") -> str:
    """``commit <hash> (git describe: <describe>)``, hash and describe between ``code`` marks."""
    c = commit()
    if not c["hash"]:
        return "outside git (no commit)"
    return f"commit {code}{c['hash']}{code} (git describe: {code}{c['describe']}{code})"


def manifest_text(lines: list[str]) -> str:
    """The manifest file: comment lines naming the commit and the manifest hash, then the lines."""
    head = [f"# leukcore book built from {_built_from()}",
            f"# from {len(lines)} record and predictions files; manifest hash (SHA-256 of the lines below) "
            f"{manifest_hash(lines)}",
            f"# check the files from the repository root: sha256sum -c {MANIFEST_FILE}"]
    return "".join(f"{line}\n" for line in head + lines)


def manifest_markdown(lines: list[str]) -> str:
    """The methods page's part: the commit, how many files, the manifest hash, every file in a dropdown."""
    n_pred = sum(line.endswith(".predictions.csv") for line in lines)
    body = "\n".join(lines) or "(no record was read)"
    return (f"This book was built from {_built_from('`')}, "
            f"from {len(lines) - n_pred} records and {n_pred} predictions files. Their manifest hash, the SHA-256 "
            f"of the list below (one `SHA-256  path` line per file, sorted by path), is\n`{manifest_hash(lines)}`;\n"
            f"a build from any other records has another.\n\n"
            f"````{{admonition}} The SHA-256 of each file it read\n:class: dropdown\n\n```text\n{body}\n```\n````\n")


def write_manifest(out: Path, reads: dict[str, str] | None = None) -> list[Path]:
    """Write ``records_manifest.md`` and :data:`MANIFEST_FILE` into ``out``; return their paths."""
    lines = manifest_lines(reads)
    paths = [out / "records_manifest.md", out / MANIFEST_FILE]
    atomic_write_text(paths[0], manifest_markdown(lines))
    atomic_write_text(paths[1], manifest_text(lines))
    return paths
