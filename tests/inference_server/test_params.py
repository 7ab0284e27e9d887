"""Parameter checks: defaults, accepted values, and refusals with a message."""
import pytest

from inference_server.errors import InputError
from inference_server import protocol
from inference_server.generation.params import GenerationParams, cli_flag, parse_params, python_keyword


def test_defaults_and_accepted_values():
    assert parse_params({}) == GenerationParams()
    params = parse_params({"elevation": 0, "crop_size": -1, "cfg_scale": 3, "steps": 1, "seed": 7,
                           "samples": 16, "batch_views": 4, "background": "keep",
                           "use_posterior_mean": True})
    assert params.elevation == 0.0 and isinstance(params.elevation, float)
    assert (params.crop_size, params.steps, params.samples, params.batch_views) == (-1, 1, 16, 4)
    assert GenerationParams().batch_views == 0  # automatic: the service decides
    assert parse_params({"batch_views": 0}).batch_views == 0
    assert parse_params({"batch_views": 16}).batch_views == 16
    assert parse_params({"steps": 20.0}).steps == 20  # JSON numbers may come as floats
    assert parse_params({"elevation": 80}).warnings()  # accepted, but said to be unusual
    assert parse_params({"output_dir": "/x"}, extra_names=("output_dir",)) == GenerationParams()


@pytest.mark.parametrize("raw, words", [
    ({"elevation": 91}, "'elevation' must be between -90 and 90"),
    ({"elevation": float("nan")}, "'elevation' must be between"),
    ({"elevation": "30"}, "'elevation' must be a number"),
    ({"crop_size": 10}, "'crop_size' must be -1 (no crop) or a whole number from 64 to 256"),
    ({"crop_size": 300}, "'crop_size' must be -1 (no crop)"),
    ({"crop_size": 200.5}, "'crop_size' must be a whole number"),
    ({"cfg_scale": -1}, "'cfg_scale' must be between 0 and 20"),
    ({"steps": 0}, "'steps' must be between 1 and 1000"),
    ({"steps": 2.5}, "'steps' must be a whole number"),
    ({"steps": True}, "'steps' must be a whole number"),
    ({"seed": -1}, "'seed' must be between 0"),
    ({"samples": 17}, "'samples' must be between 1 and 16"),
    ({"batch_views": 17}, "'batch_views' must be between 0 and 16, got 17 (views per network call; 0 = automatic"),
    ({"batch_views": -1}, "'batch_views' must be between 0 and 16"),
    ({"background": "green"}, "'background' must be one of auto, keep, remove"),
    ({"use_posterior_mean": "yes"}, "'use_posterior_mean' must be true or false"),
    ({"colour": 1}, "unknown parameter(s): colour"),
    ([1, 2], "'params' must be a JSON object"),
])
def test_refusals_say_what_is_wrong(raw, words):
    with pytest.raises(InputError) as caught:
        parse_params(raw)
    assert words in caught.value.message
    assert caught.value.http_status == 400


def test_defaults_and_ranges_come_from_the_protocol():
    assert GenerationParams().to_json() == protocol.PARAM_DEFAULTS
    for spec in protocol.PARAMS:
        if spec.kind in ("number", "integer") and spec.name != "crop_size":
            with pytest.raises(InputError):
                parse_params({spec.name: spec.high + 1})
            assert getattr(parse_params({spec.name: spec.high}), spec.name) == spec.high


def test_messages_name_the_parameter_as_the_interface_spells_it():
    with pytest.raises(InputError, match="^--crop-size must be -1"):
        parse_params({"crop_size": 20}, spell=cli_flag)
    with pytest.raises(InputError, match="^steps= must be between 1 and 1000"):
        parse_params({"steps": 0}, spell=python_keyword)


def test_setup_messages_name_options_as_the_interface_sets_them(tmp_path, monkeypatch):
    from inference_server.generation import checkpoints
    from inference_server.errors import SetupError
    from inference_server.generation.params import cli_switch, python_switch
    from inference_server.generation.service import SyncDreamerService

    python_side = SyncDreamerService(random_weights=True, device="cpu", switch=python_switch).info()["warning"]
    assert "random_weights=True" in python_side and "--random-weights" not in python_side
    assert "--random-weights" in SyncDreamerService(random_weights=True, device="cpu").info()["warning"]
    monkeypatch.setattr(checkpoints, "default_locations", lambda: [tmp_path / "none.ckpt"])
    monkeypatch.delenv(checkpoints.CHECKPOINT_ENV, raising=False)
    for switch, words in ((python_switch, "checkpoint=PATH"), (cli_switch, "--checkpoint PATH")):
        with pytest.raises(SetupError, match=words):
            checkpoints.find_checkpoint(None, switch)
