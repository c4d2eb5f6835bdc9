#!/usr/bin/python3
"""PyTorch NeuMF reference on MovieLens-100k under the NCF protocol: what a standard
implementation reaches on this data, to compare with `mediaml recommend train --model neumf`.

Protocol (the same rules as apps/recommend, README "Recommendation"):
  * u.data; each user's latest interaction (largest timestamp; equal timestamps: the later
    line of the file) is the test item, the rest are training positives (every rating counts
    as an interaction);
  * test: the test item and 99 items the user never interacted with (training or test),
    drawn uniformly without replacement with a fixed seed (--eval-seed); the draws are this
    script's own (numpy), not mediaml's, so popularity is reported on both for comparison;
  * rank = number of the 99 negatives scoring >= the test item (ties count against the
    model, as heapq.nlargest in He et al.'s evaluate.py, where the test item comes last);
    HR@10 = mean(rank < 10), NDCG@10 = mean(1 / log2(rank + 2)) over hits.
Training (He et al. 2017 / the common PyTorch ports): every training positive with
--negatives items drawn uniformly among those the user has no *training* interaction with,
fresh each epoch; binary cross-entropy; Adam (dense: every row of every table moves every
step); batch 256; embeddings normal(0, 0.01); MLP Linear xavier_uniform, prediction Linear
kaiming_uniform (a=1, sigmoid), biases zero.

Model: GMF = P_g[u] * Q_g[i] (--factors), MLP = relu tower over [P_m[u]; Q_m[i]]
(--layers, first entry = concatenated embedding size), prediction = sigmoid(W [GMF; MLP] + b).
--model gmf / mlp trains one branch alone; --pretrain E trains GMF and MLP for E epochs each
first and starts NeuMF from them (prediction layer = [0.5 h_gmf; 0.5 h_mlp], as the paper,
then Adam on NeuMF as the common ports do: --neumf-optim sgd gives the paper's plain SGD).

Prints per-epoch HR/NDCG and one final JSON line: the last epoch's figures (the fixed
training length, which is what mediaml reports) and, for reference only, the best epoch's
(model selection on the test set, as the NCF code prints; not a fair figure).

Usage: /usr/bin/python3 bench/recommend_neumf_torch.py [--data DIR] [--epochs 20]
         [--factors 8] [--layers 64,32,16,8] [--negatives 4] [--lr 1e-3] [--batch 256]
         [--l2 0] [--seed 0] [--eval-seed 42] [--threads 1] [--model neumf|gmf|mlp]
         [--pretrain 0]
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn


def load(path):
    a = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 3))
    users, u = np.unique(a[:, 0], return_inverse=True)
    items, i = np.unique(a[:, 1], return_inverse=True)
    return u, i, a[:, 2], len(users), len(items)


def leave_one_out(u, i, ts, nu):
    best = np.full(nu, -1)
    for k in range(len(u)):  # ties: the later line wins
        b = best[u[k]]
        if b < 0 or ts[k] >= ts[b]:
            best[u[k]] = k
    test = np.zeros(len(u), dtype=bool)
    test[best] = True
    return (u[~test], i[~test]), (u[best], i[best])


def ncf_cases(train, test, nu, ni, n_neg, seed):
    seen = [set() for _ in range(nu)]
    for a, b in zip(*train):
        seen[a].add(b)
    for a, b in zip(*test):
        seen[a].add(b)
    rng = np.random.default_rng(seed)
    neg = np.zeros((len(test[0]), n_neg), dtype=np.int64)
    for c, a in enumerate(test[0]):
        cand = np.array([x for x in range(ni) if x not in seen[a]])
        neg[c] = rng.choice(cand, n_neg, replace=False)
    return test[0], test[1], neg


def ncf_eval(score, cases, k=10):
    users, pos, neg = cases
    items = np.concatenate([pos[:, None], neg], axis=1)
    s = score(np.repeat(users, items.shape[1]), items.reshape(-1)).reshape(items.shape)
    rank = (s[:, 1:] >= s[:, :1]).sum(axis=1)
    hit = rank < k
    return float(hit.mean()), float((hit / np.log2(rank + 2.0)).mean())


class NCF(nn.Module):
    def __init__(self, nu, ni, factors, layers, which):
        super().__init__()
        self.which = which
        width = 0
        if which in ("gmf", "neumf"):
            self.pg, self.qg = nn.Embedding(nu, factors), nn.Embedding(ni, factors)
            width += factors
        if which in ("mlp", "neumf"):
            self.pm, self.qm = nn.Embedding(nu, layers[0] // 2), nn.Embedding(ni, layers[0] // 2)
            self.tower = nn.ModuleList(nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:]))
            width += layers[-1]
        self.pred = nn.Linear(width, 1)
        for e in (m for m in self.modules() if isinstance(m, nn.Embedding)):
            nn.init.normal_(e.weight, std=0.01)
        if which in ("mlp", "neumf"):
            for lin in self.tower:
                nn.init.xavier_uniform_(lin.weight)
                nn.init.zeros_(lin.bias)
        nn.init.kaiming_uniform_(self.pred.weight, a=1, nonlinearity="sigmoid")
        nn.init.zeros_(self.pred.bias)

    def forward(self, u, i):
        parts = []
        if self.which in ("gmf", "neumf"):
            parts.append(self.pg(u) * self.qg(i))
        if self.which in ("mlp", "neumf"):
            h = torch.cat([self.pm(u), self.qm(i)], dim=1)
            for lin in self.tower:
                h = torch.relu(lin(h))
            parts.append(h)
        return self.pred(torch.cat(parts, dim=1)).squeeze(1)


def train(model, train_pos, seen, ni, args, epochs, lr, cases, tag, optim="adam"):
    rng = np.random.default_rng(args.seed + hash(tag) % 1000)
    opt = (torch.optim.Adam(model.parameters(), lr=lr, weight_decay=args.l2) if optim == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr, weight_decay=args.l2))
    lossf = nn.BCEWithLogitsLoss()
    tu, ti = train_pos
    history = []
    for ep in range(epochs):
        t0 = time.time()
        model.train()
        nneg = args.negatives
        nu_ = np.repeat(tu, nneg)
        ni_ = rng.integers(0, ni, len(nu_))
        for k in range(len(nu_)):  # rejection: items the user has no training interaction with
            while ni_[k] in seen[nu_[k]]:
                ni_[k] = rng.integers(0, ni)
        u = np.concatenate([tu, nu_])
        i = np.concatenate([ti, ni_])
        y = np.concatenate([np.ones(len(tu)), np.zeros(len(nu_))]).astype(np.float32)
        perm = rng.permutation(len(u))
        u, i, y = (torch.from_numpy(a[perm]) for a in (u, i, y))
        total = 0.0
        for b in range(0, len(u), args.batch):
            opt.zero_grad()
            loss = lossf(model(u[b:b + args.batch], i[b:b + args.batch]), y[b:b + args.batch])
            loss.backward()
            opt.step()
            total += loss.item() * len(y[b:b + args.batch])
        model.eval()
        with torch.no_grad():
            hr, ndcg = ncf_eval(lambda a, b: model(torch.from_numpy(a), torch.from_numpy(b)).numpy(), cases)
        history.append((hr, ndcg))
        print(f"{tag} epoch {ep + 1}/{epochs} loss {total / len(u):.4f} HR@10 {hr:.4f} NDCG@10 {ndcg:.4f} "
              f"({time.time() - t0:.1f} s)", flush=True)
    return history


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=os.path.join(os.environ.get("MEDIAML_DATA", "../shared/data"), "movielens-100k"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--factors", type=int, default=8)
    p.add_argument("--layers", default="64,32,16,8")
    p.add_argument("--negatives", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--l2", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", default="neumf", choices=["neumf", "gmf", "mlp"])
    p.add_argument("--pretrain", type=int, default=0)
    p.add_argument("--neumf-optim", default="adam", choices=["adam", "sgd"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    layers = [int(x) for x in args.layers.split(",")]

    u, i, ts, nu, ni = load(os.path.join(args.data, "u.data"))
    train_pos, test = leave_one_out(u, i, ts, nu)
    seen = [set() for _ in range(nu)]
    for a, b in zip(*train_pos):
        seen[a].add(b)
    cases = ncf_cases(train_pos, test, nu, ni, 99, args.eval_seed)
    counts = np.bincount(train_pos[1], minlength=ni).astype(np.float32)
    pop = ncf_eval(lambda a, b: counts[b], cases)
    print(f"popularity HR@10 {pop[0]:.4f} NDCG@10 {pop[1]:.4f}", flush=True)

    if args.pretrain > 0 and args.model == "neumf":
        g = NCF(nu, ni, args.factors, layers, "gmf")
        train(g, train_pos, seen, ni, args, args.pretrain, args.lr, cases, "gmf")
        m = NCF(nu, ni, args.factors, layers, "mlp")
        train(m, train_pos, seen, ni, args, args.pretrain, args.lr, cases, "mlp")
        model = NCF(nu, ni, args.factors, layers, "neumf")
        with torch.no_grad():
            for name in ("pg", "qg"):
                getattr(model, name).weight.copy_(getattr(g, name).weight)
            for name in ("pm", "qm"):
                getattr(model, name).weight.copy_(getattr(m, name).weight)
            for a, b in zip(model.tower, m.tower):
                a.weight.copy_(b.weight)
                a.bias.copy_(b.bias)
            model.pred.weight.copy_(torch.cat([0.5 * g.pred.weight, 0.5 * m.pred.weight], dim=1))
            model.pred.bias.copy_(0.5 * (g.pred.bias + m.pred.bias))
    else:
        model = NCF(nu, ni, args.factors, layers, args.model)
    t0 = time.time()
    hist = train(model, train_pos, seen, ni, args, args.epochs, args.lr, cases, args.model, args.neumf_optim)
    best = max(range(len(hist)), key=lambda k: hist[k][0])
    print(json.dumps({"impl": "pytorch", "model": args.model, "factors": args.factors, "layers": layers,
                      "negatives": args.negatives, "lr": args.lr, "batch": args.batch, "l2": args.l2,
                      "epochs": args.epochs, "pretrain": args.pretrain, "seed": args.seed,
                      "eval_seed": args.eval_seed, "popularity_hr": round(pop[0], 4),
                      "popularity_ndcg": round(pop[1], 4), "hr": round(hist[-1][0], 4),
                      "ndcg": round(hist[-1][1], 4), "best_epoch": best + 1,
                      "best_hr": round(hist[best][0], 4), "best_ndcg": round(hist[best][1], 4),
                      "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
