"""Background removal through rembg's real code path, with a tiny hand-made ONNX model."""
import io

import numpy as np
import pytest
from PIL import Image

from inference_server.errors import SetupError
from inference_server.generation.preprocess import preprocess_for_syncdreamer
from inference_server.generation.segmentation import find_model_file, segment_foreground


def write_colourfulness_model(path):
    """A u2net-shaped model (1x3x320x320 -> 1x1x320x320): 1 where a pixel has colour, 0 on white.

    rembg feeds (rgb / max - mean) / std; on white every channel is above 2.2, while a pixel
    with one dark channel has a channel below 0. The mask is sigmoid(10 * (1 - min channel)).
    """
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("ReduceMin", ["input"], ["darkest"], axes=[1], keepdims=1),
            helper.make_node("Sub", ["one", "darkest"], ["headroom"]),
            helper.make_node("Mul", ["headroom", "ten"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["mask"]),
        ],
        "colourfulness",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 320, 320])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 320, 320])],
        initializer=[helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
                     helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def photo_of_red_square():
    """An opaque 'photo': white background, a red square at x 40..99, y 20..79."""
    photo = Image.new("RGB", (160, 120), (255, 255, 255))
    photo.paste((200, 30, 30), (40, 20, 100, 80))
    return photo


def test_rembg_separates_object_from_background(tmp_path):
    model = write_colourfulness_model(tmp_path / "colourfulness.onnx")
    cutout = segment_foreground(photo_of_red_square(), rembg_model=model)
    assert cutout.mode == "RGBA" and cutout.size == (160, 120)
    alpha = np.asarray(cutout.getchannel("A")).astype(int)
    assert alpha[30:70, 50:90].min() > 240   # inside the object
    assert alpha[:10].max() < 15 and alpha[:, :30].max() < 15 and alpha[90:].max() < 15  # background
    assert cutout.getpixel((70, 50))[:3] == (200, 30, 30)  # colours kept


def test_default_model_location_is_used(tmp_path, monkeypatch):
    write_colourfulness_model(tmp_path / "u2net.onnx")
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    assert find_model_file() == tmp_path / "u2net.onnx"
    # "auto" on an opaque photo removes the background, then crops to the object
    prepared = preprocess_for_syncdreamer(photo_of_red_square(), crop_size=200, background="auto")
    pixels = np.asarray(prepared).astype(int)
    object_columns = np.flatnonzero((pixels[..., 1] < 128).any(axis=0))
    # about 200 px wide: the mask's soft edge (alpha > 0) widens the crop box by a few pixels
    assert 170 <= object_columns[-1] - object_columns[0] + 1 <= 202
    assert tuple(pixels[5, 5]) == (255, 255, 255) and tuple(pixels[128, 128]) == (200, 30, 30)


def test_missing_model_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "models"))
    with pytest.raises(SetupError) as info:
        segment_foreground(photo_of_red_square())
    message = str(info.value)
    assert str(tmp_path / "models" / "u2net.onnx") in message and "RGBA" in message and "u2net.onnx" in message
    with pytest.raises(SetupError, match="does not exist"):
        segment_foreground(photo_of_red_square(), rembg_model=tmp_path / "nope.onnx")
    assert not (tmp_path / "models").exists()  # nothing was downloaded


def test_takes_a_path_bytes_or_image_alike(tmp_path):
    model = write_colourfulness_model(tmp_path / "colourfulness.onnx")
    photo_file = tmp_path / "photo.png"
    photo_of_red_square().save(photo_file)
    from_image = np.asarray(segment_foreground(photo_of_red_square(), rembg_model=model))
    for source in (photo_file, str(photo_file), photo_file.read_bytes(), io.BytesIO(photo_file.read_bytes())):
        np.testing.assert_array_equal(np.asarray(segment_foreground(source, rembg_model=model)), from_image)


def test_old_keyword_model_path_still_works_with_a_deprecation_warning(tmp_path):
    model = write_colourfulness_model(tmp_path / "colourfulness.onnx")
    with pytest.warns(DeprecationWarning, match="rembg_model"):
        cutout = segment_foreground(photo_of_red_square(), model_path=model)
    assert cutout.getpixel((70, 50)) == (200, 30, 30, 255) or cutout.getpixel((70, 50))[:3] == (200, 30, 30)
    with pytest.raises(TypeError, match="rembg_model"):
        segment_foreground(photo_of_red_square(), rembg_model=model, model_path=model)
