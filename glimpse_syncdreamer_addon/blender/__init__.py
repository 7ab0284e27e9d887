"""The thin bpy glue: preferences, panel, operators, menus, timers and the scene import.
The logic they call lives in ../core (no bpy)."""
