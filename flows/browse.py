"""Artifact browser: ``image-to-urdf browse RUNS_DIR`` serves a read-only web view of run records.

RUNS_DIR is a folder of run folders (``DIR/runs`` after ``image-to-urdf convert PHOTO --out DIR``),
each with its ``manifest.json`` (flows/run_record.py). Every file shown is found through the
manifest: a stage's files are the ``outputs`` it records (paths relative to the run folder), and a
run's URDF package is the ``.urdf`` among the ``urdf_package`` stage's outputs
(``09-urdf_package/<name>/<name>.urdf``), the copy built inside the run. The shipped copy the
manifest's ``package`` names lies outside RUNS_DIR and is never served.

Safety: the server answers GET/HEAD only and never writes. A file is served only if its real path
(symlinks resolved) lies inside RUNS_DIR, or inside the browser's own static and vendored
front-end folders; ``..``, ``.`` and hidden segments, empty segments, backslashes and absolute
paths are refused, also when percent-encoded (once or twice).

Routes: ``/`` run list, ``/run/<run-id>`` run page, ``/compare?a=<run-id>&b=<run-id>``, JSON at
``/api/runs`` (sort, filter, paginate) and ``/api/runs/<run-id>``, files at
``/files/<run-id>/<path>``, photo thumbnails at ``/thumb/<run-id>``, front-end files at
``/static/...`` and ``/vendor/<package>/...`` (three, urdf-loader from ``browser/node_modules``).
"""

from __future__ import annotations

import io
import json
import logging
import mimetypes
import os
import urllib.parse
from pathlib import Path

from flows.run_record import STAGES

log = logging.getLogger(__name__)

#: Where a Prefect flow run's link points unless IMAGE_TO_URDF_BROWSER_URL says otherwise.
DEFAULT_BASE_URL = "http://127.0.0.1:8765"
BASE_URL_ENV = "IMAGE_TO_URDF_BROWSER_URL"
BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"
STATIC_DIR = BROWSER_DIR / "static"
#: The front-end packages served at /vendor/<name>/ (pinned in browser/package-lock.json).
VENDOR_PACKAGES = ("three", "urdf-loader")
SORT_KEYS = ("created", "name", "status", "joints", "validation", "seconds", "run_id")
THUMB_PX = 160

for _suffix, _type in ((".glb", "model/gltf-binary"), (".urdf", "application/xml"), (".obj", "text/plain"),
                       (".mtl", "text/plain"), (".js", "text/javascript"), (".mp4", "video/mp4")):
    mimetypes.add_type(_type, _suffix)


# ----------------------------------------------------------------------------------------------
# Paths: everything served goes through resolve_inside.


class PathRejected(ValueError):
    """A requested path that would leave its root folder, or is malformed."""


def resolve_inside(root: Path, rel: str) -> Path:
    """Real path of ``rel`` (a ``/``-separated relative path) under ``root``.

    Raises PathRejected for absolute paths, ``..``/``.``/hidden/empty segments, backslashes, NUL,
    the same spelled with percent-encoding, and for anything whose real path (symlinks resolved)
    is not inside ``root``'s real path. Existence is not checked.
    """
    text = rel
    for _ in range(3):  # a path decoded once by the server may still hide '%2e%2e' or '%2f'
        if "\x00" in text or "\\" in text or text.startswith("/") or ":" in text.split("/")[0]:
            raise PathRejected(f"{rel!r}: absolute or malformed path")
        if any(seg == "" or seg.startswith(".") for seg in text.split("/")):
            raise PathRejected(f"{rel!r}: empty, '..', '.' or hidden path segment")
        decoded = urllib.parse.unquote(text)
        if decoded == text:
            break
        text = decoded
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, rel))
    if os.path.commonpath([real_root, real]) != real_root:
        raise PathRejected(f"{rel!r}: resolves outside {root}")
    return Path(real)


def run_url(run_id: str, base_url: str | None = None) -> str:
    """The browser page of run ``run_id``; base from IMAGE_TO_URDF_BROWSER_URL, else DEFAULT_BASE_URL."""
    base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}/run/{urllib.parse.quote(run_id, safe='')}"


def publish_run_link(run_id: str) -> str:
    """Prefect link artifact (key ``run-browser``) to the run's browser page; returns the URL."""
    from prefect.artifacts import create_link_artifact

    url = run_url(run_id)
    create_link_artifact(
        key="run-browser", link=url, link_text=f"run {run_id} in the artifact browser",
        description=f"Intermediates of run {run_id}; serve them with `image-to-urdf browse OUT/runs`.",
    )
    return url


