import pytest

from pipeline.loading import load_video
from pipeline.presets import get_video_spec
from runtime.hub import ModelUnavailableError, check_free_disk, ensure_downloaded


def test_offline_real_preset_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="Wan-AI/Wan2.1-T2V-1.3B-Diffusers.*not in the local"):
        load_video(get_video_spec("wan2.1-t2v-1.3b"), "cpu")


def test_unreachable_hub_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(ModelUnavailableError, match="cannot be downloaded now"):
        ensure_downloaded("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", 29.0)


def test_disk_check_refuses_when_too_small(tmp_path):
    with pytest.raises(ModelUnavailableError, match="Not enough disk space"):
        check_free_disk(tmp_path / "not" / "yet", 10**18, "a huge model")
    check_free_disk(tmp_path, 1, "a tiny file")
