"""The app as users and scripts meet it: launched on a free port, driven through gradio_client."""

import importlib
import json
import sys
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from tests.conftest import free_port


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("app-outputs")
    env = {"RR_REWRITER": "tiny-random", "RR_VIDEO": "tiny-random", "RR_PORT": str(free_port()), "RR_OUTPUTS": str(outputs)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        sys.modules.pop("app", None)
        app = importlib.import_module("app")
        app.launch(app.demo, app.CONFIG, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{env['RR_PORT']}/", verbose=False), outputs
    finally:
        app.demo.close()


def test_endpoints_are_named_and_stable(client):
    api = client[0].view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/rewrite", "/generate"} <= set(api)
    params = api["/generate"]["parameters"]
    assert params[0]["parameter_name"] == "prompt" and not params[0]["parameter_has_default"]
    assert all(p["parameter_has_default"] for p in params[1:])
    assert len(api["/generate"]["returns"]) == 4


def test_rewrite_endpoint_returns_text(client):
    text = client[0].predict("a red ball", api_name="/rewrite")
    assert isinstance(text, str) and "red ball" in text.lower()


def test_generate_endpoint_returns_video_prompt_seed_sidecar(client):
    c, outputs = client
    video, prompt_used, seed, sidecar = c.predict(
        "a red ball", "A red ball rolls across a table.", False, None, 42, api_name="/generate"
    )
    assert Path(video).suffix == ".mp4" and Path(video).stat().st_size > 0
    assert prompt_used == "A red ball rolls across a table." and seed == 42
    record = json.loads(Path(sidecar).read_text())
    assert record["seed"] == 42 and record["raw_prompt"] == "a red ball"
    assert (outputs / record["video"]).exists()


def test_generate_with_defaults_only(client):
    video, prompt_used, seed, sidecar = client[0].predict("a green triangle", api_name="/generate")
    assert Path(video).exists() and 0 <= seed < 2**32 and prompt_used


@pytest.mark.parametrize(
    "args, message",
    [
        (("   ",), "empty"),
        (("x" * 5000,), "characters"),
        (("a cat", "", False, None, 1, 65), "multiple of 16"),
        (("a cat", "", False, None, 1, 64, 112, 10), "4k"),
        (("a cat", "", False, None, 1, 64, 112, 9, 0), "out of range|less than minimum"),
        (("a cat", "", False, None, 1.5), "whole number"),
    ],
)
def test_bad_input_gets_a_clear_error(client, args, message):
    with pytest.raises(Exception, match=message):
        client[0].predict(*args, api_name="/generate")


def test_not_an_image_is_a_clear_error(client, tmp_path):
    bad = tmp_path / "fake.png"
    bad.write_bytes(b"%PDF-1.4 definitely not a png")
    with pytest.raises(Exception, match="image"):
        client[0].predict("a cat", "", True, handle_file(str(bad)), 1, api_name="/generate")


def test_reference_image_is_recorded(client, tmp_path):
    img = tmp_path / "ref.jpg"
    Image.new("RGB", (32, 24), (0, 128, 255)).save(img)
    _, _, _, sidecar = client[0].predict("a cat", "", True, handle_file(str(img)), 3, api_name="/generate")
    ref = json.loads(Path(sidecar).read_text())["reference_image"]
    assert ref["size"] == [32, 24] and ref["used_by_video_model"] is False
