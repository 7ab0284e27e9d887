"""POST /v1/preview: the image the model would see, from the server's own preprocessing, without
loading the model (the add-on shows it before the artist generates)."""
import base64
import io

import numpy as np
import pytest
from PIL import Image

from inference_server.generation.images import load_image
from inference_server.generation.preprocess import preprocess_for_syncdreamer


def preview_body(image_bytes, **params):
    return {"image_b64": base64.b64encode(image_bytes).decode(), "params": params}


@pytest.mark.slow
def test_preview_is_the_jobs_preprocessing_and_loads_no_model(start_server, cat_png, tmp_path):
    server = start_server(env_extra={"U2NET_HOME": str(tmp_path / "no-rembg")})
    for crop_size in (200, -1):
        status, png, headers = server.request("POST", "/v1/preview", preview_body(cat_png, crop_size=crop_size))
        assert status == 200 and headers["Content-Type"] == "image/png"
        shown = Image.open(io.BytesIO(png))
        assert shown.size == (256, 256) and shown.mode == "RGB"
        expected = preprocess_for_syncdreamer(load_image(cat_png), crop_size, "auto")
        assert np.array_equal(np.asarray(shown), np.asarray(expected))
    assert server.json("GET", "/v1/health")["model_loaded"] is False

    # Bad input is answered like a job's, and says what to change.
    status, answer, _ = server.request("POST", "/v1/preview", preview_body(cat_png, crop_size=300))
    assert status == 400 and "crop" in answer["error"]["message"].lower()
    status, answer, _ = server.request("POST", "/v1/preview", preview_body(b"not an image"))
    assert 400 <= status < 500 and answer["error"]["message"]
    status, answer, _ = server.request("POST", "/v1/preview", {"image_b64": "", "extra": 1})
    assert status == 400 and answer["error"]["code"] == "unknown_field"
    # A photo without transparency needs background removal; without its model the answer says how.
    rgb = io.BytesIO()
    Image.open(io.BytesIO(cat_png)).convert("RGB").save(rgb, format="PNG")
    status, answer, _ = server.request("POST", "/v1/preview", preview_body(rgb.getvalue()))
    assert status >= 400 and "u2net" in answer["error"]["message"]
    assert server.running  # still serving
