"""Check Setup with real interpreters: the project's venv (everything there) and broken ones
(each says what is missing and the command that fixes it)."""
import stat
import sys

import pytest

from glimpse_syncdreamer_addon.core import setup_check as sc
from glimpse_syncdreamer_addon.core.server_settings import LOCAL, REMOTE, ServerSettings


def _by_label(items):
    return {item.label: item for item in items}


@pytest.mark.slow
def test_project_python_has_everything(repo_root, tmp_path):
    settings = ServerSettings(mode=LOCAL, python=sys.executable, extra_args=("--random-weights",),
                              output_dir=str(tmp_path / "out"))
    items = sc.check_setup(settings, root=repo_root)
    found = _by_label(items)
    assert sc.all_ok(items), sc.format_report(items)
    for name in ("server Python", "torch", "numpy", "PIL", "omegaconf", "safetensors", "output folder"):
        assert found[name].status == sc.OK, sc.format_report(items)
    assert found["checkpoint"].status == sc.WARNING and "noise" in found["checkpoint"].detail
    assert (tmp_path / "out").is_dir()


@pytest.mark.skipif(sys.platform == "win32", reason="uses a POSIX shell wrapper")
def test_python_without_packages_names_each_and_the_pip_command(repo_root, tmp_path):
    # The same interpreter with site-packages switched off: a Python that lacks everything.
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    bare.chmod(bare.stat().st_mode | stat.S_IXUSR)
    settings = ServerSettings(mode=LOCAL, python=str(bare), checkpoint=str(tmp_path / "missing.ckpt"))
    items = sc.check_setup(settings, root=repo_root)
    found = _by_label(items)
    assert not sc.all_ok(items)
    assert found["server Python"].status == sc.OK  # it runs; it just has nothing installed
    for name, pip_name in (("torch", "torch"), ("numpy", "numpy<2"), ("omegaconf", "omegaconf")):
        assert found[name].status == sc.MISSING and "No module named" in found[name].detail
        assert found[name].fix.startswith(f'{bare} -m pip install "{pip_name}"')
    assert "pytorch.org" in found["torch"].fix
    assert found["checkpoint"].status == sc.MISSING and "missing.ckpt" in found["checkpoint"].detail
    assert f"cd {repo_root} && {bare} -m inference_server download" in found["checkpoint"].fix
    report = sc.format_report(items)
    assert "[MISSING] torch" in report and "fix:" in report


def test_bogus_and_unset_interpreters(repo_root, tmp_path):
    items = _by_label(sc.check_setup(ServerSettings(python=str(tmp_path / "nope" / "python")), root=repo_root))
    assert items["server Python"].status == sc.MISSING and "does not exist" in items["server Python"].detail
    not_a_program = tmp_path / "notes.txt"
    not_a_program.write_text("hello")
    items = _by_label(sc.check_setup(ServerSettings(python=str(not_a_program)), root=repo_root))
    assert items["server Python"].status == sc.MISSING
    items = _by_label(sc.check_setup(ServerSettings(python=""), root=repo_root))
    assert items["server Python"].detail == "not set" and "GLIMPSE_SERVER_PYTHON" in items["server Python"].fix


def test_remote_mode_checks_the_server(fake_server):
    ok = sc.check_setup(ServerSettings(mode=REMOTE, url=fake_server.url, token=fake_server.token))
    assert sc.all_ok(ok) and "version 0.1.0" in ok[0].detail
    assert any(item.label == "checkpoint" and item.status == sc.WARNING for item in ok)  # random weights
    refused = sc.check_setup(ServerSettings(mode=REMOTE, url=fake_server.url, token="wrong"))
    assert not sc.all_ok(refused) and "token" in refused[0].detail
    unset = sc.check_setup(ServerSettings(mode=REMOTE, url=""))
    assert unset[0].label == "server URL" and unset[0].status == sc.MISSING
