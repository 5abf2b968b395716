"""Artifact browser server: every route, the run index, and refusal of every way out of RUNS_DIR.

Requests go over real HTTP to uvicorn (http.client sends paths exactly as written, so '..' is
not normalised away by the client).
"""

import http.client
import io
import json
import os
import urllib.parse

import pytest
from PIL import Image

from flows.browse import BROWSER_DIR, PathRejected, resolve_inside, run_url, scan_runs
from tests.flows.browse_fixtures import live_server, make_photo, make_small_run

SECRET = "top-secret-outside-runs-dir"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """RUNS_DIR with three small runs (passed, failed validation, failed at reconstruct), a secret
    file next to it, symlinks that point out of it, and a live server."""
    tmp = tmp_path_factory.mktemp("browse")
    runs = tmp / "runs"
    photo = make_photo(tmp / "box.png")
    other = make_photo(tmp / "red.png", colour=(200, 30, 30))
    good = make_small_run(runs, photo, "box_a", created="2026-11-20T10:00:00+00:00")
    bad = make_small_run(runs, photo, "box_b", config={"max_dim": 0.9}, valid=False, created="2026-11-20T11:00:00+00:00")
    broken = make_small_run(runs, other, "red_c", fail_at="reconstruct", created="2026-11-20T12:00:00+00:00")
    (tmp / "secret.txt").write_text(SECRET)
    (tmp / "outside").mkdir()
    (tmp / "outside" / "secret.txt").write_text(SECRET)
    os.symlink(tmp / "secret.txt", good.root / "link_out.txt")
    os.symlink(tmp / "outside", good.root / "dir_out")
    os.symlink(good.root / "manifest.json", bad.root / "link_in.json")  # inside RUNS_DIR: allowed
    os.symlink(tmp / "outside", runs / "zz-symlinked-run")  # a run folder that is a symlink: skipped
    with live_server(runs) as url:
        yield {"url": url, "runs": runs, "tmp": tmp, "good": good, "bad": bad, "broken": broken}


def get(site, path, method="GET"):
    """(status, headers, body) of a raw request; ``path`` is sent byte for byte."""
    host = urllib.parse.urlsplit(site["url"]).netloc
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body


def get_json(site, path):
    status, _, body = get(site, path)
    assert status == 200, body
    return json.loads(body)


# ---------------------------------------------------------------------------------------------
# Routes


def test_run_list_sorts_filters_and_paginates(site):
    page = get_json(site, "/api/runs")
    assert page["total"] == 3 and [r["name"] for r in page["runs"]] == ["red_c", "box_b", "box_a"]  # newest first
    by_name = {r["name"]: r for r in page["runs"]}
    assert by_name["box_a"]["status"] == "done" and by_name["box_a"]["validation"] == "passed"
    assert by_name["box_a"]["joints"] == 1 and by_name["box_a"]["photo"] == "01-foreground/image.png"
    assert by_name["box_b"]["validation"] == "failed"
    assert by_name["red_c"]["status"] == "failed" and by_name["red_c"]["failed_stage"] == "reconstruct"
    assert by_name["red_c"]["joints"] is None and by_name["red_c"]["validation"] == "none"
    assert [s["status"] for s in by_name["red_c"]["stages"]][:3] == ["done", "failed", "pending"]

    names = lambda q: [r["name"] for r in get_json(site, f"/api/runs?{q}")["runs"]]  # noqa: E731
    assert names("sort=name&order=asc") == ["box_a", "box_b", "red_c"]
    assert names("status=failed&sort=name&order=asc") == ["box_b", "red_c"]
    assert names("validation=passed") == ["box_a"]
    assert names("q=RED") == ["red_c"]
    assert names(f"photo={by_name['box_a']['image_sha256'][:10]}&sort=name&order=asc") == ["box_a", "box_b"]
    assert names("sort=name&order=asc&offset=1&limit=1") == ["box_b"]
    assert get_json(site, "/api/runs?limit=1")["total"] == 3
    for bad in ("sort=password", "order=up", "limit=0", "offset=-1", "limit=x"):
        status, _, body = get(site, f"/api/runs?{bad}")
        assert status == 400 and json.loads(body)["error"]