# ----------------------------------------------------------------------------------------------
# The run index: one summary per run folder, re-read only when its manifest changes.


def read_manifest(runs_dir: Path, run_id: str) -> dict:
    """The manifest of run ``run_id``; PathRejected or FileNotFoundError when there is none."""
    path = resolve_inside(runs_dir, f"{run_id}/manifest.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def stage_outputs(manifest: dict, stage: str) -> list[str]:
    """Paths (relative to the run folder) a finished stage recorded, in manifest order."""
    return list((manifest.get("stages", {}).get(stage) or {}).get("outputs", {}))


def package_urdf(manifest: dict) -> str | None:
    """The run's URDF: the ``.urdf`` among the urdf_package stage's outputs (None if not built)."""
    return next((p for p in stage_outputs(manifest, "urdf_package") if p.endswith(".urdf")), None)


def summarize(runs_dir: Path, run_id: str, manifest: dict) -> dict:
    """What the run list shows of one run (small, JSON-ready)."""
    stages = manifest.get("stages", {})
    failed = [s for s, e in stages.items() if e.get("status") == "failed"]
    photo = next((p for p in stage_outputs(manifest, "foreground") if p.endswith("image.png")), None)
    return {
        "run_id": run_id,
        "name": manifest.get("input", {}).get("name"),
        "created": manifest.get("created"),
        "finished": manifest.get("finished"),
        "status": manifest.get("status"),
        "validation": {True: "passed", False: "failed"}.get(manifest.get("validation"), "none"),
        "seconds": round(sum(e.get("seconds", 0.0) for e in stages.values()), 2),
        "joints": _count_joints(runs_dir, run_id, manifest),
        "failed_stage": failed[0] if failed else None,
        "image_sha256": manifest.get("input", {}).get("image_sha256"),
        "photo": photo,
        "stages": [{"stage": s, "status": stages.get(s, {}).get("status", "pending")} for s in STAGES],
    }


def _count_joints(runs_dir: Path, run_id: str, manifest: dict) -> int | None:
    """Movable joints found: from the package's package.json, else joint_fit's fit.json."""
    package_json = next((p for p in stage_outputs(manifest, "urdf_package") if p.endswith("/package.json")), None)
    fit_json = next((p for p in stage_outputs(manifest, "joint_fit") if p.endswith("fit.json")), None)
    try:
        if package_json:
            joints = _read_json(runs_dir, run_id, package_json).get("joints", [])
            return sum(j.get("type") != "fixed" for j in joints)
        if fit_json:
            parts = _read_json(runs_dir, run_id, fit_json).get("parts", [])
            return sum(p.get("estimate", {}).get("joint_type") != "fixed" for p in parts)
    except (OSError, ValueError, PathRejected) as exc:
        log.warning("run %s: cannot count joints (%s)", run_id, exc)
    return None


def _read_json(runs_dir: Path, run_id: str, rel: str):
    with open(resolve_inside(runs_dir, f"{run_id}/{rel}"), encoding="utf-8") as f:
        return json.load(f)


def scan_runs(runs_dir: Path, cache: dict) -> list[dict]:
    """Summaries of every run folder in ``runs_dir`` (symlinked folders skipped).

    ``cache`` maps run id -> (manifest mtime_ns, size, summary); a summary is rebuilt only when its
    manifest changed, so listing hundreds of runs costs one stat per run.
    """
    summaries, seen = [], set()
    with os.scandir(runs_dir) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                st = os.stat(resolve_inside(runs_dir, f"{entry.name}/manifest.json"))
            except (OSError, PathRejected):
                continue
            seen.add(entry.name)
            key = (st.st_mtime_ns, st.st_size)
            hit = cache.get(entry.name)
            if hit is None or hit[0] != key:
                try:
                    hit = (key, summarize(runs_dir, entry.name, read_manifest(runs_dir, entry.name)))
                except (OSError, ValueError) as exc:
                    log.warning("run %s: unreadable manifest (%s)", entry.name, exc)
                    continue
                cache[entry.name] = hit
            summaries.append(hit[1])
    for gone in set(cache) - seen:
        del cache[gone]
    return summaries


def query_runs(summaries: list[dict], params) -> dict:
    """Filter, sort and paginate run summaries by query ``params`` (a mapping of strings).

    q : substring of run id or name. status : done/failed/running. validation : passed/failed/none.
    photo : image sha256 prefix. sort : one of SORT_KEYS (default created), order : asc/desc
    (default desc). offset, limit : page (limit 1..1000, default 50).
    """
    q = params.get("q", "").strip().lower()
    rows = [
        s for s in summaries
        if (not q or q in s["run_id"].lower() or q in (s["name"] or "").lower())
        and params.get("status", "") in ("", s["status"])
        and params.get("validation", "") in ("", s["validation"])
        and (s["image_sha256"] or "").startswith(params.get("photo", ""))
    ]
    sort = params.get("sort", "created")
    if sort not in SORT_KEYS:
        raise ValueError(f"sort={sort!r}: use one of {', '.join(SORT_KEYS)}")
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ValueError(f"order={order!r}: use asc or desc")
    # None sorts first ascending; run_id breaks ties so pages are stable.
    rows.sort(key=lambda s: (s[sort] is not None, s[sort] if s[sort] is not None else 0, s["run_id"]),
              reverse=order == "desc")
    try:
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 50))
    except ValueError:
        raise ValueError("offset and limit must be integers") from None
    if offset < 0 or not 1 <= limit <= 1000:
        raise ValueError(f"offset={offset}, limit={limit}: need offset >= 0 and 1 <= limit <= 1000")
    return {"total": len(rows), "offset": offset, "limit": limit, "runs": rows[offset:offset + limit]}


