"""Benchmark of the proxy mesh against a scene whose true shape and colours are known.

Renders cubes, spheres, a cone and a standing torus (its hole faces the side views) from the
sixteen SyncDreamer cameras with Cycles on the CPU (the bpy module; transparent film, so the
views carry alpha), keeps the true primitives, builds the proxy mesh and prints:

- volume IoU and Chamfer distance against the true shape, at 128 cells;
- mean per-vertex colour error (/255) against the true surface colour;
- IoU with one view badly wrong (half of the object missing, or shifted by 8 px);
- seconds at 128 and 256: in Blender (views read from the imported set's images, mesh made in
  Blender: the add-on's path) and in the server (PNG files read with Pillow, PLY written).

    .venv/bin/python tools/bench_mesh.py --views-dir /tmp/bench_mesh_views --picture docs/proxy-mesh.png

The views are rendered once into --views-dir and reused by later runs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference_server import cameras, protocol  # noqa: E402
from inference_server.proxy_mesh import ProxyMesh, build_proxy_mesh, write_ply  # noqa: E402
from inference_server.proxy_mesh.asset import build_asset  # noqa: E402
from inference_server.proxy_mesh.glb import write_glb  # noqa: E402
from inference_server.generation.masks import choose_masks  # noqa: E402
from inference_server.view_set.reading import read_views as read_set  # noqa: E402

TARGETS = {"iou": 0.74, "chamfer": 0.015, "colour": 10.0, "bad_view_iou": 0.72, "seconds_128": 2.0,
           "seconds_256": 6.0}

# The scene, about 0.7 units across around the origin: (kind, parameters, sRGB colour 0..255).
# box: centre, size, rotation about z (degrees); sphere: centre, radius; cone: base centre, base
# radius, height (axis +z); torus: centre, major, minor radius, axis along x.
PRIMITIVES = (
    ("box", ((-0.17, -0.13, -0.17), (0.22, 0.22, 0.22), 0.0), (205, 60, 50)),
    ("box", ((0.19, 0.13, -0.21), (0.16, 0.16, 0.14), 30.0), (230, 190, 40)),
    ("sphere", ((0.16, -0.15, -0.14), 0.14), (60, 170, 80)),
    ("sphere", ((-0.2, 0.17, 0.0), 0.09), (60, 110, 210)),
    ("cone", ((0.02, 0.0, -0.28), 0.13, 0.3), (160, 80, 190)),
    ("torus", ((0.0, 0.0, 0.2), 0.13, 0.04), (240, 130, 40)),
)


# ---------------------------------------------------------------------------------------------
# The true shape: signed distances of the primitives (negative inside)


def primitive_distance(kind, parameters, points):
    if kind == "sphere":
        centre, radius = parameters
        return np.linalg.norm(points - centre, axis=1) - radius
    if kind == "box":
        centre, size, angle = parameters
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        local = points - centre
        local = np.stack([c * local[:, 0] + s * local[:, 1], -s * local[:, 0] + c * local[:, 1], local[:, 2]], axis=1)
        q = np.abs(local) - np.asarray(size) / 2
        return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)
    if kind == "cone":
        (bx, by, bz), radius, height = parameters
        r = np.hypot(points[:, 0] - bx, points[:, 1] - by)
        z = points[:, 2] - bz
        # distance in the (r, z) half-plane to the triangle (0,0) (radius,0) (0,height)
        def segment(ax, az, cx, cz):
            dx, dz = cx - ax, cz - az
            t = np.clip(((r - ax) * dx + (z - az) * dz) / (dx * dx + dz * dz), 0, 1)
            return np.hypot(r - ax - t * dx, z - az - t * dz)
        distance = np.minimum(segment(0, 0, radius, 0), segment(radius, 0, 0, height))
        inside = (z >= 0) & (z <= height) & (r <= radius * (1 - z / height))
        return np.where(inside, -distance, distance)
    if kind == "torus":
        centre, major, minor, axis = (*parameters, "x")[:4]
        local = points - centre
        along = "xyz".index(axis)
        across = [i for i in range(3) if i != along]
        ring = np.hypot(local[:, across[0]], local[:, across[1]]) - major  # the ring lies across its axis
        return np.hypot(ring, local[:, along]) - minor
    if kind == "cylinder":
        (bx, by, bz), radius, height = parameters
        radial = np.hypot(points[:, 0] - bx, points[:, 1] - by) - radius
        vertical = np.abs(points[:, 2] - bz - height / 2) - height / 2
        return np.minimum(np.maximum(radial, vertical), 0) + np.hypot(np.maximum(radial, 0), np.maximum(vertical, 0))
    raise ValueError(kind)


def true_distance(points, primitives=PRIMITIVES):
    """(distance to the union's surface, signed; index of the nearest primitive)."""
    distances = np.stack([primitive_distance(kind, parameters, points) for kind, parameters, _ in primitives])
    return distances.min(axis=0), distances.argmin(axis=0)


def true_colours(points):
    _, nearest = true_distance(points)
    return np.array([colour for _, _, colour in PRIMITIVES], dtype=np.float64)[nearest]


# ---------------------------------------------------------------------------------------------
# Rendering the views with Cycles


def add_primitive(kind, parameters):
    """One of the primitives as a Blender object (the active object afterwards)."""
    import bpy

    if kind == "sphere":
        bpy.ops.mesh.primitive_uv_sphere_add(segments=96, ring_count=48, radius=parameters[1], location=parameters[0])
    elif kind == "box":
        centre, size, angle = parameters
        bpy.ops.mesh.primitive_cube_add(size=1.0, location=centre, rotation=(0, 0, math.radians(angle)))
        bpy.context.object.scale = size
    elif kind == "cone":
        (bx, by, bz), radius, height = parameters
        bpy.ops.mesh.primitive_cone_add(vertices=128, radius1=radius, radius2=0.0, depth=height,
                                        location=(bx, by, bz + height / 2))
    elif kind == "torus":
        centre, major, minor = parameters
        bpy.ops.mesh.primitive_torus_add(major_segments=128, minor_segments=48, major_radius=major,
                                         minor_radius=minor, location=centre, rotation=(0, math.pi / 2, 0))


def build_blender_scene(primitives=PRIMITIVES):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    for kind, parameters, colour in primitives:
        add_primitive(kind, parameters)
        obj = bpy.context.object
        obj.data.materials.append(_emission_material(f"{kind}_{len(bpy.data.materials)}", colour))
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    scene.cycles.use_denoising = False
    scene.render.film_transparent = True
    scene.render.resolution_x = scene.render.resolution_y = cameras.IMAGE_SIZE
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    camera_data = bpy.data.cameras.new("bench_camera")
    camera_data.lens = cameras.BLENDER_LENS_MM
    camera_data.sensor_width = cameras.BLENDER_SENSOR_WIDTH_MM
    camera_data.sensor_fit = "HORIZONTAL"
    camera = bpy.data.objects.new("bench_camera", camera_data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    return scene, camera


def _emission_material(name, colour):
    """Unlit: a pixel shows the surface's own colour, so the colours can be checked exactly."""
    import bpy

    material = bpy.data.materials.new(name)
    if material.node_tree is None:
        material.use_nodes = True
    nodes = material.node_tree.nodes
    nodes.clear()
    emission = nodes.new("ShaderNodeEmission")
    linear = [((c / 255) / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4) for c in colour]
    emission.inputs["Color"].default_value = (*linear, 1.0)
    output = nodes.new("ShaderNodeOutputMaterial")
    material.node_tree.links.new(emission.outputs[0], output.inputs["Surface"])
    return material


def render_views(folder: Path):
    """view_00.png .. view_15.png (RGBA) of the scene from the sixteen target cameras."""
    import bpy
    from mathutils import Matrix

    folder.mkdir(parents=True, exist_ok=True)
    if all((folder / name).is_file() for name in protocol.VIEW_FILES):
        return
    scene, camera = build_blender_scene()
    _, c2w, _ = cameras.target_cameras()
    for name, matrix in zip(protocol.VIEW_FILES, c2w):
        camera.matrix_world = Matrix(matrix.tolist())
        scene.render.filepath = str(folder / name)
        bpy.ops.render.render(write_still=True)


def read_views(folder: Path):
    from PIL import Image

    return [np.asarray(Image.open(folder / name).convert("RGBA")) for name in protocol.VIEW_FILES]


def fixed_cameras():
    from inference_server.view_set.reading import fixed_cameras as cameras_of_the_model

    return cameras_of_the_model()


# ---------------------------------------------------------------------------------------------
# Measures


def inside_mesh(mesh: ProxyMesh, xs, ys, zs) -> np.ndarray:
    """(len(xs), len(ys), len(zs)) bool: grid points inside the closed mesh, by the parity of the
    mesh's crossings of a ray up each (x, y) column."""
    vertices = mesh.vertices.astype(np.float64)
    a, b, c = (vertices[mesh.faces[:, i]] for i in range(3))
    x0, dx, y0, dy = xs[0], xs[1] - xs[0], ys[0], ys[1] - ys[0]
    lo = np.minimum(np.minimum(a, b), c)
    hi = np.maximum(np.maximum(a, b), c)
    i_lo = np.ceil((lo[:, 0] - x0) / dx).astype(int)
    i_hi = np.floor((hi[:, 0] - x0) / dx).astype(int)
    j_lo = np.ceil((lo[:, 1] - y0) / dy).astype(int)
    j_hi = np.floor((hi[:, 1] - y0) / dy).astype(int)
    toggles = np.zeros((len(xs), len(ys), len(zs) + 1), dtype=np.int64)
    for di in range(int((i_hi - i_lo).max(initial=-1)) + 1):
        for dj in range(int((j_hi - j_lo).max(initial=-1)) + 1):
            which = np.nonzero((i_lo + di <= i_hi) & (j_lo + dj <= j_hi))[0]
            i, j = i_lo[which] + di, j_lo[which] + dj
            ok = (i >= 0) & (i < len(xs)) & (j >= 0) & (j < len(ys))
            which, i, j = which[ok], i[ok], j[ok]
            px, py = xs[i], ys[j]
            ta, tb, tc = a[which], b[which], c[which]
            # barycentric coordinates in the xy projection
            det = (tb[:, 0] - ta[:, 0]) * (tc[:, 1] - ta[:, 1]) - (tc[:, 0] - ta[:, 0]) * (tb[:, 1] - ta[:, 1])
            safe = np.where(np.abs(det) < 1e-18, 1e-18, det)
            u = ((px - ta[:, 0]) * (tc[:, 1] - ta[:, 1]) - (tc[:, 0] - ta[:, 0]) * (py - ta[:, 1])) / safe
            v = ((tb[:, 0] - ta[:, 0]) * (py - ta[:, 1]) - (px - ta[:, 0]) * (tb[:, 1] - ta[:, 1])) / safe
            hit = (np.abs(det) >= 1e-18) & (u >= 0) & (v >= 0) & (u + v <= 1)
            z = ta[:, 2] + u * (tb[:, 2] - ta[:, 2]) + v * (tc[:, 2] - ta[:, 2])
            k = np.clip(np.ceil((z - zs[0]) / (zs[1] - zs[0])).astype(int), 0, len(zs))
            np.add.at(toggles, (i[hit], j[hit], k[hit]), 1)
    return (np.cumsum(toggles, axis=2)[:, :, :len(zs)] % 2).astype(bool)


def volume_iou(mesh: ProxyMesh, cells: int = 160, primitives=PRIMITIVES) -> float:
    # columns slightly off any round number, so that no ray runs exactly through a mesh edge
    axis = np.linspace(-0.45, 0.45, cells) + 1.234567e-5
    ours = inside_mesh(mesh, axis, axis + 2.345e-6, axis)
    grid = np.stack(np.meshgrid(axis, axis + 2.345e-6, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    truth = (true_distance(grid, primitives)[0] < 0).reshape(ours.shape)
    return float((ours & truth).sum() / (ours | truth).sum())


def surface_samples(count: int = 40000, seed: int = 0, primitives=PRIMITIVES) -> np.ndarray:
    """Points spread over the true shape's outer surface (projected onto it from random points)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-0.45, 0.45, (count * 8, 3))
    for _ in range(6):  # step along the numerical gradient onto the zero level
        distance, _ = true_distance(points, primitives)
        gradient = np.stack([(true_distance(points + step, primitives)[0] - distance) / 1e-5
                             for step in np.eye(3) * 1e-5], axis=1)
        points = points - distance[:, None] * gradient / np.maximum(np.linalg.norm(gradient, axis=1, keepdims=True), 1e-9)
    distance, _ = true_distance(points, primitives)
    points = points[np.abs(distance) < 1e-4]
    # even spread: keep one point per small voxel
    _, first = np.unique(np.floor(points / 0.004).astype(np.int64), axis=0, return_index=True)
    return points[first]


def chamfer(mesh: ProxyMesh, samples: np.ndarray) -> tuple[float, float]:
    """(mean distance from the mesh's vertices to the true surface, from the true surface to the mesh)."""
    from scipy.spatial import cKDTree

    to_truth = float(np.abs(true_distance(mesh.vertices.astype(np.float64))[0]).mean())
    to_mesh = float(cKDTree(mesh.vertices).query(samples)[0].mean())
    return to_truth, to_mesh


def colour_error(mesh: ProxyMesh) -> tuple[float, float]:
    """Mean absolute colour error per vertex (0..255): (seen vertices, all vertices)."""
    error = np.abs(mesh.colours.astype(np.float64) - true_colours(mesh.vertices.astype(np.float64))).mean(axis=1)
    return float(error[~mesh.unseen].mean()), float(error.mean())


def damaged(views, kind: str):
    views = [view.copy() for view in views]
    if kind == "half missing":
        view = views[5]
        columns = np.nonzero(view[..., 3].max(axis=0) > 0)[0]
        view[:, : (columns.min() + columns.max()) // 2] = 0  # the left half of the object is gone
    else:
        views[9] = np.roll(views[9], 8, axis=1)
    return views


def time_server(folder: Path, resolution: int, repeats: int) -> tuple[float, float]:
    from inference_server.view_set.mesh import mesh_from_folder

    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            mesh = mesh_from_folder(folder, resolution)
            write_ply(Path(scratch) / "mesh.ply", mesh.vertices, mesh.faces, mesh.colours, mesh.unseen, mesh.normals)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus))


def time_blender(folder: Path, resolution: int, repeats: int) -> tuple[float, float]:
    import bpy

    from glimpse_syncdreamer_addon.blender import mesh_op, scene_import

    bpy.ops.wm.read_factory_settings(use_empty=True)
    collection = scene_import.import_view_set(bpy.context, folder)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        mesh_op.build_into_set(collection, resolution)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus))


# ---------------------------------------------------------------------------------------------
# The lit scenes for the textured asset: Cycles, diffuse under a sun and a sky, composited on white
# (what the model outputs), with a near-white part, a checker-textured part and separate objects.

# (kind, parameters, material): material is ("diffuse", sRGB) or ("checker", sRGB a, sRGB b, squares)
# or ("emission", sRGB). cylinder: base centre, radius, height (axis +z); torus: centre, major,
# minor radius, axis ("x", "y" or "z").
LIT_SCENE = (
    ("cylinder", ((-0.14, 0.1, -0.3), 0.12, 0.27), ("diffuse", (236, 234, 228))),  # a white mug
    ("torus", ((-0.27, 0.1, -0.165), 0.07, 0.022, "y"), ("diffuse", (236, 234, 228))),  # its handle
    ("box", ((0.15, -0.12, -0.2), (0.22, 0.22, 0.2), 20.0), ("checker", (40, 60, 170), (235, 200, 60), 4)),
    ("sphere", ((0.15, -0.12, -0.075), 0.055), ("diffuse", (240, 240, 240))),  # a white knob
    ("sphere", ((0.13, 0.24, -0.21), 0.09), ("diffuse", (70, 160, 80))),
)
# The clean emission scene: four separate primitives, a thin ring floating above them.
SEPARATE_SCENE = (
    ("sphere", ((0.18, 0.12, -0.15), 0.13), ("emission", (60, 170, 80))),
    ("box", ((-0.18, -0.14, -0.2), (0.2, 0.2, 0.2), 0.0), ("emission", (230, 190, 40))),
    ("cone", ((-0.16, 0.22, -0.3), 0.09, 0.22), ("emission", (160, 80, 190))),
    ("torus", ((0.0, 0.0, 0.2), 0.16, 0.012, "x"), ("emission", (240, 130, 40))),
)
# Viewpoints that are not among the sixteen (elevation, azimuth in degrees): between two views,
# lower and higher than they are.
UNSEEN_VIEWPOINTS = ((30.0, 11.25), (30.0, 146.25), (12.0, 56.25), (48.0, 258.75), (20.0, 303.75))
ASSET_TARGETS = {"iou": 0.72, "chamfer": 0.016, "outline_iou": 0.87, "colour": 11.5, "psnr": 24.5, "faces": 50000,
                 "seconds": 15.0, "clean_iou": 0.75}


def _linear(colour):
    return [((c / 255) / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4) for c in colour]


def _scene_material(name, material):
    """Diffuse (fully rough), a checker of two colours in the object's own coordinates, or emission."""
    import bpy

    kind = material[0]
    if kind == "emission":
        return _emission_material(name, material[1])
    result = bpy.data.materials.new(name)
    if result.node_tree is None:
        result.use_nodes = True
    nodes, links = result.node_tree.nodes, result.node_tree.links
    shader = next(node for node in nodes if node.bl_idname == "ShaderNodeBsdfPrincipled")
    shader.inputs["Roughness"].default_value = 1.0
    if kind == "diffuse":
        shader.inputs["Base Color"].default_value = (*_linear(material[1]), 1.0)
    else:
        _, first, second, squares = material
        checker = nodes.new("ShaderNodeTexChecker")
        checker.inputs["Color1"].default_value = (*_linear(first), 1.0)
        checker.inputs["Color2"].default_value = (*_linear(second), 1.0)
        checker.inputs["Scale"].default_value = float(squares)
        coordinates = nodes.new("ShaderNodeTexCoord")
        links.new(coordinates.outputs["Generated"], checker.inputs["Vector"])
        links.new(checker.outputs["Color"], shader.inputs["Base Color"])
    return result


def build_asset_scene(primitives, lit: bool):
    """A Blender scene of `primitives` (LIT_SCENE or SEPARATE_SCENE) with a camera; lit: a sun
    and a sky-blue world light it (the film stays transparent, for the true masks)."""
    import bpy

    scene, camera = build_blender_scene(())
    for index, (kind, parameters, material) in enumerate(primitives):
        if kind == "cylinder":
            (bx, by, bz), radius, height = parameters
            bpy.ops.mesh.primitive_cylinder_add(vertices=128, radius=radius, depth=height,
                                                location=(bx, by, bz + height / 2))
        elif kind == "torus":
            centre, major, minor, axis = parameters
            rotation = {"x": (0, math.pi / 2, 0), "y": (math.pi / 2, 0, 0), "z": (0, 0, 0)}[axis]
            bpy.ops.mesh.primitive_torus_add(major_segments=128, minor_segments=32, major_radius=major,
                                             minor_radius=minor, location=centre, rotation=rotation)
        else:
            add_primitive(kind, parameters)
        bpy.ops.object.shade_smooth() if kind in ("sphere", "torus") else None
        bpy.context.object.data.materials.append(_scene_material(f"{kind}_{index}", material))
    if lit:
        world = bpy.data.worlds.new("sky")
        scene.world = world
        world.use_nodes = True
        background = world.node_tree.nodes["Background"]
        background.inputs["Color"].default_value = (0.7, 0.82, 1.0, 1.0)
        background.inputs["Strength"].default_value = 0.55
        sun = bpy.data.lights.new("sun", "SUN")
        sun.energy, sun.angle = 2.9, math.radians(3.0)
        sun_object = bpy.data.objects.new("sun", sun)
        scene.collection.objects.link(sun_object)
        sun_object.rotation_euler = (math.radians(38.0), 0.0, math.radians(35.0))
        scene.cycles.samples = 64
        scene.cycles.max_bounces = 4
    return scene, camera


def render_asset_scene(primitives, lit: bool, folder: Path):
    """view_00.png .. view_15.png and unseen_0.png .. (RGBA, transparent film) into `folder`."""
    import bpy
    from mathutils import Matrix

    names = list(protocol.VIEW_FILES) + [f"unseen_{i}.png" for i in range(len(UNSEEN_VIEWPOINTS))]
    folder.mkdir(parents=True, exist_ok=True)
    if all((folder / name).is_file() for name in names):
        return
    scene, camera = build_asset_scene(primitives, lit)
    _, c2w, _ = cameras.target_cameras()
    _, unseen_c2w, _ = cameras.get_camera_matrices(*zip(*UNSEEN_VIEWPOINTS))
    for name, matrix in zip(names, list(c2w) + list(unseen_c2w)):
        camera.matrix_world = Matrix(matrix.tolist())
        scene.render.filepath = str(folder / name)
        bpy.ops.render.render(write_still=True)


def on_white(rgba: np.ndarray) -> np.ndarray:
    """An RGBA render composited on white, uint8 RGB (what the model outputs)."""
    alpha = rgba[..., 3:].astype(np.float64) / 255.0
    return np.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def render_glb(path: Path, folder: Path) -> list:
    """RGBA renders of a .glb file (shown with its own colours: its base colour texture as emission)
    from UNSEEN_VIEWPOINTS."""
    import bpy
    from mathutils import Matrix
    from PIL import Image

    scene, camera = build_blender_scene(())
    bpy.ops.import_scene.gltf(filepath=str(path))
    for obj in [o for o in scene.objects if o.type == "MESH"]:
        material = obj.active_material
        nodes, links = material.node_tree.nodes, material.node_tree.links
        image = next(node for node in nodes if node.bl_idname == "ShaderNodeTexImage")
        emission = nodes.new("ShaderNodeEmission")
        links.new(image.outputs["Color"], emission.inputs["Color"])
        output = next(node for node in nodes if node.bl_idname == "ShaderNodeOutputMaterial")
        links.new(emission.outputs[0], output.inputs["Surface"])
    _, unseen_c2w, _ = cameras.get_camera_matrices(*zip(*UNSEEN_VIEWPOINTS))
    renders = []
    for index, matrix in enumerate(unseen_c2w):
        camera.matrix_world = Matrix(matrix.tolist())
        scene.render.filepath = str(folder / f"asset_unseen_{index}.png")
        bpy.ops.render.render(write_still=True)
        renders.append(np.asarray(Image.open(scene.render.filepath).convert("RGBA")))
    return renders


def compare_renders(ours: list, truth: list) -> dict:
    """Outline IoU, mean colour error (/255) where both cover the pixel, PSNR (dB) on white."""
    inter = union = 0
    errors, squared = [], []
    for mine, true in zip(ours, truth):
        a, b = mine[..., 3] > 127, true[..., 3] > 127
        inter += int((a & b).sum())
        union += int((a | b).sum())
        both = a & b
        errors.append(np.abs(mine[..., :3].astype(float) - true[..., :3].astype(float))[both].mean(axis=1))
        squared.append(((on_white(mine).astype(float) - on_white(true).astype(float)) ** 2).mean())
    errors = np.concatenate(errors)
    return {"outline_iou": inter / union, "colour": float(errors.mean()),
            "psnr": float(10 * np.log10(255.0 ** 2 / np.mean(squared)))}


def mesh_surface_samples(vertices, faces, count: int = 60000, seed: int = 0) -> np.ndarray:
    """Points spread evenly (by area) over a triangle mesh."""
    rng = np.random.default_rng(seed)
    a, b, c = (np.asarray(vertices, dtype=np.float64)[faces[:, i]] for i in range(3))
    area = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    which = rng.choice(len(faces), count, p=area / area.sum())
    r1, r2 = rng.random((2, count))
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    return a[which] + r1[:, None] * (b - a)[which] + r2[:, None] * (c - a)[which]


def shape_figures(mesh, primitives, samples) -> dict:
    """Volume IoU and Chamfer (mean of both ways, over points spread on both surfaces)."""
    from scipy.spatial import cKDTree

    points = mesh_surface_samples(mesh.vertices, mesh.faces)
    to_truth = float(np.abs(true_distance(points, primitives)[0]).mean())
    to_mesh = float(cKDTree(points).query(samples)[0].mean())
    return {"iou": volume_iou(mesh, primitives=primitives), "chamfer": (to_truth + to_mesh) / 2}


def time_asset(folder: Path, repeats: int, output: Path) -> tuple:
    """Wall and CPU seconds of the whole GLB at default settings: PNG files in, .glb out (the
    command line's path)."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        images, view_cameras = read_set(folder)
        asset = build_asset(images, view_cameras, masks=choose_masks(images, "white"))
        write_glb(output, asset)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus)), asset


def asset_benchmark(views_dir: Path, repeats: int) -> dict:
    """The lit scene and the clean emission scene: figures for the textured asset."""
    from PIL import Image

    from inference_server.proxy_mesh.asset import build_asset
    from inference_server.generation.masks import rembg_masks

    figures = {}
    lit_dir, clean_dir = views_dir / "lit", views_dir / "separate"
    render_asset_scene(LIT_SCENE, True, lit_dir)
    render_asset_scene(SEPARATE_SCENE, False, clean_dir)
    read = lambda folder, name: np.asarray(Image.open(folder / name).convert("RGBA"))  # noqa: E731
    rgba = [read(lit_dir, name) for name in protocol.VIEW_FILES]
    truth_unseen = [read(lit_dir, f"unseen_{i}.png") for i in range(len(UNSEEN_VIEWPOINTS))]
    white_views = [on_white(view) for view in rgba]
    true_masks = [view[..., 3] > 127 for view in rgba]
    view_cameras = fixed_cameras()
    samples = surface_samples(primitives=LIT_SCENE)
    objects = np.concatenate([mask.ravel() for mask in true_masks])
    darkest = np.concatenate([view.min(axis=2).ravel() for view in white_views])
    figures["near_white_share"] = float((darkest[objects] > 0.92 * 255).mean())

    # the hull's shape from RGB views on white, from true masks, without rejection, with rembg masks
    for label, kwargs in (("rgb", {}), ("true_masks", {"masks": true_masks}), ("rgb_all_views", {"reject_views": False})):
        mesh = build_proxy_mesh(white_views, view_cameras, resolution=128, **kwargs)
        for key, value in shape_figures(mesh, LIT_SCENE, samples).items():
            figures[f"hull_{key} ({label})"] = value
        figures[f"rejected ({label})"] = list(mesh.rejected_views)
    try:
        masks = rembg_masks(white_views)
    except Exception as error:  # no rembg or no model file here: say so in the figures
        figures["rembg"] = f"not measured: {error}".split("\n")[0][:160]
    else:
        mesh = build_proxy_mesh(white_views, view_cameras, resolution=128, masks=masks)
        for key, value in shape_figures(mesh, LIT_SCENE, samples).items():
            figures[f"hull_{key} (rembg)"] = value

    # the asset at default settings, from the RGB views on white (as files: the command line's path)
    set_dir = views_dir / "lit_on_white"
    set_dir.mkdir(exist_ok=True)
    for name, view in zip(protocol.VIEW_FILES, white_views):
        Image.fromarray(view).save(set_dir / name)
    glb_path = views_dir / "lit_asset.glb"
    figures["asset_seconds"], figures["asset_cpu_seconds"], asset = time_asset(set_dir, repeats, glb_path)
    figures["asset_faces"] = int(len(asset.faces))
    figures["asset_timings"] = {key: round(value, 2) for key, value in asset.timings.items()}
    for key, value in shape_figures(asset, LIT_SCENE, samples).items():
        figures[f"asset_{key}"] = value
    figures.update({f"asset_{k}": v for k, v in compare_renders(render_glb(glb_path, views_dir), truth_unseen).items()})
    # the same asset from true masks: how far the silhouettes are from the best they can be
    masked = build_asset(white_views, view_cameras, masks=true_masks)
    masked_path = views_dir / "lit_asset_true_masks.glb"
    from inference_server.proxy_mesh.glb import write_glb

    write_glb(masked_path, masked)
    figures.update({f"asset_true_masks_{k}": v for k, v in
                    compare_renders(render_glb(masked_path, views_dir), truth_unseen).items()})

    # the clean emission scene: no view left out
    clean = [on_white(read(clean_dir, name)) for name in protocol.VIEW_FILES]
    mesh = build_proxy_mesh(clean, view_cameras, resolution=128)
    figures["clean_rejected"] = list(mesh.rejected_views)
    figures["clean_iou"] = volume_iou(mesh, primitives=SEPARATE_SCENE)
    alpha = [read(clean_dir, name)[..., 3] > 127 for name in protocol.VIEW_FILES]
    figures["clean_iou_true_masks"] = volume_iou(build_proxy_mesh(clean, view_cameras, resolution=128, masks=alpha),
                                                 primitives=SEPARATE_SCENE)
    return figures


def print_asset_figures(figures: dict) -> None:
    def line(name, value, target=None, above=True):
        mark = "" if target is None else ("  ok" if (value >= target if above else value <= target) else "  MISSED")
        goal = "" if target is None else f"  (target {'>=' if above else '<='} {target:g})"
        print(f"{name:<58} {value:>9.4f}{goal}{mark}")

    print("\nlit scene (white mug, checker box with a white knob, a separate ball), 16 Cycles views on white")
    line("object pixels with darkest channel > 0.92 (share)", figures["near_white_share"])
    for label in ("rgb", "true_masks", "rgb_all_views", "rembg"):
        if f"hull_iou ({label})" in figures:
            line(f"hull at 128 from {label}: volume IoU", figures[f"hull_iou ({label})"])
            line(f"hull at 128 from {label}: Chamfer", figures[f"hull_chamfer ({label})"])
    if "rembg" in figures:
        print(f"{'rembg masks':<58} {figures['rembg']}")
    print(f"{'views left out (rgb)':<58} {figures['rejected (rgb)']}")
    line("asset (GLB, default settings): volume IoU", figures["asset_iou"], ASSET_TARGETS["iou"])
    line("asset: Chamfer", figures["asset_chamfer"], ASSET_TARGETS["chamfer"], above=False)
    line("asset, unseen viewpoints: outline IoU", figures["asset_outline_iou"], ASSET_TARGETS["outline_iou"])
    line("asset, unseen viewpoints: colour error /255", figures["asset_colour"], ASSET_TARGETS["colour"], above=False)
    line("asset, unseen viewpoints: PSNR on white (dB)", figures["asset_psnr"], ASSET_TARGETS["psnr"])
    line("asset from true masks: outline IoU", figures["asset_true_masks_outline_iou"])
    line("asset from true masks: colour error /255", figures["asset_true_masks_colour"])
    line("asset from true masks: PSNR (dB)", figures["asset_true_masks_psnr"])
    line("asset faces", figures["asset_faces"], ASSET_TARGETS["faces"], above=False)
    line("asset seconds, PNG folder in, GLB out (wall)", figures["asset_seconds"], ASSET_TARGETS["seconds"], above=False)
    line("asset seconds (CPU time)", figures["asset_cpu_seconds"])
    print(f"{'  stages':<58} {figures['asset_timings']}")
    print(f"{'clean emission scene: views left out':<58} {figures['clean_rejected']}  (target [])")
    line("clean emission scene: volume IoU at 128", figures["clean_iou"], ASSET_TARGETS["clean_iou"])
    line("clean emission scene: volume IoU at 128 from true masks", figures["clean_iou_true_masks"])


# ---------------------------------------------------------------------------------------------
# The picture for the docs: four of the views beside a render of the mesh


def render_picture(mesh: ProxyMesh, views, path: Path):
    import bpy
    from mathutils import Matrix
    from PIL import Image

    from glimpse_syncdreamer_addon.blender import mesh_op

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    collection = bpy.data.collections.new("picture")
    scene.collection.children.link(collection)
    rig = bpy.data.objects.new("rig", None)
    collection.objects.link(rig)
    obj = mesh_op.add_mesh_object(collection, rig, mesh)
    material = obj.active_material  # shown unlit, as in the views
    nodes, links = material.node_tree.nodes, material.node_tree.links
    colour = next(node for node in nodes if node.bl_idname == "ShaderNodeVertexColor")
    emission = nodes.new("ShaderNodeEmission")
    links.new(colour.outputs["Color"], emission.inputs["Color"])
    links.new(emission.outputs[0], next(n for n in nodes if n.bl_idname == "ShaderNodeOutputMaterial").inputs["Surface"])
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    scene.cycles.use_denoising = False
    scene.render.film_transparent = True
    scene.render.resolution_x = scene.render.resolution_y = 256
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.color_mode = "RGBA"
    camera_data = bpy.data.cameras.new("picture")
    camera_data.lens, camera_data.sensor_width = cameras.BLENDER_LENS_MM, cameras.BLENDER_SENSOR_WIDTH_MM
    camera = bpy.data.objects.new("picture", camera_data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    renders = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, (elevation, azimuth) in enumerate(((30.0, 45.0), (-20.0, 200.0))):  # between views; from below
            _, c2w, _ = cameras.get_camera_matrices(elevation, azimuth)
            camera.matrix_world = Matrix(c2w[0].tolist())
            scene.render.filepath = str(Path(scratch) / f"mesh_{index}.png")
            bpy.ops.render.render(write_still=True)
            renders.append(Image.open(scene.render.filepath).convert("RGBA"))
            renders[-1].load()
    from PIL import ImageDraw

    labels = [f"view {i}" for i in (0, 4, 8, 12)] + ["mesh, azimuth 45", "mesh, from below"]
    tiles = [Image.fromarray(views[i]) for i in (0, 4, 8, 12)] + renders
    crop, label_height = (48, 40, 208, 200), 14  # the object fills the middle of the frame
    sheet = Image.new("RGB", (160 * len(tiles), 160 + label_height), "white")
    draw = ImageDraw.Draw(sheet)
    for column, (tile, label) in enumerate(zip(tiles, labels)):
        tile = tile.crop(crop)
        sheet.paste(tile, (160 * column, label_height), tile)
        draw.text((160 * column + 4, 1), label, fill=(60, 60, 60))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views-dir", type=Path, default=Path(tempfile.gettempdir()) / "glimpse3d_bench_mesh_views",
                        help="where the rendered views are kept (rendered once)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure; the median is shown")
    parser.add_argument("--picture", type=Path, default=None, help="also write the docs' picture (PNG) here")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--suite", choices=("all", "proxy", "asset"), default="all",
                        help="proxy: the emission scene's proxy mesh; asset: the lit scenes' textured asset")
    args = parser.parse_args(argv)

    if args.suite in ("all", "asset"):
        started = time.perf_counter()
        asset_figures = asset_benchmark(args.views_dir, args.repeats)
        print(f"asset benchmark: {time.perf_counter() - started:.0f} s")
        print_asset_figures(asset_figures)
        if args.json:
            args.json.with_name(args.json.stem + "_asset.json").write_text(json.dumps(asset_figures, indent=2) + "\n")
        if args.suite == "asset":
            return 0

    started = time.perf_counter()
    render_views(args.views_dir)
    print(f"views: {args.views_dir} ({time.perf_counter() - started:.0f} s)", flush=True)
    views = read_views(args.views_dir)
    view_cameras = fixed_cameras()
    samples = surface_samples()
    figures = {}

    mesh = build_proxy_mesh(views, view_cameras, resolution=128)
    figures["iou"] = volume_iou(mesh)
    figures["chamfer_mesh_to_true"], figures["chamfer_true_to_mesh"] = chamfer(mesh, samples)
    figures["chamfer"] = (figures["chamfer_mesh_to_true"] + figures["chamfer_true_to_mesh"]) / 2
    figures["colour"], figures["colour_all_vertices"] = colour_error(mesh)
    figures["vertices_128"], figures["unseen_share_128"] = len(mesh.vertices), float(mesh.unseen.mean())
    for kind in ("half missing", "shifted 8 px"):
        bad = build_proxy_mesh(damaged(views, kind), view_cameras, resolution=128)
        figures[f"bad_view_iou ({kind})"] = volume_iou(bad)
        figures[f"bad_view_rejected ({kind})"] = list(bad.rejected_views)
        kept = build_proxy_mesh(damaged(views, kind), view_cameras, resolution=128, reject_views=False)
        figures[f"bad_view_iou_without_rejection ({kind})"] = volume_iou(kept)
    figures["bad_view_iou"] = min(figures["bad_view_iou (half missing)"], figures["bad_view_iou (shifted 8 px)"])
    mesh_256 = build_proxy_mesh(views, view_cameras, resolution=256)
    figures["iou_256"] = volume_iou(mesh_256, cells=200)
    figures["chamfer_256"] = sum(chamfer(mesh_256, samples)) / 2
    for resolution in (128, 256):
        figures[f"server_seconds_{resolution}"], figures[f"server_cpu_seconds_{resolution}"] = time_server(
            args.views_dir, resolution, args.repeats)
        figures[f"blender_seconds_{resolution}"], figures[f"blender_cpu_seconds_{resolution}"] = time_blender(
            args.views_dir, resolution, args.repeats)
    figures["load_average"] = os.getloadavg()[0]
    figures["cpu_count"] = os.cpu_count()

    def line(name, value, target, better):
        mark = "" if target is None else ("  ok" if better(value, target) else "  MISSED")
        goal = "" if target is None else f"  (target {'>=' if better(2, 1) else '<='} {target:g})"
        print(f"{name:<48} {value:>9.4f}{goal}{mark}")

    above, below = (lambda v, t: v >= t), (lambda v, t: v <= t)
    print(f"\nproxy mesh of {len(PRIMITIVES)} primitives, 16 Cycles views 256x256 (load average "
          f"{figures['load_average']:.1f} on {figures['cpu_count']} CPUs)")
    line("volume IoU at 128", figures["iou"], TARGETS["iou"], above)
    line("Chamfer distance at 128 (mean of both ways)", figures["chamfer"], TARGETS["chamfer"], below)
    line("  mesh -> true surface", figures["chamfer_mesh_to_true"], None, below)
    line("  true surface -> mesh", figures["chamfer_true_to_mesh"], None, below)
    line("volume IoU at 256", figures["iou_256"], None, above)
    line("Chamfer distance at 256", figures["chamfer_256"], None, below)
    line("colour error /255, seen vertices", figures["colour"], TARGETS["colour"], below)
    line("colour error /255, all vertices", figures["colour_all_vertices"], None, below)
    for kind in ("half missing", "shifted 8 px"):
        line(f"IoU, view {'5' if kind == 'half missing' else '9'} {kind}", figures[f"bad_view_iou ({kind})"],
             TARGETS["bad_view_iou"], above)
        line(f"  same, without leaving a view out", figures[f"bad_view_iou_without_rejection ({kind})"], None, above)
        print(f"{'  views left out':<48} {figures[f'bad_view_rejected ({kind})']}")
    for resolution in (128, 256):
        target = TARGETS[f"seconds_{resolution}"]
        for where in ("blender", "server"):
            line(f"{where} seconds at {resolution} (wall)", figures[f"{where}_seconds_{resolution}"], target, below)
            line(f"{where} seconds at {resolution} (CPU time)", figures[f"{where}_cpu_seconds_{resolution}"], None, below)
    print(f"{'vertices at 128, unseen share':<48} {figures['vertices_128']:>9d}  {figures['unseen_share_128']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.picture:
        render_picture(mesh, views, args.picture)
        print(f"picture: {args.picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
