"""The generation and import options, defined once: the panel keeps them per scene
(`Scene.glimpse3d`), and `generate_views` has each as an operator property."""
import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ..core.import_options import INTERPOLATIONS, SHADERS
from ..core.job_request import MAX_SEED

IMAGE_FILTER_GLOB = "*.png;*.jpg;*.jpeg;*.webp;*.bmp;*.tif;*.tiff"


def generation_options(skip_save: bool = False) -> dict:
    """Fresh property definitions for the job options (an operator wants SKIP_SAVE, so a
    script never inherits the values of an earlier call)."""
    opts = {"SKIP_SAVE"} if skip_save else set()
    return {
        "elevation": FloatProperty(
            name="Elevation",
            description="Elevation of the input view in degrees: 0 = photographed level, 30 = from "
            "above. It only conditions the model (the sixteen cameras are always at 30); -10 to 40 "
            "works best",
            default=30.0, min=-90.0, max=90.0, soft_min=-10.0, soft_max=40.0, step=100, precision=1,
            options=opts),
        "crop_size": IntProperty(
            name="Crop Size",
            description="Pixels (of 256) that the object's longer side fills after cropping; -1 "
            "keeps the framing of the image. 200 suits most objects",
            default=200, min=-1, max=256, options=opts),
        "cfg_scale": FloatProperty(
            name="Guidance Scale",
            description="How strongly the views follow the input image (classifier-free guidance)",
            default=2.0, min=0.0, max=20.0, soft_max=5.0, options=opts),
        "steps": IntProperty(
            name="Steps", description="Sampling steps: fewer are faster and rougher",
            default=50, min=1, max=1000, soft_max=200, options=opts),
        "seed": IntProperty(
            name="Seed", description="The same seed and settings give the same views",
            default=42, min=0, max=MAX_SEED, options=opts),
        "random_seed": BoolProperty(
            name="Random Seed", description="Pick a new seed for every generation",
            default=False, options=opts),
        "samples": IntProperty(
            name="Samples", description="Independent sets of sixteen views from the same image "
            "(each is imported as its own set)",
            default=1, min=1, max=16, options=opts),
        "batch_views": IntProperty(
            name="Views per Batch",
            description="Views the model computes at once: lower needs less GPU memory, higher is "
            "faster. 0 = automatic: all sixteen views at once, four in the server's low-memory mode",
            default=0, min=0, max=16, options=opts),
        "background": EnumProperty(
            name="Background",
            items=(("AUTO", "Auto", "Remove the background unless the image already has transparency"),
                   ("KEEP", "Keep", "Use the image as it is (its transparency, if any, becomes white)"),
                   ("REMOVE", "Remove", "Always cut the object out (needs rembg in the server's Python)")),
            default="AUTO", options=opts),
    }


def import_options(skip_save: bool = False) -> dict:
    """Property definitions for how finished sets are imported (as the Import operator has them)."""
    opts = {"SKIP_SAVE"} if skip_save else set()
    return {
        "import_result": BoolProperty(
            name="Import Result", description="Import each finished set into the scene as cameras "
            "and image planes", default=True, options=opts),
        "plane_distance": FloatProperty(
            name="Plane Distance", description="How far in front of each camera its image plane "
            "stands; 0 puts every plane through the rig origin, where the object is",
            default=0.0, min=0.0, soft_max=10.0, unit="LENGTH", options=opts),
        "key_white": BoolProperty(
            name="Key Out White", description="Make the white background of the views transparent "
            "on the image planes", default=False, options=opts),
        "show_all_planes": BoolProperty(
            name="Show All Planes", description="Show every image plane on every frame; otherwise "
            "each shows only on its view's frame", default=False, options=opts),
        "set_scene_settings": BoolProperty(
            name="Set Scene Settings", description="Also set render engine, resolution, view "
            "transform and active camera to match the views, and bind the markers to the set's "
            "cameras", default=False, options=opts),
        "bind_markers": BoolProperty(
            name="Bind Markers to Cameras", description="Bind each view's timeline marker to its "
            "camera, so scrubbing switches the scene camera through the views. Off: your shot "
            "camera and markers stay in charge (Set Scene Settings turns this on)",
            default=False, options=opts),
        "side_by_side": BoolProperty(
            name="Side by Side", description="Put a new set beside the sets already in the scene; "
            "off: at the 3D cursor", default=True, options=opts),
        "shader": EnumProperty(
            name="Shader", items=[(key, text.split(":")[0], text) for key, text in SHADERS.items()],
            default="EMISSION", options=opts),
        "interpolation": EnumProperty(
            name="Interpolation", items=[(name, name, f"{name} texture sampling"
                                          + (" (renders give back the views' exact pixels)" if name == "Closest" else ""))
                                         for name in INTERPOLATIONS],
            default="Closest", options=opts),
        "relative_paths": BoolProperty(
            name="Relative Paths", description="Store the views' file paths relative to the saved "
            ".blend file when they lie in its folder or below (otherwise, and in an unsaved file, "
            "they are absolute)", default=True, options=opts),
        "pack_images": BoolProperty(
            name="Pack Images", description="Store the views inside the .blend file, so it needs "
            "no image files", default=False, options=opts),
    }


GENERATION_OPTION_NAMES = tuple(generation_options())
IMPORT_OPTION_NAMES = tuple(import_options())


class GLIMPSE3D_PG_settings(bpy.types.PropertyGroup):
    """What the sidebar panel edits; saved with the .blend file."""

    __annotations__ = {
        "input_source": EnumProperty(
            name="Input",
            items=(("FILE", "File", "An image file on disk"),
                   ("IMAGE", "Blender Image", "An image already loaded in Blender")),
            default="FILE"),
        "filepath": StringProperty(
            name="Image File", description="The input image; a PNG with transparency works best",
            subtype="FILE_PATH"),
        "image": PointerProperty(
            name="Image", type=bpy.types.Image, description="An image already in Blender"),
        **generation_options(),
        **import_options(),
    }


classes = (GLIMPSE3D_PG_settings,)


def register():
    bpy.types.Scene.glimpse3d = PointerProperty(type=GLIMPSE3D_PG_settings)


def unregister():
    del bpy.types.Scene.glimpse3d
