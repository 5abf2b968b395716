"""Stage results cached by a content hash of their inputs, configuration and code version.

A stage's cache key is the sha256 of
- the stage name and ``CACHE_FORMAT``,
- its code version: the sha256 of the source files of ``stages/<stage>/``, ``stages/_shared/``,
  ``stages/__init__.py`` (and ``urdf_templates/`` for urdf_package),
- its configuration section (pydantic ``model_dump``),
- its inputs by *content*: a ``Path`` is hashed by the bytes of the file (or of every file under a
  folder, with their relative names), never by its name, so the same upstream outputs in another
  run directory give the same key.

An entry ``<cache>/<key>/`` holds ``files/`` (a copy of the stage's run folder, hard links where
the file system allows: stage outputs are only ever replaced, never edited in place) and
``result.pkl`` (the stage's result, its paths stored relative to the run directory). An entry is
built in a temporary folder and renamed into place, so a killed process leaves at most a
``.tmp`` folder, never a half entry; two processes storing the same key keep the first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Bump when the entry layout or the key recipe changes; old entries are then never hit.
CACHE_FORMAT = 1

REPO = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=None)
def code_version(stage: str) -> str:
    """sha256 of the source a stage's result depends on (its package, the shared helpers)."""
    roots = [REPO / "stages" / stage, REPO / "stages" / "_shared", REPO / "stages" / "__init__.py"]
    if stage == "urdf_package":
        roots.append(REPO / "urdf_templates")
    h = hashlib.sha256()
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def fingerprint(value, h=None) -> str:
    """sha256 of a value by content: paths by their bytes, dataclasses and models field by field."""
    h = h or hashlib.sha256()
    if isinstance(value, Path):
        if value.is_file():
            h.update(b"file:" + _file_sha256(value).encode())
        elif value.is_dir():
            h.update(b"dir:")
            for path in sorted(p for p in value.rglob("*") if p.is_file() and not p.name.startswith(".")):
                h.update(str(path.relative_to(value)).encode() + b"=" + _file_sha256(path).encode())
        else:
            raise FileNotFoundError(f"{value}: a stage input is missing, cannot compute its cache key")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(f"dc:{type(value).__qualname__}(".encode())
        for field in dataclasses.fields(value):
            h.update(field.name.encode() + b"=")
            fingerprint(getattr(value, field.name), h)
        h.update(b")")
    elif hasattr(value, "model_dump"):  # pydantic configuration
        h.update(f"cfg:{type(value).__qualname__}:".encode())
        h.update(json.dumps(value.model_dump(mode="json"), sort_keys=True).encode())
    elif isinstance(value, (tuple, list)):
        h.update(f"seq{len(value)}[".encode())
        for item in value:
            fingerprint(item, h)
        h.update(b"]")
    elif isinstance(value, dict):
        h.update(f"map{len(value)}{{".encode())
        for key in sorted(value, key=repr):
            fingerprint(key, h)
            fingerprint(value[key], h)
        h.update(b"}")
    elif isinstance(value, np.ndarray):
        h.update(f"nd:{value.dtype.str}:{value.shape}:".encode() + np.ascontiguousarray(value).tobytes())
    elif value is None or isinstance(value, (bool, int, float, str, np.generic)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    else:
        raise TypeError(f"cannot fingerprint a {type(value).__name__} for the stage cache; add a rule to flows/cache.py")
    return h.hexdigest()


@lru_cache(maxsize=4096)
def _file_sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    from stages._shared.io import sha256_file

    return sha256_file(Path(path))


def _file_sha256(path: Path) -> str:
    st = path.stat()
    return _file_sha256_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)


def stage_key(stage: str, cfg, inputs: tuple) -> str:
    """The cache key of one stage call (see the module docstring)."""
    h = hashlib.sha256(f"image-to-urdf-stage-cache:{CACHE_FORMAT}:{stage}:{code_version(stage)}:".encode())
    fingerprint(cfg, h)
    fingerprint(inputs, h)
    return h.hexdigest()


def remap_paths(value, old_root: Path, new_root: Path):
    """A copy of ``value`` with every path under ``old_root`` moved under ``new_root``."""
    if isinstance(value, Path):
        try:
            return Path(new_root) / value.relative_to(old_root)
        except ValueError:
            return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: remap_paths(getattr(value, f.name), old_root, new_root) for f in dataclasses.fields(value) if f.init
        }
        return dataclasses.replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(remap_paths(v, old_root, new_root) for v in value)
    if isinstance(value, list):
        return [remap_paths(v, old_root, new_root) for v in value]
    if isinstance(value, dict):
        return {k: remap_paths(v, old_root, new_root) for k, v in value.items()}
    return value


_PLACEHOLDER_ROOT = Path("/__image_to_urdf_run__")


def lookup(cache_dir: Path, key: str, stage_dir: Path, run_root: Path):
    """Restore a cached stage into the empty ``stage_dir`` and return its result, or None on a miss."""
    entry = Path(cache_dir) / key
    try:
        with open(entry / "result.pkl", "rb") as f:
            stored = pickle.load(f)
    except FileNotFoundError:
        return None
    _link_tree(entry / "files", stage_dir)
    return remap_paths(stored, _PLACEHOLDER_ROOT, run_root)


def store(cache_dir: Path, key: str, stage_dir: Path, run_root: Path, result) -> None:
    """Save a finished stage's folder and result under ``key`` (first writer wins)."""
    cache_dir = Path(cache_dir)
    entry = cache_dir / key
    if entry.exists():
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=cache_dir))
    try:
        _link_tree(stage_dir, tmp / "files")
        with open(tmp / "result.pkl", "wb") as f:
            pickle.dump(remap_paths(result, run_root, _PLACEHOLDER_ROOT), f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.rename(tmp, entry)
        except OSError:  # another process stored the same key first
            if not (entry / "result.pkl").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (or copy, across file systems) every file of ``src`` into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        if path.name.startswith("."):  # temporary files of an atomic write
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
