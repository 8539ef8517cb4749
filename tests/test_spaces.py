"""Hugging Face Spaces: the README front matter, requirements, the ZeroGPU shim (without `spaces`, with a fake
that records durations, with the real package), no offload on ZeroGPU, Stop across processes, and cleanup."""

import ast
import functools
import inspect
import json
import math
import multiprocessing
import os
import pickle
import subprocess
import sys
import time
import types
from importlib import metadata
from pathlib import Path

import gradio as gr
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from demo.config import GPU_MAX_SECONDS, from_env, parse_args
from demo.zerogpu import MARGIN, MIN_SECONDS, OVERHEAD_SECONDS, GpuTime, gpu, render_seconds
from pipeline.engine import DEFAULT_PRESETS
from pipeline.gallery import Gallery, RunStart
from pipeline.presets import VIDEO_PRESETS, get_video_spec
from prompts.presets import get_rewriter_spec

ROOT = Path(__file__).resolve().parents[1]
ZEROGPU_PYTHONS = ("3.10", "3.12")  # the Python versions ZeroGPU runs (Spaces' documentation, at last check)
SPACES_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
GPU_ACTIONS = {"rewrite", "generate", "compare", "variations", "variation", "rerun"}


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must open with the Spaces YAML block"
    block, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(block)


def requirements(name: str) -> list[Requirement]:
    lines = (ROOT / name).read_text().splitlines()
    return [Requirement(line.split("#")[0].strip()) for line in lines
            if line.split("#")[0].strip() and not line.startswith("-r")]


# -- front matter and requirements -----------------------------------------------------------------
def test_front_matter_is_a_valid_gradio_space_config():
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).is_file()
    assert isinstance(meta["title"], str) and meta["title"] and isinstance(meta["emoji"], str)
    assert meta["colorFrom"] in SPACES_COLORS and meta["colorTo"] in SPACES_COLORS
    assert isinstance(meta["short_description"], str) and 0 < len(meta["short_description"]) <= 60
    # a quoted string: unquoted, YAML reads 3.10 as the float 3.1
    assert isinstance(meta["python_version"], str) and meta["python_version"] in ZEROGPU_PYTHONS


def test_sdk_version_is_the_pinned_and_installed_gradio():
    meta = front_matter()
    gradio_pins = [r for r in requirements("requirements.txt") if r.name == "gradio"]
    assert len(gradio_pins) == 1 and str(gradio_pins[0].specifier) == f"=={meta['sdk_version']}"
    assert metadata.version("gradio") == meta["sdk_version"] == gr.__version__


def test_models_are_the_default_presets_hub_ids():
    rewriter, video = DEFAULT_PRESETS["cuda"]
    partner = get_video_spec(get_video_spec(video).image_partner)  # loaded at start on ZeroGPU
    expected = [get_rewriter_spec(rewriter).hub_id, get_video_spec(video).hub_id, partner.hub_id]
    assert front_matter()["models"] == expected == ["Qwen/Qwen2.5-3B-Instruct", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
                                                    "Wan-AI/Wan2.2-TI2V-5B-Diffusers"]


def test_every_pinned_requirement_supports_the_spaces_python():
    """Each runtime requirement, as installed here, accepts the front matter's Python (diffusers 0.42 needs 3.11+)."""
    python = Version(front_matter()["python_version"] + ".0")
    for req in requirements("requirements.txt"):
        requires = metadata.metadata(req.name).get("Requires-Python")
        if requires:
            assert python in Requirement(f"x{requires}").specifier, f"{req.name} requires Python {requires}"


def test_spaces_package_is_never_pinned():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for req in requirements(name):
            assert req.name != "spaces" or not req.specifier, f"{name} pins spaces"


PY311_ONLY = {
    "tomllib", "typing.Self", "typing.LiteralString", "typing.Never", "typing.assert_never", "typing.reveal_type",
    "typing.Required", "typing.NotRequired", "typing.TypeVarTuple", "typing.Unpack", "typing.override",
    "enum.StrEnum", "datetime.UTC", "asyncio.TaskGroup", "asyncio.timeout", "hashlib.file_digest",
    "itertools.batched", "contextlib.chdir", "ExceptionGroup", "BaseExceptionGroup",
}


def project_sources() -> list[Path]:
    skip = {".venv", "outputs", ".git", "artifacts"}
    return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]


