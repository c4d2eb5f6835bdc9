#!/usr/bin/python3
"""PyTorch half of bench/textgen.sh: the same char-level GPT as 'mediaml textgen train' (defaults),
trained the same way on Tiny Shakespeare, then timed generating with and without a KV cache.

    /usr/bin/python3 bench/textgen_torch.py --data input.txt [--steps 2000] [--threads N] [--config NAME]

Matches apps/textgen (textgen_build, textgen_train, textgen_data.c):
  data      char tokenizer over the whole file (ids = distinct code points in increasing order);
            the first n - floor(0.1 n) tokens train, the rest validate
  model     Embedding(V, 128) -> learned positions [128, 128] -> 4 pre-LN blocks (LN eps 1e-5;
            causal 4-head attention with q/k/v/o Dense(128) + bias; Dense(512, exact gelu) ->
            Dense(128)) -> LN -> Dense(V) (softmax in the loss); no dropout
  init      as mediaml's: token table uniform(-0.05, 0.05); position table and every kernel
            glorot-uniform (fan_in, fan_out of the [in, out] kernel); biases 0; LN 1 / 0
  training  batch 32 windows of 129 tokens at uniformly random offsets of the training part;
            AdamW lr 1e-3, betas (0.9, 0.999), eps 1e-7, weight decay 0.01 on every parameter
            (decoupled: w -= lr * wd * w, as Keras and mediaml); global gradient-norm clip 1.0;
            linear warm-up min(100, steps / 10) steps, then cosine to 0.1 lr at the last step
  validate  every non-overlapping window (offset i * 128, 129 tokens) of the validation part;
            mean cross-entropy per token (nats)
  generate  from a newline, temperature 1 sampling (torch.multinomial): without cache the model
            re-runs on the last <= 128 tokens for every token; with cache one position per
            token, and when the 128 positions are full the cache restarts from the last 64
            tokens (mediaml's policy)
Prints one JSON line. Training tokens/s count batch * context tokens per step over the training
loop's time (no validation); peak RSS is the process's (ru_maxrss).
"""
import argparse
import json
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--steps", type=int, default=2000)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--context", type=int, default=128)
p.add_argument("--layers", type=int, default=4)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--width", type=int, default=128)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--weight-decay", type=float, default=0.01)
p.add_argument("--val-windows", type=int, default=0, help="at most this many validation windows, evenly spread (0 = all)")
p.add_argument("--gen-tokens", type=int, default=500)
p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
p.add_argument("--config", default="default")
p.add_argument("--autocast", choices=["none", "bf16"], default="none",
               help="bf16: torch.autocast('cpu', bfloat16) around the forward pass and loss (mixed precision)")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()

if args.threads > 0:
    torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)

# ---------------------------------------------------------------- data
text = open(args.data, encoding="utf-8").read()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = len(ids)
n_val = int(n * 0.1)
n_train = n - n_val
train_ids, val_ids = ids[:n_train], ids[n_train:]
V, T, C, H, L, B = len(chars), args.context, args.width, args.heads, args.layers, args.batch_size

all_windows = (n_val - 1) // T
n_windows = args.val_windows if 0 < args.val_windows < all_windows else all_windows
starts = [(i if n_windows == all_windows else int(i * all_windows / n_windows)) * T for i in range(n_windows)]
val_x = torch.stack([val_ids[s:s + T] for s in starts])
val_y = torch.stack([val_ids[s + 1:s + T + 1] for s in starts])


# ---------------------------------------------------------------- model
def glorot_(w, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        w.uniform_(-limit, limit)


def dense(i, o):
    lin = nn.Linear(i, o)
    glorot_(lin.weight, i, o)
    nn.init.zeros_(lin.bias)
    return lin


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(C, eps=1e-5)
        self.q, self.k, self.v, self.o = dense(C, C), dense(C, C), dense(C, C), dense(C, C)
        self.ln2 = nn.LayerNorm(C, eps=1e-5)
        self.fc1, self.fc2 = dense(C, 4 * C), dense(4 * C, C)

    def attend(self, q, k, v, causal):
        # q [N, Tq, C], k/v [N, Tk, C] -> [N, Tq, C]; heads split as [h*hd, (h+1)*hd)
        N, Tq, _ = q.shape
        Tk = k.shape[1]
        hd = C // H
        q = q.view(N, Tq, H, hd).transpose(1, 2)
        k = k.view(N, Tk, H, hd).transpose(1, 2)
        v = v.view(N, Tk, H, hd).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        if causal:
            mask = torch.ones(Tq, Tk, dtype=torch.bool).tril(Tk - Tq)
            s = s.masked_fill(~mask, float("-inf"))
        y = torch.softmax(s, dim=-1) @ v
        return y.transpose(1, 2).reshape(N, Tq, C)

    def forward(self, x, cache=None):
        a = self.ln1(x)
        q, k, v = self.q(a), self.k(a), self.v(a)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=1)
                v = torch.cat([cache["v"], v], dim=1)
            cache["k"], cache["v"] = k, v
        x = x + self.o(self.attend(q, k, v, causal=True))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(V, C)
        with torch.no_grad():
            self.tok.weight.uniform_(-0.05, 0.05)
        self.pos = nn.Parameter(torch.empty(T, C))
        glorot_(self.pos, T, C)
        self.blocks = nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        self.head = dense(C, V)

    def forward(self, x, caches=None, start=0):
        h = self.tok(x) + self.pos[start:start + x.shape[1]]
        for i, b in enumerate(self.blocks):
            h = b(h, None if caches is None else caches[i])
        return self.head(self.ln_f(h))


