"""WanTransformer3DModel with a learned absolute position embedding added to its patch embedding.

Wan's only positional signal is RoPE inside self-attention, which is relative: a token cannot tell which frame
or which column it is in, so "left to right" (a position that depends on the frame) has nothing to hold on to.
The giant model learns it from data and VAE border cues; a model trained for an hour on a CPU does not. One
learned (frames x rows x columns) table, resampled when a clip's latent grid differs, gives it the anchor."""

from __future__ import annotations

import torch
from diffusers import WanTransformer3DModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  (the pipeline loader looks the base up here)
from torch import nn


class PositionalPatchEmbed(nn.Module):
    """The patch convolution, plus a position table per output cell."""

    def __init__(self, conv: nn.Conv3d, grid: tuple[int, int, int]):
        super().__init__()
        self.conv = conv
        self.position = nn.Parameter(torch.randn(1, conv.out_channels, *grid) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        position = self.position
        if tuple(position.shape[2:]) != tuple(y.shape[2:]):
            position = nn.functional.interpolate(position, size=y.shape[2:], mode="trilinear", align_corners=False)
        return y + position.to(y.dtype)


class ToyWorldTransformer(WanTransformer3DModel):
    """Wan's transformer, same forward; `position_grid` is the post-patch (frames, rows, columns) it trains on."""

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 4,
        attention_head_dim: int = 32,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 384,
        freq_dim: int = 256,
        ffn_dim: int = 512,
        num_layers: int = 4,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = None,
        added_kv_proj_dim: int | None = None,
        rope_max_seq_len: int = 32,
        pos_embed_seq_len: int | None = None,
        position_grid: tuple[int, int, int] = (5, 4, 4),
    ) -> None:
        super().__init__(
            patch_size=patch_size,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            text_dim=text_dim,
            freq_dim=freq_dim,
            ffn_dim=ffn_dim,
            num_layers=num_layers,
            cross_attn_norm=cross_attn_norm,
            qk_norm=qk_norm,
            eps=eps,
            image_dim=image_dim,
            added_kv_proj_dim=added_kv_proj_dim,
            rope_max_seq_len=rope_max_seq_len,
            pos_embed_seq_len=pos_embed_seq_len,
        )
        self.patch_embedding = PositionalPatchEmbed(self.patch_embedding, tuple(position_grid))
