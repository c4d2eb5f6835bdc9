#!/usr/bin/python3
"""Generates tests/fixtures/parity_attention.safetensors: PyTorch reference values for
tests/test_parity_attention.c (the Transformer ops: layernorm, multi-head attention, sequence
cross-entropy with ignore_index, sinusoidal and learned positions).

Regenerate (from the repository root; needs Debian's python3-torch and python3-numpy):

    /usr/bin/python3 scripts/gen_attention_fixtures.py

Same conventions as scripts/gen_parity_fixtures.py (whose hand-written safetensors writer is
copied here): fixed seed, one CPU thread, inputs and upstream gradients drawn in float64 and
rounded to float32, reference computation in float64, everything stored as F32.

Tensor names, for a case NAME:
  NAME.in0, NAME.in1, ...   the op's inputs, in mediaml builder order (attention: q, k, v and
                            the key mask [B, T] when the case has one; cross-entropy: logits,
                            targets)
  NAME.gy                   upstream gradient seeded into the output's grad
  NAME.y                    forward output (the loss: shape [1])
  NAME.ginK                 gradient of input K, present exactly for the differentiable inputs

torch 1.13 has no F.scaled_dot_product_attention, so attention is written out:
softmax(q_h k_h^T / sqrt(hd) + masks) v_h per head (head h = columns [h*hd, (h+1)*hd), as
GPT-2). A query row whose keys are all masked outputs zeros (mediaml's rule; PyTorch's softmax
would give NaN there), done with torch.where so that the gradients stay finite.
"""
import math
import os
import sys

from fixture_io import D, case, f32, put, randn, tensors, uniform, write_safetensors
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "parity_attention.safetensors")

torch.manual_seed(0)
torch.set_num_threads(1)

# ------------------------------------------------------------------ layernorm

def ln_case(name, x, eps):
    c = x.shape[-1]
    case(name, [x, uniform(0.5, 1.5, c), randn(c, scale=0.5)],
         lambda x, g, b: F.layer_norm(x, (c,), g, b, eps), [1, 1, 1])


ln_case("layernorm", randn(2, 3, 5, scale=2) + 0.5, 1e-5)
ln_case("layernorm_eps3", randn(4, 7, scale=0.1), 1e-3)  # small variance: eps matters

# ------------------------------------------------------------------ attention


def attention(q, k, v, mask, heads, causal):
    B, T, C = q.shape
    hd = C // heads

    def split(x):
        return x.reshape(B, T, heads, hd).transpose(1, 2)  # [B, H, T, hd]

    s = split(q) @ split(k).transpose(-1, -2) / math.sqrt(hd)
    allowed = torch.ones(B, 1, T, T, dtype=torch.bool)
    if causal:
        allowed = allowed & torch.ones(T, T, dtype=torch.bool).tril()
    if mask is not None:
        allowed = allowed & (mask != 0)[:, None, None, :]
    s = s.masked_fill(~allowed, -float("inf"))
    any_key = allowed.any(-1, keepdim=True)
    s = torch.where(any_key, s, torch.zeros_like(s))
    p = F.softmax(s, -1) * any_key
    return (p @ split(v)).transpose(1, 2).reshape(B, T, C)


def att_case(name, B, T, C, heads, causal, mask=None):
    qkv = [randn(B, T, C, scale=1.5) for _ in range(3)]
    if mask is None:
        case(name, qkv, lambda q, k, v: attention(q, k, v, None, heads, causal), [1, 1, 1])
    else:
        case(name, qkv + [mask], lambda q, k, v, m: attention(q, k, v, m, heads, causal), [1, 1, 1, 0])


att_case("attention_causal", 2, 5, 8, 2, True)
att_case("attention_padding", 2, 5, 8, 2, False,
         torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=D))
# Left padding in batch 1: with causal, its query rows 0 and 1 see no key (zero output).
att_case("attention_causal_padding", 2, 6, 12, 3, True,
         torch.tensor([[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=D))
# Two row blocks of 64 in mediaml's kernel.
att_case("attention_long", 1, 70, 8, 2, True,
         torch.cat([torch.ones(1, 61, dtype=D), torch.zeros(1, 9, dtype=D)], 1))

# ------------------------------------------------------------------ sequence cross-entropy

IGNORE = -100
B, T, V = 2, 4, 7
tgt = torch.randint(0, V, (B, T)).to(D)
tgt[0, 3] = IGNORE
tgt[1, 0] = IGNORE
case("seq_ce", [randn(B, T, V, scale=2), tgt],
     lambda z, t: F.cross_entropy(z.reshape(-1, V), t.reshape(-1).long(), ignore_index=IGNORE), [1, 0])

# ------------------------------------------------------------------ positions


def sinusoidal(T, C):
    pe = torch.zeros(T, C, dtype=D)
    pos = torch.arange(T, dtype=D)[:, None]
    i2 = torch.arange(0, C, 2, dtype=D)
    ang = pos / torch.pow(torch.tensor(10000.0, dtype=D), i2 / C)
    pe[:, 0::2] = torch.sin(ang)
    pe[:, 1::2] = torch.cos(ang[:, : C // 2])
    return pe


case("sinusoidal", [randn(2, 5, 6)], lambda x: x + sinusoidal(5, 6), [1])
case("sinusoidal_odd", [randn(1, 40, 5)], lambda x: x + sinusoidal(40, 5), [1])
case("add_positions", [randn(2, 3, 4), randn(5, 4, scale=0.3)], lambda x, t: x + t[:3], [1, 1])

# ------------------------------------------------------------------ write


def write(path):
    return write_safetensors(path, tensors, {"generator": "scripts/gen_attention_fixtures.py", "torch": torch.__version__, "seed": "0"})


size = write(OUT)
print("wrote %s: %d tensors, %d bytes" % (os.path.relpath(OUT, ROOT), len(tensors), size))
if size >= 200 * 1024:
    sys.exit("fixture too large")
