"""The two Python calls that write sets, generate_multiview and SyncDreamerService.generate_and_save,
take the same kinds of image and folder (str, any os.PathLike, bytes, PIL image) and record the
same input file name in cameras.json: a path's name, else the protocol's input.png."""
import json
import os

import pytest
from PIL import Image

import inference_server
from inference_server import protocol


class StoredAt(os.PathLike):
    """A path-like object that is not a pathlib.Path (as other libraries hand them out)."""

    def __init__(self, path):
        self.path = str(path)

    def __fspath__(self):
        return self.path


def input_file(folder) -> str:
    return json.loads((folder / protocol.CAMERAS_FILE).read_text())["generation"]["input_file"]


@pytest.mark.slow
def test_both_calls_take_path_likes_and_name_the_input_alike(tmp_path, cat_path):
    api_paths = inference_server.generate_multiview(StoredAt(cat_path), StoredAt(tmp_path / "api"), steps=1,
                                                    cfg_scale=1.0, random_weights=True, progress=False)
    service = inference_server.get_service(random_weights=True)
    service_paths = service.generate_and_save(StoredAt(cat_path), StoredAt(tmp_path / "service"), sample_steps=1,
                                              cfg_scale=1.0)
    assert [os.path.basename(path) for path in api_paths] == [os.path.basename(path) for path in service_paths]
    assert input_file(tmp_path / "api") == input_file(tmp_path / "service") == cat_path.name
    inference_server.cleanup()


@pytest.mark.slow
def test_an_image_without_a_file_name_is_recorded_as_the_protocols_input_file(tmp_path, cat_path):
    service = inference_server.get_service(random_weights=True)
    service.generate_and_save(cat_path.read_bytes(), tmp_path / "bytes", sample_steps=1, cfg_scale=1.0)
    inference_server.generate_multiview(Image.open(cat_path), tmp_path / "pil", steps=1, cfg_scale=1.0,
                                        random_weights=True, progress=False)
    assert input_file(tmp_path / "bytes") == input_file(tmp_path / "pil") == protocol.INPUT_FILE
    inference_server.cleanup()
