"""GPU routing: backends declare CUDA; asking for it without CUDA fails before any work."""

from pathlib import Path
from typing import ClassVar, Literal

import pytest
from pydantic import BaseModel

from flows.config import PipelineConfig
from flows.devices import DeviceError, check_devices, cuda_available, gpu_stages, uses_cuda

REPO = Path(__file__).resolve().parents[2]


class CudaOrCpuConfig(BaseModel):
    """A backend Config as a model-backed backend declares it: a ``device`` field."""

    backend: Literal["tiny_model"] = "tiny_model"
    device: str = "cpu"


class CudaOnlyConfig(BaseModel):
    backend: Literal["cuda_only"] = "cuda_only"
    requires_cuda: ClassVar[bool] = True


def _config_with(stage: str, backend_cfg) -> PipelineConfig:
    """The default configuration with one stage's backend replaced (no such backend is wired yet)."""
    fields = {name: getattr(PipelineConfig(), name) for name in PipelineConfig.model_fields}
    fields[stage] = backend_cfg
    return PipelineConfig.model_construct(**fields)


def test_default_configuration_needs_no_gpu():
    assert gpu_stages(PipelineConfig()) == []
    check_devices(PipelineConfig())


def test_backends_declare_cuda_by_device_or_class():
    assert not uses_cuda(CudaOrCpuConfig())
    assert uses_cuda(CudaOrCpuConfig(device="cuda"))
    assert uses_cuda(CudaOrCpuConfig(device="cuda:1"))
    assert uses_cuda(CudaOnlyConfig())
    assert gpu_stages(_config_with("part_masks", CudaOnlyConfig())) == ["part_masks"]


@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("backend_cfg", [CudaOrCpuConfig(device="cuda"), CudaOnlyConfig()])
def test_cuda_backend_without_cuda_fails_fast_with_the_stage_named(backend_cfg, tmp_path):
    from flows.batch import image_to_urdf_batch
    from flows.image_to_urdf import image_to_urdf

    cfg = _config_with("part_masks", backend_cfg)
    with pytest.raises(DeviceError, match=r"part_masks \(backend .*\) need\(s\) a CUDA GPU.*cpu"):
        check_devices(cfg)
    # The flows check before writing anything (``.fn``: the flow body without a Prefect API).
    out = tmp_path / "out"
    with pytest.raises(DeviceError, match="part_masks"):
        image_to_urdf.fn(photo=str(REPO / "assets" / "cabinet.png"), out=str(out), config=cfg)
    with pytest.raises(DeviceError, match="part_masks"):
        image_to_urdf_batch.fn(folder=str(REPO / "assets"), out=str(out), config=cfg)
    assert not out.exists()


def test_joint_fit_renderer_nvdiffrast_needs_cuda_and_auto_does_not():
    import stages.joint_fit

    assert not uses_cuda(stages.joint_fit.Config())  # auto: whatever the machine it runs on has
    assert not uses_cuda(stages.joint_fit.Config(renderer="torch"))
    cfg = PipelineConfig().with_overrides({"joint_fit.renderer": "nvdiffrast"})
    assert gpu_stages(cfg) == ["joint_fit"]


@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA")
def test_joint_fit_on_nvdiffrast_without_cuda_fails_fast_naming_the_setting():
    cfg = PipelineConfig().with_overrides({"joint_fit.renderer": "nvdiffrast"})
    with pytest.raises(DeviceError, match=r"joint_fit \(backend 'dual_quaternion'.*joint_fit.renderer=auto"):
        check_devices(cfg)
