"""The extension zip: what it holds, Blender's own validator accepts it, builds are repeatable."""
import subprocess
import sys
import tomllib
import zipfile

import pytest


def test_zip_layout(extension_zip, repo_root):
    manifest = tomllib.loads((repo_root / "blender_manifest.toml").read_text())
    assert extension_zip.name == f"glimpse_syncdreamer-{manifest['version']}.zip"
    assert manifest["id"] == "glimpse_syncdreamer" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0" and set(manifest["permissions"]) == {"files", "network"}
    names = set(zipfile.ZipFile(extension_zip).namelist())
    for required in ("blender_manifest.toml", "__init__.py", "core/client.py", "blender/operators.py",
                     "inference_server/__main__.py", "inference_server/cameras.py", "ldm/__init__.py",
                     "configs/tiny.yaml", "configs/syncdreamer.yaml"):
        assert required in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".ckpt", ".safetensors"))]
    assert not [n for n in names if n.startswith(("glimpse_syncdreamer_addon/", "tests/", "."))]


def test_blenders_validator_accepts_it(extension_zip, build_script):
    result = subprocess.run([sys.executable, str(build_script.blender_ext_script()), "validate", str(extension_zip)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


def test_builds_are_repeatable_and_atomic(extension_zip, build_script, tmp_path):
    again = build_script.build_extension(tmp_path, validate=True)
    assert again.read_bytes() == extension_zip.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [again.name]  # no partial file left


def test_validator_rejects_a_broken_manifest(build_script, tmp_path):
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("blender_manifest.toml", 'schema_version = "1.0.0"\nid = "x"\n')
        zf.writestr("__init__.py", "")
    with pytest.raises(build_script.BuildError, match="rejected"):
        build_script.validate_extension(broken)
