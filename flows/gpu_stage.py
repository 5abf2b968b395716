"""Stages whose backend needs CUDA, sent from the image-to-urdf flow to the ``gpu`` work pool.

Given ``gpu_deployment`` (prefect.yaml sets it for deployed runs), the image-to-urdf flow writes
such a stage's call (stage name, backend Config, inputs) to ``<stage folder>/.call.pkl`` and runs
the deployment ``image-to-urdf-stage/image-to-urdf-gpu-stage`` as a subflow. That flow runs on a
``gpu`` worker (one per GPU, ``CUDA_VISIBLE_DEVICES`` pinned, ``--limit 1``: flows/serve.py),
checks that CUDA is there, runs the stage's task (tag ``gpu``) into the same folder and pickles
the result to ``.result.pkl``. Every path in the call must name the same file on the CPU and GPU
hosts: ``out`` lives on shared storage mounted at one path (docs/deployment.md).
"""

from __future__ import annotations

import pickle
from pathlib import Path

from prefect import flow
from prefect.deployments import run_deployment

from stages._shared.io import atomic_path

CALL_FILE, RESULT_FILE = ".call.pkl", ".result.pkl"


@flow(name="image-to-urdf-stage")
def image_to_urdf_stage(call_file: str) -> str:
    """Run the stage call pickled in ``call_file``; return the path of the pickled result."""
    import flows.image_to_urdf as pipeline
    from flows.devices import DeviceError, cuda_available, uses_cuda

    with open(call_file, "rb") as f:
        call = pickle.load(f)
    stage, cfg, args = call["stage"], call["cfg"], call["args"]
    if uses_cuda(cfg) and not cuda_available():
        raise DeviceError(
            f"stage {stage} (backend {cfg.backend!r}) needs CUDA but this gpu-pool worker has none; start gpu "
            "workers only on GPU hosts, one per GPU with CUDA_VISIBLE_DEVICES set (image-to-urdf serve --gpus)"
        )
    result = getattr(pipeline, stage).with_options(tags={"gpu"})(cfg, *args)
    result_file = Path(call_file).with_name(RESULT_FILE)
    with atomic_path(result_file) as tmp:
        tmp.write_bytes(pickle.dumps(result))
    return str(result_file)


def write_call(stage: str, cfg, args: tuple) -> Path:
    """Pickle a stage call (``args[-1]`` is its run folder) to ``<run folder>/.call.pkl``."""
    call_file = Path(args[-1]) / CALL_FILE
    with atomic_path(call_file) as tmp:
        tmp.write_bytes(pickle.dumps({"stage": stage, "cfg": cfg, "args": args}))
    return call_file.resolve()


def run_on_gpu_pool(deployment: str, stage: str, cfg, args: tuple):
    """Run ``stage`` (``args[-1]`` is its run folder) through the gpu-pool deployment; its result."""
    stage_dir = Path(args[-1])
    call_file = write_call(stage, cfg, args)
    flow_run = run_deployment(deployment, parameters={"call_file": str(call_file)})
    state = flow_run.state
    if state is None or not state.is_completed():
        name = state.name if state else "unknown"
        raise RuntimeError(
            f"stage {stage} on the gpu pool ({deployment}) ended {name}: {state.message if state else ''}; "
            "see that flow run's logs"
        )
    result_file = stage_dir / RESULT_FILE
    with open(result_file, "rb") as f:
        result = pickle.load(f)
    call_file.unlink()
    result_file.unlink()
    return result