def test_code_is_valid_python_310():
    """Spaces and ZeroGPU run 3.10 or 3.12: no 3.11+ syntax (except*) or standard library names."""
    for path in project_sources():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path), feature_version=(3, 10))
        for node in ast.walk(tree):
            assert not isinstance(node, getattr(ast, "TryStar", ())), f"{path}: except* needs 3.11"
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                names = [f"{node.value.id}.{node.attr}"]
            elif isinstance(node, ast.Name):
                names = [node.id]
            bad = PY311_ONLY.intersection(names)
            assert not bad, f"{path}:{getattr(node, 'lineno', '?')} uses {bad}, new in Python 3.11+"


# -- config -----------------------------------------------------------------------------------------
def test_spaces_settings_from_flags_and_environment():
    c = parse_args([], environ={})
    assert (c.mcp, c.cleanup_hours, c.gpu_max_seconds) == (False, None, GPU_MAX_SECONDS)
    env = {"RR_MCP": "1", "RR_CLEANUP_HOURS": "12", "RR_GPU_MAX_SECONDS": "120"}
    assert (from_env(env).mcp, from_env(env).cleanup_hours, from_env(env).gpu_max_seconds) == (True, 12.0, 120)
    c = parse_args(["--no-mcp", "--cleanup-hours", "0.5", "--gpu-max-seconds", "90"], environ=env)
    assert (c.mcp, c.cleanup_hours, c.gpu_max_seconds) == (False, 0.5, 90)
    assert parse_args(["--mcp"], environ={}).mcp and from_env({"GRADIO_MCP_SERVER": "true"}).mcp
    # on a Space: listen where the platform says (launch() arguments would override GRADIO_SERVER_NAME)
    space = from_env({"SPACE_ID": "me/rr", "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7860"})
    assert (space.host, space.port) == ("0.0.0.0", 7860)
    assert from_env({"SPACE_ID": "me/rr"}).host == "0.0.0.0" and from_env({}).host == "127.0.0.1"


@pytest.mark.parametrize("env, message", [
    ({"RR_MCP": "maybe"}, "RR_MCP must be 1 or 0"),
    ({"RR_CLEANUP_HOURS": "0"}, "more than 0 hours"),
    ({"RR_CLEANUP_HOURS": "soon"}, "number of hours"),
    ({"RR_GPU_MAX_SECONDS": "1.5"}, "whole number of seconds"),
])
def test_bad_spaces_settings_are_refused(env, message):
    with pytest.raises(ValueError, match=message):
        from_env(env)


# -- ZeroGPU durations ------------------------------------------------------------------------------
def test_duration_grows_with_steps_frames_and_size_and_is_capped():
    wan = GpuTime(get_video_spec("wan2.1-t2v-1.3b"), cap=300)
    base = {"rewritten": "A scene.", "height": 480, "width": 832, "num_frames": 81, "num_inference_steps": 30}
    default = wan.seconds("generate", base)
    assert 60 < default < 300  # fits under the cap with room: Wan's defaults are not cut off
    for key, bigger in (("num_inference_steps", 40), ("num_frames", 121), ("height", 720)):
        assert wan.seconds("generate", {**base, key: bigger}) > default
    assert wan.seconds("generate", {**base, "rewritten": ""}) > default  # it rewrites first
    assert wan.seconds("generate", {**base, "rewritten": "", "use_raw": True}) == default
    assert wan.seconds("compare", base) > default  # two videos
    assert wan.seconds("variations", {**base, "count": 4}) < default  # four previews cost less than one render
    assert wan.seconds("generate", {**base, "num_inference_steps": 100, "width": 1280, "height": 720}) == 300
    assert GpuTime(get_video_spec("tiny-random")).seconds("generate", {"rewritten": "x"}) >= MIN_SECONDS
    # values the handler will refuse fall back to the preset's, never an exception in the scheduler
    assert wan.seconds("generate", {**base, "num_frames": None, "height": "tall"}) == default
    assert render_seconds(480, 832, 81, 30) == pytest.approx(30 * 480 * 832 * 81 / 1e6 * 0.08)