# ----------------------------------------------------------------------------------------------
# One run, as the run page shows it.


def run_details(runs_dir: Path, run_id: str) -> dict:
    """Everything the run page shows, with file paths relative to the run folder."""
    manifest = read_manifest(runs_dir, run_id)
    outputs = {s: stage_outputs(manifest, s) for s in STAGES}
    timeline = []
    for stage in STAGES:
        entry = manifest.get("stages", {}).get(stage)
        timeline.append({
            "stage": stage, "status": (entry or {}).get("status", "pending"),
            "seconds": (entry or {}).get("seconds"), "summary": (entry or {}).get("summary"),
            "error": (entry or {}).get("error"), "outputs": outputs[stage],
        })
    masks = [p for p in outputs["part_masks"] if "/masks/" in p and p.endswith(".png")]
    order = _part_order(runs_dir, run_id, outputs["part_masks"])  # part k <-> part_k.glb, clip k
    masks.sort(key=lambda p: (order.index(Path(p).stem) if Path(p).stem in order else len(order), p))
    clips = []
    for preview in (p for p in outputs["articulation_video"] if p.endswith((".gif", ".mp4"))):
        part = Path(preview).stem
        frames = [p for p in outputs["articulation_video"] if f"/frames/{part}/" in p and p.endswith(".png")]
        clips.append({"part": part, "preview": preview, "frames": frames})
    urdf = package_urdf(manifest)
    package_json = next((p for p in outputs["urdf_package"] if p.endswith("/package.json")), None)
    validation = next((p for p in outputs["validate"] if p.endswith("validation.json")), None)
    return {
        "summary": summarize(runs_dir, run_id, manifest),
        "input": manifest.get("input", {}),
        "config": manifest.get("config", {}),
        "package": manifest.get("package"),
        "timeline": timeline,
        "photo": next((p for p in outputs["foreground"] if p.endswith("image.png")), None),
        "foreground_mask": next((p for p in outputs["foreground"] if p.endswith("mask.png")), None),
        "masks": [{"part": Path(p).stem, "path": p} for p in masks],
        "meshes": {s: [p for p in outputs[s] if p.endswith(".glb")] for s in STAGES if any(
            p.endswith(".glb") for p in outputs[s])},
        "clips": clips,
        "loss_curves": _loss_curves(runs_dir, run_id, outputs["joint_fit"]),
        "urdf": urdf,
        "package_json": _read_json(runs_dir, run_id, package_json) if package_json else None,
        "validation": _read_json(runs_dir, run_id, validation) if validation else None,
    }


def _part_order(runs_dir: Path, run_id: str, part_masks_outputs: list[str]) -> list[str]:
    """Part names in part_masks' order (its parts.json), which later stages index parts by."""
    parts_json = next((p for p in part_masks_outputs if p.endswith("parts.json")), None)
    if parts_json is None:
        return []
    return [part.get("name") for part in _read_json(runs_dir, run_id, parts_json).get("parts", [])]


