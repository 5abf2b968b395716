"""Download the metaworld and robosuite wheels once and extract their object assets into a cache.

Nothing is read from the network at build time except ``pip download`` when a wheel is missing
from the cache. The cache defaults to ``~/.cache/image-to-urdf/third_party`` (``$IMAGE_TO_URDF_CACHE``
or ``--cache`` overrides it) and lies outside the repository: nothing from the wheels is committed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("third_party.wheels")

DEFAULT_CACHE = Path(os.environ.get("IMAGE_TO_URDF_CACHE", Path.home() / ".cache" / "image-to-urdf")) / "third_party"
#: Package -> folder prefixes inside its wheel that hold the object models, meshes and textures.
WHEEL_ASSETS = {
    "metaworld": ("metaworld/assets/objects/", "metaworld/assets/scene/", "metaworld/assets/textures/"),
    "robosuite": ("robosuite/models/assets/objects/", "robosuite/models/assets/textures/"),
}


@dataclass(frozen=True)
class SourceObject:
    """One object model inside an extracted wheel.

    name : set-wide object name (``<package>_<model>``). package : the wheel it ships in.
    xml : the model file. angle_radian : the package's own loaders compile it with
    ``<compiler angle="radian">`` (robosuite's world model sets it; MuJoCo's default is degrees).
    """

    name: str
    package: str
    xml: Path
    version: str
    angle_radian: bool


#: The object models taken from each wheel: every model with a hinge or slide joint on a part
#: of the object (metaworld's ``puck``/``thermos`` slides only place a loose object on the table
#: and ``xyz_base`` is the Sawyer arm, so they are left out; robosuite's other object models
#: have no joint).
OBJECTS = {
    "metaworld": (
        "buttonbox", "coffeemachine", "dial", "doorlockA", "doorlockB", "drawer", "faucet", "hammerblock",
        "handle_press", "laptop", "lever", "window", "window_horiz",
    ),
    "robosuite": ("door", "door_lock"),
}
OBJECT_DIRS = {"metaworld": "metaworld/assets/objects", "robosuite": "robosuite/models/assets/objects"}


def download_wheel(package: str, cache: Path = DEFAULT_CACHE) -> Path:
    """Path of ``package``'s wheel in ``cache/wheels``, downloaded with ``pip download`` when missing."""
    wheels = Path(cache) / "wheels"
    found = sorted(wheels.glob(f"{package}-*.whl"))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", package, "-d", str(wheels)]
    log.info("downloading the %s wheel: %s", package, " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob(f"{package}-*.whl"))
    if proc.returncode != 0 or not found:
        raise RuntimeError(
            f"could not download the {package} wheel (pip exit {proc.returncode}): {proc.stderr.strip()[-400:]}\n"
            f"run `{' '.join(cmd)}` where the package registry is reachable, or put the wheel in {wheels}"
        )
    return found[-1]


def extract_assets(package: str, cache: Path = DEFAULT_CACHE) -> Path:
    """Extract ``package``'s object assets from its wheel into ``cache/<wheel stem>/`` (once).

    Returns the extraction root (the wheel's own paths below it).
    """
    wheel = download_wheel(package, cache)
    root = Path(cache) / wheel.stem
    done = root / ".extracted"
    if done.is_file():
        return root
    prefixes = WHEEL_ASSETS[package]
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.startswith(prefixes) and not n.endswith("/")]
        if not names:
            raise RuntimeError(f"{wheel}: no files under {prefixes}; the wheel's layout changed, pin an older version")
        log.info("extracting %d asset files of %s into %s", len(names), wheel.name, root)
        zf.extractall(root, members=names)
    done.write_text(wheel.name + "\n")
    return root


def source_objects(cache: Path = DEFAULT_CACHE) -> list[SourceObject]:
    """Every object model of ``OBJECTS``, extracted into ``cache`` (downloading the wheels if needed)."""
    out = []
    for package, models in OBJECTS.items():
        root = extract_assets(package, cache)
        version = root.name.split("-")[1]
        for model in models:
            xml = root / OBJECT_DIRS[package] / f"{model}.xml"
            if not xml.is_file():
                raise RuntimeError(f"{xml}: object model {model!r} missing from the {package} {version} wheel")
            out.append(SourceObject(f"{package}_{model}".lower(), package, xml, version, package == "robosuite"))
    return out
