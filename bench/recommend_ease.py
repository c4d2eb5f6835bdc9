#!/usr/bin/python3
"""EASE (Steck 2019, closed-form linear item-item model) on MovieLens-100k under the NCF
protocol of bench/recommend_neumf_torch.py (same split, same evaluation code): a strong
non-neural baseline, to tell how far HR@10 / NDCG@10 can go on this split at all.

B = I - P / diag(P) with P = (X^T X + lambda I)^-1 (diagonal forced to 0); score = X B.
lambda is swept and each value reported with its HR/NDCG on the test cases: the best row is
model selection on the test set (an upper estimate, not a fair figure).

Usage: /usr/bin/python3 bench/recommend_ease.py [--data DIR] [--eval-seed 42]
           [--lambdas 100,200,400,800,1600]
"""
import argparse
import importlib.util
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("neumf_ref", os.path.join(HERE, "recommend_neumf_torch.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=os.path.join(os.environ.get("MEDIAML_DATA", "../shared/data"), "movielens-100k"))
    p.add_argument("--eval-seed", type=int, default=42)
    p.add_argument("--lambdas", default="100,200,400,800,1600")
    a = p.parse_args()
    u, i, ts, nu, ni = ref.load(os.path.join(a.data, "u.data"))
    train, test = ref.leave_one_out(u, i, ts, nu)
    cases = ref.ncf_cases(train, test, nu, ni, 99, a.eval_seed)
    x = np.zeros((nu, ni))
    x[train[0], train[1]] = 1
    gram = x.T @ x
    counts = x.sum(0)
    pop = ref.ncf_eval(lambda us, its: counts[its], cases)
    rows = []
    for lam in (float(v) for v in a.lambdas.split(",")):
        pinv = np.linalg.inv(gram + lam * np.eye(ni))
        b = -pinv / np.diag(pinv)
        np.fill_diagonal(b, 0)
        s = x @ b
        hr, ndcg = ref.ncf_eval(lambda us, its: s[us, its], cases)
        rows.append({"lambda": lam, "hr": round(hr, 4), "ndcg": round(ndcg, 4)})
        print(f"EASE lambda {lam:g}: HR@10 {hr:.4f} NDCG@10 {ndcg:.4f}", flush=True)
    print(json.dumps({"model": "ease", "eval_seed": a.eval_seed, "popularity_hr": round(pop[0], 4),
                      "popularity_ndcg": round(pop[1], 4), "sweep": rows}))


if __name__ == "__main__":
    main()
