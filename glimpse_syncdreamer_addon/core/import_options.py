"""How a view set is imported: the options the import operator, the generate operator, the
sidebar and the Python API share. No bpy: the API's callers and the tests build them too."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# The planes' shader, as Images as Planes names them.
SHADERS = {
    "EMISSION": "Emission: the view's own colours, unlit, in every engine",
    "PRINCIPLED": "Principled BSDF: the view as a surface colour, lit by the scene",
    "SHADELESS": "Shadeless: seen only by camera rays, invisible to light and reflections",
}
# Image Texture interpolation. Closest makes a render through camera i give back view i exactly.
INTERPOLATIONS = ("Closest", "Linear", "Cubic", "Smart")


@dataclass(frozen=True)
class ImportOptions:
    import_result: bool = True  # generate only: import finished sets at all
    plane_distance: float = 0.0  # 0: through the rig origin
    key_white: bool = False
    show_all_planes: bool = False
    set_scene_settings: bool = False  # render settings, frame range, active camera; binds markers
    bind_markers: bool = False  # markers switch the scene camera to the set's cameras
    side_by_side: bool = True  # a new set goes beside the others instead of onto the 3D cursor
    shader: str = "EMISSION"
    interpolation: str = "Closest"
    relative_paths: bool = True  # image paths relative to the saved .blend
    pack_images: bool = False  # store the views inside the .blend

    def __post_init__(self):
        if self.shader not in SHADERS:
            raise ValueError(f"Shader must be one of {', '.join(SHADERS)}, not {self.shader!r}.")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"Interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                             f"not {self.interpolation!r}.")
        if self.plane_distance < 0:
            raise ValueError(f"Plane distance must be 0 (through the rig origin) or more, not {self.plane_distance}.")

    @classmethod
    def pick(cls, source, **overrides) -> "ImportOptions":
        """The options read from the same-named attributes of `source` (an operator, the
        scene's settings); attributes that are not import options are left alone."""
        values = {field.name: getattr(source, field.name) for field in fields(cls) if hasattr(source, field.name)}
        return cls(**{**values, **overrides})

    def scene_kwargs(self) -> dict:
        """The keyword arguments of `scene_import.import_view_set`."""
        kwargs = asdict(self)
        del kwargs["import_result"]
        kwargs["plane_distance"] = self.plane_distance or None
        return kwargs


@dataclass(frozen=True)
class ImportPlan:
    """What travels with a job (its tag) so its sets are imported when it ends: the options, the
    sets' name (the input's own name, non-ASCII kept; the server's folder names are ASCII), and
    the sidebar queue's item the job belongs to, if any."""

    options: ImportOptions
    name: str = ""
    queue_item: int | None = None

    def set_names(self, count: int) -> list:
        """One name per generated set: the name itself, or name_0, name_1, ... for samples."""
        if not self.name:
            return [None] * count
        return [self.name] if count == 1 else [f"{self.name}_{index}" for index in range(count)]
