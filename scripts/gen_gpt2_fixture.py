#!/usr/bin/python3
"""Generates tests/fixtures/gpt2_tiny/: a small random GPT-2 in Hugging Face's exact checkpoint
layout, its tokenizer files, and PyTorch reference outputs for tests/test_gpt2_import.c.

Regenerate (from the repository root; needs only Debian's python3-torch and python3-numpy, no
transformers or safetensors package):

    /usr/bin/python3 scripts/gen_gpt2_fixture.py

Output files (deterministic: torch.manual_seed(0), one thread):

  config.json          HF GPT2Config fields (n_layer 2, n_head 2, n_embd 32, n_positions 64,
                       vocab_size 300, layer_norm_epsilon 1e-5, activation_function gelu_new)
  model.safetensors    tensors named exactly as the Hub's "gpt2" model.safetensors: wte.weight [V, C],
                       wpe.weight [P, C], h.N.ln_1.{weight,bias}, h.N.attn.bias (the causal-mask
                       buffer [1, 1, P, P], which importers must ignore), h.N.attn.c_attn.{weight
                       [C, 3C], bias [3C]}, h.N.attn.c_proj.{weight [C, C], bias}, h.N.ln_2.*,
                       h.N.mlp.c_fc.{weight [C, 4C], bias}, h.N.mlp.c_proj.{weight [4C, C], bias},
                       ln_f.{weight,bias}. Conv1D weights are [in, out]. No lm_head.weight: the LM
                       head is tied to wte, as in GPT-2.
  vocab.json,          a byte-level BPE tokenizer in GPT-2's file formats (HF names): ids 0..255 are
  merges.txt           the 256 bytes in GPT-2's bytes_to_unicode order (as GPT-2's encoder.json),
                       then 43 merges learned on a short text (ids 256..298), then <|endoftext|> =
                       299. GPT-2's real 50257-token vocabulary would make the fixture ~40 MB.
  reference.safetensors
                       tokens [L] (I32): TEXT encoded with GPT-2's algorithm (ASCII text, so
                       Python's re module reproduces GPT-2's pre-tokenization regex exactly);
                       logits [L, V] and log_probs [L, V] (F32): the GPT-2 forward below in float64
                       on the float32 weights, rounded to float32 at the end. Metadata "text" is
                       TEXT.

The forward is written out in plain torch (no transformers): token + position embeddings, pre-LN
blocks (x @ W + b matmuls as HF's Conv1D), causal softmax attention with heads split from c_attn
(q, k, v = columns [0, C), [C, 2C), [2C, 3C); head h uses columns [h*hd, (h+1)*hd) of each),
scores scaled by 1/sqrt(hd), gelu_new = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), final LN,
logits = h @ wte^T.

Weights are random with larger scales than GPT-2's init (N(0, 0.02)) so that attention and
the MLP are far from trivial; LayerNorm weights and biases are random too.

GPT-2-small-sized check (not committed; ~0.5 GB):

    /usr/bin/python3 scripts/gen_gpt2_fixture.py --small DIR [--tokenizer-dir ../shared/data/gpt2-tokenizer]

writes the same files into DIR for a random model of GPT-2 small's shapes (12 layers, 12 heads,
n_embd 768, n_positions 1024, vocab_size 50257) with GPT-2's real tokenizer files (copied from
--tokenizer-dir) and the reference text encoded with GPT-2's merges. Matrix scales shrink with
sqrt(32 / n_embd). Then: MEDIAML_GPT2_DIR=DIR build/test_gpt2_import.
"""
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch

import argparse
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--small", metavar="DIR", help="write a random GPT-2-small-sized checkpoint into DIR instead")
ap.add_argument("--tokenizer-dir", default=os.path.join(ROOT, "..", "shared", "data", "gpt2-tokenizer"))
cli = ap.parse_args()
SMALL = cli.small is not None
OUT = cli.small if SMALL else os.path.join(ROOT, "tests", "fixtures", "gpt2_tiny")

torch.manual_seed(0)
torch.set_num_threads(1)
D = torch.float64

N_LAYER, N_HEAD, N_EMBD, N_POS, VOCAB, EPS = 2, 2, 32, 64, 300, 1e-5
if SMALL:
    N_LAYER, N_HEAD, N_EMBD, N_POS, VOCAB = 12, 12, 768, 1024, 50257
SCALE = math.sqrt(32.0 / N_EMBD)  # 1 for the tiny model
N_MERGES = VOCAB - 256 - 1

