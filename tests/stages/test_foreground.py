"""Stage 1, foreground: photo reading (every bad-input kind) and U2-Net-p cut-outs of rendered photos."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import stages.foreground
from stages._shared.io import read_mask, read_rgb
from stages._shared.photo import MAX_PIXELS, PhotoError, check_photo, load_photo
from synth.objects import make_object
from synth.render import product_camera, render_view


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def cabinet_view():
    obj = make_object("cabinet", 4)
    return render_view(obj, product_camera(obj, 4, 512, 512))


def _save(array: np.ndarray, path, **kwargs):
    Image.fromarray(array).save(path, **kwargs)
    return path


def _png_header_only(path, width: int, height: int):
    """A PNG whose header claims width x height RGB pixels, with almost no pixel data."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )
    return path


# ---------------------------------------------------------------------------------------------
# Cut-outs


def test_cutout_of_rendered_cabinet_matches_render_mask(cabinet_view, tmp_path):
    photo = _save(cabinet_view.rgb, tmp_path / "photo.png")
    result = stages.foreground.run(stages.foreground.Config(), photo, tmp_path / "fg")

    mask = read_mask(result.mask)
    assert _iou(mask, cabinet_view.mask) >= 0.95
    assert (result.width, result.height, result.scale) == (512, 512, 1.0)
    assert np.array_equal(read_rgb(result.image), cabinet_view.rgb)
    ys, xs = np.nonzero(mask)
    assert result.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert result.mask_fraction == pytest.approx(mask.mean())
    rgba = np.asarray(Image.open(result.rgba))
    assert rgba.shape == (512, 512, 4) and np.array_equal(rgba[..., 3] > 0, mask)


def test_large_photo_is_downscaled_and_scale_recorded(cabinet_view, tmp_path):
    big = Image.fromarray(cabinet_view.rgb).resize((1280, 1280), Image.Resampling.BICUBIC)
    photo = tmp_path / "big.jpg"
    big.save(photo, quality=95)
    result = stages.foreground.run(stages.foreground.Config(max_side=640), photo, tmp_path / "fg")

    assert (result.width, result.height) == (640, 640)
    assert result.scale == pytest.approx(0.5)
    truth = np.asarray(Image.fromarray(cabinet_view.mask).resize((640, 640), Image.Resampling.NEAREST))
    assert _iou(read_mask(result.mask), truth) >= 0.95


def test_alpha_channel_is_the_mask(cabinet_view, tmp_path):
    # On a noise background the network would fail; the photo's own alpha must be used instead.
    rng = np.random.default_rng(0)
    rgb = np.where(cabinet_view.mask[..., None], cabinet_view.rgb, rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
    alpha = cabinet_view.mask.astype(np.uint8) * 255
    photo = _save(np.dstack([rgb, alpha]), tmp_path / "cutout.png")
    result = stages.foreground.run(stages.foreground.Config(), photo, tmp_path / "fg")

    assert _iou(read_mask(result.mask), cabinet_view.mask) >= 0.99
    background = read_rgb(result.image)[~cabinet_view.mask]
    assert np.all(background == 255)  # transparent areas composited on white


def test_blank_photo_has_no_object(tmp_path):
    photo = _save(np.full((300, 400, 3), 200, np.uint8), tmp_path / "blank.png")
    with pytest.raises(ValueError, match=r"blank\.png.*no object found"):
        stages.foreground.run(stages.foreground.Config(), photo, tmp_path / "fg")
    assert not (tmp_path / "fg" / "mask.png").exists()


# ---------------------------------------------------------------------------------------------
# Bad inputs: each raises PhotoError naming the file


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _truncated_png(tmp_path):
    path = _save(np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8), tmp_path / "cut.png")
    return _write(path, path.read_bytes()[:-2000])


