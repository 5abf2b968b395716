"""The run directory keeps a truthful manifest, and a failed stage leaves nothing under its name."""

import json

import pytest

from flows.run_record import RunRecord
from stages._shared.io import sha256_file, write_json


def test_manifest_records_outputs_and_failures(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"pixels")
    run = RunRecord.create(tmp_path / "runs", photo, sha256_file(photo), {"max_dim": 0.8}, {"clicks": []})

    with run.stage("foreground") as out:
        write_json(out / "mask.json", {"ok": True})
    with pytest.raises(RuntimeError, match="boom"):
        with run.stage("reconstruct") as out:
            write_json(out / "half.json", {"partial": True})
            raise RuntimeError("boom")

    manifest = json.loads((run.root / "manifest.json").read_text())
    assert manifest["input"]["image_sha256"] == sha256_file(photo)
    fg = manifest["stages"]["foreground"]
    assert fg["status"] == "done"
    assert fg["outputs"] == {"01-foreground/mask.json": sha256_file(run.root / "01-foreground" / "mask.json")}
    rec = manifest["stages"]["reconstruct"]
    assert rec["status"] == "failed" and "boom" in rec["error"]
    assert manifest["status"] == "failed"
    assert not (run.root / "02-reconstruct").exists()
    assert (run.root / "02-reconstruct.failed" / "half.json").exists()
