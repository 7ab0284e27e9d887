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
        centre, major, minor = parameters
        local = points - centre
        ring = np.hypot(local[:, 1], local[:, 2]) - major  # axis along x: the ring lies in y-z
        return np.hypot(ring, local[:, 0]) - minor
    raise ValueError(kind)


def true_distance(points):
    """(distance to the union's surface, signed; index of the nearest primitive)."""
    distances = np.stack([primitive_distance(kind, parameters, points) for kind, parameters, _ in PRIMITIVES])
    return distances.min(axis=0), distances.argmin(axis=0)


def true_colours(points):
    _, nearest = true_distance(points)
    return np.array([colour for _, _, colour in PRIMITIVES], dtype=np.float64)[nearest]


# ---------------------------------------------------------------------------------------------
# Rendering the views with Cycles


def build_blender_scene():
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    for kind, parameters, colour in PRIMITIVES:
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


def volume_iou(mesh: ProxyMesh, cells: int = 160) -> float:
    # columns slightly off any round number, so that no ray runs exactly through a mesh edge
    axis = np.linspace(-0.45, 0.45, cells) + 1.234567e-5
    ours = inside_mesh(mesh, axis, axis + 2.345e-6, axis)
    grid = np.stack(np.meshgrid(axis, axis + 2.345e-6, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    truth = (true_distance(grid)[0] < 0).reshape(ours.shape)
    return float((ours & truth).sum() / (ours | truth).sum())


def surface_samples(count: int = 40000, seed: int = 0) -> np.ndarray:
    """Points spread over the true shape's outer surface (projected onto it from random points)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-0.45, 0.45, (count * 8, 3))
    for _ in range(6):  # step along the numerical gradient onto the zero level
        distance, _ = true_distance(points)
        gradient = np.stack([(true_distance(points + step)[0] - distance) / 1e-5
                             for step in np.eye(3) * 1e-5], axis=1)
        points = points - distance[:, None] * gradient / np.maximum(np.linalg.norm(gradient, axis=1, keepdims=True), 1e-9)
    distance, _ = true_distance(points)
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
    args = parser.parse_args(argv)

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
