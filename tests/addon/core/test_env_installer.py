"""Install Server's parts that need no package index: pip's output read as progress, the one
requirement list split for torch's own step, the completion marker, cancel, and where things go.
(The real install from the package index is tests/addon/blender/test_first_run_buttons.py.)"""
import sys
import threading
from pathlib import Path

import pytest

from glimpse_syncdreamer_addon.core import setup_task as st
from glimpse_syncdreamer_addon.core.base_python import BasePython, candidates, find_base_python
from glimpse_syncdreamer_addon.core.env_installer import (CREATE, MARKER, TORCH, EnvInstaller, InstallError,
                                                          read_marker, remove_env, split_requirements)
from glimpse_syncdreamer_addon.core.pip_progress import PipProgress
from glimpse_syncdreamer_addon.core.streamed_process import Cancelled
from glimpse_syncdreamer_addon.core.torch_build import CPU, CUDA, TorchBuild
from glimpse_syncdreamer_addon.core.user_data import data_dir, env_python

# What pip 23 printed for a fresh install and for a repair (abridged from real logs).
FRESH = """Collecting torch==2.13.0
  Using cached torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl (190.4 MB)
Collecting filelock (from torch==2.13.0)
  Downloading filelock-4.2.12-py3-none-any.whl (16 kB)
Collecting sympy>=1.13.3 (from torch==2.13.0)
Collecting jinja2 (from torch==2.13.0)
Installing collected packages: sympy, filelock, jinja2, torch
Successfully installed filelock-4.2.12 jinja2-3.1.6 sympy-1.14.0 torch-2.13.0+cpu""".splitlines()
REPAIR = """Requirement already satisfied: numpy<2 in ./env/lib/python3.11/site-packages (1.26.4)
Requirement already satisfied: pillow in ./env/lib/python3.11/site-packages (13.0.0)""".splitlines()


def test_pip_output_becomes_a_growing_fraction_with_the_package_named():
    pip, seen = PipProgress(), []
    for line in FRESH:
        if pip.feed(line):
            seen.append((pip.package, round(pip.fraction, 3)))
    assert [name for name, _ in seen[:4]] == ["torch", "filelock", "sympy", "jinja2"]
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions) and fractions[3] < 0.7
    assert seen[-2] == ("4 packages", 0.7) and seen[-1][1] == 1.0
    assert (pip.downloaded, pip.satisfied) == (1, 0)
    repair = PipProgress()
    for line in REPAIR:
        repair.feed(line)
    assert (repair.package, repair.satisfied, repair.downloaded) == ("pillow", 2, 0)


def test_newer_pip_names_local_wheels_and_big_downloads_move_by_their_bytes():
    # pip 24.1+ with --progress-bar raw (the format of pip/_internal/cli/progress_bars.py)
    pip = PipProgress()
    assert pip.feed("Processing /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
    assert pip.package == "torch"
    assert pip.feed("Collecting torch==2.13.0") and pip.feed("Progress 0 of 2684354560")
    start = pip.fraction
    assert pip.feed("Progress 1342177280 of 2684354560")
    assert pip.detail == "1.25 of 2.50 GB" and pip.fraction == max(start, 0.35)
    assert pip.feed("Progress 1048576 of 4194304") and pip.fraction == max(start, 0.35)  # small: by count only
    assert pip.detail == "1.00 of 4.00 MB"
    assert pip.feed("Collecting filelock") and pip.detail == ""


def test_the_requirement_list_is_split_into_torch_and_the_rest(repo_root):
    rest, torch_line = split_requirements((repo_root / "requirements-server.txt").read_text())
    assert torch_line.startswith("torch==")
    assert "numpy<2" in rest and "\ntorch" not in "\n" + rest
    kept, pin = split_requirements("# c\ntorchvision==1\ntorch>=2 # why\ntorch-geometric\n")
    assert pin == "torch>=2" and "torchvision==1" in kept and "torch-geometric" in kept


def _installer(tmp_path, cancel, on_progress, repo_root):
    build = TorchBuild("default", CPU, "torch==2.13.0", None, "test")
    return EnvInstaller(tmp_path / "env", build, repo_root, tmp_path / "logs" / "install.log",
                        on_progress=on_progress, cancel=cancel)


@pytest.mark.parametrize("phase", [CREATE, pytest.param(TORCH, marks=pytest.mark.slow)])  # TORCH: a venv first
def test_cancel_leaves_no_environment_marked_usable(tmp_path, repo_root, phase):
    cancel = threading.Event()

    def on_progress(progress):
        if progress.phase == phase:
            cancel.set()

    installer = _installer(tmp_path, cancel, on_progress, repo_root)
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / MARKER).write_text("{}")  # a previous run's mark goes first
    with pytest.raises(Cancelled):
        installer.run()
    assert read_marker(tmp_path / "env") is None and not (tmp_path / "env" / MARKER).exists()
    assert "cancelled; the environment is not marked usable" in (tmp_path / "logs" / "install.log").read_text()


