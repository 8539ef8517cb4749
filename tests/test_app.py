"""The app as users and scripts meet it: launched on a free port, driven through gradio_client."""

import json
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from tests.conftest import free_port
from tests.launched import launched_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("app-outputs")
    with launched_app(outputs) as (_, url):
        yield Client(url + "/", verbose=False), outputs


def test_endpoints_are_named_and_stable(client):
    api = client[0].view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/rewrite", "/generate"} <= set(api)
    params = api["/generate"]["parameters"]
    assert params[0]["parameter_name"] == "prompt" and not params[0]["parameter_has_default"]
    assert all(p["parameter_has_default"] for p in params[1:])
    assert len(api["/generate"]["returns"]) == 4


def test_rewrite_endpoint_returns_text_and_why_a_prompt_was_kept(client):
    text, note = client[0].predict("a red ball", api_name="/rewrite")
    assert isinstance(text, str) and "red ball" in text.lower()
    assert note.startswith("Kept your prompt: ")  # the tiny test rewriter's output is always too short


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


def test_fps_by_name_reaches_the_sidecar_and_out_of_range_is_refused(client):
    *_, sidecar = client[0].predict("a red ball", "", True, None, 5, fps=8, api_name="/generate")
    assert json.loads(Path(sidecar).read_text())["settings"]["fps"] == 8
    with pytest.raises(Exception, match="fps=0 is out of range|less than minimum"):
        client[0].predict("a red ball", "", True, None, 5, fps=0, api_name="/generate")


def test_not_an_image_is_a_clear_error(client, tmp_path):
    bad = tmp_path / "fake.png"
    bad.write_bytes(b"%PDF-1.4 definitely not a png")
    with pytest.raises(Exception, match="image"):
        client[0].predict("a cat", "", True, handle_file(str(bad)), 1, api_name="/generate")


def test_reference_image_is_recorded(client, tmp_path):
    img = tmp_path / "ref.jpg"
    Image.new("RGB", (32, 24), (0, 128, 255)).save(img)
    _, _, _, sidecar = client[0].predict("a cat", "", True, handle_file(str(img)), 3, api_name="/generate")
    record = json.loads(Path(sidecar).read_text())
    ref = record["reference_image"]
    assert record["video_preset"] == "tiny-random-i2v" and record["switched_from"] == "tiny-random"
    assert ref["size"] == [224, 128] and ref["original_size"] == [32, 24] and ref["used_by_video_model"] is True


def test_reference_image_fit_and_description_by_name(client, tmp_path):
    img = tmp_path / "ref.png"
    Image.new("RGB", (300, 100), (0, 128, 255)).save(img)
    _, _, _, sidecar = client[0].predict(
        "a cat", "", False, handle_file(str(img)), 3, image_fit="pad", image_description="a blue wall",
        api_name="/generate",
    )
    record = json.loads(Path(sidecar).read_text())
    assert record["reference_image"]["fit"] == "pad" and record["reference_image"]["description"] == "a blue wall"
    assert record["rewrite"]["template_version"].startswith("wan_i2v")
    text, _ = client[0].predict("a cat", 0, handle_file(str(img)), "a blue wall", api_name="/rewrite")
    assert isinstance(text, str) and text


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_text("a text file named .png"), "not a readable image"),
        (lambda p: Image.new("RGB", (1, 1)).save(p), "at least 16 pixels"),
        (lambda p: Image.new("RGB", (2000, 100)).save(p), "more than 8:1"),
    ],
)
def test_bad_images_are_clear_errors_on_every_endpoint(client, tmp_path, make, message):
    bad = tmp_path / "bad.png"
    make(bad)
    for api_name, args in (("/generate", ("a cat", "", True, handle_file(str(bad)), 1)),
                           ("/compare", ("a cat", "A cat walks.", handle_file(str(bad)), 1)),
                           ("/rewrite", ("a cat", 0, handle_file(str(bad))))):
        with pytest.raises(Exception, match=message):
            client[0].predict(*args, api_name=api_name)


