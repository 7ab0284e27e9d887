"""Place one view set in the scene: a collection holding a rig empty, sixteen cameras with their
views as background images, one camera-filling image plane per camera, and timeline markers
bound to the cameras.

All decisions about the set (layout, checks, camera matrices, plane sizes) come from
`core.view_sets`; this module only turns them into Blender data.
"""
from __future__ import annotations

import os

import bpy
import numpy as np
from mathutils import Matrix

from ..core import camera_math, set_names, view_sets
from ..core.import_options import ImportOptions
from .plane_material import PlaneLook, plane_material

# Custom property on every datablock of a set: the resolved source path. Importing the same
# source again finds and replaces exactly these.
SOURCE_PROPERTY = "glimpse3d_source"
VIEW_INDEX_PROPERTY = "glimpse3d_view"
WARNING_PROPERTY = "glimpse3d_warning"
MARKERS_PROPERTY = "glimpse3d_markers"  # on the collection: its markers' names, one a line

# Side by side: a new set's rig goes this far from any other set's rig (the cameras stand 1.5
# from the rig origin, so the sets' camera rings do not overlap).
SET_SPACING = 4.0

RIG_DISPLAY_SIZE = 0.5  # the model's object lives in the unit cube around the origin
CAMERA_DISPLAY_SIZE = 0.15
CAMERA_CLIP = (0.01, 100.0)
# With the scene settings: a render through camera i reproduces view i pixel for pixel.
EXACT_FILTER_WIDTH = 0.01


def import_view_set(
    context,
    path,
    *,
    plane_distance: float | None = None,
    key_white: bool = False,
    set_scene_settings: bool = False,
    frame_start: int | None = None,
    show_all_planes: bool = False,
    bind_markers: bool = False,
    side_by_side: bool = True,
    shader: str = "EMISSION",
    interpolation: str = "Closest",
    relative_paths: bool = True,
    pack_images: bool = False,
    name: str | None = None,
) -> bpy.types.Collection:
    """Import the set at `path` (set folder, views-only folder or strip PNG) into the scene.

    plane_distance: how far in front of each camera its image plane stands; None = through the
        rig origin. key_white: key the white background out to alpha in the plane materials.
    set_scene_settings: also set the render engine, resolution, colour view and active camera
        to match the views, and bind the markers. frame_start: the frame of view 0's marker
        (default: the replaced set's, else after every marker in the scene, else the scene's start).
    show_all_planes: keep every plane visible on every frame (default: only the plane of the
        current frame's view, so looking through camera i shows view i unobstructed).
    bind_markers: bind each marker to its camera (markers then switch the scene camera); off,
        the artist's shot camera and markers stay in charge.
    side_by_side: put a new set beside the sets already in the scene, not onto the 3D cursor.
    shader, interpolation: the planes' material (core.import_options.SHADERS, INTERPOLATIONS).
    relative_paths: store the views' paths relative to the saved .blend (when they lie in its
        folder or below; absolute otherwise). pack_images: store the
        views inside the .blend. name: the set's name (default: the replaced set's, else the
        folder's or strip's).

    The frame range grows to cover the new markers; it never shrinks.
    Raises view_sets.ViewSetError (bad input) or ValueError (bad option) before changing the scene.
    """
    ImportOptions(shader=shader, interpolation=interpolation)  # checks the choices
    scene = context.scene
    view_set = view_sets.read_view_set(path)
    placements = [view_sets.plane_placement(view, view_set.image_size, plane_distance) for view in view_set.views]
    source = str(view_set.source)
    previous = _find_set_collection(scene, source)
    if frame_start is None:
        frame_start = _default_frame_start(scene, previous)
    # A replaced set keeps its name (given at its first import, or by the artist since).
    wanted = name or (previous.name if previous is not None else view_set.name)
    set_name = set_names.set_name(wanted, lambda candidate: _name_taken(candidate, source))

    created = _NewBlocks(source)
    try:
        images = _load_view_images(view_set, set_name, created)
        _store_image_paths(images, view_set, relative_paths, pack_images)
        collection, rig, camera_objects = _build_set(
            view_set, set_name, images, placements, PlaneLook(key_white, shader, interpolation), created)
    except Exception:
        created.remove_all()
        raise

    # The new set is complete: only now does the old one go, its place and pose kept.
    parents = [scene.collection]
    if previous is not None:
        parents = _parent_collections(scene, previous) or parents
        previous_rig = _rig_of(previous)
        if previous_rig is not None:
            rig.matrix_world = previous_rig.matrix_world.copy()
        _remove_set(scene, previous, created, rig)
    else:
        rig.location = _free_place(scene, scene.cursor.location) if side_by_side else scene.cursor.location
    created.give_wanted_names()  # free now that the replaced set is gone
    for parent in parents:
        parent.children.link(collection)

    frames = view_sets.marker_frames(frame_start, len(camera_objects))
    bind = bind_markers or set_scene_settings
    marker_names = []
    for view, camera_object, frame in zip(view_set.views, camera_objects, frames):
        marker = scene.timeline_markers.new(f"{set_name} {view.index:02d}", frame=frame)
        marker_names.append(marker.name)
        if bind:
            marker.camera = camera_object
    # Markers hold no custom properties: the collection remembers their names.
    collection[MARKERS_PROPERTY] = "\n".join(marker_names)
    scene.frame_start = min(scene.frame_start, frames[0])
    scene.frame_end = max(scene.frame_end, frames[-1])
    if not show_all_planes:
        _show_each_plane_on_its_frame(camera_objects, frames, scene.frame_current)
    if view_set.warning:
        collection[WARNING_PROPERTY] = view_set.warning
    if set_scene_settings:
        _set_scene_settings(scene, view_set.image_size, camera_objects[0])
    if context.view_layer is not None:
        context.view_layer.update()  # world matrices and the view layer's objects are current
    _select_only(context, rig)
    return collection


