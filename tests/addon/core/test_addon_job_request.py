"""The job parameters the add-on sends, read back by the server's own check."""
import pytest

from glimpse_syncdreamer_addon.core.job_request import build_params
from inference_server.generation.params import parse_params

PANEL_DEFAULTS = {"elevation": 30.0, "crop_size": 200, "cfg_scale": 2.0, "steps": 50, "seed": 42, "samples": 1,
                  "background": "AUTO"}


def test_automatic_views_per_batch_is_left_to_the_server():
    automatic = build_params(**PANEL_DEFAULTS, batch_views=0)
    assert "batch_views" not in automatic  # an older server keeps its default instead of refusing 0
    assert parse_params(automatic).batch_views == 0  # the server's automatic choice
    chosen = build_params(**PANEL_DEFAULTS, batch_views=4)
    assert chosen["batch_views"] == 4 and parse_params(chosen).batch_views == 4


def test_values_the_widgets_cannot_prevent_are_refused():
    with pytest.raises(ValueError, match="Crop size must be -1"):
        build_params(**{**PANEL_DEFAULTS, "crop_size": 10}, batch_views=0)
