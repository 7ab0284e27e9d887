"""The scene a set import builds (bpy, background): cameras, rig, planes, markers, re-import."""
import json
import os

import bpy
import numpy as np
import pytest
from mathutils import Matrix

from glimpse_syncdreamer_addon.blender import scene_import
from glimpse_syncdreamer_addon.core.view_sets import ViewSetError


def _set_objects(collection, kind):
    objects = [obj for obj in collection.objects if obj.type == kind]
    return sorted(objects, key=lambda obj: obj[scene_import.VIEW_INDEX_PROPERTY] if kind != "EMPTY" else 0)


def _intrinsics_at(camera_data, width, height):
    """K of a horizontally fitted Blender camera, computed here from lens, sensor and shift."""
    focal = camera_data.lens / camera_data.sensor_width * width
    return np.array(
        [
            [focal, 0, width / 2 - camera_data.shift_x * max(width, height)],
            [0, focal, height / 2 + camera_data.shift_y * max(width, height)],
            [0, 0, 1],
        ]
    )


def _data_counts():
    return {
        "objects": len(bpy.data.objects),
        "cameras": len(bpy.data.cameras),
        "meshes": len(bpy.data.meshes),
        "materials": len(bpy.data.materials),
        "images": len(bpy.data.images),
        "actions": len(bpy.data.actions),
        "collections": len(bpy.data.collections),
        "markers": len(bpy.context.scene.timeline_markers),
    }


def test_cameras_match_the_reference_poses_and_intrinsics(scene, set_folder, reference_cameras):
    engine, resolution = scene.render.engine, (scene.render.resolution_x, scene.render.resolution_y)
    collection = scene_import.import_view_set(bpy.context, set_folder)

    assert collection.name == "cat_set" and collection.name in scene.collection.children
    (rig,) = _set_objects(collection, "EMPTY")
    assert rig.matrix_world == Matrix.Identity(4)
    cameras = _set_objects(collection, "CAMERA")
    assert len(cameras) == 16 and len(collection.objects) == 1 + 16 + 16
    for index, (camera, expected) in enumerate(zip(cameras, reference_cameras["camera_to_world_blender"])):
        assert camera.parent == rig
        np.testing.assert_allclose(np.array(camera.matrix_world), expected, atol=1e-5)
        assert camera.data.sensor_fit == "HORIZONTAL"
        np.testing.assert_allclose(_intrinsics_at(camera.data, 256, 256), [[280, 0, 128], [0, 280, 128], [0, 0, 1]], atol=1e-9)
        background = camera.data.background_images[0]
        assert camera.data.show_background_images
        assert os.path.samefile(bpy.path.abspath(background.image.filepath), set_folder / f"view_{index:02d}.png")
    # the artist did not ask for scene settings: none changed
    assert (scene.render.engine, (scene.render.resolution_x, scene.render.resolution_y)) == (engine, resolution)
    assert bpy.context.view_layer.objects.active == rig and rig.select_get()


def test_planes_fill_each_frustum_with_an_unlit_image(scene, set_folder):
    collection = scene_import.import_view_set(bpy.context, set_folder, plane_distance=0.7)
    for camera in _set_objects(collection, "CAMERA"):
        (plane,) = camera.children
        assert plane.location[:] == pytest.approx((0, 0, -0.7), abs=1e-6)
        width, height = plane.dimensions.x, plane.dimensions.y
        assert (width, height) == pytest.approx((0.7 * 256 / 280, 0.7 * 256 / 280))
        nodes = plane.active_material.node_tree.nodes
        texture = next(node for node in nodes if node.type == "TEX_IMAGE")
        assert texture.image == camera.data.background_images[0].image
        assert texture.interpolation == "Closest"
        assert {node.type for node in nodes} >= {"EMISSION", "BSDF_TRANSPARENT", "MIX_SHADER"}
        assert not plane.visible_shadow


def test_markers_flip_cameras_and_planes(scene, set_folder):
    scene.frame_start, scene.frame_current = 10, 12
    collection = scene_import.import_view_set(bpy.context, set_folder, bind_markers=True)
    cameras = _set_objects(collection, "CAMERA")
    shown = [plane.name for plane in _set_objects(collection, "MESH") if not plane.hide_viewport]
    assert shown == ["cat_set_view_02"]  # right away, before the frame changes
    markers = sorted(scene.timeline_markers, key=lambda marker: marker.frame)
    assert [marker.frame for marker in markers] == list(range(10, 26))
    assert [marker.camera for marker in markers] == cameras
    for index in (0, 7, 15):
        scene.frame_set(10 + index)
        assert scene.camera == cameras[index]
        shown = [plane.name for plane in _set_objects(collection, "MESH") if not plane.hide_render]
        assert shown == [f"cat_set_view_{index:02d}"]


def test_rig_at_the_cursor_moves_the_set_as_one(scene, set_folder, reference_cameras):
    scene.cursor.location = (1.0, -2.0, 0.5)
    collection = scene_import.import_view_set(bpy.context, set_folder, show_all_planes=True)
    (rig,) = _set_objects(collection, "EMPTY")
    assert rig.location[:] == pytest.approx((1.0, -2.0, 0.5))
    rig.rotation_euler = (0.3, -0.2, 1.1)
    rig.scale = (2.0, 2.0, 2.0)
    bpy.context.view_layer.update()
    rig_matrix = np.array(rig.matrix_world)
    for camera, reference in zip(_set_objects(collection, "CAMERA"), reference_cameras["camera_to_world_blender"]):
        np.testing.assert_allclose(np.array(camera.matrix_world), rig_matrix @ reference, atol=1e-5)
        (plane,) = camera.children
        in_front = np.array(Matrix.Translation((0, 0, -1.5)))
        np.testing.assert_allclose(np.array(plane.matrix_world), rig_matrix @ reference @ in_front, atol=1e-5)

    # importing the same folder again keeps where the artist put the set
    collection = scene_import.import_view_set(bpy.context, set_folder)
    (new_rig,) = _set_objects(collection, "EMPTY")
    np.testing.assert_allclose(np.array(new_rig.matrix_world), rig_matrix, atol=1e-6)


