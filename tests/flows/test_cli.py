"""Bad input gives a one-line error naming the file, a non-zero exit code and writes nothing."""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from flows.cli import EXIT_BAD_INPUT, main


@pytest.fixture
def photo(tmp_path):
    """A small valid photo: a brown box on white."""
    rgb = np.full((64, 80, 3), 255, np.uint8)
    rgb[10:55, 20:60] = (150, 100, 60)
    path = tmp_path / "box.png"
    Image.fromarray(rgb).save(path)
    return path


def _png_claiming_size(width, height):
    """A PNG whose header claims width x height pixels (a decompression bomb's signature)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _bad_inputs(tmp_path, photo):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(photo.read_bytes()[: len(photo.read_bytes()) // 2])
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64, 3), 255, np.uint8)).save(blank)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming_size(40_000, 40_000))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {
        "missing": ([str(tmp_path / "nope.jpg")], "nope.jpg"),
        "not an image": ([str(text)], "notes.png"),
        "truncated": ([str(truncated)], "truncated.png"),
        "blank": ([str(blank)], "blank.png"),
        "bomb": ([str(bomb)], "bomb.png"),
        "click outside": ([str(photo), "--click", "500,10"], "box.png"),
        "click malformed": ([str(photo), "--click", "12"], "--click"),
        "unwritable out": ([str(photo)], "a_file"),
        "motion without click": ([str(photo), "--motion", str(photo)], "--motion"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "not an image", "truncated", "blank", "bomb", "click outside", "click malformed",
     "unwritable out", "motion without click"],
)
def test_bad_input_one_line_error_nothing_written(case, tmp_path, photo, capsys):
    args, named = _bad_inputs(tmp_path, photo)[case]
    out = tmp_path / "out"
    if case == "unwritable out":
        out = tmp_path / "a_file" / "out"
    code = main(["convert", *args, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT
    assert len(err.splitlines()) == 1, err
    assert named in err
    assert not out.exists()


def test_config_overrides_are_validated(capsys):
    assert main(["config", "--set", "max_dim=1.5"]) == 0
    assert json.loads(capsys.readouterr().out)["max_dim"] == 1.5
    assert main(["config", "--set", "max_dim=-1"]) == EXIT_BAD_INPUT
    assert "max_dim" in capsys.readouterr().err
    assert main(["config", "--set", "joint_fit.no_such_setting=3"]) == EXIT_BAD_INPUT
    assert "no_such_setting" in capsys.readouterr().err


def test_browse_needs_a_runs_folder(tmp_path, capsys):
    assert main(["browse", str(tmp_path / "missing")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "missing" in err and "RUNS_DIR is not a folder" in err