def test_run_details_come_from_the_manifest(site):
    good = site["good"]
    run = get_json(site, f"/api/runs/{good.run_id}")
    assert [s["stage"] for s in run["timeline"]][0] == "foreground" and len(run["timeline"]) == 10
    assert all(s["status"] == "done" and s["seconds"] is not None for s in run["timeline"])
    assert run["photo"] == "01-foreground/image.png"
    assert run["masks"] == [{"part": "lid", "path": "03-part_masks/masks/lid.png"},  # parts.json order
                            {"part": "a_knob", "path": "03-part_masks/masks/a_knob.png"}]
    assert run["meshes"]["amodal"] == ["05-amodal/base.glb", "05-amodal/part_0.glb"]
    assert set(run["meshes"]) == {"reconstruct", "segment3d", "amodal"}
    assert run["clips"] == [{"part": "lid", "preview": "06-articulation_video/previews/lid.gif",
                             "frames": [f"06-articulation_video/frames/lid/frame_{k:03d}.png" for k in range(3)]}]
    fit = json.loads((good.root / "07-joint_fit" / "fit.json").read_text())["parts"][0]
    assert run["loss_curves"] == [{"part": "lid", "chosen": "revolute", "static_loss": 0.05,
                                   "curves": {t: f["curve"] for t, f in fit["fits"].items()}}]
    assert run["urdf"] == "09-urdf_package/box_a/hinged_box.urdf"
    assert run["package_json"]["joints"][0]["name"] == "lid_joint"
    assert run["validation"]["passed"] is True and run["config"] == {"max_dim": 0.4}

    broken = get_json(site, f"/api/runs/{site['broken'].run_id}")
    failed = broken["timeline"][1]
    assert failed["status"] == "failed" and "failed on purpose" in failed["error"]
    assert broken["urdf"] is None and broken["loss_curves"] == [] and broken["timeline"][2]["status"] == "pending"
    assert get(site, "/api/runs/no-such-run")[0] == 404


def test_pages_files_thumbnails_and_front_end(site):
    good = site["good"]
    for path in ("/", f"/run/{good.run_id}", f"/compare?a={good.run_id}&b={site['bad'].run_id}"):
        status, headers, body = get(site, path)
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b'type="importmap"' in body and b"http" not in body.split(b"</head>")[0].replace(b'"http-equiv', b"")
        assert "default-src 'self'" in headers["content-security-policy"]
    for path in ("/static/style.css", "/static/app.js", "/static/viewer.js", "/static/common.js", "/static/list.js",
                 "/static/run.js", "/static/compare.js"):
        assert get(site, path)[0] == 200, path

    status, headers, body = get(site, f"/files/{good.run_id}/05-amodal/part_0.glb")
    assert status == 200 and headers["content-type"] == "model/gltf-binary"
    assert body == (good.root / "05-amodal" / "part_0.glb").read_bytes()
    status, headers, body = get(site, f"/files/{good.run_id}/09-urdf_package/box_a/hinged_box.urdf", "HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 100
    assert get(site, f"/files/{good.run_id}/05-amodal/missing.glb")[0] == 404

    status, headers, body = get(site, f"/thumb/{good.run_id}")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(body))
    assert thumb.format == "JPEG" and max(thumb.size) <= 160 and thumb.size[0] > thumb.size[1]  # 64x48 photo
    assert get(site, f"/thumb/{site['broken'].run_id}")[0] == 200
    assert get(site, "/thumb/no-such-run")[0] == 404


