"""The neural@1 transformer, exactly as docs/models/format.md computes it.

Decoder-only, pre-LayerNorm, learned absolute positions (0-based), attention
and output projections without biases, feed-forward GELU (tanh form) with
biases, a final LayerNorm and an output head tied to the token embedding.
Attention is written out (no fused kernel) so the arithmetic is the one the
C engine repeats; set_fused(True) switches training to PyTorch's fused
scaled_dot_product_attention, the same function computed faster. `forward` accepts per-token positions and a document id
per token so that several sequences can be packed into one training row:
a token attends only to earlier tokens of its own document, and positions
restart at 0 for each document, as they do at inference.
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab: int = 174
    d_model: int = 256
    n_layers: int = 5
    n_heads: int = 8
    d_ff: int = 768
    max_seq: int = 512
    ln_eps: float = 1e-5

    def as_dict(self):
        return asdict(self)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.fused = False
        d = c.d_model
        self.ln1 = nn.LayerNorm(d, eps=c.ln_eps)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d, eps=c.ln_eps)
        self.w1 = nn.Linear(d, c.d_ff)
        self.w2 = nn.Linear(c.d_ff, d)

    def forward(self, x, mask):
        b, t, d = x.shape
        nh = self.c.n_heads
        hd = d // nh
        h = self.ln1(x)
        q = self.wq(h).view(b, t, nh, hd).transpose(1, 2)
        k = self.wk(h).view(b, t, nh, hd).transpose(1, 2)
        v = self.wv(h).view(b, t, nh, hd).transpose(1, 2)
        if self.fused:
            # The same arithmetic through PyTorch's fused kernel (training speed).
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
            att = att.masked_fill(~mask, float("-inf"))
            att = torch.softmax(att, dim=-1)
            y = att @ v
        y = y.transpose(1, 2).reshape(b, t, d)
        x = x + self.wo(y)
        h = self.ln2(x)
        x = x + self.w2(F.gelu(self.w1(h), approximate="tanh"))
        return x


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_emb = nn.Embedding(c.vocab, c.d_model)
        self.pos_emb = nn.Embedding(c.max_seq, c.d_model)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.lnf = nn.LayerNorm(c.d_model, eps=c.ln_eps)
        self.reset_parameters()

    def reset_parameters(self):
        # GPT-2 style: N(0, 0.02), residual projections scaled by depth.
        for name, p in self.named_parameters():
            if name.endswith("ln1.weight") or name.endswith("ln2.weight") or name == "lnf.weight":
                nn.init.ones_(p)
            elif p.dim() == 1:
                nn.init.zeros_(p)
            else:
                std = 0.02
                if name.endswith("wo.weight") or name.endswith("w2.weight"):
                    std = 0.02 / math.sqrt(2 * self.c.n_layers)
                nn.init.normal_(p, 0.0, std)

    def forward(self, tokens, positions=None, docs=None):
        """Logits [B, T, vocab] for tokens [B, T] (int64).

        positions: [B, T] position of each token in its own sequence
        (default 0..T-1); docs: [B, T] document id of each token (default:
        one document per row). Attention is causal within a document.
        """
        b, t = tokens.shape
        if positions is None:
            positions = torch.arange(t, device=tokens.device).expand(b, t)
        causal = torch.ones(t, t, dtype=torch.bool, device=tokens.device).tril()
        if docs is None:
            mask = causal.view(1, 1, t, t)
        else:
            same = docs.unsqueeze(2) == docs.unsqueeze(1)
            mask = (same & causal).unsqueeze(1)
        x = self.tok_emb(tokens) + self.pos_emb(positions)
        for layer in self.layers:
            x = layer(x, mask)
        x = self.lnf(x)
        return x @ self.tok_emb.weight.t()

    def set_fused(self, on):
        for layer in self.layers:
            layer.fused = on

    def tensors(self):
        """(name, tensor) in the CZTF order with the CZTF names."""
        out = [("tok_emb", self.tok_emb.weight), ("pos_emb", self.pos_emb.weight)]
        for i, l in enumerate(self.layers):
            p = f"l{i}."
            out += [(p + "ln1_w", l.ln1.weight), (p + "ln1_b", l.ln1.bias),
                    (p + "wq", l.wq.weight), (p + "wk", l.wk.weight),
                    (p + "wv", l.wv.weight), (p + "wo", l.wo.weight),
                    (p + "ln2_w", l.ln2.weight), (p + "ln2_b", l.ln2.bias),
                    (p + "w1", l.w1.weight), (p + "b1", l.w1.bias),
                    (p + "w2", l.w2.weight), (p + "b2", l.w2.bias)]
        out += [("lnf_w", self.lnf.weight), ("lnf_b", self.lnf.bias)]
        return out

    def n_params(self):
        return sum(p.numel() for p in self.parameters())
