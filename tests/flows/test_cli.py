"""Bad input gives a one-line error naming the file, a non-zero exit code and writes nothing."""

import argparse
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.cli import EXIT_BAD_INPUT, build_parser, main

REPO = Path(__file__).resolve().parents[2]


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
        "click negative": ([str(photo), "--click", "-3,10"], "outside"),
        "click on the background": ([str(photo), "--click", "3,60"], "on the background"),
        "unwritable out": ([str(photo)], "a_file"),
        "motion without click": ([str(photo), "--motion", str(photo)], "--motion"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "not an image", "truncated", "blank", "bomb", "click outside", "click malformed",
     "click negative", "click on the background", "unwritable out", "motion without click"],
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


def test_a_click_on_the_object_passes_the_input_checks(tmp_path, photo, capsys):
    """The background check lets a click on the box through (the package name, checked later, stops it)."""
    code = main(["convert", str(photo), "--click", "40,30", "--out", str(tmp_path / "out"), "--name", "a-b"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "--name" in err and "background" not in err


def test_batch_of_a_folder_without_images_says_so(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    assert main(["batch", str(folder), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no image found" in err and str(folder) in err
    assert not out.exists()


def _help_texts() -> list[str]:
    """Every help string of every subcommand's arguments."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [a.help or "" for sub in commands.choices.values() for a in sub._actions]


def test_the_help_examples_work_as_printed(capsys):
    examples = [m for text in _help_texts() for m in re.findall(r"e\.g\. --set (\S+)", text)]
    assert examples, "the help shows a --set example"
    for example in set(examples):
        assert main(["config", "--set", example]) == 0, example
        key, value = example.split("=")
        section, field = key.split(".")
        assert str(json.loads(capsys.readouterr().out)[section][field]) == value


def test_the_serve_hint_names_files_that_exist():
    from flows import serve

    assert Path(serve.PREFECT).is_file() and serve.EXAMPLE_PHOTO.is_file()


def test_the_readme_links_files_of_the_repository():
    readme = REPO / "README.md"
    targets = re.findall(r"\]\(([^)#\s]+)", readme.read_text())
    assert targets
    missing = [t for t in targets if not t.startswith("http") and not (REPO / t).exists()]
    assert not missing, missing
