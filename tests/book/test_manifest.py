"""leukcore.book.manifest: the book names the commit and every record and predictions file it read."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd

from leukcore.book import manifest as M
from leukcore.runs.records import files_read, load_records, read_predictions, write_record

RECORD = {"status": "complete", "paper": "p", "experiment": "e", "profile": "smoke", "seed": 0,
          "settings": {}, "settings_hash": "h", "dataset": {"id": "d", "fingerprint": "f"}}


def _build(root: Path) -> list[str]:
    """What a build reading every record under ``root`` and their predictions lists."""
    for rec in load_records(root=root):
        read_predictions(rec)
    return M.manifest_lines({p: h for p, h in files_read().items() if Path(p).is_relative_to(root.resolve())})


def test_manifest_lists_each_file_read_with_its_sha256_and_tells_builds_apart(tmp_path):
    a = tmp_path / "a"
    preds = pd.DataFrame({"id": ["x", "y"], "y_true": [0, 1], "p_0": [0.9, 0.2], "p_1": [0.1, 0.8]})
    rec_path = write_record(RECORD, predictions=preds, root=a)
    lines = _build(a)
    files = sorted(rec_path.parent.iterdir())
    assert lines == [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f}" for f in files]  # outside the project
    # the manifest hash is the SHA-256 of those lines, as `grep -v '^#' FILE | sha256sum` computes it
    assert M.manifest_hash(lines) == hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()
    text = M.manifest_text(lines)
    assert [t for t in text.splitlines() if not t.startswith("#")] == lines
    assert f"manifest hash (SHA-256 of the lines below) {M.manifest_hash(lines)}" in text
    # another set of records (one record differs): another manifest hash
    b = tmp_path / "b"
    shutil.copytree(a, b)
    write_record({**RECORD, "note": "rerun"}, predictions=preds, root=b)
    assert M.manifest_hash(_build(b)) != M.manifest_hash(lines)
    # the same records again: the same hash
    assert M.manifest_hash(_build(a)) == M.manifest_hash(lines)


def test_manifest_files_name_the_commit(tmp_path):
    from leukcore.book.citation import commit

    out = M.write_manifest(tmp_path, {str(tmp_path / "e.json"): "0" * 64})
    assert [p.name for p in out] == ["records_manifest.md", M.MANIFEST_FILE]
    md, sums = (p.read_text() for p in out)
    head = commit()["hash"]
    assert f"commit `{head}`" in md and f"commit {head}" in sums
    assert "from 1 records and 0 predictions files" in md
    assert f"{'0' * 64}  {tmp_path / 'e.json'}" in md.splitlines() and sums.endswith(f"{'0' * 64}  {tmp_path / 'e.json'}\n")
