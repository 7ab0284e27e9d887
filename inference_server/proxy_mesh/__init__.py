"""A coloured proxy mesh (visual hull) from a set of views with known cameras.

Only numpy and the standard library, so the same code runs in the server and inside Blender
(the extension bundles this package). See docs/proxy-mesh.md.

    from inference_server.proxy_mesh import ViewCamera, build_proxy_mesh, write_ply
    mesh = build_proxy_mesh(images, [ViewCamera(w2c, K, 256, 256) for w2c in poses], resolution=128)
    write_ply("mesh.ply", mesh.vertices, mesh.faces, mesh.colours, mesh.unseen, mesh.normals)
"""
from .build import DEFAULT_RESOLUTION, RESOLUTIONS, MeshError, ProxyMesh, build_proxy_mesh
from .hull import ViewCamera
from .ply import UNSEEN_PROPERTY, write_ply

__all__ = ["DEFAULT_RESOLUTION", "RESOLUTIONS", "MeshError", "ProxyMesh", "build_proxy_mesh", "ViewCamera",
           "UNSEEN_PROPERTY", "write_ply"]