# ---------------------------------------------------------------------------------------------
# Building


def _build_set(view_set, set_name, images, placements, look, created):
    collection = created.new(bpy.data.collections, set_name)
    rig = created.new(bpy.data.objects, f"{set_name}_rig", None)
    rig.empty_display_type = "CUBE"
    rig.empty_display_size = RIG_DISPLAY_SIZE
    collection.objects.link(rig)

    camera_objects = []
    for view, image, placement in zip(view_set.views, images, placements):
        camera = _add_camera(view, view_set, f"{set_name}_cam_{view.index:02d}", image, collection, rig, created)
        _add_plane(view, f"{set_name}_view_{view.index:02d}", image, placement, collection, camera, look, created)
        camera_objects.append(camera)
    return collection, rig, camera_objects


def _add_camera(view, view_set, label, image, collection, rig, created):
    data = created.new(bpy.data.cameras, label)
    settings = camera_math.blender_camera_settings(view.K, view_set.image_size)
    data.lens = settings["lens"]
    data.sensor_width = settings["sensor_width"]
    data.sensor_fit = settings["sensor_fit"]
    data.shift_x = settings["shift_x"]
    data.shift_y = settings["shift_y"]
    data.clip_start, data.clip_end = CAMERA_CLIP
    data.display_size = CAMERA_DISPLAY_SIZE
    # Looking through the camera shows its view, whichever camera the scene renders with.
    data.show_background_images = True
    background = data.background_images.new()
    background.image = image
    background.alpha = 1.0
    background.frame_method = "CROP"  # matches the horizontal sensor fit on wide frames

    camera = created.new(bpy.data.objects, label, data)
    camera[VIEW_INDEX_PROPERTY] = view.index
    collection.objects.link(camera)
    camera.parent = rig
    camera.matrix_basis = Matrix(view.camera_to_world.tolist())
    return camera


def _add_plane(view, label, image, placement, collection, camera, look, created):
    half_w, half_h = placement.width / 2, placement.height / 2
    mesh = created.new(bpy.data.meshes, label)
    # Counter-clockwise seen from the camera, so the face normal points back at it.
    mesh.from_pydata([(-half_w, -half_h, 0), (half_w, -half_h, 0), (half_w, half_h, 0), (-half_w, half_h, 0)], [], [(0, 1, 2, 3)])
    uv_layer = mesh.uv_layers.new(name="UVMap")
    # Blender images start at the bottom row: the plane's lower left corner is UV (0, 0).
    uv_layer.data.foreach_set("uv", [0, 0, 1, 0, 1, 1, 0, 1])
    mesh.materials.append(created.add(plane_material(label, image, look), label))
    mesh.update()

    plane = created.new(bpy.data.objects, label, mesh)
    plane[VIEW_INDEX_PROPERTY] = view.index
    collection.objects.link(plane)
    plane.parent = camera
    plane.location = placement.center
    if look.shader != "PRINCIPLED":
        # A reference card: seen by cameras, but it neither lights, shadows nor reflects the scene.
        for ray in ("visible_diffuse", "visible_glossy", "visible_transmission", "visible_volume_scatter", "visible_shadow"):
            setattr(plane, ray, False)
    return plane


