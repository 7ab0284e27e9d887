"""One settings model: the `serve` flags, GLIMPSE_* variables and the RayService args all build
server/settings.py's ServerSettings, and each refuses a wrong value by its name."""
from pathlib import Path

import pytest

from inference_server import protocol
from inference_server.cli.main import build_parser
from inference_server.cli.serve import settings_from_args
from inference_server.cluster.rayservice import RayServiceArgs
from inference_server.errors import InputError
from inference_server.generation.checkpoints import cache_dir
from inference_server.server.settings import ServerSettings, settings_from


def serve_args(*flags):
    return build_parser().parse_args(["serve", *flags])


def test_defaults_are_written_once(monkeypatch):
    for name in ServerSettings.model_fields:
        monkeypatch.delenv(f"GLIMPSE_{name.upper()}", raising=False)
    settings = settings_from_args(serve_args())
    assert settings == ServerSettings()
    assert settings.output_root == cache_dir() / "outputs"
    assert settings.max_body_bytes == int(protocol.DEFAULT_MAX_BODY_MB * protocol.MIB)
    assert settings.max_queue == protocol.DEFAULT_MAX_QUEUE and settings.host == "127.0.0.1"


def test_flags_win_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GLIMPSE_MAX_QUEUE", "7")
    monkeypatch.setenv("GLIMPSE_OUTPUT_ROOT", str(tmp_path / "from-env"))
    settings = settings_from_args(serve_args("--max-queue", "3", "--allow-host", "a.example", "--allow-host", "b"))
    assert settings.max_queue == 3 and settings.allowed_hosts == ("a.example", "b")
    assert settings.output_root == tmp_path / "from-env"


def test_a_wrong_flag_is_named_as_typed(monkeypatch):
    monkeypatch.delenv("GLIMPSE_MAX_QUEUE", raising=False)
    with pytest.raises(InputError, match="--max-queue"):
        settings_from_args(serve_args("--max-queue", "0"))
    with pytest.raises(InputError, match="--max-body-mb"):
        settings_from_args(serve_args("--max-body-mb", "-1"))


def test_a_wrong_environment_variable_is_refused(monkeypatch):
    monkeypatch.setenv("GLIMPSE_PREVIEW_CONCURRENCY", "none")
    with pytest.raises(InputError, match="preview_concurrency"):
        settings_from(ServerSettings, {})


def test_rayservice_args_are_checked_by_the_settings_model(tmp_path):
    config = settings_from(RayServiceArgs, {"replicas": "2", "random_weights": "true", "output_root": str(tmp_path),
                                            "max_body_mb": 8})
    settings = config.server_settings()
    assert type(settings) is ServerSettings
    assert settings.output_root == Path(tmp_path) and settings.max_body_bytes == 8 * protocol.MIB
    assert settings.host == "0.0.0.0" and settings.allowed_hosts == ("*",)
    assert config.replicas == 2 and config.model_options() == {"random_weights": True}
    with pytest.raises(InputError, match="gpus"):
        settings_from(RayServiceArgs, {"gpus": 1})
    with pytest.raises(InputError, match="replicas"):
        settings_from(RayServiceArgs, {"replicas": 0})
    named = settings_from(RayServiceArgs, {"host": "glimpse.example"}).server_settings()
    assert named.host == "glimpse.example" and named.allowed_hosts == ()
