"""Ray stays optional: the server, the command line and the add-on never import it, and --ray
without Ray installed says how to install it."""
import subprocess
import sys

PROBE = """
import pkgutil, sys, importlib
import glimpse_syncdreamer_addon.core as addon_core
for module in pkgutil.iter_modules(addon_core.__path__):
    importlib.import_module(f"glimpse_syncdreamer_addon.core.{module.name}")
import inference_server.server.app, inference_server.server.run, inference_server.generation.batch, inference_server.cli.batch
from inference_server.cli.main import build_parser
build_parser().parse_args(["serve", "--ray", "local", "--ray-gpus", "2"])
assert "ray" not in sys.modules, sorted(name for name in sys.modules if name.startswith("ray"))
"""

WITHOUT_RAY = """
import sys
sys.modules["ray"] = None  # as if the extra were not installed
from inference_server.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_nothing_outside_the_cluster_package_imports_ray(repo_root):
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_ray_flags_without_ray_name_the_extra(repo_root, data_dir, tmp_path):
    result = subprocess.run([sys.executable, "-c", WITHOUT_RAY, "batch", str(data_dir / "testset" / "cat.png"),
                             "-o", str(tmp_path / "out"), "--ray", "local", "--random-weights"],
                            cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    assert "--ray needs Ray" in result.stderr and '".[ray]"' in result.stderr


def test_cluster_flags_without_ray_are_refused(data_dir, tmp_path, capsys):
    from inference_server.cli.main import main

    assert main(["batch", str(data_dir / "testset" / "cat.png"), "-o", str(tmp_path / "out"), "--replicas", "2"]) == 2
    assert "--replicas describe(s) a Ray cluster: add --ray local" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