REWRITTEN = "A red ball rolls slowly across a wooden table in warm afternoon light."


def test_compare_variations_and_gallery_endpoints_are_named(client):
    api = client[0].view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/compare", "/variations", "/variation", "/runs", "/vote", "/rerun", "/delete_run"} <= set(api)
    for name, returns in (("/compare", 6), ("/variations", 3)):
        params = api[name]["parameters"]
        assert params[0]["parameter_name"] == "prompt" and not params[0]["parameter_has_default"]
        assert all(p["parameter_has_default"] for p in params[1:]) and len(api[name]["returns"]) == returns
    assert [p["parameter_name"] for p in api["/runs"]["parameters"]] == ["query", "limit"]
    assert [p["parameter_name"] for p in api["/vote"]["parameters"]] == ["run_id", "choice"]


def test_render_endpoints_take_every_setting_by_name_and_keep_their_order(client):
    from dataclasses import fields

    from pipeline.request import RenderSettings

    api = client[0].view_api(print_info=False, return_format="dict")["named_endpoints"]
    settings = {f.name for f in fields(RenderSettings)}
    for name in ("/generate", "/compare", "/variations"):
        assert settings <= {p["parameter_name"] for p in api[name]["parameters"]}, name
    # the order the README gives; settings added later come after these
    assert [p["parameter_name"] for p in api["/generate"]["parameters"]][:14] == [
        "prompt", "rewritten", "use_raw", "image", "seed", "height", "width", "num_frames", "num_inference_steps",
        "guidance_scale", "negative_prompt", "rewrite_seed", "image_fit", "image_description"]


def test_compare_endpoint_returns_both_videos_prompts_seed_sidecar(client):
    c, outputs = client
    raw, rewritten, raw_prompt, rewritten_prompt, seed, sidecar = c.predict(
        "a red ball", REWRITTEN, None, 8, api_name="/compare")
    assert (raw_prompt, rewritten_prompt, seed) == ("a red ball", REWRITTEN, 8)
    assert Path(raw).stat().st_size > 0 and Path(rewritten).stat().st_size > 0
    record = json.loads(Path(sidecar).read_text())
    assert record["seed"] == 8 and record["videos"]["raw"] == Path(raw).name
    assert (outputs / record["videos"]["raw"]).exists() and (outputs / record["videos"]["rewritten"]).exists()
    with pytest.raises(Exception, match="same as your prompt"):
        c.predict("a red ball", "a red ball", api_name="/compare")


def test_variations_endpoint_then_one_at_full_settings(client):
    c, outputs = client
    previews, seeds, run_id = c.predict("a red ball", "", True, 2, 40, api_name="/variations")
    assert seeds == [40, 41] and len(previews) == 2
    assert all(Path(p["video"]).stat().st_size > 0 and p["caption"] == f"seed {s}" for p, s in zip(previews, seeds, strict=True))
    video, prompt_used, seed, sidecar = c.predict(run_id, 41, api_name="/variation")
    record = json.loads(Path(sidecar).read_text())
    assert seed == 41 and prompt_used == "a red ball" and Path(video).exists()
    assert record["preview"]["run_id"] == run_id and Path(record["preview"]["video"]).name.endswith("preview-41.mp4")
    with pytest.raises(Exception, match="not one of run"):
        c.predict(run_id, 7, api_name="/variation")


def test_runs_vote_rerun_and_delete_endpoints(client):
    c, outputs = client
    *_, sidecar = c.predict("a blue box", "A blue box sits on a shelf in a quiet, dusty attic.", None, 5,
                            api_name="/compare")
    runs = c.predict("blue box", 5, api_name="/runs")
    pair = runs[0]
    assert pair["kind"] == "compare" and pair["status"] == "completed" and pair["seed"] == 5
    assert Path(outputs / pair["files"]["sidecar"]) == Path(outputs / Path(sidecar).name)
    voted = c.predict(pair["id"], "rewritten", api_name="/vote")
    assert voted["run"]["vote"] == "rewritten" and voted["summary"]["rewritten"] >= 1
    assert 0 <= voted["summary"]["win_rate"] <= 1

    new_id = c.predict(pair["id"], False, api_name="/rerun")
    again = c.predict(str(new_id), 1, api_name="/runs")[0]
    assert again["id"] == new_id and again["parent_id"] == pair["id"] and again["seed"] == 5
    assert "Deleted run" in c.predict(new_id, api_name="/delete_run")
    assert not (outputs / again["files"]["raw"]).exists()


