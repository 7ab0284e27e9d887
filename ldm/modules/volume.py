"""SyncDreamer's 3D feature volumes (facts §3.5, §3.6).

Every step, the 16 noisy latents are encoded, unprojected into one shared spatial volume over
[-0.5, 0.5]^3 and refined by a 3D U-Net; each target view then resamples that volume along its
own camera frustum and refines it into features for the UNet's depth-wise attention.

Cameras: world-to-camera poses (N, 3, 4) in OpenCV axes and intrinsics (N, 3, 3) of the
256-pixel image; the latent grid is 8 times coarser, latent pixel k <-> image coordinate 8k.
Geometry and resampling run in float32 whatever the model dtype.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ldm.modules.volume_nets import FrustumTV3DNet, NoisyTargetViewEncoder, SpatialTime3DNet

VIEW_FEATURE_DIM = 16        # channels per view that go into the spatial volume
CAMERA_DISTANCE = 1.5        # the target cameras' distance to the origin
FRUSTUM_HALF_LENGTH = 0.86603  # reference constant (~sqrt(3)/2): the depth range around 1.5
MIN_PROJECTED_DEPTH = 1e-4


def latent_projection(Ks: torch.Tensor, poses: torch.Tensor, latent_size: int,
                      image_size: int) -> torch.Tensor:
    """(N, 4, 4) matrices from world points to latent pixels: [[diag(r, r, 1) K [R|t]], [0 0 0 1]]."""
    ratio = latent_size / image_size
    scale = torch.tensor([ratio, ratio, 1.0], dtype=torch.float32, device=Ks.device)
    proj = (scale[:, None] * Ks.float()) @ poses.float()
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float32, device=Ks.device)
    return torch.cat([proj, bottom.expand(proj.shape[0], 1, 4)], dim=1)


def spatial_vertices(size: int, half_length: float, device: torch.device) -> torch.Tensor:
    """(size^3, 3) voxel centres flattened in (d, h, w) order; voxel (d, h, w) is (x[w], y[h], z[d]),
    the layout grid_sample expects."""
    axis = torch.linspace(-half_length, half_length, size, dtype=torch.float32, device=device)
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    return torch.stack([x, y, z], dim=-1).reshape(-1, 3)


def project_to_grid(points: torch.Tensor, projection: torch.Tensor, latent_size: int) -> torch.Tensor:
    """World points (M, 3) seen by N cameras -> normalised sampling coordinates (N, M, 2),
    align_corners=True convention (pixel 0 -> -1, pixel size-1 -> +1)."""
    cam = points @ projection[:, :3, :3].transpose(1, 2) + projection[:, None, :3, 3]
    depth = cam[..., 2:].clamp(min=MIN_PROJECTED_DEPTH)
    return cam[..., :2] / depth / ((latent_size - 1) / 2) - 1


def frustum_points(projection: torch.Tensor, latent_size: int, depth: int, near: float,
                   far: float) -> torch.Tensor:
    """World positions (N, D, h, w, 3) of each camera's frustum samples: latent pixel (x, y) at
    z-depth near..far (D values, both ends included)."""
    device = projection.device
    pixels = torch.arange(latent_size, dtype=torch.float32, device=device)
    steps = torch.linspace(0, 1, depth, dtype=torch.float32, device=device)
    depths = steps * (far - near) + near
    z = depths.view(depth, 1, 1).expand(depth, latent_size, latent_size)
    y = pixels.view(1, latent_size, 1).expand_as(z)
    x = pixels.view(1, 1, latent_size).expand_as(z)
    homogeneous = torch.stack([x * z, y * z, z], dim=-1).reshape(-1, 3)  # (D*h*w, 3)
    inverse = torch.linalg.inv(projection)
    world = homogeneous @ inverse[:, :3, :3].transpose(1, 2) + inverse[:, None, :3, 3]
    return world.view(projection.shape[0], depth, latent_size, latent_size, 3)


class SpatialVolumeNet(nn.Module):
    """Builds the shared spatial volume and, from it, per-target-view frustum features."""

    def __init__(self, time_dim: int, view_dim: int, view_num: int, dims: Sequence[int],
                 image_size: int = 256, latent_size: int = 32, frustum_depth: int = 48,
                 spatial_size: int = 32, spatial_half_length: float = 0.5):
        super().__init__()
        self.image_size = image_size
        self.latent_size = latent_size
        self.frustum_depth = frustum_depth
        self.spatial_size = spatial_size
        self.spatial_half_length = spatial_half_length
        self.target_encoder = NoisyTargetViewEncoder(time_dim, view_dim, output_dim=VIEW_FEATURE_DIM)
        self.spatial_volume_feats = SpatialTime3DNet(time_dim, VIEW_FEATURE_DIM * view_num, dims)
        self.frustum_volume_feats = FrustumTV3DNet(time_dim, view_dim, dims)

    def spatial_grid(self, poses: torch.Tensor, Ks: torch.Tensor) -> torch.Tensor:
        """Where each camera sees each voxel of the spatial volume: (N, V, V*V, 2) sampling
        coordinates. Depends on the cameras only, so a generation computes it once."""
        size = self.spatial_size
        projection = latent_projection(Ks, poses, self.latent_size, self.image_size)
        vertices = spatial_vertices(size, self.spatial_half_length, poses.device)
        grid = project_to_grid(vertices, projection, self.latent_size)  # (N, V^3, 2)
        return grid.view(poses.shape[0], size, size * size, 2)

    def frustum_grid(self, poses: torch.Tensor, Ks: torch.Tensor) -> torch.Tensor:
        """Each camera's frustum samples in the volume's normalised coordinates: (N, D, h, w, 3).
        Depends on the cameras only, so a generation computes it once."""
        projection = latent_projection(Ks, poses, self.latent_size, self.image_size)
        points = frustum_points(projection, self.latent_size, self.frustum_depth,
                                CAMERA_DISTANCE - FRUSTUM_HALF_LENGTH, CAMERA_DISTANCE + FRUSTUM_HALF_LENGTH)
        return points / self.spatial_half_length

    def construct_spatial_volume(self, x: torch.Tensor, t_embed: torch.Tensor, v_embed: torch.Tensor,
                                 grid: torch.Tensor) -> torch.Tensor:
        """Noisy latents (B, N, 4, h, w), t_embed (B, T), v_embed (B, N, 4) and `spatial_grid`
        -> (B, dims[0], V, V, V)."""
        b, n = x.shape[:2]
        size = self.spatial_size
        dtype = t_embed.dtype
        feats = self.target_encoder(
            x.reshape(b * n, *x.shape[2:]).to(dtype),
            t_embed.repeat_interleave(n, dim=0),
            v_embed.reshape(b * n, -1).to(dtype))                      # (B*N, 16, h, w)
        grid = grid.unsqueeze(0).expand(b, -1, -1, -1, -1).reshape(b * n, size, size * size, 2)
        volume = F.grid_sample(feats.float(), grid, mode="bilinear", padding_mode="zeros",
                               align_corners=True)                     # (B*N, 16, V, V*V)
        # Channels view-major: view 0's 16 channels first.
        volume = volume.view(b, n * feats.shape[1], size, size, size).to(dtype)
        return self.spatial_volume_feats(volume, t_embed)

    def construct_view_frustum_volume(self, spatial_volume: torch.Tensor, t_embed: torch.Tensor,
                                      v_embed: torch.Tensor, grid: torch.Tensor) -> dict[int, torch.Tensor]:
        """Frustum features of TN target views, flattened sample-major (B*TN, C, D, h, w) per width.

        v_embed (B, TN, 4) and grid (TN, D, h, w, 3) (`frustum_grid`) belong to those views."""
        b, channels = spatial_volume.shape[:2]
        tn, depth, size = grid.shape[:3]
        # All target views of one sample are sampled in a single call, stacked along depth.
        grid = grid.reshape(1, tn * depth, size, size, 3).expand(b, -1, -1, -1, -1)
        sampled = F.grid_sample(spatial_volume.float(), grid, mode="bilinear", padding_mode="zeros",
                                align_corners=True)
        sampled = sampled.view(b, channels, tn, depth, size, size).transpose(1, 2)
        sampled = sampled.reshape(b * tn, channels, depth, size, size).to(spatial_volume.dtype)
        t_targets = t_embed.repeat_interleave(tn, dim=0)
        return self.frustum_volume_feats(sampled, t_targets, v_embed.reshape(b * tn, -1).to(t_embed.dtype))
