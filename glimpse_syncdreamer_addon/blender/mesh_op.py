"""Build Proxy Mesh: the coloured visual hull of an imported view set, as a mesh in the set's
collection, parented to its rig (so it stays with the cameras when the rig moves).

The views and cameras come from the set's own cameras (their background images and matrices
relative to the rig), so the mesh is in exactly the frame of the imported cameras. The numpy
work runs on a worker thread in the interface (a modal operator waits for it) and directly in
background mode and for scripts (`bpy.ops.glimpse3d.build_proxy_mesh()`); the Blender data is
made on the main thread, in one undo step.
"""
from __future__ import annotations

import threading

import bpy
import numpy as np
from bpy.props import BoolProperty, IntProperty, StringProperty

from ..core import camera_math
from ..core.bundled import proxy_mesh as mesh_core
from . import scene_import

MESH_PROPERTY = "glimpse3d_proxy_mesh"  # on the mesh object: which set (collection name) it shows
COLOUR_ATTRIBUTE = "Col"
POLL_S = 0.1


class SetError(ValueError):
    """No usable set: the message says what to choose."""


def view_set_collections(scene) -> list:
    """The imported view sets in the scene: collections that hold cameras with a view index."""
    return [collection for collection in scene.collection.children_recursive
            if collection.get(scene_import.SOURCE_PROPERTY) is not None and _set_cameras(collection)]


def _set_cameras(collection) -> list:
    cameras = [obj for obj in collection.objects
               if obj.type == "CAMERA" and obj.get(scene_import.VIEW_INDEX_PROPERTY) is not None]
    return sorted(cameras, key=lambda obj: obj[scene_import.VIEW_INDEX_PROPERTY])


def chosen_set(context, name: str = ""):
    """The set named `name`, else the set of the active object, else the only set in the scene."""
    sets = view_set_collections(context.scene)
    if name:
        for collection in sets:
            if collection.name == name:
                return collection
        raise SetError(f"No imported view set is called {name!r}; the scene has: "
                       f"{', '.join(c.name for c in sets) or 'none'}. Import a set first.")
    active = context.view_layer.objects.active if context.view_layer else None
    if active is not None:
        for collection in sets:
            if active.name in collection.objects:
                return collection
    if len(sets) == 1:
        return sets[0]
    if not sets:
        raise SetError("The scene has no imported view set: import one (File > Import > Glimpse3D Views) first.")
    raise SetError(f"The scene has {len(sets)} view sets ({', '.join(c.name for c in sets)}): select an object of "
                   "one of them, or name its collection.")


def gather_views(collection):
    """(images (H, W, 4) float32, ViewCameras, rig) of a set, read on the main thread."""
    rig = scene_import._rig_of(collection)
    if rig is None:
        raise SetError(f"{collection.name} has no rig (the empty that holds its cameras): import the set again.")
    to_rig = rig.matrix_world.inverted()
    images, view_cameras = [], []
    for camera in _set_cameras(collection):
        index = camera[scene_import.VIEW_INDEX_PROPERTY]
        backgrounds = [bg.image for bg in camera.data.background_images if bg.image is not None]
        if not backgrounds:
            raise SetError(f"Camera {camera.name} (view {index}) has no view image: import the set again.")
        image = backgrounds[0]
        width, height = image.size
        if not width or not height:
            raise SetError(f"The image of view {index} ({image.name}) cannot be read: import the set again.")
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        images.append(pixels.reshape(height, width, 4)[::-1].copy())  # Blender's rows run bottom-up
        data = camera.data
        K = camera_math.intrinsics_of_blender_camera(data.lens, data.sensor_width, data.shift_x, data.shift_y,
                                                     (width, height))
        camera_to_rig = np.array(to_rig @ camera.matrix_world, dtype=np.float64)
        view_cameras.append(mesh_core.ViewCamera.from_blender(camera_to_rig, K, width, height))
    return images, view_cameras, rig


