from pathlib import Path

import pytest

from demo.config import from_env, parse_args
from pipeline.engine import default_presets


def test_defaults():
    c = parse_args([], environ={})
    assert (c.rewriter, c.video, c.host, c.port, c.outputs, c.share) == (None, None, "127.0.0.1", 7860, Path("outputs"), False)
    assert default_presets("cuda") == ("qwen2.5-3b-instruct", "wan2.1-t2v-1.3b")
    assert default_presets("cpu") == ("gemma-3-270m", "toy-world")


def test_env_overrides_defaults_and_flags_override_env():
    env = {"RR_REWRITER": "tiny-random", "RR_VIDEO": "tiny-random", "RR_HOST": "0.0.0.0", "RR_PORT": "9000", "RR_OUTPUTS": "/tmp/x"}
    c = from_env(env)
    assert (c.rewriter, c.video, c.host, c.port, c.outputs) == ("tiny-random", "tiny-random", "0.0.0.0", 9000, Path("/tmp/x"))
    c = parse_args(["--rewriter", "none", "--port", "9100", "--host", "localhost", "--share"], environ=env)
    assert (c.rewriter, c.video, c.host, c.port, c.share) == ("none", "tiny-random", "localhost", 9100, True)


def test_bad_values_are_refused_clearly(capsys):
    with pytest.raises(ValueError, match="RR_PORT"):
        from_env({"RR_PORT": "http"})
    with pytest.raises(ValueError, match="unknown video preset"):
        from_env({"RR_VIDEO": "sora"})
    with pytest.raises(SystemExit):
        parse_args(["--rewriter", "gpt-9"], environ={})
    assert "unknown rewriter" in capsys.readouterr().err
