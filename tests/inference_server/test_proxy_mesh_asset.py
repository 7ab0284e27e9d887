"""`mesh FOLDER -o OUT.glb`: a light textured asset whose GLB loads back (trimesh) with UVs and an
embedded texture, whose texels show what the views show where a view sees the surface squarely."""
import numpy as np
import pytest
from PIL import Image

trimesh = pytest.importorskip("trimesh", reason="the textured asset needs the mesh extra")

from inference_server import protocol  # noqa: E402
from inference_server.cli import main as cli  # noqa: E402
from inference_server.proxy_mesh.glb import Z_UP_TO_Y_UP  # noqa: E402
from inference_server.proxy_mesh.hull import sample_bilinear  # noqa: E402
from inference_server.proxy_mesh.silhouettes import signed_distance, silhouette  # noqa: E402
from inference_server.proxy_mesh.texture_bake import mesh_depth  # noqa: E402
from proxy_mesh_scene import BOX, SPHERE, target_views  # noqa: E402


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The known scene's views on white as a views-only folder, and its asset written by the CLI."""
    images, view_cameras = target_views()
    folder = tmp_path_factory.mktemp("asset")
    for name, image in zip(protocol.VIEW_FILES, images):
        Image.fromarray(image[..., :3]).save(folder / name)
    out = folder / "scene.glb"
    assert cli.main(["mesh", str(folder), "-o", str(out), "--faces", "6000", "--texture-size", "512"]) == 0
    return out, [image[..., :3] for image in images], view_cameras


def loaded(path):
    scene = trimesh.load(path, force="scene")
    (mesh,) = scene.geometry.values()
    return mesh


def test_glb_loads_back_with_uvs_and_an_embedded_texture(written):
    path, _, _ = written
    assert path.read_bytes()[:4] == b"glTF"
    mesh = loaded(path)
    assert 0 < len(mesh.faces) <= 6000
    assert mesh.visual.uv.shape == (len(mesh.vertices), 2)
    assert (mesh.visual.uv >= 0).all() and (mesh.visual.uv <= 1).all()
    texture = mesh.visual.material.baseColorTexture
    assert texture.size == (512, 512)
    assert not list(path.parent.glob(".*partial*"))


def texel_colours(mesh, points_uv):
    texture = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB")).astype(np.float32)
    size = texture.shape[0]
    # glTF's v runs down the image, trimesh gives it flipped back: v = 1 is the image's top row
    return sample_bilinear(texture, (points_uv[:, 0] * size).astype(np.float32),
                           ((1.0 - points_uv[:, 1]) * size).astype(np.float32))


def test_texels_show_what_the_views_show_where_seen_squarely(written):
    path, images, view_cameras = written
    mesh = loaded(path)
    vertices = np.asarray(mesh.vertices) @ Z_UP_TO_Y_UP  # back into the cameras' Z-up frame
    faces = np.asarray(mesh.faces)
    uv = np.asarray(mesh.visual.uv)
    centres = vertices[faces].mean(axis=1)
    centre_uv = uv[faces].mean(axis=1)
    normals = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    colours = texel_colours(mesh, centre_uv)
    checked = 0
    for index in (0, 6, 11):
        camera, image = view_cameras[index], images[index]
        to_camera = camera.centre - centres
        facing = np.einsum("ij,ij->i", normals, to_camera) / np.linalg.norm(to_camera, axis=1)
        u, v, depth = camera.pixels(centres)
        depth_buffer = mesh_depth(vertices, faces, camera)
        nearest = depth_buffer[np.clip((v * 2).astype(int), 0, 511), np.clip((u * 2).astype(int), 0, 511)]
        inside = sample_bilinear(signed_distance(silhouette(image / 255.0)), u, v) < -4  # away from outlines
        square = (facing > 0.8) & (depth <= nearest + 0.01) & inside
        view_colour = sample_bilinear(image.astype(np.float32), u[square], v[square])
        assert np.abs(colours[square] - view_colour).mean() < 6
        checked += int(square.sum())
    assert checked > 300
    # the flat colours land on their own objects: the sphere red, the box's top blue
    centre, radius = SPHERE[1]
    top_of_sphere = (np.linalg.norm(centres - centre, axis=1) < radius + 0.02) & (centres[:, 2] > centre[2] + 0.05)
    box_top = (np.abs(centres[:, 2] - BOX[1][1][2]) < 0.01) & (np.linalg.norm(centres[:, :2], axis=1) > radius + 0.04)
    assert np.abs(colours[top_of_sphere] - SPHERE[2]).mean() < 6
    assert np.abs(colours[box_top] - BOX[2]).mean() < 6


def test_output_format_comes_from_the_extension(written, tmp_path, capsys):
    path, _, _ = written
    assert cli.main(["mesh", str(path.parent), "-o", str(tmp_path / "scene.obj")]) != 0
    assert ".ply (coloured proxy mesh) or .glb (textured asset)" in capsys.readouterr().err
