"""Each generation parameter and job option is defined once, in protocol.PARAMS / JOB_OPTIONS: the
HTTP request schema, the command-line flags and the check (generation/params.py) all come from it."""
import pytest

from inference_server import protocol
from inference_server.cli.main import build_parser
from inference_server.cli.options import given_params
from inference_server.errors import InputError
from inference_server.generation.params import check_value
from inference_server.server.schemas import JobParams

SPECS = (*protocol.PARAMS, *protocol.JOB_OPTIONS)


def ranged(prop: dict) -> dict:
    """The part of a JSON-schema property that holds the range (crop_size: besides NO_CROP)."""
    return next(option for option in prop["anyOf"] if "minimum" in option) if "anyOf" in prop else prop


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_the_request_schema_is_the_spec(spec):
    prop = JobParams.model_json_schema()["properties"][spec.name]
    assert prop["default"] == spec.default and prop["description"] == spec.hint
    if spec.kind == "choice":
        assert tuple(prop["enum"]) == spec.choices
    elif spec.kind != "flag":
        assert (ranged(prop)["minimum"], ranged(prop)["maximum"]) == (spec.low, spec.high)


@pytest.mark.parametrize("spec", [spec for spec in SPECS if spec.kind in ("number", "integer")],
                         ids=lambda spec: spec.name)
def test_the_check_refuses_just_outside_the_specs_range(spec):
    assert check_value(spec, spec.low) == spec.low and check_value(spec, spec.high) == spec.high
    for outside in (spec.low - 1, spec.high + 1):
        if spec.name == "crop_size" and outside == protocol.NO_CROP:
            continue
        with pytest.raises(InputError):
            check_value(spec, outside)


def test_every_parameter_is_a_generate_flag_with_the_specs_default():
    parser = build_parser()
    generate = parser._subparsers._group_actions[0].choices["generate"]
    flags = {action.dest: action for action in generate._actions}
    for spec in protocol.PARAMS:
        assert spec.name in flags, spec.name
        if spec.kind != "flag":
            assert f"default {spec.default:g}" in flags[spec.name].help if spec.kind == "number" \
                else f"default {spec.default}" in flags[spec.name].help
    args = parser.parse_args(["generate", "cat.png", "-o", "out", "--crop-size", "-1", "--use-posterior-mean"])
    assert given_params(args) == {"crop_size": -1, "use_posterior_mean": True}
