"""The add-on's door to the proxy-mesh code, `inference_server/proxy_mesh/` (numpy only).

Inside the built extension the server package is bundled beside the add-on files (a sibling
package); when running from the repository it is a top-level package on sys.path. Everything in
the add-on that builds a proxy mesh imports it from here.
"""
from __future__ import annotations

try:
    from ..inference_server import proxy_mesh  # inside the built extension
except ImportError:
    from inference_server import proxy_mesh  # from the repository, its root on sys.path

DEFAULT_RESOLUTION = proxy_mesh.DEFAULT_RESOLUTION
RESOLUTIONS = proxy_mesh.RESOLUTIONS
UNSEEN_PROPERTY = proxy_mesh.UNSEEN_PROPERTY
MeshError = proxy_mesh.MeshError
ViewCamera = proxy_mesh.ViewCamera
build_proxy_mesh = proxy_mesh.build_proxy_mesh
