"""What an import does to the artist's scene (bpy, background): the shot camera and the artist's
markers stay in charge, sets go side by side, the frame range covers the markers, names keep
non-ASCII characters within 63 bytes, and the Images-as-Planes style options."""
import shutil

import bpy
import pytest

from glimpse_syncdreamer_addon.blender import scene_import
from glimpse_syncdreamer_addon.core.set_names import MAX_NAME_BYTES


def _cameras(collection):
    return sorted((obj for obj in collection.objects if obj.type == "CAMERA"),
                  key=lambda obj: obj[scene_import.VIEW_INDEX_PROPERTY])


def _set_markers(scene, prefix):
    return sorted((m for m in scene.timeline_markers if m.name.startswith(prefix + " ")), key=lambda m: m.frame)


def _copy(set_folder, tmp_path, name):
    return shutil.copytree(set_folder, tmp_path / name)


def test_the_shot_camera_and_the_artists_markers_stay_in_charge(scene, set_folder):
    shot = bpy.data.objects.new("Shot", bpy.data.cameras.new("Shot"))
    scene.collection.objects.link(shot)
    scene.camera = shot
    own = scene.timeline_markers.new("shot start", frame=1)
    own.camera = shot

    collection = scene_import.import_view_set(bpy.context, set_folder)

    assert scene.camera == shot
    assert [(m.name, m.frame, m.camera) for m in scene.timeline_markers if m.name == "shot start"] == [
        ("shot start", 1, shot)]
    markers = _set_markers(scene, "cat_set")
    assert [m.frame for m in markers] == list(range(2, 18))  # after the artist's marker, none on it
    assert all(m.camera is None for m in markers)
    for frame in (1, 2, 9, 17):
        scene.frame_set(frame)
        assert scene.camera == shot
    # Looking through a set's camera still shows its view: the view is the camera's background.
    for camera in _cameras(collection):
        assert camera.data.show_background_images
        (background,) = camera.data.background_images
        assert background.image.name == f"cat_set_view_{camera[scene_import.VIEW_INDEX_PROPERTY]:02d}"


def test_binding_the_markers_is_an_option(scene, set_folder):
    collection = scene_import.import_view_set(bpy.context, set_folder, bind_markers=True)
    assert [m.camera for m in _set_markers(scene, "cat_set")] == _cameras(collection)
    scene.frame_set(4)
    assert scene.camera == _cameras(collection)[3]


def test_sets_go_side_by_side_and_the_frame_range_covers_every_marker(scene, set_folder, tmp_path):
    scene.cursor.location = (1.0, 2.0, 0.0)
    scene.frame_start, scene.frame_end = 1, 10
    names = ["first", "second", "third"]
    rigs = []
    for name in names:
        collection = scene_import.import_view_set(bpy.context, _copy(set_folder, tmp_path, name))
        rigs.append(next(obj for obj in collection.objects if obj.type == "EMPTY"))
    spacing = scene_import.SET_SPACING
    assert [tuple(rig.location) for rig in rigs] == [pytest.approx((1.0 + spacing * i, 2.0, 0.0)) for i in range(3)]
    assert (scene.frame_start, scene.frame_end) == (1, 48)
    assert [m.frame for m in _set_markers(scene, "third")] == list(range(33, 49))

    # Asked otherwise, a set goes onto the cursor.
    collection = scene_import.import_view_set(bpy.context, _copy(set_folder, tmp_path, "fourth"), side_by_side=False)
    rig = next(obj for obj in collection.objects if obj.type == "EMPTY")
    assert tuple(rig.location) == pytest.approx((1.0, 2.0, 0.0))
    assert scene.frame_end == 64


def test_names_keep_non_ascii_fit_63_bytes_and_stay_distinct(scene, set_folder, tmp_path):
    collection = scene_import.import_view_set(bpy.context, _copy(set_folder, tmp_path, "Ñandú 猫"))
    assert collection.name == "Ñandú 猫"
    assert _cameras(collection)[5].name == "Ñandú 猫_cam_05"

    long_name = "très_long_nom_de_dossier_" + "猫" * 40  # 150+ bytes
    sets = [scene_import.import_view_set(bpy.context, _copy(set_folder, tmp_path / str(i), long_name))
            for i in range(2)]
    assert sets[0].name != sets[1].name
    for collection in sets:
        blocks = [collection, *collection.objects, *(obj.data for obj in collection.objects if obj.data)]
        for block in blocks:
            assert len(block.name.encode("utf-8")) <= MAX_NAME_BYTES, block.name
            assert block.name.startswith(collection.name)
        markers = _set_markers(scene, collection.name)
        assert len({m.name for m in markers}) == 16
        assert all(len(m.name.encode("utf-8")) <= MAX_NAME_BYTES for m in markers)
    assert sets[0].name.startswith("très_long_nom_de_dossier_猫")


def test_shader_and_interpolation_options(scene, set_folder, tmp_path):
    def nodes_of(collection):
        plane = next(obj for obj in collection.objects if obj.type == "MESH")
        return {node.bl_idname: node for node in plane.data.materials[0].node_tree.nodes}

    lit = nodes_of(scene_import.import_view_set(bpy.context, _copy(set_folder, tmp_path, "lit"),
                                                shader="PRINCIPLED", interpolation="Linear"))
    assert "ShaderNodeBsdfPrincipled" in lit and "ShaderNodeEmission" not in lit
    assert lit["ShaderNodeTexImage"].interpolation == "Linear"
    shadeless = nodes_of(scene_import.import_view_set(bpy.context, _copy(set_folder, tmp_path, "flat"),
                                                      shader="SHADELESS"))
    assert "ShaderNodeLightPath" in shadeless and shadeless["ShaderNodeTexImage"].interpolation == "Closest"
    with pytest.raises(ValueError, match="Shader must be one of EMISSION, PRINCIPLED, SHADELESS"):
        scene_import.import_view_set(bpy.context, set_folder, shader="TOON")


def test_relative_absolute_and_packed_images(scene, set_folder, tmp_path):
    (tmp_path / "shot").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot" / "shot.blend"))
    beside = _copy(set_folder, tmp_path / "shot", "beside")

    def images(collection):
        return [camera.data.background_images[0].image for camera in _cameras(collection)]

    relative = images(scene_import.import_view_set(bpy.context, beside))
    assert relative[0].filepath == "//beside/view_00.png" and relative[0].packed_file is None
    absolute = images(scene_import.import_view_set(bpy.context, _copy(set_folder, tmp_path / "shot", "abs"),
                                                   relative_paths=False))
    assert absolute[3].filepath == str(tmp_path / "shot" / "abs" / "view_03.png")
    # Outside the .blend's folder a relative path would climb out of it: absolute instead.
    outside = images(scene_import.import_view_set(bpy.context, _copy(set_folder, tmp_path, "outside")))
    assert outside[0].filepath == str(tmp_path / "outside" / "view_00.png")
    packed = images(scene_import.import_view_set(bpy.context, _copy(set_folder, tmp_path, "packed"), pack_images=True))
    assert all(image.packed_file is not None for image in packed)
