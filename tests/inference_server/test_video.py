"""Turntable videos: frame count, size and order for .gif and .mp4."""
import builtins

import numpy as np
import pytest
from PIL import Image

from inference_server.errors import InputError, SetupError
from inference_server.view_set.video import views_to_video

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


@pytest.fixture
def frame_paths(tmp_path):
    paths = []
    for i, colour in enumerate(COLOURS):
        path = tmp_path / f"view_{i:02d}.png"
        Image.new("RGB", (64, 48), colour).save(path)
        paths.append(path)
    return paths


def test_gif(frame_paths, tmp_path):
    video = views_to_video(frame_paths, tmp_path / "out" / "turntable.gif", fps=8, loops=2)
    assert video == tmp_path / "out" / "turntable.gif"
    with Image.open(video) as gif:
        assert gif.n_frames == 8 and gif.size == (64, 48)
        assert 120 <= gif.info["duration"] <= 130 and gif.info["loop"] == 0  # GIF counts in 1/100 s
        for index in range(8):
            gif.seek(index)
            assert gif.convert("RGB").getpixel((10, 10)) == COLOURS[index % 4]
    assert sorted(p.name for p in video.parent.iterdir()) == ["turntable.gif"]


def test_mp4(frame_paths, tmp_path):
    import imageio.v2 as imageio

    video = views_to_video(frame_paths, tmp_path / "turntable.mp4", fps=8)
    with imageio.get_reader(video, format="FFMPEG") as reader:
        assert reader.get_meta_data()["fps"] == 8
        frames = [frame for frame in reader]
    assert len(frames) == 4 and frames[0].shape == (48, 64, 3)
    for frame, colour in zip(frames, COLOURS):  # lossy: close to the colour, in order
        assert np.abs(frame[24, 32].astype(int) - colour).max() < 40


def test_refusals(frame_paths, tmp_path, monkeypatch):
    with pytest.raises(InputError, match=".gif or .mp4"):
        views_to_video(frame_paths, tmp_path / "turntable.avi")
    with pytest.raises(InputError, match="fps"):
        views_to_video(frame_paths, tmp_path / "turntable.gif", fps=0)
    with pytest.raises(InputError, match="loops"):
        views_to_video(frame_paths, tmp_path / "turntable.gif", loops=0)
    Image.new("RGB", (32, 32)).save(frame_paths[1])
    with pytest.raises(InputError, match="same size"):
        views_to_video(frame_paths, tmp_path / "turntable.gif")

    real_import = builtins.__import__

    def without_ffmpeg(name, *args, **kwargs):
        if name == "imageio_ffmpeg":
            raise ImportError("No module named 'imageio_ffmpeg'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_ffmpeg)
    with pytest.raises(SetupError, match="imageio-ffmpeg"):
        views_to_video(frame_paths[:1], tmp_path / "turntable.mp4")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("view_")) == []
