"""benchmarks.gpu_check: the reduced run a CPU can do, its report and exit status; the full run needs CUDA."""

import json

import pytest


@pytest.fixture
def gpu_check(monkeypatch):
    import benchmarks.gpu_check as gpu_check
    from runtime.hub import cache_root

    monkeypatch.setenv("RR_CACHE", str(cache_root()))  # reuse the tiny models the other tests built
    return gpu_check


def test_cpu_run_steps_down_and_writes_the_table_and_json(gpu_check, tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cpu", "--only", "rewriter,tuned,step-down,second-oom", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    rows = {row["check"]: row for row in data["rows"]}
    assert data["passed"] and data["environment"]["device"] == "cpu"
    assert rows["rewriter nf4 (bitsandbytes)"]["result"] == "pass"
    assert rows["rewriter tuned (LoRA merged)"]["result"] == "pass" and "weights adapter-" in rows[
        "rewriter tuned (LoRA merged)"]["detail"]  # fmt: skip
    assert "retried with" in rows["out of memory: step down, retry"]["detail"]
    assert "'old pipeline alive': False" in rows["out of memory: step down, retry"]["detail"]
    assert rows["out of memory again: the message"]["detail"].startswith("Out of GPU memory")
    assert "| check | result | measured peak GB | estimated peak GB |" in capsys.readouterr().out


def test_a_check_that_raises_is_a_failed_row_and_exit_status_1(gpu_check, monkeypatch, capsys):
    monkeypatch.setitem(gpu_check.CHECKS, "vae", lambda device, outputs: 1 / 0)
    assert gpu_check.main(["--device", "cpu", "--only", "vae"]) == 1
    out = capsys.readouterr().out
    assert "| vae | FAIL |" in out and "ZeroDivisionError" in out and "FAILED: vae" in out


def test_cuda_only_rungs_are_skipped_with_the_reason_on_cpu(gpu_check):
    from pipeline.memory_plan import LADDER

    reasons = {rung.name: gpu_check._needs_accelerator(rung) for rung in LADDER}
    assert reasons["resident"] == "" and reasons["group offload"] == ""
    assert "accelerator" in reasons["model offload"] and "accelerator" in reasons["sequential offload"]
    assert "fp8" in reasons["group offload, transformer fp8"]


def test_cpu_image_rows_render_text_and_image_requests_with_the_partner(gpu_check, monkeypatch, capsys):
    import pipeline.memory_plan as memory_plan

    rungs = (memory_plan.rung_named("resident"), memory_plan.rung_named("text encoder on CPU, group offload"))
    monkeypatch.setattr(memory_plan, "LADDER", rungs)
    assert gpu_check.main(["--device", "cpu", "--only", "image-rungs"]) == 0
    out = capsys.readouterr().out
    for rung in rungs:
        assert f"| rung: {rung.name} · tiny-random-i2v text + image | pass |" in out
        assert f"| rung: {rung.name} · tiny-random + image (tiny-random-i2v) | pass |" in out
    assert "text encoder shared with tiny-random; calls: image; text |" in out  # resident: the very module
    assert "calls: text; image |" in out


def test_placement_flags_models_left_on_the_accelerator_and_missing_hooks(gpu_check):
    from dataclasses import replace

    from pipeline.loading import load_video
    from pipeline.memory_plan import Budget, estimate, rung_named

    spec = gpu_check.tiny_spec("tiny-random-i2v")
    settings = gpu_check._settings(spec, gpu_check.I2V_SETTINGS)
    video = load_video(
        spec, "cpu", plan=estimate(spec.name, None, "none", rung_named("resident"), settings, Budget(8, 64))
    )
    assert gpu_check._placement(video, "cpu") == ([], "")
    video.pipe.vae.to("meta")  # 'meta' stands in for the accelerator: the VAE was left there
    video.plan = replace(video.plan, rung="model offload")
    problems, where = gpu_check._placement(video, "meta", ["transformer", "vae"])
    assert "model offload left on the GPU after the call: vae" in problems
    assert "model offload hooks not armed for the next call" in problems and any(
        "no offload hook" in p for p in problems
    )
    assert where == "on the GPU while denoising: transformer, vae; after: vae"
    video.plan = estimate(spec.name, None, "none", rung_named("group offload"), settings, Budget(8, 64))
    problems, _ = gpu_check._placement(video, "cpu")
    assert problems == ["text_encoder: no group offload hooks", "transformer: no group offload hooks"]


@pytest.mark.gpu
def test_gpu_check_passes_on_cuda(tmp_path):
    from benchmarks.gpu_check import main

    assert main(["--out", str(tmp_path / "gpu_check.json")]) == 0


def test_gpu_wheels_drops_unused_native_libraries_and_their_record_lines(tmp_path):
    import zipfile

    from benchmarks.gpu_wheels import slim

    wheel = tmp_path / "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl"
    names = [
        "bitsandbytes/__init__.py",
        "bitsandbytes/libbitsandbytes_cpu.so",
        "bitsandbytes/libbitsandbytes_cuda118.so",
        "bitsandbytes/libbitsandbytes_cuda124.so",
        "bitsandbytes/libbitsandbytes_cuda126.so",
        "bitsandbytes/libbitsandbytes_cuda130.so",
        "bitsandbytes/libbitsandbytes_rocm64.so",
        "bitsandbytes/libbitsandbytes_xpu2025.so",
    ]
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in names:
            zf.writestr(name, b"x")
        zf.writestr("bitsandbytes-0.50.2.dist-info/RECORD", "\n".join(f"{n},sha256=x,1" for n in names) + "\n")
    assert slim(wheel) == 4
    with zipfile.ZipFile(wheel) as zf:
        kept = [n for n in zf.namelist() if n.endswith(".so")]
        record = zf.read("bitsandbytes-0.50.2.dist-info/RECORD").decode()
    assert sorted(kept) == [
        "bitsandbytes/libbitsandbytes_cpu.so",
        "bitsandbytes/libbitsandbytes_cuda126.so",
        "bitsandbytes/libbitsandbytes_cuda130.so",
    ]
    assert "cuda118" not in record and "rocm" not in record and "cuda126" in record