def test_rerun_and_picked_variation_durations_come_from_the_run(tmp_path):
    gallery = Gallery(tmp_path)
    spec = get_video_spec("wan2.1-t2v-1.3b")
    settings = {"height": 480, "width": 832, "num_frames": 81, "num_inference_steps": 30}
    pair = gallery.begin(RunStart("compare", "a cat", spec.name, 1, settings, rewritten="A cat sleeps."))
    batch = gallery.begin(RunStart("variations", "a cat", spec.name, 1, settings, rewritten="A cat.", seeds=(1, 2, 3)))
    wan = GpuTime(spec, gallery, cap=1000)
    one = wan.seconds("generate", {**settings, "rewritten": "x"})
    assert wan.seconds("rerun", {"run_id": pair}) == wan.seconds("compare", {**settings, "rewritten": "x"})
    assert wan.seconds("rerun", {"run_id": batch}) == wan.seconds("variations", {**settings, "rewritten": "x",
                                                                                  "count": 3})
    assert wan.seconds("variation", {"run_id": batch, "seed": 2}) == one
    overhead_only = math.ceil(OVERHEAD_SECONDS * MARGIN)  # no such run: the handler says so at once
    assert wan.seconds("rerun", {"run_id": 999}) == wan.seconds("variation", {"run_id": None}) == overhead_only


# -- the shim around the app's handlers -------------------------------------------------------------
def fake_spaces(calls: list) -> types.ModuleType:
    """A stand-in for `spaces`: GPU(duration=fn) records fn's answer for each call, and sends results through
    pickle as ZeroGPU's worker does (so only plain CPU data may come back)."""
    module = types.ModuleType("spaces")

    def GPU(task=None, *, duration=None, size=None):  # noqa: N802 - the real name
        def decorate(fn):
            if inspect.isgeneratorfunction(fn):
                @functools.wraps(fn)
                def wrapper(*args, **kwargs):
                    calls.append((fn.__name__, duration(*args, **kwargs)))
                    for item in fn(*args, **kwargs):
                        yield pickle.loads(pickle.dumps(item))
            else:
                @functools.wraps(fn)
                def wrapper(*args, **kwargs):
                    calls.append((fn.__name__, duration(*args, **kwargs)))
                    return pickle.loads(pickle.dumps(fn(*args, **kwargs)))
            wrapper.fake_zerogpu = True
            return wrapper

        return decorate if task is None else decorate(task)

    module.GPU = GPU
    return module


def endpoints(demo: gr.Blocks) -> dict:
    return {fn.api_name: fn.fn for fn in demo.fns.values() if fn.api_name and fn.api_visibility == "public"}


