"""Atomic file writes and the few formats stages exchange (PNG, JSON, GLB, NPY).

Every write goes to a temporary file in the target's folder and is renamed into place, so a
crash never leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK
_DIR_MODE = 0o777 & ~_UMASK


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, _DIR_MODE)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: Path, data) -> Path:
    """Write ``data`` as indented JSON (numpy scalars and arrays become plain numbers/lists)."""
    return write_bytes(path, (json.dumps(data, indent=2, default=_json_default) + "\n").encode())


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write an (H, W) bool/uint8 mask or an (H, W, 3|4) uint8 image as PNG."""
    from PIL import Image

    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        raise ValueError(f"`image` must be uint8 or bool, got {image.dtype}")
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return Path(path)


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an image file written by a stage."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def read_mask(path: Path) -> np.ndarray:
    """(H, W) bool mask from a PNG written by :func:`write_image`."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def write_npy(path: Path, array: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))
    return Path(path)


def write_mesh(path: Path, mesh) -> Path:
    """Write a trimesh mesh; the format follows the suffix (``.glb``, ``.obj``, ``.ply``)."""
    with atomic_path(path) as tmp:
        mesh.export(tmp, file_type=Path(path).suffix.lstrip("."))
    return Path(path)


def read_mesh(path: Path):
    """Load a single triangle mesh (a GLB scene is concatenated into one mesh)."""
    import trimesh

    loaded = trimesh.load(path, force="mesh", process=False)
    return loaded


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_textured_obj(path: Path, mesh) -> tuple[Path, Path, Path]:
    """Write a textured trimesh mesh as ``<stem>.obj`` + ``<stem>.mtl`` + ``<stem>.png``.

    The three files share ``path``'s folder and stem; the OBJ names its MTL and the MTL its PNG
    by bare file name (relative), as SAPIEN, Isaac Sim, PyBullet and MuJoCo expect. The
    material is named after the stem and has a white diffuse colour, so the texture is shown
    unmodulated.

    Parameters
    ----------
    path : Path
      Target ``.obj`` file.
    mesh : trimesh.Trimesh
      Mesh whose ``visual`` is a ``TextureVisuals`` with per-vertex ``uv`` and an image.

    Returns
    -------
    obj, mtl, png : Path
    """
    import trimesh
    from trimesh.exchange.obj import export_obj

    path = Path(path)
    if path.suffix != ".obj":
        raise ValueError(f"`path` must end in .obj, got {path}")
    visual = mesh.visual
    if not isinstance(visual, trimesh.visual.TextureVisuals) or visual.uv is None:
        raise ValueError(f"`mesh` for {path.name} must carry TextureVisuals with uv, got {type(visual).__name__}")
    material = visual.material
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        material = material.to_simple()
    if getattr(material, "image", None) is None:
        raise ValueError(f"`mesh` for {path.name} has no texture image; give its material an image")
    stem = path.stem
    out = mesh.copy()
    out.visual = trimesh.visual.TextureVisuals(
        uv=visual.uv,
        material=trimesh.visual.material.SimpleMaterial(
            image=material.image,
            name=stem,
            diffuse=(255, 255, 255, 255),
            ambient=(51, 51, 51, 255),
            specular=(25, 25, 25, 255),
        ),
    )
    text, files = export_obj(out, include_normals=True, return_texture=True, mtl_name=f"{stem}.mtl")
    expected = {f"{stem}.mtl", f"{stem}.png"}
    if set(files) != expected:
        raise ValueError(f"OBJ export of {path.name} produced {sorted(files)}, expected {sorted(expected)}")
    png = write_bytes(path.with_suffix(".png"), files[f"{stem}.png"])
    mtl = write_bytes(path.with_suffix(".mtl"), files[f"{stem}.mtl"])
    obj = write_bytes(path, text.encode())
    return obj, mtl, png