def test_reimport_replaces_the_set(scene, set_folder):
    first = scene_import.import_view_set(bpy.context, set_folder)
    before = _data_counts()
    old_rig = bpy.data.objects["cat_set_rig"]
    old_rig.location = (0.5, 0.0, 0.0)
    # what the artist added to the set: an object parented to the rig, a collection inside it
    keeper = bpy.data.objects.new("artist_model", None)
    first.objects.link(keeper)
    keeper.parent = old_rig
    keeper.location = (0.0, 0.0, 0.2)
    first.children.link(bpy.data.collections.new("artist_notes"))
    bpy.context.view_layer.update()
    keeper_world = np.array(keeper.matrix_world)

    collection = scene_import.import_view_set(bpy.context, set_folder, key_white=True)
    after = _data_counts()
    assert after == {**before, "objects": before["objects"] + 1, "collections": before["collections"] + 1}
    assert collection.name == "cat_set" and "cat_set_cam_00" in bpy.data.objects
    assert "cat_set.001" not in bpy.data.collections and "cat_set_rig.001" not in bpy.data.objects
    assert keeper.name in collection.objects and "artist_notes" in collection.children
    assert keeper.parent == bpy.data.objects["cat_set_rig"]
    np.testing.assert_allclose(np.array(keeper.matrix_world), keeper_world, atol=1e-6)
    assert sorted(marker.frame for marker in scene.timeline_markers) == list(range(1, 17))


def test_random_weights_warning_travels_with_the_set(scene, scratch_copy):
    folder = scratch_copy()
    document = json.loads((folder / "cameras.json").read_text())
    document["warning"] = "RANDOM WEIGHTS: noise, not your object."
    (folder / "cameras.json").write_text(json.dumps(document))
    collection = scene_import.import_view_set(bpy.context, folder)
    assert collection[scene_import.WARNING_PROPERTY].startswith("RANDOM WEIGHTS")


def test_other_sets_go_after_the_first(scene, set_folder, views_only_folder, reference_cameras):
    scene_import.import_view_set(bpy.context, set_folder)
    collection = scene_import.import_view_set(bpy.context, views_only_folder)
    assert collection.name == "views_only"
    frames = sorted(m.frame for m in scene.timeline_markers if m.name.startswith("views_only "))
    assert frames == list(range(17, 33))
    beside = np.array(Matrix.Translation((scene_import.SET_SPACING, 0, 0)))  # side by side with the first
    for camera, reference in zip(_set_objects(collection, "CAMERA"), reference_cameras["camera_to_world_blender"]):
        np.testing.assert_allclose(np.array(camera.matrix_world), beside @ reference, atol=1e-5)


def test_strip_is_split_in_memory(scene, strip_file, view_arrays):
    files_before = sorted(os.listdir(strip_file.parent))
    collection = scene_import.import_view_set(bpy.context, strip_file)
    assert sorted(os.listdir(strip_file.parent)) == files_before  # nothing written beside it
    assert collection.name == "strips_0"
    images = [camera.data.background_images[0].image for camera in _set_objects(collection, "CAMERA")]
    assert len(bpy.data.images) == 16  # the strip itself is not kept
    for image, expected in zip(images, view_arrays):
        assert image.packed_file is not None and tuple(image.size) == (256, 256)
        pixels = np.empty(256 * 256 * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        rgb = np.round(pixels.reshape(256, 256, 4)[::-1, :, :3] * 255).astype(np.uint8)  # rows bottom-up
        np.testing.assert_array_equal(rgb, expected)


def test_scene_settings_only_when_asked(scene, set_folder):
    collection = scene_import.import_view_set(bpy.context, set_folder, set_scene_settings=True, frame_start=5)
    assert scene.render.engine == "CYCLES"
    assert (scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage) == (256, 256, 100)
    assert scene.view_settings.view_transform == "Standard"
    assert scene.cycles.filter_width < 0.05 and not scene.cycles.use_denoising and scene.render.dither_intensity == 0
    assert scene.frame_start <= 5 and scene.frame_end >= 20  # the range covers the markers
    assert scene.camera == _set_objects(collection, "CAMERA")[0]
    assert [marker.camera for marker in scene.timeline_markers] == _set_objects(collection, "CAMERA")


def test_bad_input_changes_nothing(scene, scratch_copy, tmp_path, strip_file):
    before = _data_counts()
    folder = scratch_copy()
    (folder / "view_09.png").unlink()
    with pytest.raises(ViewSetError, match="missing 1 of 16 views: view_09.png"):
        scene_import.import_view_set(bpy.context, folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ViewSetError, match="not a view set"):
        scene_import.import_view_set(bpy.context, tmp_path / "empty")
    # a strip whose header is right but whose pixels cannot be read: caught half-way, rolled back
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(strip_file.read_bytes()[:200])
    with pytest.raises(ViewSetError, match="damaged"):
        scene_import.import_view_set(bpy.context, damaged)
    assert _data_counts() == before
