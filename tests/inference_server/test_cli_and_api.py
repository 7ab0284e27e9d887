"""The command line (`generate`, `convert`, errors) and the Python API, end to end.

The CLI run and the API run use the same seed and parameters in different processes: their
views must be pixel-identical (one CPU generator per job reproduces a seed anywhere).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import inference_server
from inference_server.generation import checkpoints
from inference_server.errors import SetupError
from glimpse_syncdreamer_addon.core.view_sets import read_view_set  # the add-on's reader: one reader
from inference_server.protocol import SET_FILES

REPO_ROOT = Path(__file__).resolve().parents[2]
FAST_ARGS = ["--random-weights", "--steps", "1", "--batch-views", "16", "--cfg-scale", "1", "--seed", "7",
             "--elevation", "20"]


def run_cli(*args, env_extra=None, timeout=600):
    env = {key: value for key, value in os.environ.items() if key != "GLIMPSE_CHECKPOINT"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "inference_server", *map(str, args)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cli_set(tmp_path_factory, cat_path):
    out = tmp_path_factory.mktemp("cli") / "cat_views"
    result = run_cli("generate", cat_path, "-o", out, *FAST_ARGS)
    return out, result


@pytest.mark.slow
def test_cli_generate_writes_a_complete_set_with_progress(cli_set):
    out, result = cli_set
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert "WARNING: RANDOM WEIGHTS" in result.stderr
    assert "sampling: 100%" in result.stderr and "1/1" in result.stderr  # the tqdm bar
    assert "decoding: 100%" in result.stderr and "16/16" in result.stderr
    view_set = read_view_set(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(SET_FILES)
    generation = view_set.metadata["generation"]
    assert (generation["seed"], generation["steps"], generation["elevation_deg"]) == (7, 1, 20.0)
    assert generation["input_file"] == "cat.png" and generation["batch_view_num"] == 16
    assert view_set.metadata["model"]["random_weights"] is True
    assert view_set.metadata["warning"].startswith("RANDOM WEIGHTS")


@pytest.mark.slow
def test_cli_refuses_bad_input_and_an_occupied_folder_before_loading_the_model(tmp_path, cli_set, cat_path):
    text_file = tmp_path / "notes.png"
    text_file.write_text("not a picture")
    result = run_cli("generate", text_file, "-o", tmp_path / "a", "--random-weights")
    assert result.returncode == 2 and "error: notes.png is not an image" in result.stderr
    result = run_cli("generate", cat_path, "-o", tmp_path / "b", "--random-weights", "--steps", "0")
    assert result.returncode == 2 and "--steps must be between 1 and 1000" in result.stderr  # in the words of the CLI
    occupied, _ = cli_set
    result = run_cli("generate", cat_path, "-o", occupied, "--random-weights")
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_cli_without_a_checkpoint_says_where_it_looked_and_what_to_do(tmp_path, cat_path):
    missing = tmp_path / "nowhere.ckpt"
    result = run_cli("generate", cat_path, "-o", tmp_path / "out", env_extra={"GLIMPSE_CHECKPOINT": str(missing)})
    assert result.returncode == 3
    assert str(missing) in result.stderr and "GLIMPSE_CHECKPOINT" in result.stderr


def test_checkpoint_search_order_and_message(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "project_root", lambda: tmp_path / "repo")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GLIMPSE_CHECKPOINT", raising=False)
    with pytest.raises(SetupError) as caught:
        checkpoints.find_checkpoint()
    message = caught.value.message
    for place in checkpoints.default_locations():
        assert str(place) in message
    assert "python -m inference_server download" in message and "--random-weights" in message
    cached = tmp_path / "home" / ".cache" / "glimpse3d" / "syncdreamer-pretrain.ckpt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert checkpoints.find_checkpoint() == cached
    in_repo = tmp_path / "repo" / "ckpt" / "syncdreamer-pretrain.safetensors"
    in_repo.parent.mkdir(parents=True)
    in_repo.write_bytes(b"x")
    assert checkpoints.find_checkpoint() == in_repo  # the repository's ckpt/ comes first
    from_env = tmp_path / "env.ckpt"
    from_env.write_bytes(b"x")
    monkeypatch.setenv("GLIMPSE_CHECKPOINT", str(from_env))
    assert checkpoints.find_checkpoint() == from_env
    assert checkpoints.find_checkpoint(cached) == cached  # an explicit path wins


def test_package_import_stays_light_and_exposes_the_api():
    probe = ("import sys, inference_server, inference_server.cameras; "
             "print(sorted(m for m in ('torch', 'PIL', 'ldm') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
    for name in ("generate_multiview", "SyncDreamerService", "segment_foreground", "preprocess_for_syncdreamer",
                 "get_camera_matrices", "views_to_video", "get_service", "cleanup"):
        assert name in dir(inference_server) and callable(getattr(inference_server, name))
    with pytest.raises(AttributeError):
        inference_server.no_such_name


@pytest.mark.slow
def test_api_generate_multiview_matches_the_cli_for_the_same_seed(tmp_path, cli_set, cat_path):
    cli_out, _ = cli_set
    paths = inference_server.generate_multiview(cat_path, tmp_path / "api", elevation=20.0, seed=7, steps=1,
                                                batch_views=16, cfg_scale=1.0, random_weights=True,
                                                progress=False)
    assert paths == [str(tmp_path / "api" / name) for name in SET_FILES]
    for name in SET_FILES[:17]:
        ours = np.asarray(Image.open(tmp_path / "api" / name))
        theirs = np.asarray(Image.open(cli_out / name))
        assert np.array_equal(ours, theirs), name

    # the other helpers of the original module
    model_input = inference_server.preprocess_for_syncdreamer(Image.open(cat_path), 200)
    assert model_input.size == (256, 256) and model_input == Image.open(paths[16]).convert("RGB")
    video = inference_server.views_to_video(paths[:16], tmp_path / "turntable.gif")
    with Image.open(video) as gif:
        assert gif.n_frames == 16 and gif.size == (256, 256)
    w2c, c2w, K = inference_server.get_camera_matrices([30.0, 30.0], [0.0, 22.5])
    cameras = json.loads((tmp_path / "api" / "cameras.json").read_text())["views"]
    assert np.allclose(w2c[1], cameras[1]["world_to_camera_opencv"], atol=1e-6)
    assert np.allclose(c2w[1], cameras[1]["camera_to_world_blender"], atol=1e-6)
    inference_server.cleanup()


@pytest.mark.slow
def test_convert_then_generate_from_that_checkpoint(tmp_path, data_dir, cat_path, repo_root):
    converted = tmp_path / "tiny.safetensors"
    result = run_cli("convert", data_dir / "golden" / "tiny" / "tiny_state_dict.pt", converted)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(converted) and converted.is_file()

    service = inference_server.SyncDreamerService(config_path=repo_root / "configs" / "tiny.yaml",
                                                  checkpoint_path=converted, device="cpu")
    assert service.info()["loaded"] is False
    views = service.generate(str(cat_path), elevation=30.0, cfg_scale=1.0, sample_steps=1, batch_view_num=16,
                             seed=3)
    assert len(views) == 16 and all(v.size == (256, 256) and v.mode == "RGB" for v in views)
    info = service.info()
    assert info["loaded"] and info["random_weights"] is False and info["warning"] is None
    assert info["checkpoint"] == str(converted)
    service.unload_model()
    assert service.info()["loaded"] is False and service.model is None
    paths = service.generate_and_save(str(cat_path), tmp_path / "set", cfg_scale=1.0, sample_steps=1,
                                      batch_view_num=16)
    assert paths == [str(tmp_path / "set" / name) for name in SET_FILES]
    cameras = json.loads((tmp_path / "set" / "cameras.json").read_text())
    assert cameras["warning"] is None and cameras["model"]["random_weights"] is False
    assert cameras["model"]["checkpoint"] == "tiny.safetensors" and cameras["model"]["config"] == "tiny.yaml"
