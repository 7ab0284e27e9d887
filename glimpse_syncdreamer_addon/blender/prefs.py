"""The add-on preferences' UI (Edit > Preferences > Add-ons > Glimpse3D SyncDreamer). What is
read from them (the lookups, `ServerSettings`) is in settings.py."""
import os

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from ..core import server_settings as ss
from ..core import setup_check
from . import first_run, runtime
from .settings import ADDON_PACKAGE, output_folder


class GLIMPSE3D_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    server_mode: EnumProperty(
        name="Server Mode",
        items=(
            (ss.LOCAL, "Local", "Start the inference server on this machine with the Python below"),
            (ss.REMOTE, "Remote", "Use a server that already runs (on this or another machine)"),
        ),
        default=ss.LOCAL,
    )
    python_path: StringProperty(
        name="Server Python",
        description="The Python interpreter (3.10+, with torch) that runs the server: Install Server "
        "sets it, or choose the python of an environment of your own. Empty: $GLIMPSE_SERVER_PYTHON",
        subtype="FILE_PATH",
    )
    checkpoint_path: StringProperty(
        name="Checkpoint",
        description="The SyncDreamer weights: syncdreamer-pretrain.ckpt or a converted .safetensors",
        subtype="FILE_PATH",
    )
    device: EnumProperty(
        name="Device",
        items=(
            ("auto", "Auto", "The first CUDA GPU, else Apple's GPU, else the CPU"),
            ("cuda", "CUDA", "An NVIDIA GPU"),
            ("mps", "Apple GPU", "Metal on Apple silicon"),
            ("cpu", "CPU", "Very slow: minutes per step with the full model"),
        ),
        default="auto",
    )
    precision: EnumProperty(
        name="Precision",
        items=(
            ("auto", "Auto", "float16 on CUDA (bfloat16 if float16 overflows), float32 elsewhere"),
            ("float16", "Half (float16)", "Half the GPU memory; on GPUs only"),
            ("bfloat16", "Half (bfloat16)", "Half the GPU memory, wider range than float16; recent NVIDIA GPUs"),
            ("float32", "Full (float32)", "As the reference code runs it"),
        ),
        default="auto",
    )
    low_memory: BoolProperty(
        name="Low GPU Memory",
        description="For GPUs with 8 GB or less: the local server keeps CLIP and the VAE in main "
        "memory between uses and, with Views per Batch automatic, computes four views at a time. "
        "Slower, needs less GPU memory. Off here, the server still turns it on by itself for GPUs under "
        "8 GB and Macs with 16 GB or less. A remote server has its own --low-memory option",
        default=False,
    )
    extra_args: StringProperty(
        name="Extra Arguments",
        description="More arguments for 'python -m inference_server serve' (e.g. --random-weights "
        "for a smoke test without a checkpoint); $GLIMPSE_SERVER_EXTRA_ARGS is added to these",
    )
    server_url: StringProperty(
        name="Server URL",
        description="Address of a server that already runs, e.g. http://127.0.0.1:8765",
        default="http://127.0.0.1:8765",
    )
    server_token: StringProperty(
        name="Server Token",
        description="The token that server printed at start (or its $GLIMPSE_SERVER_TOKEN)",
        subtype="PASSWORD",
    )
    output_dir: StringProperty(
        name="Output Folder",
        description="Where generated view sets are written. Empty: a glimpse3d_views folder beside "
        "the saved .blend file (unsaved: Glimpse3D/views in your user data folder), never inside "
        "the extension's folder, which uninstalling deletes",
        subtype="DIR_PATH",
    )
    start_mode: EnumProperty(
        name="Start Server",
        items=(
            ("FIRST_USE", "On First Use", "Start the local server when you first generate (or press Start)"),
            ("WITH_BLENDER", "With Blender", "Start the local server when Blender starts, so the first "
             "generation does not wait for it"),
        ),
        default="FIRST_USE",
    )
    idle_unload_minutes: IntProperty(
        name="Unload Model After",
        description="Minutes without a job after which the local server frees the model's memory "
        "(0: keep it loaded)",
        default=10, min=0, soft_max=120,
    )
    torch_build: EnumProperty(
        name="Torch Build",
        description="Which torch Install Server installs",
        items=(
            ("AUTO", "Auto", "The build for this machine's GPU: CUDA from the NVIDIA driver's version, ROCm for "
             "an AMD GPU on Linux, the standard build (Apple GPU) on Apple silicon, else the CPU build"),
            ("CPU", "CPU", "The CPU build whatever the GPU (smaller; generation is slow)"),
        ),
        default="AUTO",
    )
    convert_to_safetensors: BoolProperty(
        name="Convert to .safetensors",
        description="After Download Checkpoint, convert it to .safetensors (loads faster and without "
        "pickle; takes another 5 GB of disk) and use that",
        default=False,
    )
    start_timeout_s: IntProperty(
        name="Start Timeout",
        description="Seconds to wait for the local server to be ready before giving up",
        default=300, min=10, soft_max=1200,
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "server_mode", expand=True)
        if self.server_mode == ss.LOCAL:
            first_run.draw_setup(layout, context, self)
            col = layout.column()
            col.prop(self, "python_path")
            if not self.python_path and os.environ.get(ss.ENV_PYTHON):
                col.label(text=f"Using ${ss.ENV_PYTHON}: {os.environ[ss.ENV_PYTHON]}", icon="INFO")
            col.prop(self, "checkpoint_path")
            col.prop(self, "device")
            col.prop(self, "precision")
            col.prop(self, "low_memory")
            col.prop(self, "start_mode")
            col.prop(self, "idle_unload_minutes")
            col.prop(self, "start_timeout_s")
            col.prop(self, "extra_args")
        else:
            col = layout.column()
            col.prop(self, "server_url")
            col.prop(self, "server_token")
        layout.prop(self, "output_dir")
        layout.label(text=f"Sets go to: {output_folder(self)}")
        draw_setup_report(layout, runtime.session)


def draw_setup_report(layout, session):
    box = layout.box()
    row = box.row()
    row.operator("glimpse3d.check_setup", icon="CHECKMARK")
    if session.setup_running:
        row.label(text="Checking… (importing torch takes a while)")
    for item in session.setup_report or ():
        icon = {setup_check.OK: "CHECKMARK", setup_check.WARNING: "ERROR"}.get(item.status, "CANCEL")
        box.label(text=f"{item.label}: {item.detail}", icon=icon)
        if item.fix:
            box.label(text=f"    Fix: {item.fix}")


classes = (GLIMPSE3D_AddonPreferences,)