@pytest.mark.parametrize(
    "args, message",
    [
        ((99999, "raw"), "There is no run 99999"),
        ((0, "raw"), "positive whole number"),
        ((1, "maybe"), "raw.*rewritten.*tie"),
    ],
)
def test_bad_run_ids_and_votes_get_clear_errors(client, args, message):
    with pytest.raises(Exception, match=message):
        client[0].predict(*args, api_name="/vote")


def test_votes_only_for_pairs_and_runs_need_a_valid_limit(client):
    c, _ = client
    c.predict("a green triangle", "", True, None, 2, api_name="/generate")
    single = c.predict("green triangle", 1, api_name="/runs")[0]
    with pytest.raises(Exception, match="only compare pairs"):
        c.predict(single["id"], "raw", api_name="/vote")
    with pytest.raises(Exception, match="limit"):
        c.predict("", 0, api_name="/runs")


def test_locally_every_session_sees_all_runs(client):
    c, _ = client
    c.predict("a purple cube", "", True, None, 3, api_name="/generate")
    other = Client(c.src, verbose=False)
    assert other.predict("purple cube", 5, api_name="/runs")[0]["prompt"] == "a purple cube"


def test_runs_are_private_per_session_on_spaces(tiny_engine, monkeypatch):
    from demo.ui import build_demo

    monkeypatch.setenv("SPACE_ID", "someone/rewrite-render")
    monkeypatch.delenv("RR_PRIVATE_RUNS", raising=False)
    demo = build_demo(tiny_engine)
    demo.queue(default_concurrency_limit=1)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True, allowed_paths=[str(tiny_engine.outputs)])
    try:
        alice = Client(f"http://127.0.0.1:{port}/", verbose=False)
        bob = Client(f"http://127.0.0.1:{port}/", verbose=False)
        alice.predict("an orange kite", REWRITTEN, None, 4, api_name="/compare")
        mine = alice.predict("", 50, api_name="/runs")
        assert [r["prompt"] for r in mine] == ["an orange kite"] and "session" not in mine[0]
        assert bob.predict("", 50, api_name="/runs") == []
        for name, args in (("/vote", (mine[0]["id"], "raw")), ("/delete_run", (mine[0]["id"],)),
                           ("/rerun", (mine[0]["id"], False))):
            with pytest.raises(Exception, match="There is no run"):
                bob.predict(*args, api_name=name)
        assert alice.predict(mine[0]["id"], "raw", api_name="/vote")["summary"]["raw"] == 1
    finally:
        demo.close()


def test_memory_notices_show_measured_peak_and_step_down(tmp_path, monkeypatch):
    import gradio as gr

    from demo.ui import memory_notices

    shown = []
    monkeypatch.setattr(gr, "Info", lambda m: shown.append(("info", m)))
    monkeypatch.setattr(gr, "Warning", lambda m: shown.append(("warning", m)))
    sidecar = tmp_path / "run.json"
    sidecar.write_text(json.dumps({"memory_measured_peak_vram_gb": 6.1, "memory_estimated_peak_vram_gb": 6.6,
                                   "memory_note": "out of memory: stepped down to group offload"}))
    memory_notices(str(sidecar))
    assert shown == [("warning", "out of memory: stepped down to group offload"),
                     ("info", "Peak GPU memory 6.1 GB (plan estimate 6.6 GB)")]
    shown.clear()
    sidecar.write_text("{}")
    memory_notices(str(sidecar))
    assert shown == []
