"""``image-to-urdf serve``: the whole local Prefect stack in one command.

1. ``prefect server start`` on ``host:port`` (SQLite in ``$PREFECT_HOME`` by default; PostgreSQL
   when ``PREFECT_API_DATABASE_CONNECTION_URL`` is set, see docs/deployment.md);
2. process work pools ``cpu`` and (with GPUs) ``gpu``, and a tag concurrency limit ``gpu`` of one
   task per GPU;
3. ``prefect deploy --all`` (prefect.yaml: image-to-urdf, image-to-urdf-batch, the gpu stage);
4. ``cpu_workers`` workers on ``cpu``, and one worker per GPU on ``gpu`` with
   ``CUDA_VISIBLE_DEVICES`` pinned to it and ``--limit 1``.
Then it waits; SIGINT or SIGTERM stops the workers (SIGINT, which they need to stop promptly),
then the server.
"""

from __future__ import annotations

import os
import shutil
import signal
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
#: The photo the ready message's example run converts.
EXAMPLE_PHOTO = Path(__file__).resolve().parents[1] / "assets" / "cabinet.png"


def detect_gpus() -> list[str]:
    """GPU indices listed by ``nvidia-smi`` (none when it is missing or fails)."""
    if shutil.which("nvidia-smi") is None:
        return []
    proc = subprocess.run(
        ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
    )
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()] if proc.returncode == 0 else []


def wait_for_api(api_url: str, timeout_s: float = 120.0, server: subprocess.Popen | None = None) -> None:
    """Block until ``<api_url>/health`` answers, or raise after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"prefect server exited with code {server.returncode} before it answered")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"no Prefect API at {api_url} after {timeout_s:.0f} s")


def prefect(*args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ``prefect`` command line of this environment in the repository root."""
    proc = subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise RuntimeError(f"prefect {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def serve(
    host: str = "127.0.0.1",
    port: int = 4200,
    cpu_workers: int = 1,
    gpus: list[str] | None = None,
    start_server: bool = True,
) -> int:
    """Bring the stack up, print how to use it, wait for SIGINT/SIGTERM, stop it. Exit code."""
    # PWD: prefect.yaml's pull step names "{{ $PWD }}", the repository, whatever the caller's shell.
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false", PWD=str(REPO))
    env.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "stages,flows")
    if start_server:
        env["PREFECT_API_URL"] = f"http://{host}:{port}/api"
    elif "PREFECT_API_URL" not in env:
        print("image-to-urdf serve: --no-server needs PREFECT_API_URL", file=sys.stderr)
        return 2
    api = env["PREFECT_API_URL"]
    gpus = detect_gpus() if gpus is None else gpus
    logs = Path(env.get("PREFECT_HOME", Path.home() / ".prefect")) / "serve-logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[tuple[str, subprocess.Popen]] = []
    stop = []
    # Installed explicitly: a shell starting us in the background may have set SIGINT to "ignore".
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, _frame: stop.append(signum))
    try:
        if start_server:
            server = _start([PREFECT, "server", "start", "--host", host, "--port", str(port)], env, logs / "server.log")
            processes.append(("server", server))
            _say(f"server starting on {api} (database: {_database(env)})")
            wait_for_api(api, server=server)
        pools = ["cpu", "gpu"]  # gpu exists without GPUs too: its stage deployment then waits for a GPU host
        for pool in pools:
            prefect("work-pool", "create", pool, "--type", "process", "--overwrite", env=env)
        if gpus:
            prefect("concurrency-limit", "create", "gpu", str(len(gpus)), env=env)
        prefect("--no-prompt", "deploy", "--all", env=env)
        _say(f"work pools {', '.join(pools)}; deployments from prefect.yaml")
        for i in range(cpu_workers):
            processes.append((f"cpu-{i}", _worker(env, logs, "cpu", f"cpu-{i}")))
        for gpu in gpus:
            gpu_env = dict(env, CUDA_VISIBLE_DEVICES=gpu)
            processes.append((f"gpu-{gpu}", _worker(gpu_env, logs, "gpu", f"gpu-{gpu}", "--limit", "1")))
        _say(
            f"ready: {cpu_workers} cpu worker(s), {len(gpus)} gpu worker(s); logs in {logs}. In another shell:\n"
            f"  export PREFECT_API_URL={api}\n"
            f"  {shlex.quote(PREFECT)} deployment run 'image-to-urdf/image-to-urdf' "
            f"--param photo={shlex.quote(str(EXAMPLE_PHOTO))} --param out={shlex.quote(str(Path.cwd() / 'out'))} --watch\n"
            "Ctrl-C stops the workers and the server."
        )
        while not stop:
            for name, proc in processes:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode}")
            time.sleep(1.0)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"image-to-urdf serve: error: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(processes, logs)


def _worker(env: dict, logs: Path, pool: str, name: str, *extra: str) -> subprocess.Popen:
    return _start([PREFECT, "worker", "start", "--pool", pool, "--name", name, *extra], env, logs / f"{name}.log")


def _start(cmd: list[str], env: dict, log_file: Path) -> subprocess.Popen:
    """Start ``cmd`` in the repository root, its output appended to ``log_file``."""
    with open(log_file, "ab") as log:
        # Own session: a Ctrl-C reaches only us, and we stop workers before the server. SIGINT back
        # to its default, as an inherited "ignore" would stop the workers' handler from installing.
        proc = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    log_file.with_suffix(".pid").write_text(str(proc.pid))  # for cleaning up after a killed serve
    return proc


def _stop(processes: list[tuple[str, subprocess.Popen]], logs: Path, timeout_s: float = 30.0) -> None:
    """SIGINT the workers first, then the server; kill what is still running after ``timeout_s``."""
    for name, proc in reversed(processes):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        (logs / f"{name}.pid").unlink(missing_ok=True)
        _say(f"stopped {name}")


def _database(env: dict) -> str:
    url = env.get("PREFECT_API_DATABASE_CONNECTION_URL")
    if url:
        return url.split("@")[-1] if "@" in url else url  # no password in the log
    return f"SQLite in {env.get('PREFECT_HOME', '~/.prefect')}"


def _say(text: str) -> None:
    print(f"image-to-urdf serve: {text}", file=sys.stderr, flush=True)