#: kind -> (build the file in a folder, expected words in the message)
BAD_INPUTS = {
    "missing": (lambda d: d / "nowhere.png", "not found"),
    "empty file": (lambda d: _write(d / "empty.png", b""), "empty"),
    "text named png": (lambda d: _write(d / "notes.png", b"hello"), "not an image"),
    "truncated png": (_truncated_png, "truncated"),
    "bomb over PIL's limit": (lambda d: _png_header_only(d / "bomb.png", 100_000, 100_000), "larger than"),
    "over the pixel cap": (lambda d: _png_header_only(d / "huge.png", 9_000, 8_000), "above the 64 MP limit"),
    "zero width": (lambda d: _png_header_only(d / "zero.png", 0, 10), "not an image"),
    "a folder": (lambda d: d, "not a file"),
}


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_photo_raises_photo_error_naming_the_file(kind, tmp_path):
    make, message = BAD_INPUTS[kind]
    path = make(tmp_path)
    for call in (check_photo, load_photo):
        with pytest.raises(PhotoError, match=message) as info:
            call(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_cap_is_64_megapixels():
    assert MAX_PIXELS == 64_000_000


def test_foreground_run_refuses_bad_photo_before_writing(tmp_path):
    photo = _write(tmp_path / "x.png", b"no")
    with pytest.raises(PhotoError, match="not an image"):
        stages.foreground.run(stages.foreground.Config(), photo, tmp_path / "fg")
    assert not (tmp_path / "fg").exists()


# ---------------------------------------------------------------------------------------------
# Pixel formats


@pytest.fixture()
def rgb_pattern():
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:20, :30] = (200, 60, 20)
    rgb[20:, 30:] = (30, 140, 240)
    return rgb


def test_formats_load_as_rgb(rgb_pattern, tmp_path):
    im = Image.fromarray(rgb_pattern)
    gray = np.asarray(im.convert("L"))
    cases = {
        "rgb.png": (im, rgb_pattern, 0),
        "gray.png": (im.convert("L"), np.repeat(gray[..., None], 3, axis=2), 0),
        "palette.png": (im.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), rgb_pattern, 0),
        "cmyk.jpg": (im.convert("CMYK"), rgb_pattern, 4),
        "rgb.jpg": (im, rgb_pattern, 4),
        "bilevel.png": (im.convert("L").point(lambda v: 255 if v > 100 else 0).convert("1"), None, 0),
    }
    for name, (image, expected, tol) in cases.items():  # tol: mean absolute error, 8-bit levels
        image.save(tmp_path / name, quality=100) if name.endswith(".jpg") else image.save(tmp_path / name)
        rgb, alpha = load_photo(tmp_path / name)
        assert rgb.shape == (40, 60, 3) and rgb.dtype == np.uint8, name
        assert alpha is None, name
        if expected is not None:
            assert np.abs(rgb.astype(int) - expected).mean() <= tol, name
        assert check_photo(tmp_path / name) == (60, 40), name


def test_16bit_gray_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16).repeat(4, axis=0)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    rgb, alpha = load_photo(tmp_path / "g16.png")
    assert rgb.dtype == np.uint8 and alpha is None
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255]
    assert np.array_equal(rgb[..., 0], rgb[..., 2])

    Image.fromarray(values.astype(np.int32)).save(tmp_path / "i32.tif")  # 32-bit integer mode "I"
    rgb, _ = load_photo(tmp_path / "i32.tif")
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255]


def test_alpha_is_returned(rgb_pattern, tmp_path):
    alpha = np.zeros((40, 60), np.uint8)
    alpha[5:35, 10:50] = 255
    _save(np.dstack([rgb_pattern, alpha]), tmp_path / "rgba.png")
    rgb, got = load_photo(tmp_path / "rgba.png")
    assert np.array_equal(rgb, rgb_pattern) and np.array_equal(got, alpha)

    Image.fromarray(rgb_pattern).convert("LA").save(tmp_path / "la.png")
    rgb, got = load_photo(tmp_path / "la.png")
    assert rgb.shape == (40, 60, 3) and got is not None and np.all(got == 255)


def test_exif_orientation_is_applied(rgb_pattern, tmp_path):
    im = Image.fromarray(rgb_pattern)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    for name in ("rotated.png", "rotated.jpg"):
        im.save(tmp_path / name, exif=exif)
        rgb, _ = load_photo(tmp_path / name)
        assert rgb.shape == (60, 40, 3), name
        assert check_photo(tmp_path / name) == (40, 60), name
    assert np.array_equal(load_photo(tmp_path / "rotated.png")[0], np.rot90(rgb_pattern, k=-1))
