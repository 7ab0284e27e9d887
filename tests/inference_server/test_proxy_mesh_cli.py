"""`python -m inference_server mesh`: on a set folder, a views-only folder, a strip and a set that
a generation wrote; errors that say what to do; mesh.ply written into a set."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_server import protocol
from inference_server.cli import main as cli
from inference_server.generation.masks import write_mesh_if_asked
from inference_server.generation.params import job_options
from inference_server.view_set import mesh as set_mesh
from view_set_files import strip_from_views, write_view_set
from ply_files import read_ply
from proxy_mesh_scene import SPHERE, target_views

REPO_ROOT = Path(__file__).resolve().parents[2]


def metadata():
    model = {"name": "SyncDreamer", "config": "tiny.yaml", "checkpoint": None, "checkpoint_sha256": None,
             "random_weights": False}
    generation = {"seed": 7, "steps": 3, "cfg_scale": 2.0, "elevation_deg": 30.0, "crop_size": 200,
                  "sampler": "ddim", "eta": 1.0, "precision": "float32", "device": "cpu", "batch_view_num": 8,
                  "sample_index": 0, "sample_count": 1, "input_file": "scene.png", "background": "alpha"}
    return {"model": model, "generation": generation, "warning": None}


@pytest.fixture(scope="module")
def scene_rgb():
    """The known scene's views as SyncDreamer writes views: RGB on white."""
    images, _ = target_views()
    return [Image.fromarray(image[..., :3]) for image in images]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, scene_rgb):
    root = tmp_path_factory.mktemp("mesh_cli")
    set_folder = write_view_set(root / "scene_set", scene_rgb, scene_rgb[0], metadata())
    (root / "views_only").mkdir()
    for name, view in zip(protocol.VIEW_FILES, scene_rgb):
        view.save(root / "views_only" / name)
    strip_from_views(scene_rgb).save(root / "strip.png")
    return {"set": set_folder, "views_only": root / "views_only", "strip": root / "strip.png"}


