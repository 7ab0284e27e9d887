"""Preprocessing against the reference's prepare_inputs values (testset/README.md, facts §6.4)."""
import numpy as np
import pytest
from PIL import Image

from inference_server.generation import preprocess
from inference_server.errors import InputError
from inference_server.generation.images import load_image
from inference_server.generation.preprocess import preprocess_for_syncdreamer, to_model_input

# input, crop, mean of the [-1, 1] tensor (R, G, B), white fraction, non-white bbox (x0, x1, y0, y1)
REFERENCE = [
    ("aircraft.png", 200, (0.927065, 0.930191, 0.931054), 0.7728, (28, 227, 71, 187)),
    ("aircraft.png", -1, (0.880022, 0.885142, 0.886565), 0.6253, (0, 255, 66, 215)),
    ("cat.png", 200, (0.795612, 0.754124, 0.704525), 0.7210, (50, 205, 28, 227)),
    ("teapot.png", 180, (0.852447, 0.742428, 0.664980), 0.7737, (38, 217, 66, 189)),
]


@pytest.mark.parametrize("name, crop, mean, white, bbox", REFERENCE, ids=[f"{r[0]}-{r[1]}" for r in REFERENCE])
def test_matches_reference_prepare_inputs(data_dir, name, crop, mean, white, bbox):
    prepared = preprocess_for_syncdreamer(load_image(data_dir / "testset" / name), crop_size=crop)
    assert prepared.mode == "RGB" and prepared.size == (256, 256)
    tensor = to_model_input(prepared)
    assert tensor.shape == (3, 256, 256) and tensor.dtype == np.float32
    assert tensor.min() >= -1.0 and tensor.max() <= 1.0
    np.testing.assert_allclose(tensor.reshape(3, -1).mean(axis=1), mean, atol=2e-3)
    is_white = (tensor == 1.0).all(axis=0)
    assert abs(is_white.mean() - white) <= 2e-3
    rows, columns = np.nonzero(~is_white)
    found = (columns.min(), columns.max(), rows.min(), rows.max())
    assert np.abs(np.subtract(found, bbox)).max() <= 1, found


def test_opaque_rgb_kept_is_cropped_to_the_whole_frame_and_padded_white():
    photo = Image.new("RGB", (100, 50), (0, 0, 255))
    prepared = preprocess_for_syncdreamer(photo, crop_size=200, background="keep")
    pixels = np.asarray(prepared)
    # 99x49 after the reference's exclusive crop box, times 200/99 -> 200x98, centred
    blue = np.nonzero((pixels[..., 0] < 100) & (pixels[..., 2] > 200))
    assert (blue[1].min(), blue[1].max(), blue[0].min(), blue[0].max()) == (28, 227, 79, 176)
    assert tuple(pixels[0, 0]) == (255, 255, 255) and tuple(pixels[128, 128]) == (0, 0, 255)
    # crop -1: the reference pads an RGB image with black; we pad with white
    padded = np.asarray(preprocess_for_syncdreamer(photo, crop_size=-1, background="keep"))
    assert tuple(padded[5, 128]) == (255, 255, 255) and tuple(padded[128, 128]) == (0, 0, 255)


def test_background_choice():
    cutout = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    cutout.paste((255, 0, 0, 255), (16, 16, 48, 48))
    opaque = Image.new("RGBA", (64, 64), (255, 0, 0, 255))
    assert preprocess.background_source(cutout, "auto") == "alpha"
    assert preprocess.background_source(opaque, "auto") == "rembg"
    assert preprocess.background_source(opaque.convert("RGB"), "auto") == "rembg"
    assert preprocess.background_source(opaque, "keep") == "keep"
    assert preprocess.background_source(cutout, "keep") == "alpha"
    assert preprocess.background_source(cutout, "remove") == "rembg"
    with pytest.raises(InputError, match="auto, keep, remove"):
        preprocess.background_source(cutout, "magic")


def test_object_with_alpha_is_centred_on_white():
    cutout = Image.new("RGBA", (300, 120), (0, 0, 0, 0))
    cutout.paste((0, 128, 0, 255), (10, 10, 110, 60))  # off-centre, 100x50
    pixels = np.asarray(preprocess_for_syncdreamer(cutout, crop_size=128))
    green = np.nonzero(pixels[..., 0] < 128)
    # box (10, 10, 109, 59) -> 99x49, scale 128/99 -> 128x63, pasted at (64, 96)
    assert (green[1].min(), green[1].max(), green[0].min(), green[0].max()) == (64, 191, 96, 158)
    assert tuple(pixels[0, 0]) == (255, 255, 255)


@pytest.mark.parametrize("crop_size", [0, 63, 257, -2, 200.0, True, "200", None])
def test_refuses_bad_crop_sizes(crop_size):
    with pytest.raises(InputError, match="crop_size must be -1"):
        preprocess_for_syncdreamer(Image.new("RGBA", (64, 64)), crop_size=crop_size)


def test_refuses_fully_transparent_image():
    with pytest.raises(InputError, match="fully transparent"):
        preprocess_for_syncdreamer(Image.new("RGBA", (64, 64), (255, 0, 0, 0)), crop_size=200, background="keep")
    with pytest.raises(InputError, match="fully transparent"):
        preprocess_for_syncdreamer(Image.new("RGBA", (64, 64), (255, 0, 0, 0)), crop_size=-1)


def test_to_model_input_range_and_layout():
    image = Image.new("RGB", (256, 256), (255, 0, 0))
    image.putpixel((3, 1), (0, 255, 51))
    tensor = to_model_input(image)
    assert tensor.flags["C_CONTIGUOUS"]
    assert tuple(tensor[:, 0, 0]) == (1.0, -1.0, -1.0)
    np.testing.assert_allclose(tensor[:, 1, 3], [-1.0, 1.0, 51 / 255 * 2 - 1], atol=1e-7)
    with pytest.raises(ValueError, match="256x256"):
        to_model_input(Image.new("RGB", (128, 128)))


def test_takes_a_path_bytes_file_or_image_alike(data_dir):
    path = data_dir / "testset" / "cat.png"
    expected = np.asarray(preprocess_for_syncdreamer(load_image(path), crop_size=200))
    for source in (path, str(path), path.read_bytes(), open(path, "rb")):
        np.testing.assert_array_equal(np.asarray(preprocess_for_syncdreamer(source, crop_size=200)), expected)


def test_a_missing_file_is_named_in_the_error(tmp_path):
    with pytest.raises(InputError, match="no image file at"):
        preprocess_for_syncdreamer(tmp_path / "missing.png")
