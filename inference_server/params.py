"""Generation parameters: defaults, accepted ranges and their check (no torch here).

One check for every entry point (HTTP jobs, the command line, the Python API), so the same
value is accepted or refused with the same message everywhere.
"""
import math
from dataclasses import asdict, dataclass, fields

from .errors import InputError
from .preprocess import BACKGROUND_CHOICES, check_crop_size

RECOMMENDED_ELEVATION = (-10.0, 40.0)
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class GenerationParams:
    """Everything that shapes one generation (the model and device are not in here)."""

    elevation: float = 30.0  # elevation of the INPUT view in degrees; conditions the model only
    crop_size: int = 200  # longer side of the object after cropping, -1 = no crop
    cfg_scale: float = 2.0
    steps: int = 50  # DDIM steps
    seed: int = 42
    samples: int = 1  # independent 16-view sets from the same input
    batch_views: int = 0  # views per UNet call (fewer need less GPU memory); 0 = the service picks
    background: str = "auto"  # auto: remove it unless the image has transparency
    use_posterior_mean: bool = False  # condition on the VAE mean instead of a sample

    def to_json(self) -> dict:
        return asdict(self)

    def warnings(self) -> list:
        """Accepted but unusual choices, said to the person (not errors)."""
        notes = []
        low, high = RECOMMENDED_ELEVATION
        if not low <= self.elevation <= high:
            notes.append(f"elevation {self.elevation:g} is outside the recommended {low:g}..{high:g} "
                         "degrees; the model saw few such inputs, so expect weaker views")
        if self.cfg_scale == 0:
            notes.append("cfg_scale 0 ignores the input image entirely")
        return notes


PARAM_NAMES = tuple(f.name for f in fields(GenerationParams))


def _bad(name, message):
    return InputError(f"'{name}' {message}", code="bad_parameter")


def _number(name, value, low, high, hint=""):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(name, f"must be a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise _bad(name, f"must be between {low:g} and {high:g}, got {value!r}{hint}")
    return float(value)


def _integer(name, value, low, high, hint=""):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise _bad(name, f"must be between {low} and {high}, got {value}{hint}")
    return value


def _crop_size(value):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return check_crop_size(value)


def _choice(name, value, choices):
    if value not in choices:
        raise _bad(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _flag(name, value):
    if not isinstance(value, bool):
        raise _bad(name, f"must be true or false, got {value!r}")
    return value


_CHECKS = {
    "elevation": lambda v: _number("elevation", v, -90, 90, " (degrees; -10..40 is recommended)"),
    "crop_size": _crop_size,
    "cfg_scale": lambda v: _number("cfg_scale", v, 0, 20, " (2.0 is the usual value)"),
    "steps": lambda v: _integer("steps", v, 1, 1000, " (50 is the usual value)"),
    "seed": lambda v: _integer("seed", v, 0, MAX_SEED),
    "samples": lambda v: _integer("samples", v, 1, 16, "; more samples need more GPU memory"),
    "batch_views": lambda v: _integer("batch_views", v, 0, 16, "; 0 = automatic, else views per network "
                                      "call (fewer need less GPU memory)"),
    "background": lambda v: _choice("background", v, BACKGROUND_CHOICES),
    "use_posterior_mean": lambda v: _flag("use_posterior_mean", v),
}


def parse_params(raw, *, extra_names=()) -> GenerationParams:
    """Check `raw` (a dict; missing keys take the defaults) and return the parameters.

    Names in `extra_names` are allowed but ignored here (the caller reads them).
    Raises InputError naming the first wrong parameter and what it accepts.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(f"'params' must be a JSON object, got {type(raw).__name__}", code="bad_parameter")
    unknown = sorted(set(raw) - set(PARAM_NAMES) - set(extra_names))
    if unknown:
        known = ", ".join((*PARAM_NAMES, *extra_names))
        raise InputError(f"unknown parameter(s): {', '.join(map(str, unknown))}; the known ones are: {known}",
                         code="unknown_parameter")
    values = {name: check(raw[name]) for name, check in _CHECKS.items() if name in raw}
    return GenerationParams(**values)