TEXT = "First Citizen: Before we proceed any further, hear me speak. You are all resolved?"
CORPUS = (
    "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. "
    "First Citizen: You are all resolved rather to die than to famish? All: Resolved. resolved. "
    "First Citizen: First, you know Caius Marcius is chief enemy to the people. "
    "All: We know't, we know't. First Citizen: Let us kill him, and we'll have corn at our own price. "
    "Is't a verdict? All: No more talking on't; let it be done: away, away! "
    "Second Citizen: One word, good citizens. First Citizen: We are accounted poor citizens, "
    "the patricians good. What authority surfeits on would relieve us: if they would yield us "
    "but the superfluity, while it were wholesome, we might guess they relieved us humanely; "
    "but they think we are too dear: the leanness that afflicts us, the object of our misery, "
    "is as an inventory to particularise their abundance; our sufferance is a gain to them."
)

# ---------------------------------------------------------------- tokenizer (GPT-2's algorithm)


def bytes_to_unicode():
    """GPT-2's encoder.py mapping: byte -> printable unicode character; list order = id order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return bs, [chr(c) for c in cs]


# GPT-2's pattern restricted to ASCII (\p{L} -> [A-Za-z], \p{N} -> [0-9]); exact for ASCII input.
PAT = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")
BS, CS = bytes_to_unicode()
BYTE_ENC = {b: c for b, c in zip(BS, CS)}


def pieces(text):
    assert all(ord(ch) < 128 for ch in text), "reference text must be ASCII"
    return ["".join(BYTE_ENC[b] for b in p.encode("utf-8")) for p in PAT.findall(text)]


def train_merges(corpus, n):
    """Most frequent adjacent pair first (ties: lexicographically smallest pair)."""
    words = {}
    for p in pieces(corpus):
        words[p] = words.get(p, 0) + 1
    seqs = {w: list(w) for w in words}
    merges = []
    for _ in range(n):
        counts = {}
        for w, c in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + c
        if not counts:
            break
        best = min(counts, key=lambda k: (-counts[k], k))
        merges.append(best)
        for w in seqs:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def bpe(piece, ranks):
    """GPT-2's encoder.py bpe(): repeatedly merge the lowest-ranked adjacent pair."""
    word = list(piece)
    while len(word) > 1:
        pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        out, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                out.append(word[i] + word[i + 1])
                i += 2
            else:
                out.append(word[i])
                i += 1
        word = out
    return word


