"""Menu entries, so operator search (F3) and the menus find the operators:
Add > Image > Views from Image (SyncDreamer), and File > Import > Glimpse3D Views."""
import bpy

from . import import_op


def menu_func_add_image(self, context):
    self.layout.operator("glimpse3d.generate_views", text="Views from Image (SyncDreamer)", icon="CAMERA_DATA")


# (menu, draw function): appended on register, removed on unregister
ENTRIES = (
    (bpy.types.VIEW3D_MT_image_add, menu_func_add_image),
    (bpy.types.TOPBAR_MT_file_import, import_op.menu_func_import),
)


def register():
    for menu, func in ENTRIES:
        menu.append(func)


def unregister():
    for menu, func in reversed(ENTRIES):
        menu.remove(func)