def _show_each_plane_on_its_frame(camera_objects, frames, current_frame):
    """Key the planes' visibility so that on view i's frame only plane i is shown."""
    for camera, frame in zip(camera_objects, frames):
        for plane in camera.children:
            for hidden, key_frame in ((True, frame - 1), (False, frame), (True, frame + 1)):
                plane.hide_viewport = plane.hide_render = hidden
                plane.keyframe_insert("hide_viewport", frame=key_frame)
                plane.keyframe_insert("hide_render", frame=key_frame)
            plane.hide_viewport = plane.hide_render = frame != current_frame  # as the keys say now


# ---------------------------------------------------------------------------------------------
# Images


def _load_view_images(view_set, set_name, created):
    if view_set.layout == view_sets.LAYOUT_STRIP:
        return _split_strip(view_set, set_name, created)
    images = []
    for view in view_set.views:
        image = bpy.data.images.load(str(view.image.path), check_existing=False)
        images.append(created.add(image, f"{set_name}_view_{view.index:02d}"))
        if tuple(image.size) != tuple(view_set.image_size):  # reading the size loads the pixels
            raise view_sets.ViewSetError(
                f"Blender cannot read {view.image.path} (it reads {image.size[0]}x{image.size[1]} "
                "pixels): the file is damaged. Generate the set again or replace that view."
            )
    return images


def _split_strip(view_set, set_name, created):
    """Cut the strip into sixteen packed images in memory: nothing is written beside it."""
    strip_path = view_set.views[0].image.path
    strip = bpy.data.images.load(str(strip_path), check_existing=False)
    try:
        width, height = strip.size
        if (width, height) != view_sets.STRIP_SIZE:
            raise view_sets.ViewSetError(
                f"Blender reads {strip_path.name} as {width}x{height} pixels, not "
                f"{view_sets.STRIP_SIZE[0]}x{view_sets.STRIP_SIZE[1]}: the file is damaged. Write the "
                "strip again, or import the set folder instead."
            )
        pixels = np.empty(width * height * 4, dtype=np.float32)
        strip.pixels.foreach_get(pixels)
        pixels = pixels.reshape(height, width, 4)
        view_width, view_height = view_set.image_size
        images = []
        for view in view_set.views:
            label = f"{set_name}_view_{view.index:02d}"
            image = created.new(bpy.data.images, label, view_width, view_height, alpha=True)
            image.colorspace_settings.name = strip.colorspace_settings.name
            block = pixels[:, view.image.x_offset : view.image.x_offset + view_width, :]
            image.pixels.foreach_set(np.ascontiguousarray(block).ravel())
            image.pack()  # stored in the .blend as PNG
            images.append(image)
        return images
    finally:
        bpy.data.images.remove(strip)


def _store_image_paths(images, view_set, relative_paths, pack_images):
    """Relative or absolute paths for the views' files, or the views packed into the .blend.
    (A strip's views are packed already: they exist only in memory.)"""
    if view_set.layout == view_sets.LAYOUT_STRIP:
        return
    blend_folder = os.path.dirname(os.path.abspath(bpy.data.filepath)) if bpy.data.is_saved else None
    for image in images:
        path = os.path.abspath(bpy.path.abspath(image.filepath))
        # Relative only below the .blend's folder: a path that climbs out of it breaks as soon as
        # the .blend moves without the folders above it.
        if relative_paths and blend_folder and _is_inside(path, blend_folder):
            image.filepath = bpy.path.relpath(path)
        else:
            image.filepath = path
        if pack_images:
            image.pack()


def _is_inside(path, folder) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # another drive (Windows)
        return False


# ---------------------------------------------------------------------------------------------
# Names and places


def _name_taken(name, source):
    """Another set (or the artist) uses `name` or one of the names the set derives from it."""
    def used(blocks, block_name):
        block = blocks.get(block_name)
        return block is not None and block.get(SOURCE_PROPERTY) != source

    return used(bpy.data.collections, name) or used(bpy.data.objects, f"{name}_rig") or used(
        bpy.data.objects, f"{name}_cam_00")


def _free_place(scene, start):
    """`start`, moved along +X in steps of SET_SPACING until no other set's rig is that close."""
    rigs = [obj.matrix_world.translation for obj in scene.objects
            if obj.type == "EMPTY" and obj.parent is None and obj.get(SOURCE_PROPERTY) is not None]
    place = start.copy()
    while any((rig - place).length < SET_SPACING for rig in rigs):
        place.x += SET_SPACING
    return place


# ---------------------------------------------------------------------------------------------
# Finding and replacing a set


def _find_set_collection(scene, source):
    for collection in scene.collection.children_recursive:
        if collection.get(SOURCE_PROPERTY) == source:
            return collection
    return None


def _rig_of(collection):
    for obj in collection.objects:
        if obj.type == "EMPTY" and obj.get(SOURCE_PROPERTY) is not None and obj.parent is None:
            return obj
    return None


