"""Glimpse3D SyncDreamer: one image in, sixteen consistent views out, as cameras and
camera-aligned image planes. A Blender 4.2+ extension; its manifest is blender_manifest.toml
at the zip root (the repository root holds it beside this package).

bpy is imported only inside register()/unregister(), so `core` (no bpy) can be imported and
tested in plain Python without pulling in Blender.
"""


def _parts():
    from .blender import import_op, menus, operators, panel, prefs, preview, props, runtime, setup_ops

    # Registration order: settings types first, then what uses them; unregister reverses it.
    classes = (*prefs.classes, *props.classes, *operators.classes, *import_op.classes, *setup_ops.classes,
               *panel.classes)
    # Modules with their own register()/unregister(), in registration order.
    modules = (props, preview, menus, runtime, setup_ops)
    return classes, modules


def register():
    import bpy

    classes, modules = _parts()
    for cls in classes:
        bpy.utils.register_class(cls)
    for module in modules:
        module.register()


def unregister():
    import bpy

    classes, modules = _parts()
    for module in reversed(modules):
        module.unregister()  # runtime first: it stops a server we started
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
