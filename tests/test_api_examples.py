"""The README's API examples (gradio_client and curl) run against a launched app; endpoint names are stable,
UI helpers are private; --mcp serves the endpoints as MCP tools, or says clearly why it cannot."""

import asyncio
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client

from tests.launched import launched_app

ROOT = Path(__file__).resolve().parents[1]
README_URL = "http://127.0.0.1:7860"
STABLE = {"/rewrite", "/generate", "/compare", "/variations", "/variation", "/runs", "/vote", "/rerun",
          "/delete_run", "/export_csv", "/export_jsonl", "/stop"}


def readme_blocks(section: str, language: str) -> list[str]:
    """The fenced `language` code blocks under the README heading `## {section}`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", body, flags=re.S)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("api-outputs")
    with launched_app(outputs, RR_MCP="1") as (module, url):
        yield module, url, outputs


def test_every_user_action_has_a_stable_name_and_helpers_are_private(app):
    _, url, _ = app
    api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == STABLE
    assert not api["unnamed_endpoints"]
    # every named endpoint says what it does (the API page and the MCP tool descriptions use it)
    demo = app[0].demo
    for fn in demo.fns.values():
        if fn.api_visibility == "public":
            assert "/" + fn.api_name in STABLE and (fn.fn.__doc__ or "").strip(), fn.api_name


def test_readme_python_examples_run(app, monkeypatch, tmp_path):
    _, url, _ = app
    monkeypatch.chdir(tmp_path)
    (api,) = readme_blocks("API (gradio_client, curl, MCP)", "python")
    scope: dict = {}
    exec(compile(api.replace(README_URL, url), "README.md#api", "exec"), scope)
    assert isinstance(scope["text"], str) and scope["text"] and isinstance(scope["note"], str)
    assert Path(scope["video"]).stat().st_size > 0 and scope["seed"] == 7 and Path(scope["sidecar"]).exists()
    assert json.loads(Path(scope["sidecar"]).read_text())["settings"]["num_inference_steps"] == 8


def test_readme_curl_example_runs(app, tmp_path):
    _, url, _ = app
    (curl,) = readme_blocks("API (gradio_client, curl, MCP)", "bash")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", curl.replace(README_URL, url)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "event: complete" in done.stdout
    data = json.loads(done.stdout.split("event: complete\ndata: ", 1)[1].splitlines()[0])
    assert data[2] == 7 and data[0]["url"].endswith(".mp4")
    assert (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"


def test_rest_api_errors_carry_the_message(app):
    _, url, _ = app
    post = subprocess.run(["curl", "-s", "-X", "POST", f"{url}/gradio_api/call/v2/generate", "-H",
                           "Content-Type: application/json", "-d", '{"prompt": "   "}'],
                          capture_output=True, text=True, timeout=60, check=True)
    event_id = json.loads(post.stdout)["event_id"]
    got = subprocess.run(["curl", "-sN", f"{url}/gradio_api/call/v2/generate/{event_id}"], capture_output=True,
                         text=True, timeout=60, check=True)
    assert "event: error" in got.stdout and "The prompt is empty" in got.stdout


async def _mcp_call(url: str) -> tuple[dict, str]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(f"{url}/gradio_api/mcp/") as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        result = await session.call_tool("rewrite", {"prompt": "a red ball", "rewrite_seed": 0})
        return tools, " ".join(getattr(item, "text", "") for item in result.content)


def test_mcp_serves_rewrite_and_generate_as_tools(app):
    _, url, _ = app
    tools, text = asyncio.run(_mcp_call(url))
    assert {"rewrite", "generate", "compare", "variations"} <= set(tools)
    assert "prompt" in tools["generate"].inputSchema["properties"]
    assert "red ball" in text.lower()


def test_mcp_without_the_extra_says_so_and_starts_anyway(app, monkeypatch, caplog, tmp_path):
    module = app[0]
    monkeypatch.setitem(sys.modules, "gradio.mcp", None)  # as if gradio[mcp] were not installed
    assert not module.mcp_available()
    from demo.config import from_env

    config = from_env({"RR_MCP": "1", "RR_PORT": str(_free_port()), "RR_OUTPUTS": str(tmp_path)})
    with gr.Blocks() as demo:
        gr.Markdown("hello")
    with caplog.at_level(logging.WARNING, logger="app"):
        module.launch(demo, config, prevent_thread_lock=True, quiet=True)
    try:
        assert 'MCP server not started: it needs Gradio\'s mcp extra (pip install "gradio[mcp]==6.31.0")' in caplog.text
        assert not demo.mcp_server
        status = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                 f"http://127.0.0.1:{config.port}/gradio_api/mcp/schema"],
                                capture_output=True, text=True, timeout=30).stdout
        assert status == "404"
    finally:
        demo.close()


def _free_port() -> int:
    from tests.conftest import free_port

    return free_port()


def test_queue_limits_are_explicit_and_gpu_work_shares_one_group(app):
    demo = app[0].demo
    assert demo._queue.max_size == app[0].QUEUE_SIZE and demo._queue.default_concurrency_limit == 1
    gpu = {"/rewrite", "/generate", "/compare", "/variations", "/variation", "/rerun"}
    for fn in demo.fns.values():
        if fn.api_visibility == "public" and "/" + fn.api_name in gpu:
            assert fn.concurrency_id == "gpu" and fn.concurrency_limit in ("default", 1), fn.api_name
