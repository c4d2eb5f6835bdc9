#!/usr/bin/python3
"""Turns bench/recommend.sh's per-run JSON lines into the Markdown tables of
bench/out/recommend.md.

Usage: recommend_table.py RUNS.jsonl OUT.md [--epochs E] [--factors K] [--repeats R]
           [--scale-repeats R] [--uptime-start S] [--uptime-end S] [--pin CPUS]
           [--quiet-cpu X] [--seconds S]

ml-100k: medians over all runs of each configuration; where other processes took CPU during
some runs (other_cpu, in CPUs), a second table gives the medians over the quiet runs alone
(other_cpu < --quiet-cpu, default 0.25). Scale: medians per (configuration, size).
"""
import argparse
import json
import os
import statistics

LABEL = {
    "mediaml": "mediaml (MEDIAML_THREADS=2)",
    "mediaml1": "mediaml (MEDIAML_THREADS=1)",
    "default": "PyTorch (a) default settings",
    "omp1": "PyTorch (b) set_num_threads(1), OMP_NUM_THREADS=1",
    "blas1": "PyTorch (c) OPENBLAS_NUM_THREADS=1",
    "sparse1": "PyTorch (d) sparse embeddings + SparseAdam, set_num_threads(1)",
}
KEYS = ("train_int_s", "train_cpu_seconds", "train_interactions", "peak_rss_mib",
        "rss_before_fit_mib", "test_rmse", "load1", "other_cpu")
TARGET = 5.0


def med(rs, k):
    vals = [r[k] for r in rs if r.get(k) is not None]
    return statistics.median(vals) if vals else None


def medians(order, by):
    out = {}
    for n in order:
        rs = by.get(n) or []
        if rs:
            out[n] = {k: med(rs, k) for k in KEYS}
            out[n]["n"] = len(rs)
            # interactions per CPU-second of the training loop (all threads): less sensitive to
            # other processes taking the cores than wall-clock speed
            out[n]["int_cpu_s"] = statistics.median(
                r["train_interactions"] / r["train_cpu_seconds"] for r in rs if r.get("train_cpu_seconds"))
    return out


def fmt(v, f):
    return "" if v is None else format(v, f)


