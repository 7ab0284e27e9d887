"""A Blender that crashes (killed with SIGKILL: no atexit, no unregister) leaves no server
behind: the add-on starts its server with --parent-pid, and the server ends when Blender is gone."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS_DIR = Path(__file__).parent / "blender_scripts"
GONE_WITHIN_S = 10.0  # the limit


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is missing


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to tell a zombie from a live process")
def test_a_killed_blender_leaves_no_server(extension_zip, tmp_path):
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender_user"),
               XDG_DATA_HOME=str(tmp_path / "user_data"), GLIMPSE_SERVER_PYTHON=sys.executable,
               GLIMPSE_SERVER_EXTRA_ARGS="--random-weights")
    blender = subprocess.Popen([sys.executable, str(SCRIPTS_DIR / "bl_start_server_and_wait.py"), str(extension_zip)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(tmp_path))
    lines = []
    try:
        for line in blender.stdout:
            lines.append(line)
            if line.startswith("SERVER_PID "):
                break
        else:
            pytest.fail("the server did not start:\n" + "".join(lines[-40:]))
        server_pid = int(lines[-1].split()[1])
        assert _running(server_pid)
        blender.send_signal(signal.SIGKILL)
        blender.wait(10)
        deadline = time.monotonic() + GONE_WITHIN_S
        while _running(server_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running(server_pid), f"the server {server_pid} outlived Blender by {GONE_WITHIN_S} s"
    finally:
        if blender.poll() is None:
            blender.kill()
