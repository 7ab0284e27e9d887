"""The proxy mesh from views with known cameras: a closed, outward mesh in the cameras' frame, the
colours of a known scene, a bad view left out, clear errors, and PLY files."""
import numpy as np
import pytest

from inference_server import cameras
from inference_server.proxy_mesh import MeshError, ViewCamera, build_proxy_mesh, write_ply
from ply_files import read_ply
from inference_server.proxy_mesh import hull, tetra
from inference_server.proxy_mesh.silhouettes import signed_distance, silhouette
from proxy_mesh_scene import BOX, SCENE, SPHERE, inside, target_views

RED, BLUE = np.array(SPHERE[2]), np.array(BOX[2])


@pytest.fixture(scope="module")
def scene_views():
    return target_views()


@pytest.fixture(scope="module")
def scene_mesh(scene_views):
    images, view_cameras = scene_views
    return build_proxy_mesh(images, view_cameras, resolution=64)


def edge_counts(faces):
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    return np.unique(edges, axis=0, return_counts=True)[1]


def signed_volume(vertices, faces):
    a, b, c = (vertices[faces[:, i]].astype(np.float64) for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def test_mesh_is_a_closed_consistently_oriented_manifold(scene_mesh):
    faces = scene_mesh.faces
    assert set(edge_counts(faces)) == {2}  # every edge between exactly two faces
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)  # each neighbour runs the edge the other way
    assert len(np.unique(faces)) == len(scene_mesh.vertices)  # no stray vertices


def test_faces_point_outward(scene_mesh):
    assert signed_volume(scene_mesh.vertices, scene_mesh.faces) > 0
    # on the sphere's upper half every vertex normal points away from the sphere's centre
    centre, radius = SPHERE[1]
    offsets = scene_mesh.vertices - centre
    on_sphere = (np.abs(np.linalg.norm(offsets, axis=1) - radius) < 0.01) & (offsets[:, 2] > 0.05)
    assert on_sphere.sum() > 100
    assert (np.einsum("ij,ij->i", scene_mesh.normals[on_sphere], offsets[on_sphere]) > 0).all()


def test_hull_holds_the_object_in_the_cameras_frame(scene_views, scene_mesh):
    """The hull contains the true object, hugs it from the views' sides, and every vertex projects
    onto the object in every view (the cameras module's own projection)."""
    images, _ = scene_views
    vertices = scene_mesh.vertices
    assert inside(vertices.astype(np.float64)).mean() < 0.9  # a surface around the object, not in it
    w2c, _, K = cameras.target_cameras()
    for index in (0, 5, 11):
        pixels = cameras.project(K, w2c[index], vertices)
        mask = silhouette(images[index] / 255.0)
        distance = signed_distance(mask)
        column = np.clip((pixels[:, 0] - 0.5).round().astype(int), 0, 255)
        row = np.clip((pixels[:, 1] - 0.5).round().astype(int), 0, 255)
        assert (distance[row, column] < 1.5).all()
    # the sphere's top is where the sphere is (views from 30 degrees see it whole)
    top = vertices[np.argmax(vertices[:, 2])]
    assert top[2] == pytest.approx(SPHERE[1][0][2] + SPHERE[1][1], abs=0.01)