def table(order, m):
    out = ["| configuration | training interactions/s | interactions per CPU-second | peak RSS MiB "
           "| RSS before training MiB | test RMSE | runs | load1 | other procs (CPUs) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in order:
        label = LABEL.get(n, n)
        if n not in m:
            out.append(f"| {label} | n/a | | | | | 0 | | |")
            continue
        x = m[n]
        out.append(f"| {label} | {x['train_int_s']:.0f} | {x['int_cpu_s']:.0f} | {x['peak_rss_mib']:.1f} | "
                   f"{fmt(x['rss_before_fit_mib'], '.1f')} | {fmt(x['test_rmse'], '.4f')} | {x['n']} | "
                   f"{x['load1']:.2f} | {x['other_cpu']:.2f} |")
    return out


def ratios(m):
    mm_names = [n for n in m if n.startswith("mediaml")]
    torch_names = [n for n in m if not n.startswith("mediaml")]
    if not mm_names or not torch_names:
        return ["(no ratios: mediaml or every PyTorch configuration is missing)"]
    bt = max(torch_names, key=lambda n: m[n]["train_int_s"])
    bc = max(torch_names, key=lambda n: m[n]["int_cpu_s"])
    out = ["| mediaml / best PyTorch | ratio | against |", "|---|---:|---|"]
    for n in mm_names:
        x = m[n]
        r = x["train_int_s"] / m[bt]["train_int_s"]
        out.append(f"| {LABEL.get(n, n)}: training interactions/s | **{r:.2f}x** "
                   f"({'meets' if r >= TARGET else 'below'} the {TARGET:.0f}x target) | {LABEL.get(bt, bt)} |")
        out.append(f"| {LABEL.get(n, n)}: interactions per CPU-second | {x['int_cpu_s'] / m[bc]['int_cpu_s']:.2f}x "
                   f"| {LABEL.get(bc, bc)} |")
        out.append(f"| {LABEL.get(n, n)}: peak RSS (lower is better) | "
                   f"{x['peak_rss_mib'] / m[bt]['peak_rss_mib']:.3f}x | {LABEL.get(bt, bt)} |")
    return out


def scale_table(runs):
    sizes, names, by = [], [], {}
    for d in runs:
        if d.get("part") != "scale" or d.get("failed"):
            continue
        if d["size"] not in sizes:
            sizes.append(d["size"])
        if d["name"] not in names:
            names.append(d["name"])
        by.setdefault((d["size"], d["name"]), []).append(d)
    if not sizes:
        return []
    mm_names = [n for n in names if n.startswith("mediaml")]
    L = ["## Scale: one epoch over N synthetic interactions", "",
         "rec_synthetic (mediaml) / numpy (PyTorch) data of the same sizes: users = N / 100, items = "
         "N / 500 (each at least 1000), users uniform, items Zipf(1) by id, ml-100k rating "
         "frequencies; same model and settings as above. Ratio: mediaml's interactions/s over the "
         "row's.", "",
         "| N | users | items | parameters | configuration | training interactions/s "
         "| interactions per CPU-second | peak RSS MiB | RSS before training MiB | mediaml speed ratio | runs "
         "| other procs (CPUs) |",
         "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in sizes:
        mm = by.get((s, mm_names[0]), []) if mm_names else []
        first = True
        for n in names:
            rs = by.get((s, n))
            if not rs:
                continue
            r0 = rs[0]
            head = ([f"{float(s):.0e}".replace("e+0", "e"), str(r0["users"]), str(r0["items"]), str(r0["params"])]
                    if first else ["", "", "", ""])
            first = False
            ips = med(rs, "train_int_s")
            ipc = statistics.median(r["train_interactions"] / r["train_cpu_seconds"] for r in rs)
            ratio = "" if n in mm_names or not mm else f"{med(mm, 'train_int_s') / ips:.2f}x"
            L.append("| " + " | ".join(head + [LABEL.get(n, n), f"{ips:.0f}", f"{ipc:.0f}",
                                              f"{med(rs, 'peak_rss_mib'):.1f}", f"{med(rs, 'rss_before_fit_mib'):.1f}", ratio, str(len(rs)),
                                              f"{med(rs, 'other_cpu'):.2f}"]) + " |")
    L += ["", "Peak RSS includes the data set (mediaml: 12 bytes per interaction as float32 "
          "x/y, plus the generator's 20-byte arrays while converting, which sets mediaml's peak at "
          "1e7; RSS before training is after those are freed; PyTorch: int64 ids and float32 "
          "ratings, 20 bytes per interaction) and, for PyTorch, the ~230 MiB of the imported library. "
          "Dense torch.optim.Adam updates every row of every table at each step, so its cost per "
          "step grows with the number of users and items; SparseAdam's does not.", ""]
    return L


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("md")
    ap.add_argument("--epochs", default="?")
    ap.add_argument("--factors", default="?")
    ap.add_argument("--repeats", default="?")
    ap.add_argument("--scale-repeats", default="?")
    ap.add_argument("--uptime-start", default="")
    ap.add_argument("--uptime-end", default="")
    ap.add_argument("--pin", default="")
    ap.add_argument("--seconds", default="")
    ap.add_argument("--quiet-cpu", type=float, default=0.25)
    a = ap.parse_args()

    runs = [json.loads(l) for l in open(a.runs) if l.strip()]
    main_runs = [d for d in runs if d.get("part", "ml100k") == "ml100k"]
    order, by = [], {}
    for d in main_runs:
        if d["name"] not in by:
            order.append(d["name"])
            by[d["name"]] = []
        if not d.get("failed"):
            by[d["name"]].append(d)
    quiet = {n: [r for r in rs if r.get("other_cpu", 0.0) < a.quiet_cpu] for n, rs in by.items()}

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    torch_v = next((r["torch"] for r in runs if r.get("torch")), "?")
    ref = next((r for r in main_runs if not r.get("failed")), {})

    L = ["# Biased matrix factorization: mediaml vs PyTorch", "",
         "Model (tests/test_functional.c): P[u], Q[i] (K = "
         f"{a.factors}, L2 {ref.get('l2', '?')} per lookup), bu[u], bi[i] embeddings "
         "(uniform(-0.05, 0.05)), Dot(P[u], Q[i]) + bu + bi -> Dense(1) (glorot kernel, zero bias); "
         f"{ref.get('params', '?')} parameters on ml-100k. MSE + the L2 terms; Adam lr 1e-3, eps 1e-7; "
         f"batch 256; shuffled. Training: ml-100k u1.base ({ref.get('train_interactions', 0) // max(ref.get('epochs', 1), 1)} "
         f"ratings) x {a.epochs} epochs (wall time of the training loop alone); test RMSE on u1.test "
         "(20000 ratings). mediaml updates only the embedding rows a step looked up (lazy Adam); "
         "PyTorch (a)-(c) use dense gradients and torch.optim.Adam (every row, every step), (d) "
         "sparse gradients and SparseAdam (lazy, like mediaml). Peak RSS: getrusage ru_maxrss of "
         "the whole process right after training (PyTorch: ~230 MiB of it is the imported "
         f"library). {a.repeats} interleaved runs per configuration, each a fresh process.", "",
         f"Machine: {os.cpu_count()} CPUs ({cpu}){', pinned ' + a.pin if a.pin else ''}; "
         f"PyTorch {torch_v}."]
    if a.uptime_start:
        L.append(f"Load at start: `{a.uptime_start.strip()}`; at end: `{a.uptime_end.strip()}`"
                 + (f" ({a.seconds} s in all)." if a.seconds else "."))
    L += ["", "## ml-100k u1 (medians of all runs)", ""]
    med_all = medians(order, by)
    L += table(order, med_all) + [""] + ratios(med_all) + [""]

    contended = sum(1 for rs in by.values() for r in rs if r.get("other_cpu", 0.0) >= a.quiet_cpu)
    if contended:
        L += [f"## ml-100k u1, quiet runs only (other processes < {a.quiet_cpu} CPUs during the run; "
              f"{contended} contended run(s) left out)", ""]
        med_q = medians(order, quiet)
        if med_q:
            L += table(order, med_q) + [""] + ratios(med_q) + [""]
        else:
            L += ["(none: every run had other processes busy)", ""]

    L += scale_table(runs)

    L += ["## Per run", "",
          "training interactions/s (other procs in CPUs), in run order:", ""]
    for n in order:
        cells = [f"{r['train_int_s']:.0f} ({r.get('other_cpu', 0):.2f})" if not r.get("failed") else "failed"
                 for r in main_runs if r["name"] == n]
        L.append(f"- {LABEL.get(n, n)}: " + "; ".join(cells))
    sc = [r for r in runs if r.get("part") == "scale"]
    if sc:
        L.append("- scale: " + "; ".join(
            f"{r['name']} {r['size']}: " + ("failed" if r.get("failed") else
                                            f"{r['train_int_s']:.0f} ({r.get('other_cpu', 0):.2f})")
            for r in sc))
    L += ["",
          "load1: 1-minute load average just before the run. other procs: CPU-seconds per second "
          "used by other processes during the run (busy time in /proc/stat minus the run's own "
          f"CPU time), out of {os.cpu_count()} CPUs. Interactions per CPU-second: training "
          "interactions / user+system CPU time of the training loop (all threads; OpenMP spinning "
          "counts), a measure that other processes on the machine disturb less than wall-clock "
          "speed. Best PyTorch = the configuration with the highest median training "
          "interactions/s (per CPU-second: chosen separately); memory compares with the "
          "best-speed configuration's RSS."]
    text = "\n".join(L) + "\n"
    with open(a.md, "w") as f:
        f.write(text)
    print(text, end="")
    print(f"(written to {a.md}; per-run JSON in {a.runs})")


if __name__ == "__main__":
    main()
