#!/usr/bin/python3
"""Side-by-side benchmark, PyTorch half: the biased matrix factorization of
bench/recommend_mf_bench.c (tests/test_functional.c's model) in PyTorch.

    pred = w * (<P[u], Q[i]> + bu[u] + bi[i]) + b       (w, b: nn.Linear(1, 1), the "global
                                                          bias" Dense(1) of the mediaml model)
    loss = MSE(pred, rating) + l2 * (|P[u]|^2 + |Q[i]|^2) summed over the batch's lookups
    P, Q, bu, bi: nn.Embedding, init uniform(-0.05, 0.05) (Keras's Embedding); Linear: xavier
    uniform weight, zero bias (Keras's Dense); Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-7);
    batch 256; shuffled each epoch (torch.randperm).

--optim adam (default): dense gradients and torch.optim.Adam, which updates every row of
every table at every step. --optim sparse: nn.Embedding(sparse=True) and torch.optim.SparseAdam
for the tables (lazy Adam over the rows a step looked up, as mediaml's sparse row updates),
Adam for the Linear layer.

MovieLens mode (default): ml-100k u1.base for --epochs epochs (default 10), test RMSE on
u1.test (ids are the files' 1-based ids; tables sized by the largest id in either file).
Synthetic mode (--synthetic N): N interactions generated with numpy, sized like
rec_synthetic (users = N / 100, items = N / 500, each at least 1000; users uniform, items
Zipf(1) by id, ratings 1..5 with ml-100k's frequencies), --epochs epochs (default 1).

Prints one JSON line with training interactions/s (wall time of the training loop alone),
peak RSS (resource.getrusage, taken right after training), RSS just before training
(/proc/self/statm) and the test RMSE, like bench/recommend_mf_bench.c. Threads: --threads N
calls torch.set_num_threads(N); OMP_NUM_THREADS / OPENBLAS_NUM_THREADS are taken as the
caller set them.

Usage: /usr/bin/python3 bench/recommend_mf_torch.py [--data DIR] [--synthetic N] [--epochs E]
           [--batch B] [--factors K] [--l2 L] [--threads T] [--seed S] [--optim adam|sparse]
           [--config NAME]
"""
import argparse
import json
import math
import os
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ml-100k rating frequencies for 1..5 (the same table as apps/recommend/synthetic.c)
RATING_FREQ = np.array([0.06110, 0.11370, 0.27145, 0.34174, 0.21201])


def rss_now_mib():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def read_split(path):
    """u1.base / u1.test: user TAB item TAB rating TAB timestamp -> (users, items, ratings)."""
    a = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2))
    return a[:, 0], a[:, 1], a[:, 2].astype(np.float32)


