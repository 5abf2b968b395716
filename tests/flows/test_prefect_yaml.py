"""prefect.yaml: every deployment points at a flow, on a declared pool, with parameters the flow accepts."""

import importlib
from pathlib import Path

import pytest
import yaml
from prefect.utilities.callables import parameter_schema

REPO = Path(__file__).resolve().parents[2]


def _deployments():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return spec["deployments"]


def _flow(entrypoint: str):
    path, name = entrypoint.split(":")
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)


def test_deployments_name_existing_flows_pools_and_parameters():
    deployments = {d["name"]: d for d in _deployments()}
    assert {"image-to-urdf", "image-to-urdf-batch", "image-to-urdf-gpu-stage"} <= set(deployments)
    assert deployments["image-to-urdf"]["work_pool"]["name"] == "cpu"
    assert deployments["image-to-urdf-gpu-stage"]["work_pool"]["name"] == "gpu"
    for deployment in deployments.values():
        flow = _flow(deployment["entrypoint"])
        flow.validate_parameters({**_required(flow), **deployment.get("parameters", {})})
    flow_name, deployment_name = deployments["image-to-urdf"]["parameters"]["gpu_deployment"].split("/")
    assert _flow(deployments[deployment_name]["entrypoint"]).name == flow_name


def _required(flow) -> dict:
    schema = parameter_schema(flow.fn).model_dump()
    return {name: "/tmp/x" for name in schema.get("required", [])}


@pytest.mark.parametrize("name", ["image-to-urdf", "image-to-urdf-batch"])
def test_the_ui_gets_the_pydantic_configuration_and_its_checks(name):
    flow = _flow(next(d["entrypoint"] for d in _deployments() if d["name"] == name))
    schema = parameter_schema(flow.fn).model_dump()
    config = schema["definitions"]["PipelineConfig"]["properties"]
    assert config["max_dim"]["description"].startswith("Largest dimension")
    assert {"foreground", "joint_fit", "validate"} <= set(config)
    good = flow.validate_parameters({**_required(flow), "config": {"max_dim": 1.5, "joint_fit": {"fit_size": 128}}})
    assert good["config"].max_dim == 1.5 and good["config"].joint_fit.fit_size == 128
    with pytest.raises(Exception, match="max_dim"):
        flow.validate_parameters({**_required(flow), "config": {"max_dim": -1}})
