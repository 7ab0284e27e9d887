"""Request helpers of the server, without a process: names, base64, loopback, folder layout."""
import base64

import pytest

from inference_server.errors import InputError
from inference_server.generation.pipeline import set_folders
from inference_server.server.core import clean_input_name, decode_image_b64, is_loopback, job_folder_name


def test_input_names_are_reduced_to_a_base_name():
    assert clean_input_name(None) == "input.png"
    assert clean_input_name("../../etc/cat.png") == "cat.png"
    assert clean_input_name("C:\\Users\\me\\cat.png") == "cat.png"
    with pytest.raises(InputError, match="control characters"):
        clean_input_name("cat\n.png")
    assert job_folder_name("my cat (1).png", "abc") == "my_cat_1_abc"
    assert job_folder_name("...", "abc") == "input_abc"


def test_base64_accepts_data_urls_and_wrapped_lines_and_refuses_garbage():
    data = bytes(range(200))
    text = base64.b64encode(data).decode()
    assert decode_image_b64(text) == data
    assert decode_image_b64("data:image/png;base64," + text) == data
    assert decode_image_b64("\n".join(text[i:i + 76] for i in range(0, len(text), 76))) == data
    for bad, code in (("%%%", "bad_base64"), (None, "missing_image"), ("", "empty_image"), (42, "bad_base64")):
        with pytest.raises(InputError) as caught:
            decode_image_b64(bad)
        assert caught.value.code == code


def test_loopback_hosts_and_sample_layout(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    assert set_folders(tmp_path, 1) == [tmp_path]
    assert set_folders(tmp_path, 3) == [tmp_path / f"sample_{k}" for k in range(3)]
