"""End to end: an asset photo through the whole Prefect flow to a package that simulators load."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"


@pytest.fixture(scope="module")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _load_in_simulators(urdf: Path) -> tuple[list[str], int]:
    """Movable joint names from PyBullet, and MuJoCo's joint count."""
    import mujoco
    import pybullet as p

    client = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(str(urdf), useFixedBase=True, physicsClientId=client)
        names = [
            p.getJointInfo(body, j, physicsClientId=client)[1].decode()
            for j in range(p.getNumJoints(body, physicsClientId=client))
            if p.getJointInfo(body, j, physicsClientId=client)[2] in (p.JOINT_REVOLUTE, p.JOINT_PRISMATIC)
        ]
    finally:
        p.disconnect(client)
    model = mujoco.MjModel.from_xml_path(str(urdf))
    return names, model.njnt


@pytest.mark.slow  # a whole conversion under the Prefect harness: ~50 s of the default run
def test_cabinet_with_clicks_becomes_a_valid_package_and_publishes_its_summary(prefect_api, tmp_path):
    from flows.image_to_urdf import image_to_urdf

    meta = json.loads((ASSETS / "cabinet.json").read_text())
    clicks = [tuple(xy) for xy in meta["clicks"].values()]
    result = image_to_urdf(photo=str(ASSETS / "cabinet.png"), out=str(tmp_path), clicks=clicks, name="cabinet")

    package = tmp_path / "cabinet"
    assert result.package_dir == package
    info = json.loads((package / "package.json").read_text())
    assert info["validation"]["passed"] is True
    assert len(info["joints"]) == len(clicks)
    assert all(j["type"] == "revolute" for j in info["joints"])
    # Doors of a cabinet hinge about a vertical axis.
    for joint in info["joints"]:
        assert abs(abs(joint["axis_base"][2]) - 1.0) < np.sin(np.radians(10))

    names, mujoco_joints = _load_in_simulators(package / "cabinet.urdf")
    assert sorted(names) == sorted(j["name"] for j in info["joints"])
    assert mujoco_joints == len(clicks)

    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "done"
    assert [s["status"] for s in manifest["stages"].values()] == ["done"] * 10
    _assert_summary_artifacts(result)  # the same run: one conversion for both checks


def _assert_summary_artifacts(result) -> None:
    """The run's ``urdf-summary`` lists joints, validation and a link per stage folder; ``urdf-package`` links it."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        def latest(key):
            found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            return max(found, key=lambda a: a.created)

        summary, link = latest("urdf-summary").data, latest("urdf-package").data
    assert "# cabinet: validation passed" in summary
    assert f"]({result.package_dir.resolve().as_uri()})" in summary
    for joint in result.joints:
        assert f"| {joint.part} | {joint.joint_type} |" in summary
    for folder in sorted(p.name for p in result.run_dir.iterdir() if p.is_dir()):
        assert f"[{folder}]({(result.run_dir / folder).resolve().as_uri()})" in summary
    assert result.package_dir.resolve().as_uri() in link


@pytest.mark.slow
@pytest.mark.parametrize("asset", ["drawer_unit", "microwave", "box_lid", "laptop"])
def test_cli_converts_asset_without_clicks(asset, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "convert", str(ASSETS / f"{asset}.png"), "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / asset / "package.json").read_text())
    assert info["validation"]["passed"] is True
    assert len(info["joints"]) >= 1


def test_gpu_stage_hand_off_runs_the_pickled_stage_and_refuses_cuda_without_it(prefect_api, tmp_path):
    import pickle

    import stages.foreground
    from flows.config import PipelineConfig
    from flows.devices import DeviceError, cuda_available
    from flows.gpu_stage import image_to_urdf_stage, write_call
    from tests.flows.test_devices import CudaOnlyConfig

    cfg, photo = PipelineConfig().foreground, ASSETS / "microwave.png"
    remote, local = tmp_path / "remote" / "01-foreground", tmp_path / "local" / "01-foreground"
    remote.mkdir(parents=True)
    result_file = image_to_urdf_stage(str(write_call("foreground", cfg, (photo, remote))))
    result = pickle.loads(Path(result_file).read_bytes())
    expected = stages.foreground.run(cfg, photo, local)
    assert result.mask == remote / "mask.png"
    assert (result.bbox, result.mask_fraction) == (expected.bbox, expected.mask_fraction)
    assert (remote / "mask.png").read_bytes() == (local / "mask.png").read_bytes()

    if not cuda_available():
        other = tmp_path / "cuda" / "03-part_masks"
        other.mkdir(parents=True)
        with pytest.raises(DeviceError, match="part_masks .*needs CUDA"):
            image_to_urdf_stage(str(write_call("part_masks", CudaOnlyConfig(), (other,))))
