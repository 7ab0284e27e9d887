"""bpy.ops.glimpse3d.*: install_server, remove_server_env, download_checkpoint, cancel_setup,
try_random_weights. The work is in ../core (env_installer, checkpoint_fetch, setup_task).

In the UI the install and the download run on a worker thread and a timer applies their end
(Server Python, Checkpoint, Check Setup) on the main thread. In background Blender they run
synchronously, print their progress, and report failures as errors (a RuntimeError in scripts).
"""
import bpy
from bpy.props import BoolProperty, StringProperty

from ..core import setup_task as st
from ..core import user_data
from ..core.bundle_paths import server_root
from ..core.checkpoint_fetch import CHECKPOINT_NAME, fetch_checkpoint
from ..core.env_installer import InstallError, install_server, read_marker, remove_env
from ..core.setup_check import format_report
from . import runtime
from .settings import addon_prefs, server_settings

task = st.SetupTask()
FOLLOW_S = 0.25
INSTALL_LOG, DOWNLOAD_LOG = "install-server.log", "download-checkpoint.log"


def _fail(op, message: str) -> set:
    op.report({"ERROR"}, message)
    return {"CANCELLED"}


def _run(op, kind: str, work) -> set:
    """Start `work` as the setup task: blocking with printed progress in background mode."""
    try:
        if not bpy.app.background:
            task.start(kind, work)
            _follow_register()
            return {"FINISHED"}
        shown = [""]

        def printed(cancel, on_progress):
            def report(progress):
                on_progress(progress)
                line = f"{progress.phase} {progress.package}".strip()
                if line != shown[0]:
                    shown[0] = line
                    runtime.say(f"Glimpse3D: {progress.text}")
            return work(cancel, report)

        outcome = task.start(kind, printed, wait=True)
    except RuntimeError as exc:
        return _fail(op, str(exc))
    message = _apply(outcome)
    if outcome.state != st.DONE:
        return _fail(op, message)
    op.report({"INFO"}, message)
    return {"FINISHED"}


def _apply(outcome) -> str:
    """A finished task's effect on the preferences (main thread); returns what to tell the user."""
    prefs = addon_prefs()
    if outcome.state == st.CANCELLED:
        return "Cancelled."
    if outcome.state == st.FAILED:
        return task.error
    if outcome.kind == st.INSTALL:
        if prefs is not None:
            prefs.python_path = outcome.result.python
        _check_setup()
        result = outcome.result
        action = "Repaired" if result.repaired else "Installed"
        return (f"{action} the server environment in {result.seconds:.0f} s ({result.build.label}, torch "
                f"{result.torch_version}): {result.python}")
    if prefs is not None:
        prefs.checkpoint_path = str(outcome.result)
    return f"Checkpoint ready: {outcome.result}"


def _check_setup() -> None:
    try:
        settings = server_settings()
    except ValueError as exc:
        runtime.say(f"Glimpse3D: {exc}")
        return
    if bpy.app.background:
        runtime.say(format_report(runtime.session.check_setup(settings, wait=True)))
    else:
        runtime.session.check_setup(settings)


def _follow():
    """Timer: redraw while the task runs; apply its end once."""
    outcome = task.take_finished()
    if outcome is not None:
        message = _apply(outcome)
        if outcome.state == st.FAILED:
            runtime.popup(message, title="Glimpse3D setup")
        elif outcome.state == st.DONE:
            runtime.session.state.notice = message  # the sidebar's info line
    runtime.redraw()
    return None if outcome is not None else FOLLOW_S


def _follow_register() -> None:
    if not bpy.app.timers.is_registered(_follow):
        bpy.app.timers.register(_follow, first_interval=FOLLOW_S)


