"""A real Prefect server and worker on 127.0.0.1 (``image-to-urdf serve``) run one deployment to completion."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def local_stack(tmp_path):
    """``image-to-urdf serve`` on a free port with its own PREFECT_HOME; yields the client env."""
    port = _free_port()
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    log = tmp_path / "serve.log"
    with open(log, "w") as f:
        serve = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--port", str(port), "--gpus", ""],
            cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "ready:" not in log.read_text():
            assert serve.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve not ready after 240 s:\n" + log.read_text()
            time.sleep(1)
        yield dict(env, PREFECT_API_URL=f"http://127.0.0.1:{port}/api"), home
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait(timeout=10)
        for pidfile in (home / "serve-logs").glob("*.pid"):  # workers and server run in their own sessions
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    assert serve.returncode == 0, log.read_text()


@pytest.mark.slow
def test_deployment_runs_to_completion_on_a_local_server_and_worker(local_stack, tmp_path):
    env, home = local_stack
    out = tmp_path / "out"
    proc = subprocess.run(
        [PREFECT, "deployment", "run", "image-to-urdf/image-to-urdf",
         "--param", f"photo={REPO / 'assets' / 'microwave.png'}", "--param", f"out={out}",
         "--watch", "--watch-timeout", "480"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=540,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Completed" in proc.stdout
    info = json.loads((out / "microwave" / "package.json").read_text())
    assert info["validation"]["passed"] is True
    manifest = json.loads(next((out / "runs").glob("*/manifest.json")).read_text())
    assert manifest["status"] == "done"
    assert "cpu-0" in {p.stem for p in (home / "serve-logs").glob("*.log")}
