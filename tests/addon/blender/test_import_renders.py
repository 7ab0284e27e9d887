"""Renders with Cycles (CPU, 1 sample, 256x256) that prove the planes and the poses.

- Each camera, on its marker's frame, renders its own view back pixel for pixel.
- A known object at the rig origin looks the same from imported camera i as from a camera placed
  here from azimuth, elevation and distance with a Track To constraint (the way the training
  renders were made), so the poses are right, not only the planes.
"""
import math

import bpy
import numpy as np
import pytest

from glimpse_syncdreamer_addon.blender import scene_import

# Largest difference on 8-bit values allowed between a render and its view (sRGB -> linear -> sRGB
# may round one step in principle; in practice it is exact).
PIXEL_TOLERANCE = 1


def _exact_render_settings(scene):
    """The settings under which a camera-filling emission plane reproduces its image exactly."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 1
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.filter_width = 0.01
    scene.render.dither_intensity = 0.0
    scene.render.resolution_x = scene.render.resolution_y = 256
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"


def _cameras(collection):
    cameras = [obj for obj in collection.objects if obj.type == "CAMERA"]
    return sorted(cameras, key=lambda obj: obj[scene_import.VIEW_INDEX_PROPERTY])


def test_every_camera_renders_its_view_pixel_for_pixel(scene, set_folder, view_arrays, render_to_array):
    # the import's own scene settings are what makes renders exact; only the sample count is
    # lowered here, for speed
    collection = scene_import.import_view_set(bpy.context, set_folder, set_scene_settings=True)
    scene.cycles.samples = 1
    worst = []
    for index, camera in enumerate(_cameras(collection)):
        scene.frame_set(scene.frame_start + index)  # the marker makes camera i active
        assert scene.camera == camera
        rendered = render_to_array(scene, f"view_{index:02d}").astype(int)
        difference = np.abs(rendered - view_arrays[index].astype(int))
        worst.append(int(difference.max()))
    print("largest 8-bit difference per view:", worst)
    assert max(worst) <= PIXEL_TOLERANCE, worst


def test_strip_views_render_back(scene, strip_file, view_arrays, render_to_array):
    # Shadeless (emission for camera rays only) renders the views back as exactly as emission.
    scene_import.import_view_set(bpy.context, strip_file, bind_markers=True, shader="SHADELESS")
    _exact_render_settings(scene)
    for index in (2, 13):
        scene.frame_set(scene.frame_start + index)
        rendered = render_to_array(scene, f"strip_{index:02d}").astype(int)
        assert np.abs(rendered - view_arrays[index].astype(int)).max() <= PIXEL_TOLERANCE


def test_white_key_makes_the_background_transparent(scene, set_folder, view_arrays, render_to_array):
    scene_import.import_view_set(bpy.context, set_folder, key_white=True, bind_markers=True)
    _exact_render_settings(scene)
    scene.render.film_transparent = True
    index = 5
    scene.frame_set(scene.frame_start + index)
    alpha = render_to_array(scene, "keyed", alpha=True)[..., 3]
    view = view_arrays[index]
    white = (view == 255).all(axis=-1)
    dark = view.min(axis=-1) <= 200
    assert white.sum() > 10000 and dark.sum() > 5000
    assert alpha[white].max() == 0
    assert alpha[dark].min() == 255


def _emission_material(name, colour):
    material = bpy.data.materials.new(name)
    if material.node_tree is None:
        material.use_nodes = True
    nodes = material.node_tree.nodes
    nodes.clear()
    emission = nodes.new("ShaderNodeEmission")
    emission.inputs["Color"].default_value = (*colour, 1.0)
    output = nodes.new("ShaderNodeOutputMaterial")
    material.node_tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
    return material


def _add_known_object():
    """Four unlit cubes of different colours and sizes, off-centre: no symmetry hides an error."""
    for name, location, size, colour in (
        ("red", (0.25, 0.0, 0.0), 0.2, (1.0, 0.0, 0.0)),
        ("green", (0.0, 0.3, 0.1), 0.15, (0.0, 1.0, 0.0)),
        ("blue", (-0.1, -0.2, 0.3), 0.1, (0.0, 0.0, 1.0)),
        ("yellow", (0.05, 0.05, -0.25), 0.25, (1.0, 1.0, 0.0)),
    ):
        bpy.ops.mesh.primitive_cube_add(size=size, location=location)
        bpy.context.object.data.materials.append(_emission_material(name, colour))


def _reference_camera(scene, azimuth, elevation, distance):
    """A camera placed from the angles alone, aimed like the training renders: Track To an empty
    at the origin, -Z towards it, Y up; a 35 mm lens on a 32 mm sensor."""
    data = bpy.data.cameras.new("reference")
    data.lens, data.sensor_width, data.sensor_fit = 35.0, 32.0, "HORIZONTAL"
    camera = bpy.data.objects.new("reference", data)
    scene.collection.objects.link(camera)
    camera.location = (
        distance * math.cos(elevation) * math.cos(azimuth),
        distance * math.cos(elevation) * math.sin(azimuth),
        distance * math.sin(elevation),
    )
    target = bpy.data.objects.new("look_at", None)
    scene.collection.objects.link(target)
    constraint = camera.constraints.new("TRACK_TO")
    constraint.target = target
    constraint.track_axis = "TRACK_NEGATIVE_Z"
    constraint.up_axis = "UP_Y"
    return camera


def test_imported_poses_see_an_object_as_the_reference_poses_do(scene, set_folder, reference_cameras, render_to_array):
    collection = scene_import.import_view_set(bpy.context, set_folder, show_all_planes=True)
    for obj in collection.objects:
        if obj.type == "MESH":
            obj.hide_render = True
    scene.timeline_markers.clear()  # the markers would pick the camera for every render
    _add_known_object()
    _exact_render_settings(scene)
    cameras = _cameras(collection)

    imported, independent = {}, {}
    for index in (0, 3, 10):
        scene.camera = cameras[index]
        imported[index] = render_to_array(scene, f"imported_{index}").astype(int)
        scene.camera = _reference_camera(
            scene,
            reference_cameras["azimuths_rad"][index],
            reference_cameras["elevations_rad"][index],
            reference_cameras["distances"][index],
        )
        independent[index] = render_to_array(scene, f"independent_{index}").astype(int)

    for index in imported:
        covered = (imported[index] > 0).any(axis=-1).mean()
        assert covered > 0.03, "the object must be in view for the comparison to mean anything"
        differing = (np.abs(imported[index] - independent[index]) > 8).any(axis=-1).mean()
        largest = np.abs(imported[index] - independent[index]).max()
        print(f"pose {index}: object covers {covered:.1%}, largest 8-bit difference {largest}")
        assert differing < 0.001, (index, differing)
    # and a wrong pose is caught: camera 0 does not see what reference pose 3 sees
    assert (np.abs(imported[0] - independent[3]) > 8).any(axis=-1).mean() > 0.02