def synthetic(n, seed):
    users = max(n // 100, 1000)
    items = max(n // 500, 1000)
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, items + 1, dtype=np.float64)   # Zipf(1) by id, item 0 most popular
    p /= p.sum()
    u = rng.integers(0, users, size=n, dtype=np.int64)
    i = rng.choice(items, size=n, p=p).astype(np.int64)
    r = (rng.choice(5, size=n, p=RATING_FREQ / RATING_FREQ.sum()) + 1).astype(np.float32)
    return users, items, u, i, r


class BiasedMF(nn.Module):
    def __init__(self, users, items, k, sparse):
        super().__init__()
        self.p = nn.Embedding(users, k, sparse=sparse)
        self.q = nn.Embedding(items, k, sparse=sparse)
        self.bu = nn.Embedding(users, 1, sparse=sparse)
        self.bi = nn.Embedding(items, 1, sparse=sparse)
        self.global_bias = nn.Linear(1, 1)
        for e in (self.p, self.q, self.bu, self.bi):   # Keras Embedding: RandomUniform(-0.05, 0.05)
            nn.init.uniform_(e.weight, -0.05, 0.05)
        nn.init.xavier_uniform_(self.global_bias.weight)  # Keras Dense: glorot uniform, zeros
        nn.init.zeros_(self.global_bias.bias)

    def forward(self, u, i):
        pu, qi = self.p(u), self.q(i)
        s = (pu * qi).sum(1, keepdim=True) + self.bu(u) + self.bi(i)
        return self.global_bias(s).squeeze(1), pu, qi


def main():
    default_data = os.path.join(os.environ.get("MEDIAML_DATA") or "../shared/data", "movielens-100k")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data)
    ap.add_argument("--synthetic", type=float, default=0, help="N synthetic interactions (e.g. 1e6)")
    ap.add_argument("--epochs", type=int, default=0, help="default 10 (ml-100k), 1 (synthetic)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads(N); 0 leaves torch's default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--optim", choices=("adam", "sparse"), default="adam")
    ap.add_argument("--config", default="", help="label echoed in the JSON line")
    a = ap.parse_args()
    n_syn = int(a.synthetic)
    epochs = a.epochs or (1 if n_syn else 10)

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    t_load = time.perf_counter()
    if n_syn:
        users, items, u_tr, i_tr, r_tr = synthetic(n_syn, a.seed)
        u_te = i_te = r_te = None
    else:
        u_tr, i_tr, r_tr = read_split(os.path.join(a.data, "u1.base"))
        u_te, i_te, r_te = read_split(os.path.join(a.data, "u1.test"))
        users = int(max(u_tr.max(), u_te.max()))    # ids 1..max; row 0 unused
        items = int(max(i_tr.max(), i_te.max()))
        u_tr, i_tr, u_te, i_te = u_tr - 1, i_tr - 1, u_te - 1, i_te - 1
    u_tr, i_tr, r_tr = torch.from_numpy(u_tr), torch.from_numpy(i_tr), torch.from_numpy(r_tr)
    t_load = time.perf_counter() - t_load
    n = u_tr.shape[0]

    sparse = a.optim == "sparse"
    model = BiasedMF(users, items, a.factors, sparse)
    params = sum(p.numel() for p in model.parameters())
    if sparse:
        tables = [model.p.weight, model.q.weight, model.bu.weight, model.bi.weight]
        opts = [torch.optim.SparseAdam(tables, lr=1e-3, betas=(0.9, 0.999), eps=1e-7),
                torch.optim.Adam(model.global_bias.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)]
    else:
        opts = [torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)]
    l2 = a.l2
    rss_before = rss_now_mib()

    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        loss_sum.zero_()
        perm = torch.randperm(n)
        for s in range(0, n, a.batch):
            idx = perm[s:s + a.batch]
            u, i, r = u_tr[idx], i_tr[idx], r_tr[idx]
            pred, pu, qi = model(u, i)
            loss = F.mse_loss(pred, r) + l2 * (pu.pow(2).sum() + qi.pow(2).sum())
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in opts:
                o.step()
            with torch.no_grad():   # running loss, as Keras's progress reports
                loss_sum += loss.detach() * r.shape[0]
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    ru = resource.getrusage(resource.RUSAGE_SELF)

    rmse = None
    if u_te is not None:
        model.eval()
        with torch.no_grad():
            pred, _, _ = model(torch.from_numpy(u_te), torch.from_numpy(i_te))
            err = pred.double() - torch.from_numpy(r_te).double()
            rmse = math.sqrt(err.pow(2).mean().item())

    print(json.dumps({
        "impl": "pytorch",
        "config": a.config or f"threads={torch.get_num_threads()}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "optim": a.optim,
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                if k in os.environ},
        "mode": "synthetic" if n_syn else "ml-100k/u1",
        "users": users, "items": items, "factors": a.factors, "l2": l2, "params": params,
        "train_interactions": n * epochs,
        "epochs": epochs,
        "batch": a.batch,
        "load_seconds": round(t_load, 3),
        "train_seconds": round(train_s, 4),
        "train_cpu_seconds": round(train_cpu, 4),
        "train_int_s": round(n * epochs / train_s, 1),
        "rss_before_fit_mib": round(rss_before, 1),
        "peak_rss_mib": round(ru.ru_maxrss / 1024.0, 1),   # KiB on Linux
        "train_loss": round(loss_sum.item() / n, 4),
        "test_rmse": None if rmse is None else round(rmse, 4),
        "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 3),
    }))


if __name__ == "__main__":
    main()