def _parent_collections(scene, collection):
    candidates = [scene.collection, *scene.collection.children_recursive]
    return [parent for parent in candidates if collection.name in parent.children]


def _set_markers(scene, collection):
    """The timeline markers the import made for the set in `collection`: by their names, or
    (sets imported before the names were kept) bound to the set's cameras."""
    names = set(str(collection.get(MARKERS_PROPERTY, "")).split("\n")) - {""}
    source = collection.get(SOURCE_PROPERTY)
    return [marker for marker in scene.timeline_markers
            if marker.name in names or (marker.camera is not None and marker.camera.get(SOURCE_PROPERTY) == source)]


def _default_frame_start(scene, previous):
    if previous is not None:
        frames = [marker.frame for marker in _set_markers(scene, previous)]
        if frames:
            return min(frames)
    # After every marker in the scene: the artist's own and other sets' keep their frames.
    frames = [marker.frame for marker in scene.timeline_markers]
    return max(frames) + 1 if frames else scene.frame_start


def _remove_set(scene, collection, replacement: "_NewBlocks", new_rig):
    """Remove a set's markers, objects and the data only it used. What the artist added is kept:
    objects and collections put into the set's collection move to the new one, objects parented
    to the old rig to the new rig (which already stands where the old one stood)."""
    source = collection[SOURCE_PROPERTY]
    for marker in _set_markers(scene, collection):
        scene.timeline_markers.remove(marker)
    ours = [obj for obj in collection.objects if obj.get(SOURCE_PROPERTY) == source]
    for obj in collection.objects:
        if obj.get(SOURCE_PROPERTY) != source:
            replacement.collection.objects.link(obj)
    for child in collection.children:
        replacement.collection.children.link(child)
    old_rig = _rig_of(collection)
    for obj in bpy.data.objects:
        if old_rig is not None and obj.parent == old_rig and obj.get(SOURCE_PROPERTY) != source:
            obj.parent = new_rig  # the parent inverse is kept, and so is the world position
    data = [obj.data for obj in ours if obj.data is not None]
    materials = [slot for mesh in data if isinstance(mesh, bpy.types.Mesh) for slot in mesh.materials if slot]
    actions = [obj.animation_data.action for obj in ours if obj.animation_data and obj.animation_data.action]
    images = [
        image
        for image in bpy.data.images
        if image.get(SOURCE_PROPERTY) == source and not replacement.holds(image)
    ]
    _remove_ids([*ours, collection])
    # Each layer is freed by the one before; whatever the artist reused elsewhere stays.
    for layer in (data, materials, actions, images):
        _remove_ids([block for block in layer if block.users == 0])


def _remove_ids(ids):
    unique = list({id(block): block for block in ids}.values())
    if unique:
        bpy.data.batch_remove(unique)


class _NewBlocks:
    """The datablocks of the set being built: tagged with its source, given their wanted names
    once the set they replace is gone, and removed together if building fails half-way."""

    def __init__(self, source: str):
        self.source = source
        self._blocks = []  # (datablock, wanted name)

    def new(self, blocks, name: str, *args, **kwargs):
        """blocks.new(name, ...) (e.g. bpy.data.cameras), remembering the name asked for."""
        return self.add(blocks.new(name, *args, **kwargs), name)

    def add(self, block, name: str):
        block[SOURCE_PROPERTY] = self.source
        self._blocks.append((block, name))
        return block

    @property
    def collection(self):
        return next(block for block, _ in self._blocks if isinstance(block, bpy.types.Collection))

    def holds(self, block) -> bool:
        return any(block == ours for ours, _ in self._blocks)

    def give_wanted_names(self):
        for block, name in self._blocks:
            block.name = name

    def remove_all(self):
        _remove_ids([block for block, _ in self._blocks])


# ---------------------------------------------------------------------------------------------
# Scene-wide changes (only when the artist asks) and selection


def _set_scene_settings(scene, image_size, first_camera):
    render = scene.render
    render.engine = "CYCLES"
    render.resolution_x, render.resolution_y = image_size
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    render.dither_intensity = 0.0
    scene.cycles.filter_width = EXACT_FILTER_WIDTH
    scene.cycles.use_denoising = False  # the denoiser would smooth the views' own pixels
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.camera = first_camera  # asked for: the markers are bound to the set's cameras too


def _select_only(context, obj):
    view_layer = context.view_layer
    if view_layer is None or obj.name not in view_layer.objects:
        return
    for other in view_layer.objects:
        if other.select_get(view_layer=view_layer):
            other.select_set(False, view_layer=view_layer)
    obj.select_set(True, view_layer=view_layer)
    view_layer.objects.active = obj
