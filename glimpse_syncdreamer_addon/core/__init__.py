"""The add-on's logic that needs no bpy (standard library and numpy only), tested in plain
Python: the server client and child process, the job worker and its event queue, the panel
state, the setup check, and the view-set reading and camera math for the scene import."""
