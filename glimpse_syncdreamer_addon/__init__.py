"""Glimpse3D SyncDreamer: one image in, sixteen consistent views out, as cameras and
camera-aligned image planes. A Blender 4.2+ extension; its manifest is blender_manifest.toml
at the zip root (the repository root holds it beside this package).

bpy is imported only inside register()/unregister(), so `core` (no bpy) can be imported and
tested in plain Python without pulling in Blender.
"""


def _parts():
    from .blender import (import_op, menus, mesh_op, operators, panel, prefs, preview, props, queue_ops, runtime,
                          setup_ops, timer)

    # Registration order: settings types first, then what uses them; unregister reverses it.
    classes = (*prefs.classes, *props.classes, *operators.classes, *import_op.classes, *setup_ops.classes,
               *panel.classes, *queue_ops.classes, *mesh_op.classes)
    # Modules with their own register()/unregister(), in registration order.
    modules = (props, preview, menus, mesh_op, runtime, timer, setup_ops)
    return classes, modules


def register():
    import sys

    import bpy

    from . import api

    classes, modules = _parts()
    for cls in classes:
        bpy.utils.register_class(cls)
    for module in modules:
        module.register()
    # The API under a name that does not depend on the repository the extension came from.
    sys.modules[api.STABLE_NAME] = api


def unregister():
    import sys

    import bpy

    from . import api

    if sys.modules.get(api.STABLE_NAME) is api:
        del sys.modules[api.STABLE_NAME]
    classes, modules = _parts()
    for module in reversed(modules):
        module.unregister()  # the timer, then runtime: it stops a server we started
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
