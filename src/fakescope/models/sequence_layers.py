"""Masked sequence layers shared by the speech models (frames of a window) and the temporal face models (crops of
a face track): padding sits at the end of a batch row and never changes a row's result."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def valid_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Frames up to the last real one, per row (at least 1): padding sits at the end of a batch row."""
    idx = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    return (mask * idx).amax(dim=1).clamp(min=1)


def run_rnn(rnn: nn.RNNBase, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A GRU or LSTM over each row's own length, so the backward direction never starts inside padding."""
    lengths = valid_lengths(mask)
    if bool((lengths == x.shape[1]).all()):
        return rnn(x)[0]
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=x.shape[1])[0]


class AttentionPool(nn.Module):
    """Weighted mean of frames, weights from a small scoring MLP, masked frames excluded.

    Returns the pooled vector and the weights, which say which part of a window looked synthetic.
    """

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # A window with no real frame (all padding) falls back to weighting every frame equally.
        mask = mask | ~mask.any(dim=1, keepdim=True)
        logits = self.score(h).squeeze(-1).float().masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=1).to(h.dtype)
        return (weights.unsqueeze(-1) * h).sum(dim=1), weights
