"""The app as a stranger, a script and a busy machine meet it: what it serves, how it starts, how a client stops
a run, and what its console and API say about a refused or kept prompt."""

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from tests.conftest import free_port
from tests.launched import launched_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def private_app(tmp_path_factory):
    """The app as on a public Space: each session sees only its own runs."""
    outputs = tmp_path_factory.mktemp("private-outputs")
    with launched_app(outputs, RR_PRIVATE_RUNS="1") as (_, url):
        yield url, outputs


def fetch(url: str, route: str, path: str) -> int:
    return httpx.get(f"{url}/gradio_api/{route}{path}", timeout=30).status_code


ROUTES = ("file=", "file/", "file=%2F", "file/%2F")  # Gradio's two file routes; a leading slash %-encoded


def test_the_database_and_run_files_are_never_served_by_path(private_app):
    url, outputs = private_app
    alice, bob = Client(url + "/", verbose=False), Client(url + "/", verbose=False)
    video, _, _, sidecar = alice.predict("a red ball", "A red ball rolls.", False, None, 5, api_name="/generate")
    assert Path(video).stat().st_size > 0 and json.loads(Path(sidecar).read_text())["seed"] == 5  # alice got hers
    [run] = alice.predict("", 10, api_name="/runs")
    assert bob.predict("", 10, api_name="/runs") == []  # bob's session sees no run of alice's
    exported = Path(alice.predict("", api_name="/export_csv"))
    files = [outputs / "runs.sqlite3", outputs / run["files"]["video"], outputs / run["files"]["sidecar"],
             *(outputs / "exports").iterdir()]
    assert all(path.is_file() for path in files) and exported.stat().st_size > 0
    files += [path for path in (outputs / "runs.sqlite3-wal", outputs / "runs.sqlite3-shm") if path.exists()]
    for path in files:
        for route in ROUTES:
            asked = str(path).removeprefix("/") if route.endswith("%2F") else str(path)
            assert fetch(url, route, asked) == 403, (route, path)
    linked = Path(outputs.parent / "link-to-outputs")
    linked.symlink_to(outputs)
    try:
        assert fetch(url, "file/", str(linked / run["files"]["video"])) == 403
        assert fetch(url, "file=", f"{outputs}/../{outputs.name}/{run['files']['video']}") == 403
        assert fetch(url, "file=", str(outputs / run["files"]["video"]).upper()) == 403
    finally:
        linked.unlink()


def test_a_client_stops_its_running_job_and_its_next_call_runs(private_app):
    url, _ = private_app
    client = Client(url + "/", verbose=False)
    job = client.submit("a slow ball", "A ball rolls slowly.", False, None, 9, 256, 256, 33, 100, api_name="/generate")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not [
        r for r in client.predict("slow ball", 10, api_name="/runs") if r["status"] == "running"
    ]:  # its gallery row is written once the job runs, after it took its stop flag
        time.sleep(0.2)
    client.predict(api_name="/stop")
    job.result(timeout=120)
    [run] = [r for r in client.predict("slow ball", 10, api_name="/runs")]
    assert run["status"] == "failed" and run["error"] == "stopped by the user"
    video, *_ = client.predict("a quick ball", "A ball.", False, None, 1, 64, 64, 5, 1, api_name="/generate")
    assert Path(video).stat().st_size > 0


def test_a_kept_prompt_says_why_in_the_api_and_a_refusal_logs_one_line(private_app, capfd, caplog):
    url, _ = private_app
    client = Client(url + "/", verbose=False)
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="demo"), pytest.raises(Exception, match="multiple of 16"):
        client.predict("a cat", "", True, None, 1, 65, api_name="/generate")
    assert "Traceback" not in capfd.readouterr().err
    assert [r.getMessage() for r in caplog.records if r.name == "demo"] == [
        "refused: height=65 is not valid for tiny-random: use a multiple of 16 between 16 and 256."]
    _, note = client.predict("une voiture rouge", api_name="/rewrite")
    assert note.startswith("Kept your prompt: ")
    _, used, _, sidecar = client.predict("une voiture rouge", "", False, None, 2, 64, 64, 5, 1, api_name="/generate")
    rewrite = json.loads(Path(sidecar).read_text())["rewrite"]
    assert used == "une voiture rouge" and rewrite["fallback"] and "notes" in rewrite


def run_app(*args: str, outputs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "RR_OUTPUTS": str(outputs),
           "RR_REWRITER": "tiny-random", "RR_VIDEO": "tiny-random"}
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_start_up_mistakes_are_one_line_and_exit_2_before_any_model_loads(tmp_path):
    outputs = tmp_path / "outputs"
    proc = run_app("--port", "99999", outputs=outputs)
    assert proc.returncode == 2 and "port number 1-65535" in proc.stderr and "Traceback" not in proc.stderr
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        proc = run_app("--port", str(port), outputs=outputs)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"app.py: error: cannot listen on 127.0.0.1:{port}: it is in use; " \
        "stop what uses it or pick another --port"
    assert not outputs.exists()  # no model was loaded: the engine creates the outputs folder first
