"""glTF 2.0 binary (.glb) files of a textured asset, with the texture embedded (trimesh writes
them). Server side only (the `mesh` extra).

glTF's up axis is +Y, the cameras' world frame is Z up: vertices go out as (x, z, -y), which
Blender's glTF importer turns back into (x, y, z), so the asset lands where the set's cameras see
it; three.js and other viewers show it upright.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from .asset import TexturedAsset
from .ply import write_atomically

# From the cameras' Z-up world frame to glTF's Y-up frame, and back.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def glb_bytes(asset: TexturedAsset, name: str = "glimpse3d_asset") -> bytes:
    """The asset as a .glb file's content: one mesh, one unlit-free PBR material whose base colour
    is the baked texture (PNG inside the file), not metallic, fully rough."""
    material = trimesh.visual.material.PBRMaterial(
        name=f"{name}_material", baseColorTexture=Image.fromarray(asset.texture), metallicFactor=0.0,
        roughnessFactor=1.0, doubleSided=False)
    visual = trimesh.visual.TextureVisuals(uv=np.asarray(asset.uvs, dtype=np.float64), material=material)
    mesh = trimesh.Trimesh(vertices=np.asarray(asset.vertices, dtype=np.float64) @ Z_UP_TO_Y_UP.T,
                           faces=asset.faces, visual=visual, process=False)
    scene = trimesh.Scene()
    scene.add_geometry(mesh, node_name=name, geom_name=name)
    stream = io.BytesIO()
    scene.export(stream, file_type="glb")
    return stream.getvalue()


def write_glb(path, asset: TexturedAsset, name: str = "glimpse3d_asset") -> Path:
    """Write the asset as a .glb file, whole or not at all, and return its path."""
    return write_atomically(path, [glb_bytes(asset, name)])