def add_mesh_object(collection, rig, mesh) -> bpy.types.Object:
    """The mesh as an object in the set's collection, parented to its rig; an earlier proxy mesh
    of the set is replaced."""
    name = f"{collection.name}_proxy_mesh"
    for obj in list(collection.objects):
        if obj.get(MESH_PROPERTY) == collection.name:
            old_data = obj.data
            bpy.data.objects.remove(obj)
            if old_data is not None and old_data.users == 0:
                bpy.data.meshes.remove(old_data)
    data = bpy.data.meshes.new(name)
    vertex_count, face_count = len(mesh.vertices), len(mesh.faces)
    data.vertices.add(vertex_count)
    data.vertices.foreach_set("co", mesh.vertices.astype(np.float32).ravel())
    data.loops.add(3 * face_count)
    data.loops.foreach_set("vertex_index", mesh.faces.astype(np.int32).ravel())
    data.polygons.add(face_count)
    data.polygons.foreach_set("loop_start", np.arange(0, 3 * face_count, 3, dtype=np.int32))
    data.update(calc_edges=True)
    colours = data.color_attributes.new(COLOUR_ATTRIBUTE, "BYTE_COLOR", "POINT")
    rgba = np.ones((vertex_count, 4), dtype=np.float32)
    rgba[:, :3] = mesh.colours / 255.0
    colours.data.foreach_set("color_srgb", rgba.ravel())  # the views' own sRGB values
    data.color_attributes.active_color = colours
    data.color_attributes.render_color_index = data.color_attributes.active_color_index
    unseen = data.attributes.new(mesh_core.UNSEEN_PROPERTY, "BOOLEAN", "POINT")
    unseen.data.foreach_set("value", mesh.unseen.astype(bool))
    data.materials.append(_vertex_colour_material(name))

    obj = bpy.data.objects.new(name, data)
    obj[MESH_PROPERTY] = collection.name
    source = collection.get(scene_import.SOURCE_PROPERTY)
    if source is not None:
        obj[scene_import.SOURCE_PROPERTY] = source  # a new import of the set replaces the mesh too
        data[scene_import.SOURCE_PROPERTY] = source
    collection.objects.link(obj)
    obj.parent = rig  # identity parent inverse: the mesh's coordinates are the rig's
    return obj


def _vertex_colour_material(name):
    material = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    if material.node_tree is None:
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    attribute = nodes.new("ShaderNodeVertexColor")
    attribute.layer_name = COLOUR_ATTRIBUTE
    shader = nodes.new("ShaderNodeBsdfPrincipled")
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(attribute.outputs["Color"], shader.inputs["Base Color"])
    links.new(shader.outputs[0], output.inputs["Surface"])
    for column, node in enumerate((attribute, shader, output)):
        node.location = (300 * column - 300, 0)
    return material


def _set_search(self, context, edit_text):
    return [collection.name for collection in view_set_collections(context.scene)
            if edit_text.lower() in collection.name.lower()]


def resolution_property():
    return IntProperty(name="Resolution", description="Grid cells along the object's longest side: 128 in about "
                       "a second, 256 for finer detail in a few seconds",
                       default=mesh_core.DEFAULT_RESOLUTION, min=mesh_core.RESOLUTIONS[0],
                       max=mesh_core.RESOLUTIONS[1], soft_min=64, soft_max=256, options={"SKIP_SAVE"})


class MeshJob:
    """build_proxy_mesh on a worker thread: numpy only, no Blender data is touched there."""

    def __init__(self, images, view_cameras, resolution: int):
        self._outcome = {}
        self._thread = threading.Thread(target=self._work, args=(images, view_cameras, resolution),
                                        name="glimpse3d-proxy-mesh", daemon=True)
        self._thread.start()

    def _work(self, images, view_cameras, resolution):
        try:
            self._outcome["mesh"] = mesh_core.build_proxy_mesh(images, view_cameras, resolution=resolution)
        except Exception as error:  # handed to the main thread, which reports it
            self._outcome["error"] = error

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self, timeout: float | None = None):
        """The ProxyMesh, once done (waits up to `timeout`); raises what the work raised."""
        self._thread.join(timeout)
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["mesh"]