def run_mesh(capsys, *args):
    code = cli.main(["mesh", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def closed(faces):
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    return set(np.unique(edges, axis=0, return_counts=True)[1]) == {2}


@pytest.mark.parametrize("layout", ["set", "views_only", "strip"])
def test_mesh_of_each_layout(capsys, tmp_path, folders, layout):
    out = tmp_path / f"{layout}.ply"
    code, stdout, stderr = run_mesh(capsys, folders[layout], "-o", out, "--resolution", "64")
    assert code == 0, stderr
    assert stdout.strip() == str(out) and "triangles" in stderr
    content = read_ply(out)
    vertices = np.stack([content[axis] for axis in "xyz"], axis=1)
    assert closed(content["faces"]) and len(vertices) > 1000
    # the sphere's top, where the known scene has it, in red
    top = np.argmax(vertices[:, 2])
    assert vertices[top, 2] == pytest.approx(SPHERE[1][0][2] + SPHERE[1][1], abs=0.012)
    colour = np.array([content["red"][top], content["green"][top], content["blue"][top]], dtype=int)
    assert np.abs(colour - SPHERE[2]).max() < 12


def test_set_and_views_only_give_the_same_mesh(capsys, tmp_path, folders):
    for name in ("set", "views_only"):
        assert run_mesh(capsys, folders[name], "-o", tmp_path / f"{name}.ply", "--resolution", "64")[0] == 0
    a, b = read_ply(tmp_path / "set.ply"), read_ply(tmp_path / "views_only.ply")
    np.testing.assert_array_equal(a["faces"], b["faces"])
    np.testing.assert_allclose(a["x"], b["x"], atol=1e-5)


def test_errors_say_what_to_do(capsys, tmp_path, scene_rgb):
    code, _, stderr = run_mesh(capsys, tmp_path / "nowhere", "-o", tmp_path / "m.ply")
    assert code == cli.EXIT_INPUT and "does not exist" in stderr
    blank = tmp_path / "blank"
    blank.mkdir()
    for index, name in enumerate(protocol.VIEW_FILES):
        (Image.new("RGB", (256, 256), "white") if index == 4 else scene_rgb[index]).save(blank / name)
    code, _, stderr = run_mesh(capsys, blank, "-o", tmp_path / "m.ply")
    assert code == cli.EXIT_INPUT and "no object in view 4" in stderr
    (blank / "view_07.png").unlink()
    code, _, stderr = run_mesh(capsys, blank, "-o", tmp_path / "m.ply")
    assert code == cli.EXIT_INPUT and "view_07.png missing" in stderr
    code, _, stderr = run_mesh(capsys, blank, "-o", tmp_path / "m.ply", "--resolution", "8")
    assert code == cli.EXIT_INPUT


def test_write_set_mesh_lists_the_mesh_in_cameras_json(tmp_path, scene_rgb):
    folder = write_view_set(tmp_path / "scene_set", scene_rgb, scene_rgb[0], metadata())
    path = set_mesh.write_set_mesh(folder, resolution=64)
    assert path == folder / protocol.MESH_FILE and closed(read_ply(path)["faces"])
    document = json.loads((folder / protocol.CAMERAS_FILE).read_text())
    assert document["mesh"] == {"file": "mesh.ply", "resolution": 64, "rejected_views": [],
                                "unseen_property": "unseen"}
    assert sorted(p.name for p in folder.iterdir()) == sorted((*protocol.SET_FILES, protocol.MESH_FILE))


@pytest.mark.slow
def test_mesh_of_a_set_that_a_generation_wrote(tmp_path, data_dir, scene_rgb):
    """A set from `generate` (random weights: its views are noise) with the known scene's views put in
    its place: the mesh command reads the generated cameras.json."""
    out = tmp_path / "generated"
    result = subprocess.run([sys.executable, "-m", "inference_server", "generate", str(data_dir / "testset" / "cat.png"),
                             "-o", str(out), "--random-weights", "--steps", "1", "--seed", "3"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for name, view in zip(protocol.VIEW_FILES, scene_rgb):
        view.save(out / name)
    result = subprocess.run([sys.executable, "-m", "inference_server", "mesh", str(out), "-o", str(tmp_path / "g.ply"),
                             "--resolution", "64"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert closed(read_ply(tmp_path / "g.ply")["faces"])


def test_job_options_are_checked_with_their_defaults():
    assert job_options({}) == {"mesh": False, "mesh_resolution": 128, "mesh_asset": False}
    assert job_options({"mesh": True, "mesh_resolution": 256}) == {"mesh": True, "mesh_resolution": 256,
                                                                   "mesh_asset": False}
    with pytest.raises(Exception, match="'mesh_resolution' must be between 32 and 512, got 8"):
        job_options({"mesh_resolution": 8})
    with pytest.raises(Exception, match="'mesh' must be true or false"):
        job_options({"mesh": "yes"})


class _Request:
    def __init__(self, **options):
        self.options = options


def test_set_writer_writes_the_mesh_only_when_asked(tmp_path, scene_rgb):
    folder = write_view_set(tmp_path / "asked", scene_rgb, scene_rgb[0], metadata())
    write_mesh_if_asked(folder, scene_rgb, _Request())
    assert not (folder / protocol.MESH_FILE).exists()
    write_mesh_if_asked(folder, scene_rgb, _Request(mesh=True, mesh_resolution=48))
    assert closed(read_ply(folder / protocol.MESH_FILE)["faces"])
    assert json.loads((folder / protocol.CAMERAS_FILE).read_text())["mesh"]["resolution"] == 48


def test_set_writer_records_why_there_is_no_mesh(tmp_path):
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) for _ in range(16)]
    folder = write_view_set(tmp_path / "noise", noise, noise[0], metadata())
    write_mesh_if_asked(folder, noise, _Request(mesh=True, mesh_resolution=64))
    assert not (folder / protocol.MESH_FILE).exists()
    entry = json.loads((folder / protocol.CAMERAS_FILE).read_text())["mesh"]
    assert entry["file"] is None and "no background in views 0, 1" in entry["error"]


@pytest.mark.slow
def test_generate_with_the_mesh_option(tmp_path, data_dir):
    """`generate --mesh` runs the set writer inside the pipeline's atomic write: the set appears with
    its cameras.json naming the mesh (random weights paint noise, so the entry says why there is none)."""
    out = tmp_path / "with_mesh"
    result = subprocess.run([sys.executable, "-m", "inference_server", "generate", str(data_dir / "testset" / "cat.png"),
                             "-o", str(out), "--random-weights", "--steps", "1", "--mesh", "--mesh-resolution", "64"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    entry = json.loads((out / protocol.CAMERAS_FILE).read_text())["mesh"]
    assert entry["resolution"] == 64
    assert (entry["file"] == protocol.MESH_FILE) == (out / protocol.MESH_FILE).is_file()
    assert not [p for p in out.parent.iterdir() if protocol.PARTIAL_MARK in p.name]


class _SceneService:
    """Stands in for the model: every sample's views are the known scene's."""

    def __init__(self, views):
        self.views = views

    def run(self, image, params, on_progress=None):
        from types import SimpleNamespace

        return SimpleNamespace(views=[self.views] * params.samples, model_input=self.views[0])

    def set_metadata(self, result, index, input_name):
        return metadata()


def test_the_pipeline_writes_mesh_ply_into_each_set(tmp_path, data_dir, scene_rgb):
    from inference_server.generation.params import parse_params
    from inference_server.generation.pipeline import GenerationRequest, Pipeline

    request = GenerationRequest(image=data_dir / "testset" / "cat.png", output=tmp_path / "out",
                                params=parse_params({"samples": 2}), options={"mesh": True, "mesh_resolution": 48})
    folders = Pipeline(_SceneService(scene_rgb)).run(request)
    for folder in folders:
        assert closed(read_ply(folder / protocol.MESH_FILE)["faces"])
        assert json.loads((folder / protocol.CAMERAS_FILE).read_text())["mesh"]["file"] == protocol.MESH_FILE
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing half-written beside it
