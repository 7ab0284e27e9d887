"""Generation parameters: their check, with defaults and ranges from protocol.PARAMS (no torch).

One check for every entry point (HTTP jobs, the command line, the Python API), so the same
value is accepted or refused everywhere. Messages name a parameter in the words of the
interface in use: `spell` turns a parameter name into how the person wrote it (a JSON field,
`--crop-size` on the command line, `crop_size=` in Python).
"""
import math
from dataclasses import asdict, dataclass

from .. import protocol
from ..errors import InputError


@dataclass(frozen=True)
class GenerationParams:
    """Everything that shapes one generation (the model and device are not in here)."""

    elevation: float = protocol.PARAM_DEFAULTS["elevation"]  # of the INPUT view; conditions the model only
    crop_size: int = protocol.PARAM_DEFAULTS["crop_size"]  # object size after cropping, -1 = no crop
    cfg_scale: float = protocol.PARAM_DEFAULTS["cfg_scale"]
    steps: int = protocol.PARAM_DEFAULTS["steps"]  # DDIM steps
    seed: int = protocol.PARAM_DEFAULTS["seed"]
    samples: int = protocol.PARAM_DEFAULTS["samples"]  # independent 16-view sets from the same input
    batch_views: int = protocol.PARAM_DEFAULTS["batch_views"]  # views per UNet call; 0 = the service picks
    background: str = protocol.PARAM_DEFAULTS["background"]  # auto: remove it unless the image has alpha
    use_posterior_mean: bool = protocol.PARAM_DEFAULTS["use_posterior_mean"]

    def to_json(self) -> dict:
        return asdict(self)

    def warnings(self) -> list:
        """Accepted but unusual choices, said to the person (not errors)."""
        notes = []
        low, high = protocol.RECOMMENDED_ELEVATION
        if not low <= self.elevation <= high:
            notes.append(f"elevation {self.elevation:g} is outside the recommended {low:g}..{high:g} "
                         "degrees; the model saw few such inputs, so expect weaker views")
        if self.cfg_scale == 0:
            notes.append("cfg_scale 0 ignores the input image entirely")
        return notes


assert tuple(GenerationParams.__dataclass_fields__) == protocol.PARAM_NAMES


def json_name(name: str) -> str:
    """How a parameter is named in a JSON body (and in messages of the HTTP server)."""
    return f"'{name}'"


def cli_flag(name: str) -> str:
    """How a parameter is named on the command line."""
    return "--" + name.replace("_", "-")


def python_keyword(name: str) -> str:
    """How a parameter is named in the Python API (a keyword argument)."""
    return f"{name}="


def cli_switch(name: str, value=True) -> str:
    """How a person sets an option on the command line: --random-weights, --checkpoint PATH."""
    return cli_flag(name) if value is True else f"{cli_flag(name)} {value}"


def python_switch(name: str, value=True) -> str:
    """How a person sets an option in the Python API: random_weights=True, checkpoint=PATH."""
    return f"{name}={value}"


def _bad(what: str, message: str) -> InputError:
    return InputError(f"{what} {message}", code=protocol.ErrorCode.BAD_PARAMETER)


def check_value(spec: protocol.ParamSpec, value, spell=json_name):
    """`value` of the parameter `spec`, converted to its type; InputError when it is refused."""
    what = spell(spec.name)
    hint = f" ({spec.hint})" if spec.hint else ""
    if spec.kind == "flag":
        if not isinstance(value, bool):
            raise _bad(what, f"must be true or false, got {value!r}")
        return value
    if spec.kind == "choice":
        if value not in spec.choices:
            raise _bad(what, f"must be one of {', '.join(spec.choices)}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a number" if spec.kind == "number" else "a whole number"
        raise _bad(what, f"must be {kind}, got {value!r}{hint}")
    if spec.kind == "number":
        if not math.isfinite(value) or not spec.low <= value <= spec.high:
            raise _bad(what, f"must be between {spec.low:g} and {spec.high:g}, got {value!r}{hint}")
        return float(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise _bad(what, f"must be a whole number, got {value!r}{hint}")
        value = int(value)
    if spec.name == "crop_size" and value == protocol.NO_CROP:
        return value
    if not spec.low <= value <= spec.high:
        low, high = int(spec.low), int(spec.high)
        if spec.name == "crop_size":
            raise _bad(what, f"must be -1 (no crop) or a whole number from {low} to {high}, got {value}; "
                       "200 suits most objects")
        raise _bad(what, f"must be between {low} and {high}, got {value}{hint}")
    return value


def parse_params(raw, *, extra_names=(), spell=json_name) -> GenerationParams:
    """Check `raw` (a dict; missing keys take the defaults) and return the parameters.

    Names in `extra_names` are allowed but ignored here (the caller reads them).
    Raises InputError naming the first wrong parameter and what it accepts.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(f"'params' must be a JSON object, got {type(raw).__name__}",
                         code=protocol.ErrorCode.BAD_PARAMETER)
    unknown = sorted(set(raw) - set(protocol.PARAM_NAMES) - set(extra_names))
    if unknown:
        known = ", ".join(spell(name) for name in (*protocol.PARAM_NAMES, *extra_names))
        raise InputError(f"unknown parameter(s): {', '.join(map(str, unknown))}; the known ones are: {known}",
                         code=protocol.ErrorCode.UNKNOWN_PARAMETER)
    values = {spec.name: check_value(spec, raw[spec.name], spell) for spec in protocol.PARAMS if spec.name in raw}
    return GenerationParams(**values)


def job_options(raw: dict, spell=json_name) -> dict:
    """The job options (protocol.JOB_OPTIONS) in `raw`, checked, with their defaults."""
    return {spec.name: check_value(spec, raw[spec.name], spell) if spec.name in raw else spec.default
            for spec in protocol.JOB_OPTIONS}
