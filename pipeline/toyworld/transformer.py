"""WanTransformer3DModel with learned absolute position tables added to its patch embedding, one of them
modulated by the pooled prompt.

Wan's only positional signal is RoPE inside self-attention, which is relative: a token cannot tell which frame
or which column it is in, so "left to right" (a position that depends on the frame) has nothing to hold on to.
The giant model learns it from data and VAE border cues; a model trained for an hour on a CPU does not. A learned
(frames x rows x columns) table gives it the anchor, and a prompt-dependent one ties the motion words to it."""

from __future__ import annotations

import torch
from diffusers import WanTransformer3DModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  (the pipeline loader looks the base up here)
from torch import nn


class PositionalPatchEmbed(nn.Module):
    """The patch convolution, plus a position table per output cell and a prompt-dependent one.

    The second table is a low-rank bilinear map from the pooled prompt to every (frame, row, column): "left to
    right" then means "object here early, there late" in one product, which cross-attention alone did not find
    (a trained model's loss was the same with the direction flipped in its prompts; a flipped color raised it)."""

    def __init__(self, conv: nn.Conv3d, grid: tuple[int, int, int], text_dim: int, rank: int):
        super().__init__()
        self.conv = conv
        # As large as the convolution's output, so every frame and cell is told apart from the first step
        self.position = nn.Parameter(torch.randn(1, conv.out_channels, *grid) * 0.5)
        # Pooled prompts are nearly parallel ("drifting left" vs "drifting right": cosine above 0.99), so they are
        # standardized with statistics of the training captions (set once by `fit_text_scale`), frozen.
        self.text_mean = nn.Parameter(torch.zeros(2 * text_dim), requires_grad=False)
        self.text_std = nn.Parameter(torch.ones(2 * text_dim), requires_grad=False)
        self.text_in = nn.Linear(2 * text_dim, rank)
        self.text_position = nn.Parameter(torch.randn(1, rank, *grid) * 0.5)
        self.text_out = nn.Linear(rank, conv.out_channels)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """`text`: (batch, 2 * text_dim) pooled prompt states (`pooled_prompt`)."""
        y = self.conv(x)
        position, text_position = self.position, self.text_position
        if tuple(position.shape[2:]) != tuple(y.shape[2:]):
            position = nn.functional.interpolate(position, size=y.shape[2:], mode="trilinear", align_corners=False)
            text_position = nn.functional.interpolate(
                text_position, size=y.shape[2:], mode="trilinear", align_corners=False
            )
        text = (text.to(y.dtype) - self.text_mean.to(y.dtype)) / self.text_std.to(y.dtype)
        gate = self.text_in(text)[:, :, None, None, None] * text_position.to(y.dtype)
        return y + position.to(y.dtype) + self.text_out(gate.movedim(1, -1)).movedim(-1, 1)


class _PatchEmbedWithText(nn.Module):
    """Binds one forward call's pooled prompt to the patch embedding, which Wan's forward calls with latents only."""

    def __init__(self, embed: PositionalPatchEmbed, text: torch.Tensor):
        super().__init__()
        self.embed, self.text = embed, text

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x, self.text)


def pooled_prompt(encoder_hidden_states: torch.Tensor) -> torch.Tensor:
    """(batch, 2 * text_dim): the mean of the real token states, and their mean weighted by position from -1 (first
    token) to 1 (last), which tells "left to right" from "right to left" where a plain mean of the same words cannot.
    The pipeline zero-pads prompts to max_sequence_length; padding is not a real token."""
    real = (encoder_hidden_states.abs().sum(-1, keepdim=True) > 0).to(encoder_hidden_states.dtype)
    count = real.sum(1).clamp(min=1)
    index = torch.cumsum(real, 1) - 1  # 0 .. count - 1 over the real tokens
    order = (2 * index / (count[:, None] - 1).clamp(min=1) - 1) * real
    states = encoder_hidden_states * real
    return torch.cat([states.sum(1) / count, (states * order).sum(1) / count], dim=-1)


class ToyWorldTransformer(WanTransformer3DModel):
    """Wan's transformer; `position_grid` is the post-patch (frames, rows, columns) it trains on, and
    `text_position_rank` the rank of the prompt-dependent position table."""

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
        text_position_rank: int = 32,
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
        self.patch_embedding = PositionalPatchEmbed(
            self.patch_embedding, tuple(position_grid), text_dim, text_position_rank
        )

    @torch.no_grad()
    def fit_text_scale(self, prompt_states: list[torch.Tensor]) -> None:
        """Set the pooled-prompt standardization from (tokens, text_dim) states of the training captions."""
        pooled = torch.cat([pooled_prompt(s.float()[None]) for s in prompt_states])
        self.patch_embedding.text_mean.copy_(pooled.mean(0))
        self.patch_embedding.text_std.copy_(pooled.std(0).clamp(min=1e-4))

    def forward(
        self, hidden_states: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor, **kwargs
    ):
        """Wan's forward, with the patch embedding given the pooled prompt for this call."""
        embed = self.patch_embedding
        self.patch_embedding = _PatchEmbedWithText(embed, pooled_prompt(encoder_hidden_states))
        try:
            return super().forward(hidden_states, timestep, encoder_hidden_states, **kwargs)
        finally:
            self.patch_embedding = embed