def test_volume_matches_marching_cubes(scene_views):
    """Marching tetrahedra on the hull's field encloses the volume skimage's marching cubes does."""
    measure = pytest.importorskip("skimage.measure")
    images, view_cameras = scene_views
    field = hull.HullField(view_cameras, [signed_distance(silhouette(image / 255.0)) for image in images])
    grid = hull.full_grid(field, (-0.4, -0.4, -0.4), (0.4, 0.4, 0.4), 64)
    hull._outside_on_border(grid)  # the hull reaches below the box: both close it at its border
    verts, faces, _, _ = measure.marching_cubes(grid.values, 0.0, spacing=(grid.cell_size,) * 3)
    cells = np.stack(np.meshgrid(*[np.arange(64)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    ours, our_faces = tetra.extract_surface(cells, grid.corner_values(cells), grid.origin, grid.cell_size,
                                            grid.values.shape)
    reference = abs(signed_volume(verts, faces))
    assert signed_volume(ours, our_faces) == pytest.approx(reference, rel=0.01)


def test_coarse_to_fine_finds_every_cell_of_the_full_grid(scene_views):
    """The narrow band search visits few nodes but misses no surface cell of the full grid."""
    images, view_cameras = scene_views
    field = hull.HullField(view_cameras, [signed_distance(silhouette(image / 255.0)) for image in images])
    low, high = np.full(3, -0.4), np.full(3, 0.4)
    grid, cells = hull.surface_cells(field, low, high, 64)
    full = hull.full_grid(field, low, high, 64)
    hull._outside_on_border(full)
    all_cells = np.stack(np.meshgrid(*[np.arange(64)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    signs = full.corner_values(all_cells) < 0
    expected = all_cells[signs.any(axis=1) & ~signs.all(axis=1)]
    assert {tuple(c) for c in cells.tolist()} == {tuple(c) for c in expected.tolist()}
    np.testing.assert_allclose(grid.corner_values(cells), full.corner_values(cells), atol=1e-6)


def test_colours_of_a_known_scene(scene_mesh):
    vertices, colours, unseen = scene_mesh.vertices, scene_mesh.colours.astype(int), scene_mesh.unseen
    centre, radius = SPHERE[1]
    on_sphere = (np.linalg.norm(vertices - centre, axis=1) < radius + 0.01) & (vertices[:, 2] > BOX[1][1][2] + 0.03)
    low, high = BOX[1]
    on_box_top = (np.abs(vertices[:, 2] - high[2]) < 0.005) & (np.linalg.norm(vertices[:, :2], axis=1) > radius + 0.03)
    assert on_sphere.sum() > 100 and on_box_top.sum() > 50
    assert np.abs(colours[on_sphere & ~unseen] - RED).mean() < 3
    assert np.abs(colours[on_box_top & ~unseen] - BLUE).mean() < 3


def test_unseen_underside_is_flagged_and_filled(scene_mesh):
    vertices, unseen = scene_mesh.vertices, scene_mesh.unseen
    bottom = vertices[:, 2] < BOX[1][0][2] - 0.01  # below the box: cameras at 30 degrees never look up
    assert bottom.sum() > 50 and unseen[bottom].all()
    assert not unseen[vertices[:, 2] > 0.1].any()
    # filled from the seen neighbours: the box's blue, not black
    assert np.abs(scene_mesh.colours[bottom].astype(int) - BLUE).mean() < 20


@pytest.mark.parametrize("damage", ["shifted", "half_missing"])
def test_one_bad_view_is_left_out(scene_views, scene_mesh, damage):
    images, view_cameras = scene_views
    images = [image.copy() for image in images]
    if damage == "shifted":
        images[5] = np.roll(images[5], 8, axis=1)
    else:
        images[9][:128] = (255, 255, 255, 0)
    mesh = build_proxy_mesh(images, view_cameras, resolution=64)
    assert mesh.rejected_views == ((5,) if damage == "shifted" else (9,))
    assert signed_volume(mesh.vertices, mesh.faces) == pytest.approx(
        signed_volume(scene_mesh.vertices, scene_mesh.faces), rel=0.01)


def test_no_view_is_left_out_of_a_consistent_set(scene_mesh):
    assert scene_mesh.rejected_views == ()


def test_views_without_an_object_are_named(scene_views):
    images, view_cameras = scene_views
    images = list(images)
    images[3] = np.full_like(images[3], 255)
    images[12] = np.full_like(images[12], 255)
    with pytest.raises(MeshError, match=r"no object in views 3, 12.*every view"):
        build_proxy_mesh(images, view_cameras, resolution=64)


def test_bad_arguments_say_what_to_give(scene_views):
    images, view_cameras = scene_views
    with pytest.raises(MeshError, match="resolution must be a whole number from 32 to 512"):
        build_proxy_mesh(images, view_cameras, resolution=8)
    with pytest.raises(MeshError, match="one camera per view"):
        build_proxy_mesh(images, view_cameras[:15])


def test_masks_and_white_backgrounds_give_the_silhouette(scene_views):
    images, view_cameras = scene_views
    rgba = images[2]
    on_white = rgba[..., :3].copy()  # the flat scene colours on white, as SyncDreamer paints them
    assert (silhouette(on_white / 255.0) == (rgba[..., 3] > 0)).all()
    assert (silhouette(rgba / 255.0) == (rgba[..., 3] > 0)).all()
    mask = np.zeros((256, 256), dtype=np.uint8)
    mask[100:150, 90:160] = 255
    assert (silhouette(rgba / 255.0, mask) == (mask > 0)).all()


def test_white_views_and_masks_give_the_same_mesh(scene_views, scene_mesh):
    images, view_cameras = scene_views
    on_white = [image[..., :3] for image in images]
    masks = [image[..., 3] for image in images]
    assert build_proxy_mesh(on_white, view_cameras, resolution=64).faces.shape == scene_mesh.faces.shape
    assert build_proxy_mesh(on_white, view_cameras, resolution=64, masks=masks).faces.shape == scene_mesh.faces.shape


def test_signed_distance_in_pixels():
    mask = np.zeros((40, 40), dtype=bool)
    mask[10:30, 10:30] = True
    distance = signed_distance(mask)
    assert distance[20, 20] == pytest.approx(0.5 - 10)  # ten pixels from the nearest background pixel
    assert distance[20, 35] == pytest.approx(6 - 0.5)
    assert distance[3, 3] == pytest.approx(np.hypot(7, 7) - 0.5)


def test_ply_round_trip(tmp_path, scene_mesh):
    path = write_ply(tmp_path / "mesh.ply", scene_mesh.vertices, scene_mesh.faces, scene_mesh.colours,
                     scene_mesh.unseen, scene_mesh.normals, comment="test")
    content = read_ply(path)
    np.testing.assert_array_equal(content["faces"], scene_mesh.faces)
    np.testing.assert_array_equal(np.stack([content[a] for a in "xyz"], axis=1), scene_mesh.vertices)
    np.testing.assert_array_equal(np.stack([content[c] for c in ("red", "green", "blue")], axis=1),
                                  scene_mesh.colours)
    np.testing.assert_array_equal(content["unseen"].astype(bool), scene_mesh.unseen)
    assert not list(tmp_path.glob(".*partial*"))


def test_ascii_ply_is_read(tmp_path):
    (tmp_path / "quad.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar unseen\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
        "0 0 0 255 0 0 0\n1 0 0 0 255 0 0\n1 1 0 0 0 255 1\n0 1 0 9 9 9 1\n4 0 1 2 3\n")
    content = read_ply(tmp_path / "quad.ply")
    assert content["faces"].tolist() == [[0, 1, 2], [0, 2, 3]]
    assert content["unseen"].tolist() == [0, 0, 1, 1]
    assert content["red"].tolist() == [255, 0, 0, 9]


def test_views_from_blender_matrices_give_the_same_mesh(scene_views, scene_mesh):
    images, _ = scene_views
    _, c2w, K = cameras.target_cameras()
    from_blender = [ViewCamera.from_blender(matrix, K, 256, 256) for matrix in c2w]
    mesh = build_proxy_mesh(images, from_blender, resolution=64)
    np.testing.assert_allclose(mesh.vertices, scene_mesh.vertices, atol=1e-5)
