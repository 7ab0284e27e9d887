"""The Blender half of `make demo`, run by scripts/demo.py in a fresh Python with `bpy`.

Installs and enables the built extension, generates the views with
`bpy.ops.glimpse3d.generate_views` (which starts the real server; GLIMPSE_SERVER_PYTHON and
GLIMPSE_SERVER_EXTRA_ARGS come from the environment), saves the scene and renders a picture of
the imported rig with Cycles on the CPU. It is also a worked example of scripting the add-on.
"""
import argparse
import math
import sys
from pathlib import Path

import bpy
from mathutils import Vector

MODULE = "bl_ext.user_default.glimpse_syncdreamer"


def parse_args():
    parser = argparse.ArgumentParser()
    for name in ("--zip", "--image", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--elevation", type=float, required=True)
    parser.add_argument("--crop-size", type=int, required=True)
    return parser.parse_args()


def install_extension(zip_path: str, output_dir: Path) -> None:
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    if MODULE not in bpy.context.preferences.addons:
        raise SystemExit(f"The extension did not enable after installing {zip_path}.")
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.output_dir = str(output_dir)


def add_overview_camera(scene) -> bpy.types.Object:
    """A camera outside the ring of views, looking down at the rig, so the picture shows the set."""
    data = bpy.data.cameras.new("Demo Overview")
    data.lens = 45
    camera = bpy.data.objects.new("Demo Overview", data)
    scene.collection.objects.link(camera)
    distance, elevation, azimuth = 4.2, math.radians(40), math.radians(-35)
    camera.location = Vector((math.cos(elevation) * math.cos(azimuth),
                              math.cos(elevation) * math.sin(azimuth),
                              math.sin(elevation))) * distance
    ring_centre = Vector((0, 0, 0.5))  # the view cameras sit at height 0.75, their planes a little lower
    camera.location += ring_centre
    camera.rotation_euler = (ring_centre - camera.location).to_track_quat("-Z", "Y").to_euler()
    return camera


def render_overview(scene, camera, path: Path) -> None:
    # The set's timeline markers switch the active camera from frame 1 on; the overview gets a
    # marker of its own one frame earlier and is rendered there.
    frame = min((m.frame for m in scene.timeline_markers), default=1) - 1
    scene.timeline_markers.new("Demo Overview", frame=frame).camera = camera
    scene.frame_set(frame)
    scene.camera = camera
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    scene.cycles.use_denoising = False
    scene.render.resolution_x, scene.render.resolution_y = 960, 640
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(path)
    world = scene.world or bpy.data.worlds.new("Demo World")
    scene.world = world
    world.color = (0.18, 0.19, 0.21)
    background = world.node_tree.nodes.get("Background") if world.node_tree else None
    if background is not None:  # a world with nodes renders its Background node, not world.color
        background.inputs["Color"].default_value = (0.18, 0.19, 0.21, 1.0)
    bpy.ops.render.render(write_still=True)


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    install_extension(args.zip, out / "views")
    scene = bpy.context.scene
    # An empty scene, so the picture shows only the imported set.
    for obj in list(scene.collection.all_objects):
        bpy.data.objects.remove(obj)

    try:
        bpy.ops.glimpse3d.generate_views(
            filepath=args.image, elevation=args.elevation, crop_size=args.crop_size, steps=args.steps,
            seed=42, samples=1, background="AUTO",
            # Planes near their cameras, all shown: the picture then shows a ring of views.
            plane_distance=0.4, show_all_planes=True)
    except RuntimeError:  # Blender has printed the operator's error, which says what to do
        raise SystemExit(1) from None
    finally:
        bpy.ops.glimpse3d.stop_server()

    camera = add_overview_camera(scene)
    bpy.ops.file.pack_all()  # the .blend carries its views
    blend = out / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    print(f"Saved {blend}", flush=True)
    render_overview(scene, camera, out / "render.png")
    print(f"Rendered {out / 'render.png'}", flush=True)


if __name__ == "__main__":
    main()
