"""A compact MoLFormer encoder in plain torch: rotary position embeddings + linear attention.

MoLFormer (Ross et al. 2022) is a BERT-style post-norm encoder whose self-attention is linear
attention with a generalised random-feature map: queries and keys get rotary position embeddings,
are projected by an orthogonal random matrix (redrawn on every training forward, fixed in eval and
stored with the weights) and passed through ReLU; the attention is then
``phi(Q) (phi(K)^T V) / (phi(Q) sum phi(K))``, linear in the sequence length.  transformers has no
MoLFormer class without remote code, so this module is written here; it subclasses ``PreTrainedModel``
only to get ``save_pretrained`` / ``from_pretrained`` with transformers' loading report.  Its weight
names are its own: IBM's released checkpoints need a key conversion before they load (they fail
loudly, never silently).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput


class MolformerConfig(PretrainedConfig):
    model_type = "boom-molformer"

    def __init__(self, vocab_size: int = 2362, hidden_size: int = 768, num_hidden_layers: int = 12,
                 num_attention_heads: int = 12, intermediate_size: int = 768, num_random_features: int = 32,
                 embedding_dropout_prob: float = 0.2, hidden_dropout_prob: float = 0.1, layer_norm_eps: float = 1e-12,
                 linear_attention_eps: float = 1e-6, rotary_base: float = 10000.0, initializer_range: float = 0.02,
                 pad_token_id: int = 0, **kwargs):
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.num_hidden_layers, self.num_attention_heads = num_hidden_layers, num_attention_heads
        self.intermediate_size, self.num_random_features = intermediate_size, num_random_features
        self.embedding_dropout_prob, self.hidden_dropout_prob = embedding_dropout_prob, hidden_dropout_prob
        self.layer_norm_eps, self.linear_attention_eps = layer_norm_eps, linear_attention_eps
        self.rotary_base, self.initializer_range = rotary_base, initializer_range
        super().__init__(pad_token_id=pad_token_id, **kwargs)


# Known to AutoConfig, so that AutoTokenizer reading a checkpoint's config.json recognises the model type
# instead of warning that a `boom-molformer` config is instantiating an unknown one.
AutoConfig.register(MolformerConfig.model_type, MolformerConfig, exist_ok=True)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class LinearSelfAttention(nn.Module):
    def __init__(self, config: MolformerConfig):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"hidden_size {config.hidden_size} is not a multiple of num_attention_heads {config.num_attention_heads}")
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.n_features, self.eps = config.num_random_features, config.linear_attention_eps
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        # The rotary frequencies are a function of the config, computed in forward rather than held as a
        # non-persistent buffer: transformers' from_pretrained builds the module on the meta device and leaves
        # buffers that are not in the checkpoint uninitialised (garbage memory), which made loaded runs diverge.
        self.rotary_base = config.rotary_base
        self.register_buffer("feature_map", self._draw(torch.device("cpu")))

    def _draw(self, device: torch.device) -> torch.Tensor:
        """Orthogonal random features (blocks of QR-orthogonalised Gaussians with Gaussian row norms)."""
        blocks = []
        for _ in range(math.ceil(self.n_features / self.head_dim)):
            g = torch.randn(self.head_dim, self.head_dim, device=device)
            q, _ = torch.linalg.qr(g)
            blocks.append(q * torch.linalg.norm(g, dim=1).unsqueeze(0))
        return torch.cat(blocks, dim=1)[:, : self.n_features]

    def inv_freq(self, device: torch.device) -> torch.Tensor:
        """Rotary inverse frequencies, ``base ** (-2i / head_dim)`` for each pair of head dimensions."""
        return 1.0 / self.rotary_base ** (torch.arange(0, self.head_dim, 2, device=device, dtype=torch.float32) / self.head_dim)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, _ = h.shape
        split = lambda x: x.view(b, n, self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        freqs = torch.outer(torch.arange(n, device=h.device, dtype=torch.float32), self.inv_freq(h.device))
        cos, sin = torch.cat((freqs, freqs), -1).cos().to(q.dtype), torch.cat((freqs, freqs), -1).sin().to(q.dtype)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        if self.training:  # redraw the random features every training step, as MoLFormer does
            self.feature_map.copy_(self._draw(h.device))
        w = self.feature_map.to(q.dtype)
        q, k = torch.relu(q @ w), torch.relu(k @ w)
        k = k * mask[:, None, :, None].to(k.dtype)  # padding keys contribute nothing
        kv = k.transpose(-1, -2) @ v  # (b, heads, features, head_dim)
        norm = (q @ k.sum(dim=-2).unsqueeze(-1)).clamp(min=self.eps)
        out = (q @ kv) / norm
        return out.transpose(1, 2).reshape(b, n, -1)


class MolformerLayer(nn.Module):
    def __init__(self, config: MolformerConfig):
        super().__init__()
        self.attention = LinearSelfAttention(config)
        self.attention_out = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.attention_norm(h + self.dropout(self.attention_out(self.attention(h, mask))))
        return self.output_norm(h + self.dropout(self.output(nn.functional.gelu(self.intermediate(h)))))


class MolformerModel(PreTrainedModel):
    config_class = MolformerConfig
    base_model_prefix = "molformer"

    def __init__(self, config: MolformerConfig):
        super().__init__(config)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout_prob)
        self.layers = nn.ModuleList([MolformerLayer(config) for _ in range(config.num_hidden_layers)])
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.word_embeddings = value

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: object) -> BaseModelOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        h = self.embedding_dropout(self.word_embeddings(input_ids))
        for layer in self.layers:
            h = layer(h, attention_mask)
        return BaseModelOutput(last_hidden_state=self.final_norm(h))