def test_a_failing_step_says_what_failed_and_where_the_log_is(tmp_path, repo_root, monkeypatch):
    installer = _installer(tmp_path, threading.Event(), lambda progress: None, repo_root)
    installer.build = TorchBuild("default", CPU, "torch==0.0.0.does-not-exist", None, "test")
    monkeypatch.setattr(installer, "_create_env", lambda: True)
    monkeypatch.setattr(installer, "python", Path(sys.executable))  # pip of this environment, nothing changes
    with pytest.raises(InstallError) as info:
        installer.run()
    assert "installing torch failed" in str(info.value).lower() and str(tmp_path / "logs") in str(info.value)
    assert read_marker(tmp_path / "env") is None


def test_an_unreachable_gpu_index_stops_and_offers_the_cpu_build(tmp_path, repo_root, monkeypatch):
    installer = _installer(tmp_path, threading.Event(), lambda progress: None, repo_root)
    installer.build = TorchBuild("cu128", CUDA, "torch==2.13.0", "http://127.0.0.1:9/whl/cu128", "test")
    monkeypatch.setattr(installer, "_create_env", lambda: True)
    with pytest.raises(InstallError) as info:
        installer.run()
    assert info.value.offer_cpu and "http://127.0.0.1:9/whl/cu128, cannot be reached" in str(info.value)
    assert "Torch Build to CPU" in str(info.value) and read_marker(tmp_path / "env") is None


def test_a_repair_with_another_torch_build_installs_torch_again(tmp_path, repo_root):
    installer = _installer(tmp_path, threading.Event(), lambda progress: None, repo_root)  # build "default"
    with open(tmp_path / "log.txt", "w") as installer._log:
        kept = installer.torch_argv(None, "default")
        unknown = installer.torch_argv(None, None)  # no complete install before
        switched = installer.torch_argv("https://download.pytorch.org/whl/cu128", "cpu")
    assert kept == unknown and kept[-1] == "torch==2.13.0" and "--force-reinstall" not in kept
    assert switched[-5:] == ["torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cu128",
                             "--force-reinstall", "--no-deps"]
    assert "switching torch from the cpu build to default" in (tmp_path / "log.txt").read_text()


def test_the_task_reports_a_failure_with_the_cpu_offer():
    task = st.SetupTask()

    def work(cancel, on_progress):
        raise InstallError("index unreachable", offer_cpu=True)

    outcome = task.start(st.INSTALL, work, wait=True)
    assert (outcome.state, task.error, task.offer_cpu) == (st.FAILED, "index unreachable", True)
    assert task.take_finished() is None  # taken once
    with pytest.raises(RuntimeError, match="already running"):
        blocker = threading.Event()
        task.start(st.INSTALL, lambda cancel, report: blocker.wait(5))
        task.start(st.DOWNLOAD, lambda cancel, report: None)
    blocker.set()


def test_remove_refuses_a_folder_that_is_no_environment(tmp_path):
    (tmp_path / "precious").mkdir()
    with pytest.raises(InstallError, match="not a Python environment"):
        remove_env(tmp_path / "precious")
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    remove_env(tmp_path / "env")
    assert not (tmp_path / "env").exists()


def test_the_data_folder_is_outside_the_extension_on_every_platform(tmp_path):
    home = Path("/home/ann")
    assert data_dir({}, "linux", home) == home / ".local/share/glimpse3d"
    assert data_dir({"XDG_DATA_HOME": "/data"}, "linux", home) == Path("/data/glimpse3d")
    assert data_dir({}, "darwin", home) == home / "Library/Application Support/Glimpse3D"
    assert data_dir({"LOCALAPPDATA": "C:/Users/ann/AppData/Local"}, "win32", home) == \
        Path("C:/Users/ann/AppData/Local/Glimpse3D")
    assert data_dir({"GLIMPSE_DATA_DIR": str(tmp_path)}, "linux", home) == tmp_path


def test_base_python_candidates_include_blenders_bundled_python(tmp_path):
    bundled = tmp_path / "blender-5.0" / "5.0" / "python" / "bin" / "python3.11"
    bundled.parent.mkdir(parents=True)
    bundled.write_text("")
    binary = tmp_path / "blender-5.0" / "blender"
    found = candidates(executable=str(binary), prefix=str(tmp_path / "nowhere"), binary_path=str(binary), environ={})
    assert found == [str(bundled)]  # Blender itself is no Python
    assert candidates(executable=sys.executable, prefix="/nowhere", environ={})[0] == sys.executable


def test_base_python_falls_back_to_uv_and_else_says_what_to_do(monkeypatch):
    from glimpse_syncdreamer_addon.core import base_python

    monkeypatch.setattr(base_python, "candidates", lambda **kwargs: [])
    uv = find_base_python(which=lambda name: "/opt/uv" if name == "uv" else None)
    assert uv == BasePython("uv", "/opt/uv", "3.11")
    assert uv.create_env_argv(Path("/e")) == ["/opt/uv", "venv", "--seed", "--python", "3.11", "/e"]
    with pytest.raises(LookupError, match="install uv"):
        find_base_python(which=lambda name: None)
    # This Python makes environments itself.
    monkeypatch.undo()
    assert find_base_python(environ={}).kind == "python"


def test_env_python_is_the_venv_interpreter(tmp_path):
    assert env_python(tmp_path).parent.name in ("bin", "Scripts")