model = GPT()
params = sum(p.numel() for p in model.parameters())
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-7, weight_decay=args.weight_decay)
steps = args.steps
warmup = min(100, steps // 10)
decay = max(1, steps - warmup)


def lr_factor(step):  # step = optimizer steps done before this one (0-based), as mediaml
    if step < warmup:
        return (step + 1) / warmup
    t = min((step - warmup) / decay, 1.0)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))


sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)

# ---------------------------------------------------------------- training
g = torch.Generator().manual_seed(args.seed)
model.train()
t0 = time.perf_counter()
cpu0 = time.process_time()
loss_sum = 0.0
for step in range(steps):
    off = torch.randint(0, n_train - T, (B,), generator=g)
    xb = torch.stack([train_ids[o:o + T] for o in off])
    yb = torch.stack([train_ids[o + 1:o + T + 1] for o in off])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast == "bf16"):
        logits = model(xb)
        loss = F.cross_entropy(logits.view(-1, V).float(), yb.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    loss_sum += loss.item()
train_seconds = time.perf_counter() - t0
train_cpu = time.process_time() - cpu0

# ---------------------------------------------------------------- validation
model.eval()
t0 = time.perf_counter()
with torch.no_grad():
    tot = 0.0
    correct = 0
    for i in range(0, n_windows, 32):
        lg = model(val_x[i:i + 32])
        tot += F.cross_entropy(lg.reshape(-1, V), val_y[i:i + 32].reshape(-1), reduction="sum").item()
        correct += (lg.argmax(-1) == val_y[i:i + 32]).sum().item()
    val_loss = tot / (n_windows * T)
    val_acc = correct / (n_windows * T)
eval_seconds = time.perf_counter() - t0


# ---------------------------------------------------------------- generation
def generate(n_tokens, use_cache, seed=1):
    gen = torch.Generator().manual_seed(seed)
    seq = [stoi["\n"]]
    with torch.no_grad():
        t0 = time.perf_counter()
        if use_cache:
            caches = [dict() for _ in range(L)]
            logits = model(torch.tensor([seq]), caches, 0)[0, -1]
            pos = 1
            for _ in range(n_tokens):
                nxt = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
                seq.append(nxt)
                if pos == T:  # full: restart the cache from the last T/2 tokens
                    caches = [dict() for _ in range(L)]
                    keep = seq[-(T // 2):]
                    logits = model(torch.tensor([keep]), caches, 0)[0, -1]
                    pos = len(keep)
                else:
                    logits = model(torch.tensor([[nxt]]), caches, pos)[0, -1]
                    pos += 1
        else:
            for _ in range(n_tokens):
                window = seq[-T:]
                logits = model(torch.tensor([window]))[0, -1]
                seq.append(int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)))
        secs = time.perf_counter() - t0
    return n_tokens / secs, "".join(chars[i] for i in seq[1:])


gen_cache, sample = generate(args.gen_tokens, True)
gen_nocache, _ = generate(args.gen_tokens, False)

print(json.dumps({
    "impl": "pytorch", "config": args.config, "matmul_dtype": "bfloat16" if args.autocast == "bf16" else "float32", "torch": torch.__version__, "threads": torch.get_num_threads(),
    "steps": steps, "batch_size": B, "context": T, "params": params, "vocab": V,
    "train_tokens": n_train, "val_tokens": n_val, "val_windows": n_windows,
    "train_seconds": round(train_seconds, 3), "train_cpu_seconds": round(train_cpu, 3),
    "train_tok_s": round(steps * B * T / train_seconds, 1), "train_loss_mean": round(loss_sum / steps, 4),
    "val_loss": round(val_loss, 4), "val_accuracy": round(val_acc, 4), "eval_seconds": round(eval_seconds, 3),
    "gen_tokens": args.gen_tokens, "gen_tok_s_cache": round(gen_cache, 1), "gen_tok_s_nocache": round(gen_nocache, 1),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    "sample": sample[:80],
}))
