"""Serving and batch runs on a Ray cluster (docs/scaling.md): `serve --ray`, `batch --ray`.

Optional: needs the `ray` extra (`pip install ".[ray]"`). Nothing outside this package imports
Ray, and this package imports it only inside the functions that need it, so the plain server,
the command line and the Blender add-on never load it.
"""
