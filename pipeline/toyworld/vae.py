"""A linear video autoencoder fitted to the toy world by PCA: Wan-style causal time compression, 4x4-pixel cells.

It is a diffusers model (ModelMixin + ConfigMixin, saved and loaded with save_pretrained/from_pretrained) with
the config fields WanPipeline reads from a VAE: z_dim, scale_factor_temporal, scale_factor_spatial, latents_mean
and latents_std. Frame 0 is repeated so that 4k+1 frames become whole pairs, as Wan's VAE encodes the first
frame on its own."""

from __future__ import annotations

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin  # also looked up here by the pipeline loader


class ToyVideoVAE(ModelMixin, ConfigMixin):
    """Patches of (scale_factor_temporal x s x s x 3) pixels <-> z_dim principal components."""

    @register_to_config
    def __init__(
        self,
        z_dim: int = 16,
        scale_factor_temporal: int = 2,
        scale_factor_spatial: int = 4,
        latents_mean: tuple[float, ...] | None = None,
        latents_std: tuple[float, ...] | None = None,
    ):
        super().__init__()
        dims = scale_factor_temporal * scale_factor_spatial**2 * 3
        self.basis = torch.nn.Parameter(torch.zeros(z_dim, dims), requires_grad=False)
        self.center = torch.nn.Parameter(torch.zeros(dims), requires_grad=False)

    @torch.no_grad()
    def fit(self, videos: np.ndarray, max_rows: int = 200_000) -> None:
        """Fit the basis to uint8 clips (N, T, H, W, 3) and set latents_mean/std (from_pretrained keeps them)."""
        x = self._patchify(torch.from_numpy(videos).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3))
        rows = x.permute(0, 2, 3, 4, 1).reshape(-1, x.shape[1])
        rows = rows[torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(0))[:max_rows]]
        center = rows.mean(0)
        _, _, vt = torch.linalg.svd(rows - center, full_matrices=False)
        basis = vt[: self.config.z_dim]
        basis = basis * torch.sign(basis.sum(1, keepdim=True) + 1e-9)  # a fixed sign per component: reproducible
        self.basis.copy_(basis)
        self.center.copy_(center)
        coefs = (rows - center) @ basis.T
        # One scale for all components keeps the latent space an orthonormal, scaled copy of pixel space: the
        # diffusion loss is then pixel error, and low-variance detail components are not blown up to unit size.
        scale = float(coefs.pow(2).mean().sqrt())
        self.register_to_config(latents_mean=[0.0] * self.config.z_dim, latents_std=[scale] * self.config.z_dim)

    def _patchify(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> (B, dims, T', H', W') with T' = (T - 1) // ft + 1."""
        ft, fs = self.config.scale_factor_temporal, self.config.scale_factor_spatial
        if (video.shape[2] - 1) % ft:
            raise ValueError(f"frames must be {ft}k+1, got {video.shape[2]}")
        video = torch.cat([video[:, :, :1].expand(-1, -1, ft - 1, -1, -1), video], dim=2)
        b, c, t, h, w = video.shape
        x = video.reshape(b, c, t // ft, ft, h // fs, fs, w // fs, fs)
        return x.permute(0, 3, 5, 7, 1, 2, 4, 6).reshape(b, ft * fs * fs * c, t // ft, h // fs, w // fs)

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        patches = self._patchify(x.to(self.basis.dtype))
        mean = torch.einsum("bdthw,zd->bzthw", patches - self.center.view(1, -1, 1, 1, 1), self.basis)
        dist = DiagonalGaussianDistribution(torch.cat([mean, torch.full_like(mean, -30.0)], dim=1))
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        ft, fs = self.config.scale_factor_temporal, self.config.scale_factor_spatial
        patches = torch.einsum("bzthw,zd->bdthw", z.to(self.basis.dtype), self.basis) + self.center.view(1, -1, 1, 1, 1)
        b, _, t, h, w = patches.shape
        x = patches.reshape(b, ft, fs, fs, 3, t, h, w).permute(0, 4, 5, 1, 6, 2, 7, 3)
        video = x.reshape(b, 3, t * ft, h * fs, w * fs)[:, :, ft - 1 :].clamp(-1, 1)
        return DecoderOutput(sample=video) if return_dict else (video,)
