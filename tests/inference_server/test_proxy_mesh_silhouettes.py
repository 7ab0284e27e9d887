"""Silhouettes from views on white: the background is the near-white region connected to the
border, so near-white object parts and holes inside an outline stay object; and the rejection of
views that disagree, judged against the spread of the others (median and MAD)."""
import numpy as np
import pytest

from inference_server.proxy_mesh import build_proxy_mesh
from inference_server.proxy_mesh.build import is_outlier
from inference_server.proxy_mesh.silhouettes import silhouette, white_background
from proxy_mesh_scene import SEPARATE, target_views

BACKGROUND = 0.985  # generated whites are rarely exactly 1.0


def view_with(*regions, background=BACKGROUND, size=64):
    """A float RGB view of `background` with (rows, columns, level) regions painted in order."""
    image = np.full((size, size, 3), background, dtype=np.float32)
    for rows, columns, level in regions:
        image[rows, columns] = level
    return image


def test_near_white_part_inside_a_darker_outline_is_object():
    # a grey square outline around a lit white face as bright as the background
    image = view_with((slice(10, 50), slice(10, 50), 0.4), (slice(12, 48), slice(12, 48), 0.99))
    shape = silhouette(image)
    assert shape[10:50, 10:50].all() and shape.sum() == 40 * 40


def test_hole_inside_an_outline_is_object_but_a_hole_open_to_the_border_is_not():
    ring = view_with((slice(10, 50), slice(10, 50), 0.3), (slice(20, 40), slice(20, 40), BACKGROUND))
    assert silhouette(ring)[20:40, 20:40].all()
    # the same ring cut open to the image's edge: the hole is background through the cut
    opened = ring.copy()
    opened[28:32, 0:30] = BACKGROUND
    shape = silhouette(opened)
    assert not shape[20:40, 20:40].any() and not shape[28:32, :30].any()
    assert shape[10:20, 10:50].all()


def test_generated_background_noise_is_background_and_the_tolerance_is_an_option():
    rng = np.random.default_rng(0)
    image = view_with((slice(20, 40), slice(20, 40), 0.9))  # a lit white part touching the background
    image += rng.uniform(-0.012, 0.012, image.shape).astype(np.float32)  # a not-quite-white background
    shape = silhouette(np.clip(image, 0, 1))
    assert shape[20:40, 20:40].all() and shape.sum() == 400
    # with a looser tolerance the lit part counts as background: it touches the border's white
    assert not silhouette(np.clip(image, 0, 1), tolerance=0.15).any()


def test_a_background_that_is_not_white_gives_no_background():
    assert not white_background(view_with(background=0.5)).any()


def test_diagonal_gap_in_an_outline_does_not_let_the_background_in():
    image = view_with((slice(10, 30), slice(10, 30), 0.2), (slice(12, 28), slice(12, 28), BACKGROUND))
    image[10, 10] = BACKGROUND  # the corner pixel: the inside touches it only diagonally
    image[11, 11] = BACKGROUND
    image[11, 12:28] = 0.2
    image[12:28, 11] = 0.2
    shape = silhouette(image)
    assert shape[12:28, 12:28].all()


@pytest.fixture(scope="module")
def separate_views():
    return target_views(SEPARATE)


def test_clean_scene_with_a_thin_floating_ring_keeps_every_view(separate_views):
    images, view_cameras = separate_views
    on_white = [image[..., :3] for image in images]
    assert build_proxy_mesh(on_white, view_cameras, resolution=48).rejected_views == ()


def corrupted(images, index, damage):
    images = [image[..., :3].copy() for image in images]
    view = images[index]
    if damage == "shifted":
        images[index] = np.roll(view, 10, axis=1)
    elif damage == "part missing":
        columns = np.nonzero((view < 250).any(axis=(0, 2)))[0]
        view[:, (columns.min() + columns.max()) // 2:] = 255
    else:  # a foreign blob beside the object
        view[20:70, 20:70] = (30, 30, 30)
    return images


@pytest.mark.parametrize("index, damage", [(3, "shifted"), (7, "part missing"), (12, "foreign blob")])
def test_one_corrupted_view_is_left_out_and_only_it(separate_views, index, damage):
    images, view_cameras = separate_views
    mesh = build_proxy_mesh(corrupted(images, index, damage), view_cameras, resolution=48)
    assert mesh.rejected_views == (index,)


def test_outliers_are_judged_against_the_spread_of_the_others():
    clean = np.array([0.0] * 12 + [0.002, 0.004, 0.003, 0.006])  # a few views with a little disagreement
    assert not any(is_outlier(clean, i) for i in range(16))
    spread = np.array([0.01, 0.02, 0.015, 0.03, 0.012, 0.025, 0.02, 0.018] * 2)
    assert not is_outlier(spread, 3)  # the largest of a wide spread is no outlier
    bad = np.concatenate([clean[:15], [0.05]])
    assert is_outlier(bad, 15) and not is_outlier(bad, 14)
