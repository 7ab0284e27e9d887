"""core/bundled.py, the add-on's one door to the bundled server code: it picks the server package
from the files (inside the built extension, else the repository's top-level package) and lets a
real ImportError through instead of trying the other place."""
import shutil

import pytest

from glimpse_syncdreamer_addon.core import bundled


def test_from_the_repository_the_top_level_package():
    assert not bundled.INSIDE_EXTENSION and bundled.SERVER_PACKAGE == "inference_server"
    assert bundled.protocol.__name__ == "inference_server.protocol"
    assert bundled.errors.__name__ == "inference_server.errors"
    assert bundled.checkpoints.__name__ == "inference_server.generation.checkpoints"
    assert bundled.download.__name__ == "inference_server.generation.download"
    assert bundled.checkpoints.CHECKPOINT_ENV == "GLIMPSE_CHECKPOINT"


def test_a_name_it_does_not_hold_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'pipeline'"):
        bundled.pipeline  # noqa: B018  the server's pipeline is not for the add-on


def test_inside_the_extension_a_broken_bundled_module_fails_with_its_own_error(run_in_extension_layout, tmp_path,
                                                                               repo_root):
    # A second, working copy is importable as the top-level package (as from a repository on the
    # path): the door must not fall back to it when the extension's own copy fails to import.
    shutil.copytree(repo_root / "inference_server", tmp_path / "inference_server",
                    ignore=shutil.ignore_patterns("__pycache__"))
    probe = (
        "import pathlib\n"
        "pathlib.Path('bl_ext_test/inference_server/cameras.py').write_text("
        "'raise ImportError(\"the real error\")')\n"
        "from bl_ext_test.core import bundled\n"
        "print(bundled.SERVER_PACKAGE)\n"
        "try:\n"
        "    bundled.cameras\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    result = run_in_extension_layout("bundled.py", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["bl_ext_test.inference_server", "ImportError: the real error"]
