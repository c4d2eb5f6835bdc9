"""Kim's CNN on rt-polarity in PyTorch, the same network and settings as
`mediaml sentiment train --model cnn`: Embedding(V+2, 128) (ids 0 padding, 1 unknown), Conv1D
widths 3, 4, 5 x 100 filters with ReLU, max over time, concatenation, Dropout(0.5), Dense(2)
softmax; Adam 1e-3 (eps 1e-7, as Keras) with cosine decay to 0 over the run; batch 50;
shuffled; inputs padded to MAX_LEN. Tokens: the data's own whitespace tokens, lower-cased.
Prints one JSON line per epoch ({"epoch":..,"seconds":..}) and a summary with the median.

    python3 bench/sentiment_cnn_torch.py DATA_DIR [--epochs E] [--max-len T] [--threads N]
"""
import argparse, json, math, random, time

import torch
import torch.nn as nn


def load(d):
    texts, labels = [], []
    for lab, name in ((0, "neg"), (1, "pos")):
        with open(f"{d}/rt-polarity.utf8.{name}", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    texts.append(line.lower().split())
                    labels.append(lab)
    return texts, labels


class KimCNN(nn.Module):
    def __init__(self, rows, dim=128, filters=100, widths=(3, 4, 5), classes=2, dropout=0.5):
        super().__init__()
        self.emb = nn.Embedding(rows, dim)
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, w) for w in widths)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(filters * len(widths), classes)

    def forward(self, x):
        e = self.emb(x).transpose(1, 2)  # [B, C, T]
        h = torch.cat([torch.relu(c(e)).amax(dim=2) for c in self.convs], dim=1)
        return self.out(self.drop(h))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=0, help="0: the longest text, at most 100")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    texts, labels = load(a.data)
    vocab = {}
    for t in texts:
        for w in t:
            vocab.setdefault(w, len(vocab) + 2)
    T = a.max_len or min(100, max(len(t) for t in texts))
    x = torch.zeros(len(texts), T, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = [vocab[w] for w in t[:T]]
        x[i, : len(ids)] = torch.tensor(ids)
    y = torch.tensor(labels)
    model = KimCNN(len(vocab) + 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    B = 50
    steps = a.epochs * math.ceil(len(texts) / B)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    loss_fn = nn.CrossEntropyLoss()
    secs = []
    for ep in range(a.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(texts))
        model.train()
        total = 0.0
        for s in range(0, len(texts), B):
            idx = perm[s : s + B]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        secs.append(time.perf_counter() - t0)
        print(json.dumps({"epoch": ep + 1, "loss": total / len(texts), "seconds": secs[-1]}), flush=True)
    med = sorted(secs)[len(secs) // 2]
    print(json.dumps({"framework": "pytorch", "threads": a.threads, "examples": len(texts), "max_len": T,
                      "median_epoch_seconds": med}), flush=True)


if __name__ == "__main__":
    main()