class GLIMPSE3D_OT_build_proxy_mesh(bpy.types.Operator):
    """Build a coloured proxy mesh (visual hull) of an imported view set, parented to its rig"""

    bl_idname = "glimpse3d.build_proxy_mesh"
    bl_label = "Build Proxy Mesh"
    bl_options = {"REGISTER", "UNDO"}

    __annotations__ = {
        "collection": StringProperty(
            name="View Set", description="The collection of the imported set (empty: the active object's set, or "
            "the only set in the scene)", search=_set_search, options={"SKIP_SAVE"}),
        "resolution": resolution_property(),
    }

    def execute(self, context):
        try:
            obj, mesh = build_into_set(chosen_set(context, self.collection), self.resolution)
        except (SetError, mesh_core.MeshError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        return self._report(context, obj, mesh)

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        try:
            collection = chosen_set(context, self.collection)
            images, view_cameras, _ = gather_views(collection)
        except SetError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self._collection_name = collection.name
        self._job = MeshJob(images, view_cameras, self.resolution)
        self._timer = context.window_manager.event_timer_add(POLL_S, window=context.window)
        context.window_manager.modal_handler_add(self)
        context.workspace.status_text_set(f"Building the proxy mesh of {collection.name} ... (Esc to cancel)")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC":
            self._stop(context)
            self.report({"WARNING"}, "Proxy mesh cancelled.")
            return {"CANCELLED"}
        if event.type != "TIMER" or self._job.running:
            return {"PASS_THROUGH"}
        self._stop(context)
        try:
            mesh = self._job.result()
        except Exception as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        collection = bpy.data.collections.get(self._collection_name)
        rig = scene_import._rig_of(collection) if collection is not None else None
        if rig is None:
            self.report({"ERROR"}, f"The set {self._collection_name} was removed while its mesh was built.")
            return {"CANCELLED"}
        return self._report(context, add_mesh_object(collection, rig, mesh), mesh)

    def _stop(self, context):
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)

    def _report(self, context, obj, mesh):
        if context.view_layer is not None:
            context.view_layer.update()
        note = ""
        if mesh.rejected_views:
            note = f"; left out view(s) {', '.join(map(str, mesh.rejected_views))}, which disagree with the others"
        self.report({"INFO"}, f"Built {obj.name}: {len(mesh.vertices)} vertices, {int(mesh.unseen.sum())} unseen by "
                              f"any view{note}.")
        return {"FINISHED"}


def build_option():
    """The import operator's "Build Proxy Mesh" option."""
    return BoolProperty(name="Build Proxy Mesh", description="Also build a coloured proxy mesh (visual hull) of "
                        "the set right after the import", default=False, options={"SKIP_SAVE"})


def build_into_set(collection, resolution: int = mesh_core.DEFAULT_RESOLUTION):
    """Build the set's mesh here and now: (the new object, the ProxyMesh). Raises SetError or
    MeshError with a message for the person."""
    images, view_cameras, rig = gather_views(collection)
    mesh = mesh_core.build_proxy_mesh(images, view_cameras, resolution=resolution)
    return add_mesh_object(collection, rig, mesh), mesh


def build_after_import(operator, context, collection) -> None:
    """Build the mesh of a set that `operator` just imported: on a worker thread in the
    interface (the modal operator reports), at once in background mode (`operator` reports)."""
    if not bpy.app.background:
        bpy.ops.glimpse3d.build_proxy_mesh("INVOKE_DEFAULT", collection=collection.name)
        return
    try:
        obj, _ = build_into_set(collection)
    except (SetError, mesh_core.MeshError) as error:
        operator.report({"WARNING"}, f"Imported, but no proxy mesh: {error}")
        return
    operator.report({"INFO"}, f"Built {obj.name}.")


class GLIMPSE3D_PT_proxy_mesh(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Glimpse3D"
    bl_label = "Proxy Mesh"
    bl_parent_id = "GLIMPSE3D_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        sets = view_set_collections(context.scene)
        if not sets:
            layout.label(text="Import a view set first", icon="INFO")
            return
        try:
            target = chosen_set(context).name
        except SetError:
            target = ""
        row = layout.row()
        row.scale_y = 1.2
        row.enabled = bool(target)
        row.operator(GLIMPSE3D_OT_build_proxy_mesh.bl_idname, icon="MESH_ICOSPHERE").collection = target
        layout.label(text=f"Set: {target}" if target else "Select an object of a set")


def menu_func(self, context):
    self.layout.operator(GLIMPSE3D_OT_build_proxy_mesh.bl_idname, icon="MESH_ICOSPHERE")


classes = (GLIMPSE3D_OT_build_proxy_mesh, GLIMPSE3D_PT_proxy_mesh)


def register():
    # in the 3D viewport's Object menu, where F3 finds it
    bpy.types.VIEW3D_MT_object.append(menu_func)


def unregister():
    bpy.types.VIEW3D_MT_object.remove(menu_func)
