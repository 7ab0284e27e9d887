"""The view set on disk: writing it (staged, then renamed into place), reading it, and the files
made from a set (mesh.ply, video)."""