def plain(value) -> bool:
    """Only CPU data: text, numbers, None, and lists, tuples and dicts of them."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return True
    if isinstance(value, (list, tuple)):
        return all(plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    return False


def test_without_spaces_the_handlers_are_left_as_they_are(tiny_engine, monkeypatch):
    from demo.ui import build_demo

    monkeypatch.setitem(sys.modules, "spaces", None)  # `import spaces` raises ImportError
    marker = object()
    assert gpu(lambda *a: 1)(marker) is marker
    fns = endpoints(build_demo(tiny_engine))
    for name in GPU_ACTIONS:
        assert not hasattr(fns[name], "__wrapped__"), name
    video, prompt_used, seed, sidecar = fns["generate"]("a red ball", "A red ball rolls.", False, None, 3)
    assert Path(video).exists() and (prompt_used, seed) == ("A red ball rolls.", 3)
    assert list(fns["rewrite"]("a red ball"))[-1][0]


def test_with_spaces_gpu_actions_request_durations_from_their_settings(tiny_engine, monkeypatch):
    from demo.ui import build_demo

    calls: list = []
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces(calls))
    demo = build_demo(tiny_engine, gpu_max_seconds=45)
    fns = endpoints(demo)
    assert {name for name, fn in fns.items() if getattr(fn, "fake_zerogpu", False)} == GPU_ACTIONS
    timing = GpuTime(tiny_engine.spec, tiny_engine.gallery, 45)

    # 1. Each action runs once through the decorator; results are plain data that pickle
    out = fns["generate"]("a red ball", "A red ball rolls.", False, None, 3)
    assert plain(out) and Path(out[0]).exists() and out[2] == 3
    texts = list(fns["rewrite"]("a red ball"))
    assert texts and all(isinstance(t, str) and isinstance(note, str) for t, note in texts)
    pair = fns["compare"]("a red ball", "A red ball rolls across a table.", None, 5)
    assert plain(pair) and pair[4] == 5
    previews, seeds, run_id = fns["variations"]("a red ball", "", True, 2, 40)
    assert plain((previews, seeds, run_id)) and seeds == [40, 41]
    assert plain(fns["variation"](run_id, 41))
    assert isinstance(fns["rerun"](run_id, False), int)
    assert [name for name, _ in calls] == ["generate", "rewrite", "compare", "variations", "pick", "rerun"]
    assert calls[0][1] == timing.seconds("generate", {"rewritten": "A red ball rolls.", "height": 64, "width": 112,
                                                      "num_frames": 9, "num_inference_steps": 4})

    # 2. The duration reads steps, frames and size (refused here at once: the prompt is empty) ...
    calls.clear()
    big = {"num_frames": 33, "num_inference_steps": 100, "height": 256, "width": 256}
    for steps in (4, 100):
        with pytest.raises(gr.Error, match="empty"):
            fns["generate"]("", "", True, None, 1, 256, 256, 33, steps)
    assert calls[0][1] < calls[1][1] == timing.seconds("generate", {**big, "use_raw": True}) == 45
    # 3. ... and is clamped to the cap; a call that needs more than the cap is refused before asking for a GPU
    capped = endpoints(build_demo(tiny_engine, gpu_max_seconds=40))["compare"]
    with pytest.raises(gr.Error, match="empty"):
        capped("", "", None, 1, 64, 64, 5, 100)
    assert calls[-1] == ("compare", 40)
    calls.clear()
    with pytest.raises(gr.Error, match="needs about 55 s of GPU time; a ZeroGPU call gets at most 40 s"):
        capped("a red ball", "A red ball rolls.", None, 1, 256, 256, 33, 100)
    assert calls == []


def test_real_spaces_package_is_a_no_op_off_zerogpu(monkeypatch):
    import spaces  # requirements-dev.txt installs it, unpinned like on Spaces

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert sys.modules["spaces"] is spaces

    def handler(prompt: str) -> str:
        return prompt.upper()

    assert gpu(lambda prompt: 30)(handler) is handler


def test_app_imports_spaces_before_torch_and_gradio(tmp_path):
    """A fake `spaces` on the path records what was loaded when app.py imported it, and which handlers it wraps."""
    fake = tmp_path / "fake" / "spaces.py"
    fake.parent.mkdir()
    log = tmp_path / "spaces.jsonl"
    fake.write_text(
        "import json, sys\n"
        f"LOG = {str(log)!r}\n"
        "with open(LOG, 'a') as f:\n"
        "    f.write(json.dumps({'imported_with': sorted(m for m in ('torch', 'gradio', 'diffusers') if m in sys.modules)}) + '\\n')\n"
        "def GPU(task=None, *, duration=None, size=None):\n"
        "    def decorate(fn):\n"
        "        with open(LOG, 'a') as f:\n"
        "            f.write(json.dumps({'wrapped': fn.__name__, 'seconds': duration.__name__}) + '\\n')\n"
        "        return fn\n"
        "    return decorate\n"
        "def gradio_auto_wrap(fn):\n"
        "    return fn\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{fake.parent}{os.pathsep}{ROOT}", "RR_REWRITER": "none",
           "RR_VIDEO": "tiny-random", "RR_OUTPUTS": str(tmp_path / "outputs"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=env, check=True, timeout=300,
                   capture_output=True)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[0] == {"imported_with": []}, "app.py must import spaces before torch, gradio and diffusers"
    wrapped = {r["wrapped"]: r["seconds"] for r in records[1:]}
    assert wrapped == {"rewrite": "rewrite_gpu_seconds", "generate": "generate_gpu_seconds",
                       "compare": "compare_gpu_seconds", "variations": "variations_gpu_seconds",
                       "pick": "variation_gpu_seconds", "rerun": "rerun_gpu_seconds"}


# -- no CPU offload on ZeroGPU ----------------------------------------------------------------------
class FakePipe:
    def __init__(self):
        self.calls: list[str] = []
        self.vae = types.SimpleNamespace(enable_tiling=lambda: self.calls.append("vae_tiling"))

    def set_progress_bar_config(self, **kwargs):
        pass

    def enable_model_cpu_offload(self):
        self.calls.append("offload")

    def to(self, device):
        self.calls.append(f"to {device}")
        return self


@pytest.mark.parametrize("zero_gpu, expected", [(None, ["offload", "vae_tiling"]), ("true", ["to cuda", "vae_tiling"])])
def test_no_cpu_offload_on_zerogpu(monkeypatch, tmp_path, zero_gpu, expected):
    import diffusers

    import pipeline.loading as loading
    import runtime.devices as devices

    pipe = FakePipe()
    monkeypatch.setattr(loading, "weights_folder", lambda spec: tmp_path)
    monkeypatch.setattr(diffusers.WanPipeline, "from_pretrained", classmethod(lambda cls, folder, dtype: pipe))
    if zero_gpu:
        monkeypatch.setenv("SPACES_ZERO_GPU", zero_gpu)
    else:
        monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    loaded = loading.load_video(get_video_spec("wan2.1-t2v-1.3b"), "cuda")
    assert pipe.calls == expected
    assert ("model CPU offload" in loaded.memory) is (zero_gpu is None)
    assert devices.on_zerogpu({"SPACES_ZERO_GPU": "True"}) and not devices.on_zerogpu({})


# -- Stop across the worker boundary ---------------------------------------------------------------
def _job(sessions, request, began, result):
    flag = sessions.begin(request)
    began.set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if flag.is_set():
            result.value = 1
            return
        time.sleep(0.01)


def test_stop_reaches_a_job_in_a_forked_worker(tmp_path):
    """On ZeroGPU a handler runs in a process forked from the web server; Stop runs in the server."""
    from demo.sessions import Sessions

    sessions = Sessions(stop_dir=tmp_path)
    request = types.SimpleNamespace(session_hash="abc123")
    other = types.SimpleNamespace(session_hash="someone-else")
    ctx = multiprocessing.get_context("fork")
    began, result = ctx.Event(), ctx.Value("i", 0)
    worker = ctx.Process(target=_job, args=(sessions, request, began, result))
    worker.start()
    assert began.wait(20)
    sessions.cancel(other)  # another tab's Stop does not stop this job
    time.sleep(0.2)
    assert result.value == 0 and worker.is_alive()
    sessions.cancel(request)
    worker.join(20)
    assert result.value == 1
    assert not sessions.begin(request).is_set()  # the next job starts unstopped


# -- cleanup ----------------------------------------------------------------------------------------
def _run(gallery: Gallery, stem: str, created: float | None = None) -> tuple[int, list[Path]]:
    files = [gallery.folder / f"{stem}.mp4", gallery.folder / f"{stem}.json"]
    run_id = gallery.begin(RunStart("generate", "a cat", "tiny-random", 1, {}, planned=tuple(map(str, files))))
    for path in files:
        path.write_bytes(b"x")
    gallery.complete(run_id, {"video": files[0], "sidecar": files[1]}, prompt_used="a cat")
    if created is not None:
        with gallery._write() as db:  # backdate the run (the test's clock)
            db.execute("UPDATE runs SET created=? WHERE id=?", (created, run_id))
        for path in files:
            os.utime(path, (created, created))
    return run_id, files


def test_cleanup_removes_old_outputs_and_expires_their_runs(tmp_path):
    from demo.cleanup import Cleanup, sweep

    gallery = Gallery(tmp_path)
    day = 24 * 3600
    now = time.time()
    old_id, old_files = _run(gallery, "20200101-000000-aaaaaaaa", created=now - 2 * day)
    new_id, new_files = _run(gallery, "20990101-000000-bbbbbbbb")
    # a newer run whose sidecar was an old file: it must not be left pointing at nothing
    shared_id, shared_files = _run(gallery, "20200101-000001-cccccccc")
    os.utime(shared_files[1], (now - 2 * day, now - 2 * day))
    (tmp_path / "exports").mkdir()
    old_export = tmp_path / "exports" / "runs-20200101-000000-abcdef.csv"
    leftover = tmp_path / ".20200101-000002-dddddddd.1a2b3c.part.mp4"
    keep = [tmp_path / "notes.txt", tmp_path / "exports" / "mine.csv"]
    for path in (old_export, leftover, *keep):
        path.write_text("x")
        os.utime(path, (now - 2 * day, now - 2 * day))

    swept = sweep(gallery, day, now)
    assert (swept.runs_expired, swept.files_removed, swept.rows_left_without_files) == (1, 3, 1)
    assert not any(p.exists() for p in (*old_files, old_export, leftover, shared_files[1]))
    assert all(p.exists() for p in (*new_files, *keep, gallery.path))
    status = {run.id: (run.status, run.error) for run in gallery.list(limit=10)}
    assert status == {old_id: ("expired", "removed by the age policy"), new_id: ("completed", None),
                      shared_id: ("expired", "files missing")}
    assert sweep(gallery, day, now) == type(swept)(0, 0, 0)  # nothing more to do

    # the app's sweeper: one sweep at start, then it stops when asked
    _, files = _run(gallery, "20200101-000003-eeeeeeee", created=now - 2 * day)
    cleanup = Cleanup(gallery, 24).start()
    deadline = time.monotonic() + 10
    while files[0].exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    cleanup.stop()
    assert not files[0].exists() and not cleanup._thread.is_alive()
    assert cleanup.interval_s == 3600 and Cleanup(gallery, 0.01).interval_s == 60


def test_only_the_apps_own_file_names_are_swept():
    from demo.cleanup import EXPORT_NAME, OUTPUT_NAME

    assert OUTPUT_NAME.match("20261122-012646-a0f688d5.mp4") and OUTPUT_NAME.match("20261122-012646-a0f688d5.preview-3.mp4")
    assert OUTPUT_NAME.match(".20261122-012646-a0f688d5.1a2b3c.part.mp4") and EXPORT_NAME.match("runs-20261122-012646-abc123.jsonl")
    for name in ("runs.sqlite3", "runs.sqlite3-wal", "README.md", "my-20261122-012646-a0f688d5.mp4"):
        assert not OUTPUT_NAME.match(name) and not EXPORT_NAME.match(name)


def test_launched_app_with_cleanup_sweeps_at_start(tmp_path):
    from tests.launched import launched_app

    gallery = Gallery(tmp_path)
    day = 24 * 3600
    old_id, old_files = _run(gallery, "20200101-000000-ffffffff", created=time.time() - day)
    with launched_app(tmp_path, RR_CLEANUP_HOURS="2") as (app, _):
        assert app.demo.delete_cache == (3600, 7200)  # Gradio's cached copies go on the same schedule
        deadline = time.monotonic() + 20
        while gallery.get(old_id).status != "expired" and time.monotonic() < deadline:
            time.sleep(0.1)
    assert gallery.get(old_id).status == "expired" and not any(p.exists() for p in old_files)


# -- ZeroGPU's cap with a reference image --------------------------------------------------------------
def test_on_zerogpu_an_image_request_at_the_defaults_fits_the_cap(monkeypatch):
    from pipeline.image_to_video import image_target, partner_settings

    wan = get_video_spec("wan2.1-t2v-1.3b")
    ui_defaults = {"height": wan.height, "width": wan.width, "num_frames": wan.num_frames,
                   "num_inference_steps": wan.num_inference_steps, "image": "ref.png"}
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    full = partner_settings(wan, image_target(wan), dict(ui_defaults))
    assert (full["num_frames"], full["num_inference_steps"]) == (121, 50)  # the model card's, off ZeroGPU
    assert GpuTime(wan, cap=300).needed("generate", ui_defaults) > 300  # would be cut off part way

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    partner = image_target(wan)
    zerogpu = partner_settings(wan, partner, dict(ui_defaults))
    assert (zerogpu["height"], zerogpu["width"]) == partner.sizes["16:9"]  # 720p kept; fewer frames and steps
    assert (zerogpu["num_frames"], zerogpu["num_inference_steps"]) == (81, 30)
    assert GpuTime(wan, cap=300).seconds("generate", ui_defaults) < 300  # margin included: not cut off
    assert get_video_spec("wan2.2-ti2v-5b").num_frames == 81 and VIDEO_PRESETS["wan2.2-ti2v-5b"].num_frames == 121


def test_a_call_over_the_cap_is_refused_with_its_estimate_before_asking_for_a_gpu(monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces(calls))
    timing = GpuTime(get_video_spec("wan2.1-t2v-1.3b"), cap=60)
    ran: list = []

    def generate(prompt: str, num_inference_steps: float = 50, height: float = 480, width: float = 832):
        ran.append(prompt)
        return prompt

    def rewrite(prompt: str):
        yield prompt

    guarded = timing.wrap("generate", generate)
    with pytest.raises(gr.Error, match=r"needs about \d+ s of GPU time; a ZeroGPU call gets at most 60 s"):
        guarded("a cat")
    assert ran == [] and calls == []  # refused before the GPU was asked for
    assert guarded("a cat", num_inference_steps=2, height=64, width=64) == "a cat" and calls
    assert list(timing.wrap("rewrite", rewrite)("a dog")) == ["a dog"]  # streams stay streams