class GLIMPSE3D_OT_install_server(bpy.types.Operator):
    """Install the inference server's Python environment (torch for this machine's GPU and the
    server's packages) in your user data folder, or repair it; then set Server Python to it"""

    bl_idname = "glimpse3d.install_server"
    bl_label = "Install Server"

    cpu: BoolProperty(name="CPU Build", description="Install the CPU build of torch whatever the GPU "
                      "(empty: the Torch Build preference)", options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        return not task.running

    def execute(self, context):
        prefs = addon_prefs(context)
        force_cpu = self.cpu or (prefs is not None and prefs.torch_build == "CPU")
        root = server_root()
        env_dir, log = user_data.server_env_dir(), user_data.logs_dir() / INSTALL_LOG
        binary_path = bpy.app.binary_path or ""

        def work(cancel, on_progress):
            return install_server(root, env_dir, log, cancel=cancel, on_progress=on_progress,
                                  force_cpu=force_cpu, binary_path=binary_path)

        return _run(self, st.INSTALL, work)


class GLIMPSE3D_OT_remove_server_env(bpy.types.Operator):
    """Delete the server environment that Install Server made (your checkpoint stays)"""

    bl_idname = "glimpse3d.remove_server_env"
    bl_label = "Remove Server Environment"

    @classmethod
    def poll(cls, context):
        return not task.running and user_data.server_env_dir().exists()

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        env_dir = user_data.server_env_dir()
        prefs = addon_prefs(context)
        runtime.session.stop_server()  # it may run from this environment
        try:
            remove_env(env_dir)
        except (InstallError, OSError) as exc:
            return _fail(self, f"Could not remove {env_dir}: {exc}")
        if prefs is not None and prefs.python_path == str(user_data.env_python(env_dir)):
            prefs.python_path = ""
        self.report({"INFO"}, f"Removed {env_dir}")
        return {"FINISHED"}


class GLIMPSE3D_OT_download_checkpoint(bpy.types.Operator):
    """Download the SyncDreamer checkpoint (5 GB; resumes where a broken download stopped, checks
    its sha256) with the server's own downloader; then set Checkpoint to it"""

    bl_idname = "glimpse3d.download_checkpoint"
    bl_label = "Download Checkpoint"

    convert: BoolProperty(name="Convert to .safetensors", description="Convert it afterwards (loads faster, "
                          "no pickle); empty: the preference", options={"SKIP_SAVE"})
    url: StringProperty(name="URL", description="Download from here instead of Hugging Face",
                        options={"SKIP_SAVE"})
    sha256: StringProperty(name="SHA-256", description="The expected checksum (empty: the one the host "
                           "announces)", options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        return not task.running

    def execute(self, context):
        prefs = addon_prefs(context)
        try:
            python = server_settings(context).python
        except ValueError as exc:
            return _fail(self, str(exc))
        if not python:
            return _fail(self, "The download runs in the server's Python: press Install Server first "
                               "(or set Server Python).")
        convert = self.convert or (prefs is not None and prefs.convert_to_safetensors)
        dest = user_data.checkpoints_dir() / CHECKPOINT_NAME
        root, log, url, sha256 = server_root(), user_data.logs_dir() / DOWNLOAD_LOG, self.url, self.sha256

        def work(cancel, on_progress):
            return fetch_checkpoint(python, dest, root, log, cancel=cancel, on_progress=on_progress,
                                    url=url, sha256=sha256, convert=convert)

        return _run(self, st.DOWNLOAD, work)


class GLIMPSE3D_OT_cancel_setup(bpy.types.Operator):
    """Stop the running Install Server or Download Checkpoint (a download resumes next time)"""

    bl_idname = "glimpse3d.cancel_setup"
    bl_label = "Cancel Setup Task"

    @classmethod
    def poll(cls, context):
        return task.running

    def execute(self, context):
        task.cancel()
        return {"FINISHED"}


class GLIMPSE3D_OT_try_random_weights(bpy.types.Operator):
    """Start the server without a checkpoint, with random weights: the views are noise, but the
    whole pipeline runs (remove --random-weights from Extra Arguments to stop)"""

    bl_idname = "glimpse3d.try_random_weights"
    bl_label = "Try With Random Weights"

    def execute(self, context):
        prefs = addon_prefs(context)
        if prefs is None:
            return _fail(self, "The add-on's preferences are not available (not installed as an extension).")
        if "--random-weights" not in prefs.extra_args.split():
            prefs.extra_args = (prefs.extra_args + " --random-weights").strip()
        if runtime.session.client is not None:
            runtime.session.stop_server()  # the next start takes the new argument
        self.report({"INFO"}, "Random weights on: the views are noise (Extra Arguments: --random-weights).")
        return {"FINISHED"}


classes = (GLIMPSE3D_OT_install_server, GLIMPSE3D_OT_remove_server_env, GLIMPSE3D_OT_download_checkpoint,
           GLIMPSE3D_OT_cancel_setup, GLIMPSE3D_OT_try_random_weights)


def env_state() -> tuple:
    """(the interpreter Install Server makes, its marker or None while unfinished)."""
    env_dir = user_data.server_env_dir()
    return str(user_data.env_python(env_dir)), read_marker(env_dir)


def register():
    pass


def unregister():
    """Stop a running install or download with the add-on (its child process, too)."""
    if bpy.app.timers.is_registered(_follow):
        bpy.app.timers.unregister(_follow)
    task.cancel()