def _loss_curves(runs_dir: Path, run_id: str, joint_fit_outputs: list[str]) -> list[dict]:
    """Per part: the fine-fit loss per iteration for each joint type, and the type chosen."""
    fit_json = next((p for p in joint_fit_outputs if p.endswith("fit.json")), None)
    if fit_json is None:
        return []
    curves = []
    for part in _read_json(runs_dir, run_id, fit_json).get("parts", []):
        curves.append({
            "part": part.get("part"),
            "chosen": part.get("estimate", {}).get("joint_type"),
            "static_loss": part.get("static_loss"),
            "curves": {jt: fit.get("curve", []) for jt, fit in part.get("fits", {}).items()},
        })
    return curves


def thumbnail(path: Path, size: int = THUMB_PX) -> bytes:
    """A JPEG of the image at ``path``, at most ``size`` pixels on its longer side."""
    from PIL import Image

    with Image.open(path) as im:
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# The web app.


def make_app(runs_dir: Path):
    """Starlette app serving ``runs_dir`` read-only (GET/HEAD routes only)."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ValueError(f"{runs_dir}: RUNS_DIR is not a folder; give the runs/ folder of a convert --out DIR")
    cache: dict = {}
    thumbs: dict = {}
    headers = {
        "X-Content-Type-Options": "nosniff",
        # Only this server: the page can fetch nothing from elsewhere (no CDN).
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                                   "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
                                   "connect-src 'self' data: blob:",
    }

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def send_file(root: Path, rel: str, cache_control: str = "no-cache") -> Response:
        try:
            path = resolve_inside(root, rel)
        except PathRejected as exc:
            return error(403, str(exc))
        if not path.is_file():
            return error(404, f"{rel}: no such file")
        return FileResponse(path, headers={**headers, "Cache-Control": cache_control})

    async def page(request):  # one shell for every page; its script picks the view from the path
        return send_file(STATIC_DIR, "app.html")

    async def static(request):
        return send_file(STATIC_DIR, request.path_params["path"])

    async def vendor(request):
        package = request.path_params["package"]
        if package not in VENDOR_PACKAGES:
            return error(404, f"{package}: not a vendored package ({', '.join(VENDOR_PACKAGES)})")
        root = BROWSER_DIR / "node_modules" / package
        if not root.is_dir():
            return error(503, f"{root} is missing: run `make install` (npm ci in browser/)")
        return send_file(root, request.path_params["path"], "max-age=86400")

    async def files(request):
        run_id, rel = request.path_params["run_id"], request.path_params["path"]
        return send_file(runs_dir, f"{run_id}/{rel}")

    async def api_runs(request):
        try:
            return JSONResponse(query_runs(scan_runs(runs_dir, cache), request.query_params), headers=headers)
        except ValueError as exc:
            return error(400, str(exc))

    async def api_run(request):
        run_id = request.path_params["run_id"]
        try:
            return JSONResponse(run_details(runs_dir, run_id), headers=headers)
        except PathRejected as exc:
            return error(403, str(exc))
        except FileNotFoundError:
            return error(404, f"{run_id}: no such run (no manifest.json)")
        except ValueError as exc:
            return error(500, f"{run_id}: unreadable run record ({exc})")

    async def thumb(request):
        run_id = request.path_params["run_id"]
        try:
            photo = summarize(runs_dir, run_id, read_manifest(runs_dir, run_id))["photo"]
            path = resolve_inside(runs_dir, f"{run_id}/{photo}") if photo else None
        except PathRejected as exc:
            return error(403, str(exc))
        except (FileNotFoundError, ValueError):
            return error(404, f"{run_id}: no such run")
        if path is None or not path.is_file():
            return error(404, f"{run_id}: no photo recorded")
        key = (str(path), path.stat().st_mtime_ns)
        if key not in thumbs:
            if len(thumbs) > 2000:
                thumbs.clear()
            thumbs[key] = thumbnail(path)
        return Response(thumbs[key], media_type="image/jpeg", headers={**headers, "Cache-Control": "max-age=60"})

    routes = [
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/run/{run_id}", page, methods=["GET", "HEAD"]),
        Route("/compare", page, methods=["GET", "HEAD"]),
        Route("/api/runs", api_runs, methods=["GET", "HEAD"]),
        Route("/api/runs/{run_id}", api_run, methods=["GET", "HEAD"]),
        Route("/thumb/{run_id}", thumb, methods=["GET", "HEAD"]),
        Route("/files/{run_id}/{path:path}", files, methods=["GET", "HEAD"]),
        Route("/static/{path:path}", static, methods=["GET", "HEAD"]),
        Route("/vendor/{package}/{path:path}", vendor, methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes)


def serve(runs_dir: Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the browser until interrupted."""
    import uvicorn

    app = make_app(runs_dir)
    print(f"image-to-urdf: browsing {runs_dir} at http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