if SMALL:
    with open(os.path.join(cli.tokenizer_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(cli.tokenizer_dir, "merges.txt"), encoding="utf-8") as f:
        merges = [tuple(l.split()) for l in f.read().split("\n")[1:] if l.strip()]
else:
    merges = train_merges(CORPUS, N_MERGES)
    assert len(merges) == N_MERGES, len(merges)
    vocab = {c: i for i, c in enumerate(CS)}
    for a, b in merges:
        assert a + b not in vocab, "merge result already in the vocabulary: " + a + b
        vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
assert len(vocab) == VOCAB
ranks = {m: r for r, m in enumerate(merges)}
tokens = [vocab[t] for p in pieces(TEXT) for t in bpe(p, ranks)]
L = len(tokens)
assert L <= N_POS, L

# ---------------------------------------------------------------- weights (HF layout)

weights = []  # (name, float32 array), in write order


def f32(t):
    return t.to(torch.float32).to(D)


def put(name, t):
    weights.append((name, t.detach().numpy().astype(np.float32)))
    return t


def randn(*shape, std):
    return f32(torch.randn(*shape, dtype=D) * std)


def randm(*shape, std):  # matrices: scale with the width
    return randn(*shape, std=std * SCALE)


C, H, P, V = N_EMBD, N_HEAD, N_POS, VOCAB
wte = put("wte.weight", randm(V, C, std=0.3))
wpe = put("wpe.weight", randn(P, C, std=0.1))
blocks = []
for i in range(N_LAYER):
    pre = "h.%d." % i
    blk = {
        "ln1w": put(pre + "ln_1.weight", f32(1 + randn(C, std=0.1))),
        "ln1b": put(pre + "ln_1.bias", randn(C, std=0.1)),
    }
    put(pre + "attn.bias", torch.tril(torch.ones(P, P, dtype=D)).view(1, 1, P, P))
    blk.update({
        "attn_w": put(pre + "attn.c_attn.weight", randm(C, 3 * C, std=0.25)),
        "attn_b": put(pre + "attn.c_attn.bias", randn(3 * C, std=0.1)),
        "proj_w": put(pre + "attn.c_proj.weight", randm(C, C, std=0.15)),
        "proj_b": put(pre + "attn.c_proj.bias", randn(C, std=0.1)),
        "ln2w": put(pre + "ln_2.weight", f32(1 + randn(C, std=0.1))),
        "ln2b": put(pre + "ln_2.bias", randn(C, std=0.1)),
        "fc_w": put(pre + "mlp.c_fc.weight", randm(C, 4 * C, std=0.2)),
        "fc_b": put(pre + "mlp.c_fc.bias", randn(4 * C, std=0.1)),
        "mp_w": put(pre + "mlp.c_proj.weight", randm(4 * C, C, std=0.1)),
        "mp_b": put(pre + "mlp.c_proj.bias", randn(C, std=0.1)),
    })
    blocks.append(blk)
lnfw = put("ln_f.weight", f32(1 + randn(C, std=0.1)))
lnfb = put("ln_f.bias", randn(C, std=0.1))

# ---------------------------------------------------------------- GPT-2 forward (float64)


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + EPS) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gpt2_forward(ids):
    T = len(ids)
    hd = C // H
    x = wte[torch.tensor(ids)] + wpe[:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for b in blocks:
        a = layer_norm(x, b["ln1w"], b["ln1b"])
        qkv = a @ b["attn_w"] + b["attn_b"]
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = (t.view(T, H, hd).transpose(0, 1) for t in (q, k, v))  # [H, T, hd]
        s = q @ k.transpose(-1, -2) / math.sqrt(hd)
        s = s.masked_fill(~causal, float("-inf"))
        y = torch.softmax(s, dim=-1) @ v  # [H, T, hd]
        y = y.transpose(0, 1).reshape(T, C)
        x = x + (y @ b["proj_w"] + b["proj_b"])
        m = layer_norm(x, b["ln2w"], b["ln2b"])
        x = x + (gelu_new(m @ b["fc_w"] + b["fc_b"]) @ b["mp_w"] + b["mp_b"])
    x = layer_norm(x, lnfw, lnfb)
    return x @ wte.T


logits = gpt2_forward(tokens)
log_probs = torch.log_softmax(logits, dim=-1)

# ---------------------------------------------------------------- writers


def write_safetensors(path, tensors, meta):
    header, off, blobs = {}, 0, []
    for name, a in tensors:
        dtype = {"float32": "F32", "int32": "I32"}[str(a.dtype)]
        b = a.astype("<f4" if dtype == "F32" else "<i4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    data = struct.pack("<Q", len(h)) + h + b"".join(blobs)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return len(data)


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return len(text.encode("utf-8"))


os.makedirs(OUT, exist_ok=True)
config = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": VOCAB - 1,
    "embd_pdrop": 0.1,
    "eos_token_id": VOCAB - 1,
    "initializer_range": 0.02,
    "layer_norm_epsilon": EPS,
    "model_type": "gpt2",
    "n_ctx": N_POS,
    "n_embd": N_EMBD,
    "n_head": N_HEAD,
    "n_inner": None,
    "n_layer": N_LAYER,
    "n_positions": N_POS,
    "resid_pdrop": 0.1,
    "scale_attn_weights": True,
    "vocab_size": VOCAB,
}
total = 0
total += write_text(os.path.join(OUT, "config.json"), json.dumps(config, indent=2) + "\n")
total += write_safetensors(os.path.join(OUT, "model.safetensors"), weights, {"format": "pt"})
if SMALL:
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(cli.tokenizer_dir, name), os.path.join(OUT, name))
else:
    total += write_text(os.path.join(OUT, "vocab.json"), json.dumps(vocab, ensure_ascii=False))
    total += write_text(os.path.join(OUT, "merges.txt"),
                        "#version: 0.2\n" + "".join("%s %s\n" % m for m in merges))
ref = [("tokens", np.array(tokens, dtype=np.int32)),
       ("logits", logits.numpy().astype(np.float32)),
       ("log_probs", log_probs.numpy().astype(np.float32))]
total += write_safetensors(os.path.join(OUT, "reference.safetensors"), ref,
                           {"generator": "scripts/gen_gpt2_fixture.py", "torch": torch.__version__,
                            "seed": "0", "text": TEXT})
print("wrote %s: %d tokens of reference, %d bytes in all" % (os.path.relpath(OUT, ROOT), L, total))
print("tokens:", tokens)
print("logit range: %.3f .. %.3f" % (float(logits.min()), float(logits.max())))
if total >= 1024 * 1024 and not SMALL:
    sys.exit("fixture too large")
