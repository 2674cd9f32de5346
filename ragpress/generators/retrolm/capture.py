"""RetroLM's query vectors, read where the model computes them: a page is scored by the attention the
model's own queries would pay it (:mod:`ragpress.generators.retrolm.paging`, step 3)."""

from __future__ import annotations

from typing import Any

import torch

from ragpress.core.attention import project_heads, rotary


class QueryCapture:
    """Forward pre-hooks on every attention module that record the post-RoPE query vectors
    ``[1, kv_heads, groups * t, head_dim]`` (grouped by the KV head they read) of the tokens passing."""

    def __init__(self, model: Any):
        self.queries: list[torch.Tensor] = []
        self.handles = [layer.self_attn.register_forward_pre_hook(self._hook, with_kwargs=True) for layer in model.get_decoder().layers]

    def _hook(self, attn, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        cos, sin = kwargs["position_embeddings"]
        q = project_heads(attn, "q_proj", "q_norm", hidden)
        q = rotary(attn)(q, q, cos, sin)[0]
        kv_heads = q.shape[1] // attn.num_key_value_groups
        self.queries.append(q.reshape(1, kv_heads, -1, attn.head_dim).float() * attn.scaling)

    def take(self) -> list[torch.Tensor]:
        out, self.queries = self.queries, []
        return out

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
