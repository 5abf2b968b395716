"""Which stages need a CUDA GPU, and a check that fails before any work when there is none.

A stage backend declares its device in its ``Config``: a ``device`` field (``"cpu"``,
``"cuda"``, ``"cuda:1"``) for backends that can run on either, ``requires_cuda: ClassVar[bool]
= True`` for GPU-only ones, or a ``requires_cuda`` property when a setting decides (joint_fit's
``renderer="nvdiffrast"``). The flow tags the tasks of such stages ``gpu`` (a Prefect tag
concurrency limit bounds them) and deployments send runs that need them to the ``gpu`` work
pool, whose workers are started one per GPU with ``CUDA_VISIBLE_DEVICES`` pinned (flows/serve.py).
"""

from __future__ import annotations

import importlib.util
import os

from flows.run_record import STAGES


class DeviceError(RuntimeError):
    """A configuration asks for a CUDA GPU that this machine does not have."""


def uses_cuda(stage_cfg) -> bool:
    """True when a stage backend's ``Config`` needs a CUDA GPU (see the module docstring)."""
    if getattr(stage_cfg, "requires_cuda", False):  # a ClassVar or a property of the instance
        return True
    return str(getattr(stage_cfg, "device", "cpu")).startswith("cuda")


def gpu_stages(cfg) -> list[str]:
    """Names of the stages of a PipelineConfig whose backend needs CUDA, in pipeline order."""
    return [stage for stage in STAGES if uses_cuda(stage_config(cfg, stage))]


def stage_config(cfg, stage: str):
    """The backend Config of ``stage`` in a PipelineConfig (``validate`` is stored as ``validate_``)."""
    return getattr(cfg, "validate_" if stage == "validate" else stage)


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (False without a CUDA build of torch)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def check_devices(cfg) -> None:
    """Raise :class:`DeviceError` when a stage needs CUDA and this machine (or process) has none."""
    needed = gpu_stages(cfg)
    if not needed or cuda_available():
        return
    backends = ", ".join(
        f"{stage} (backend {stage_config(cfg, stage).backend!r}, device "
        f"{getattr(stage_config(cfg, stage), 'device', 'cuda only')!r})"
        for stage in needed
    )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" with CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
    raise DeviceError(
        f"{backends} need(s) a CUDA GPU, but torch sees none on this machine{where}. Use the `cpu` "
        "preset or a CPU backend for these stages (--set STAGE.device=cpu where the backend has one, "
        "--set joint_fit.renderer=auto for joint_fit), "
        "or run this deployment on the `gpu` work pool"
    )


def check_gpu_pool(cfg, deployment: str) -> None:
    """Raise :class:`DeviceError` when stages need CUDA but ``deployment``'s pool has no online
    worker, instead of waiting for one forever."""
    if not gpu_stages(cfg):
        return
    from prefect import get_client
    from prefect.client.schemas.objects import WorkerStatus

    with get_client(sync_client=True) as client:
        pool = client.read_deployment_by_name(deployment).work_pool_name
        online = [w for w in client.read_workers_for_work_pool(pool) if w.status == WorkerStatus.ONLINE]
    if not online:
        raise DeviceError(
            f"{', '.join(gpu_stages(cfg))} need(s) a CUDA GPU and go to work pool {pool!r} ({deployment}), "
            "which has no online worker; start one per GPU on a GPU host (image-to-urdf serve --gpus, "
            "docs/deployment.md) or use CPU backends"
        )
