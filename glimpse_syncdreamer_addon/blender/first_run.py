"""The first-run guide in the sidebar (`draw`, called by the main panel) and the Setup box of
the preferences (`draw_setup`): the next setup step as a button, the running install or download
with its progress and Cancel, and how long a CPU run takes. The decisions are in ../core."""
import os
import textwrap

from ..core import setup_task as st
from ..core import user_data
from ..core.cpu_estimate import cpu_estimate_text, runs_on_cpu
from ..core.first_run import checkpoint_found, next_steps, python_lacking
from ..core.panel_state import BUSY, READY
from ..core.bundled import checkpoints
from ..core.server_settings import LOCAL
from . import runtime, setup_ops
from .settings import addon_prefs, server_settings


def draw_task(layout) -> None:
    """The running setup task (progress and Cancel), or how the last one ended badly."""
    task = setup_ops.task
    if task.running:
        box = layout.box()
        box.progress(factor=task.progress.percent / 100.0, type="BAR", text=task.progress.text)
        if task.progress.message and task.progress.message != task.progress.phase:
            box.label(text=task.progress.message)
        box.operator("glimpse3d.cancel_setup", text="Cancel", icon="CANCEL")
    elif task.state == st.FAILED and task.error:
        box = layout.box()
        box.alert = True
        for i, line in enumerate(_lines(task.error)):
            box.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
        if task.offer_cpu:
            box.operator("glimpse3d.install_server", text="Install the CPU Build", icon="IMPORT").cpu = True
    elif task.state == st.CANCELLED:
        layout.label(text=f"{task.progress.phase or 'Setup'}: cancelled", icon="INFO")


def draw(layout, context) -> None:
    """The sidebar's guide: shown while a setup task runs, and while the local server is not
    running and something is missing."""
    prefs = addon_prefs(context)
    if prefs is None or prefs.server_mode != LOCAL:
        return
    draw_task(layout)
    try:
        settings = server_settings(context)
    except ValueError:
        return  # the panel's own error box says it
    running = runtime.session.state.server in (READY, BUSY)
    if not running and not setup_ops.task.running:
        env_python, marker = setup_ops.env_state()
        found = checkpoint_found(settings.checkpoint, [os.environ.get(checkpoints.CHECKPOINT_ENV, ""),
                                                       *checkpoints.default_locations(),
                                                       user_data.checkpoints_dir() / "syncdreamer-pretrain.ckpt"])
        steps = next_steps(python=settings.python, env_python=env_python, env_complete=marker is not None,
                           checkpoint_found=found, random_weights=settings.uses_random_weights,
                           python_unusable=python_lacking(runtime.session.setup_report))
        if steps:
            box = layout.box()
            box.label(text="Set up", icon="TOOL_SETTINGS")
            for step in steps:
                box.label(text=step.why)
                box.operator(step.operator, text=step.text, icon=step.icon)
    _draw_cpu_estimate(layout, context, prefs, settings)


def _draw_cpu_estimate(layout, context, prefs, settings) -> None:
    marker = setup_ops.env_state()[1] or {}
    env_device = marker.get("device", "") if settings.python == marker.get("python") else ""
    if not runs_on_cpu(prefs.device, env_device, runtime.session.setup_report):
        return
    scene_settings = getattr(context.scene, "glimpse3d", None)
    if scene_settings is None:
        return
    text = cpu_estimate_text(scene_settings.steps, scene_settings.samples,
                             random_weights=settings.uses_random_weights)
    for i, line in enumerate(_lines(text, 48)):
        layout.label(text=line, icon="TIME" if i == 0 else "BLANK1")


def draw_setup(layout, context, prefs) -> None:
    """The preferences' Setup box: Install Server (and Remove), Download Checkpoint, progress."""
    box = layout.box()
    box.label(text="Setup", icon="TOOL_SETTINGS")
    env_dir = user_data.server_env_dir()
    _, marker = setup_ops.env_state()
    row = box.row(align=True)
    row.operator("glimpse3d.install_server", text="Repair Server" if env_dir.exists() else "Install Server",
                 icon="IMPORT")
    row.operator("glimpse3d.remove_server_env", text="Remove", icon="TRASH")
    box.prop(prefs, "torch_build")
    if marker:
        box.label(text=f"Installed: torch {marker.get('torch', '?')} ({marker.get('device', '?')}) in {env_dir}")
    elif env_dir.exists():
        box.label(text=f"Incomplete environment in {env_dir}: press Install Server to finish it", icon="ERROR")
    else:
        box.label(text=f"Installs into {env_dir}")
    row = box.row(align=True)
    row.operator("glimpse3d.download_checkpoint", icon="URL")
    row.prop(prefs, "convert_to_safetensors")
    draw_task(box)
    box.label(text=f"Logs: {user_data.logs_dir()}")


def _lines(text: str, width: int = 70) -> list:
    return [piece for line in text.splitlines() for piece in (textwrap.wrap(line, width) or [""])][:12]