def test_vendored_front_end_libraries_are_served_locally(site):
    if not (BROWSER_DIR / "node_modules" / "three").is_dir():
        pytest.fail("browser/node_modules is missing: run `make install` (npm ci in browser/)")
    status, headers, body = get(site, "/vendor/three/build/three.module.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert body == (BROWSER_DIR / "node_modules" / "three" / "build" / "three.module.js").read_bytes()
    lock = json.loads((BROWSER_DIR / "package-lock.json").read_text())
    core = get(site, "/vendor/three/build/three.core.js")[2]  # the revision npm ci installed is the pinned one
    assert f"REVISION = '{lock['packages']['node_modules/three']['version'].split('.')[1]}'".encode() in core
    assert get(site, "/vendor/urdf-loader/src/URDFLoader.js")[0] == 200
    assert get(site, "/vendor/three/examples/jsm/loaders/GLTFLoader.js")[0] == 200
    assert get(site, "/vendor/left-pad/index.js")[0] == 404  # only the pinned packages


def test_read_only(site):
    before = _tree(site["runs"])
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/", "/api/runs", f"/files/{site['good'].run_id}/manifest.json"):
            assert get(site, path, method)[0] == 405, (method, path)
    get(site, "/api/runs")
    get(site, f"/thumb/{site['good'].run_id}")
    assert _tree(site["runs"]) == before


def _tree(root):
    return sorted((str(p), p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*"))


def test_symlinked_run_folder_is_not_listed(site):
    assert "zz-symlinked-run" not in [r["run_id"] for r in get_json(site, "/api/runs")["runs"]]


# ---------------------------------------------------------------------------------------------
# Traversal


def _escapes(site):
    rid, tmp = site["good"].run_id, site["tmp"]
    secret = str(tmp / "secret.txt")
    return [
        f"/files/{rid}/../../secret.txt",
        f"/files/{rid}/../secret.txt",
        f"/files/{rid}/05-amodal/../../../secret.txt",
        f"/files/{rid}/%2e%2e/%2e%2e/secret.txt",
        f"/files/{rid}/%2E%2E%2F%2E%2E%2Fsecret.txt",
        f"/files/{rid}/..%2f..%2fsecret.txt",
        f"/files/{rid}/%252e%252e/%252e%252e/secret.txt",
        f"/files/{rid}/%25252e%25252e%25252f%25252e%25252e%25252fsecret.txt",
        f"/files/{rid}/..%5c..%5csecret.txt",
        f"/files/{rid}/.%2e/.%2e/secret.txt",
        f"/files/{rid}/{secret}",
        f"/files/{rid}/%2F{secret.lstrip('/')}",
        f"/files/{rid}/{urllib.parse.quote(secret, safe='')}",
        f"/files/..%2F..%2F/secret.txt",
        f"/files/../secret.txt",
        f"/files/%2e%2e/secret.txt",
        f"/files/{rid}/link_out.txt",
        f"/files/{rid}/dir_out/secret.txt",
        f"/files/zz-symlinked-run/secret.txt",
        f"/files/{rid}/%00/../secret.txt",
        "/static/../../tests/flows/test_browse.py",
        "/static/%2e%2e/%2e%2e/flows/browse.py",
        "/static/%2e%2e%2fpackage.json",
        "/vendor/three/../urdf-loader/package.json",
        "/vendor/three/%2e%2e/%2e%2e/package.json",
        "/vendor/%2e%2e/package.json",
        "/api/runs/..%2F..%2Fsecret.txt",
        "/api/runs/%2e%2e",
        "/thumb/%2e%2e",
        f"/run/..%2F..%2Fsecret.txt",
    ]


def test_every_escape_is_refused(site):
    refused = []
    for path in _escapes(site):
        status, _, body = get(site, path)
        assert SECRET.encode() not in body, path
        assert b"import" not in body, path  # no source file leaked
        assert status in (400, 403, 404), (path, status)
        refused.append(status)
    assert refused.count(403) >= 20  # most are recognised as escapes, not merely missing


def test_symlink_inside_runs_dir_is_followed(site):
    status, _, body = get(site, f"/files/{site['bad'].run_id}/link_in.json")
    assert status == 200 and json.loads(body)["run_id"] == site["good"].run_id


def test_resolve_inside(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("x")
    assert resolve_inside(tmp_path, "a/f.txt") == (tmp_path / "a" / "f.txt").resolve()
    for rel in ("../x", "a/../../x", "/etc/passwd", "a//f.txt", "a/./f.txt", ".hidden", "a\\f.txt", "a/%2e%2e/x",
                "%252e%252e/x", "C:/x", "a/\x00"):
        with pytest.raises(PathRejected):
            resolve_inside(tmp_path, rel)
    os.symlink("/etc", tmp_path / "a" / "etc")
    with pytest.raises(PathRejected, match="outside"):
        resolve_inside(tmp_path, "a/etc/passwd")


# ---------------------------------------------------------------------------------------------
# Index cache and links


def test_index_rereads_only_changed_manifests(tmp_path):
    runs = tmp_path / "runs"
    photo = make_photo(tmp_path / "p.png")
    a = make_small_run(runs, photo, "first")
    b = make_small_run(runs, photo, "second")
    cache = {}
    first = {s["run_id"]: s for s in scan_runs(runs, cache)}
    manifest = json.loads((b.root / "manifest.json").read_text())
    manifest["input"]["name"] = "renamed"
    (b.root / "manifest.json").write_text(json.dumps(manifest) + "\n")  # size differs: seen as changed
    second = {s["run_id"]: s for s in scan_runs(runs, cache)}
    assert second[a.run_id] is first[a.run_id]  # unchanged manifest: the cached summary, not re-read
    assert second[b.run_id]["name"] == "renamed"
    (a.root / "manifest.json").unlink()
    assert [s["run_id"] for s in scan_runs(runs, cache)] == [b.run_id] and set(cache) == {b.run_id}


def test_run_url(monkeypatch):
    monkeypatch.delenv("IMAGE_TO_URDF_BROWSER_URL", raising=False)
    assert run_url("20261121-1-cab") == "http://127.0.0.1:8765/run/20261121-1-cab"
    monkeypatch.setenv("IMAGE_TO_URDF_BROWSER_URL", "http://lab-box:9000/")
    assert run_url("a b/c") == "http://lab-box:9000/run/a%20b%2Fc"
