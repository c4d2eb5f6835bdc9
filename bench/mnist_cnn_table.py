#!/usr/bin/python3
"""Turns bench/run.sh's per-run JSON lines into the Markdown table of bench/out/mnist_cnn.md.

Usage: mnist_cnn_table.py RUNS.jsonl OUT.md [--images N] [--epochs E] [--repeats R]
           [--uptime-start S] [--uptime-end S] [--pin CPUS] [--quiet-cpu X]

Medians over all runs of each configuration; where other processes took CPU during some runs
(other_cpu, in CPUs), a second table gives the medians over the quiet runs alone
(other_cpu < --quiet-cpu, default 0.25).
"""
import argparse
import json
import os
import statistics

LABEL = {
    "mediaml": "mediaml (MEDIAML_THREADS=2)",
    "default": "PyTorch (a) default settings",
    "blas1": "PyTorch (b) OPENBLAS_NUM_THREADS=1",
    "omp1": "PyTorch (c) set_num_threads(1), OMP_NUM_THREADS=1",
    "t2blas1": "PyTorch (d) set_num_threads(2), OPENBLAS_NUM_THREADS=1",
}
KEYS = ("train_img_s", "infer_img_s", "peak_rss_mib", "test_accuracy", "load1", "other_cpu")


def medians(order, by):
    med = {}
    for n in order:
        rs = by.get(n) or []
        if rs:
            med[n] = {k: statistics.median(r.get(k, 0.0) for r in rs) for k in KEYS}
            med[n]["n"] = len(rs)
    return med


def table(order, med):
    out = ["| configuration | training img/s | inference img/s | peak RSS MiB | test accuracy "
           "| runs | load1 | other procs (CPUs) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n in order:
        label = LABEL.get(n, n)
        if n not in med:
            out.append(f"| {label} | n/a | | | | 0 | | |")
            continue
        m = med[n]
        out.append(f"| {label} | {m['train_img_s']:.0f} | {m['infer_img_s']:.0f} | "
                   f"{m['peak_rss_mib']:.1f} | {m['test_accuracy']:.4f} | {m['n']} | "
                   f"{m['load1']:.2f} | {m['other_cpu']:.2f} |")
    return out


def ratios(med):
    torch_names = [n for n in med if n != "mediaml"]
    if "mediaml" not in med or not torch_names:
        return ["(no ratios: mediaml or every PyTorch configuration is missing)"]
    mm = med["mediaml"]
    bt = max(torch_names, key=lambda n: med[n]["train_img_s"])
    bi = max(torch_names, key=lambda n: med[n]["infer_img_s"])
    return ["| mediaml / best PyTorch | ratio | against |",
            "|---|---:|---|",
            f"| training img/s | {mm['train_img_s'] / med[bt]['train_img_s']:.2f}x | {LABEL.get(bt, bt)} |",
            f"| inference img/s | {mm['infer_img_s'] / med[bi]['infer_img_s']:.2f}x | {LABEL.get(bi, bi)} |",
            f"| peak RSS (lower is better) | {mm['peak_rss_mib'] / med[bt]['peak_rss_mib']:.2f}x | {LABEL.get(bt, bt)} |"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("md")
    ap.add_argument("--images", default="?")
    ap.add_argument("--epochs", default="?")
    ap.add_argument("--repeats", default="?")
    ap.add_argument("--uptime-start", default="")
    ap.add_argument("--uptime-end", default="")
    ap.add_argument("--pin", default="")
    ap.add_argument("--quiet-cpu", type=float, default=0.25)
    a = ap.parse_args()

    runs = [json.loads(l) for l in open(a.runs) if l.strip()]
    order, by = [], {}
    for d in runs:
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
    torch_v = next((r["torch"] for rs in by.values() for r in rs if r.get("torch")), "?")

    L = ["# MNIST CNN: mediaml vs PyTorch", "",
         "Keras MNIST CNN (Conv2D 32 3x3 relu, MaxPool 2x2, Flatten, Dense 10 softmax), Adam "
         "lr 1e-3 eps 1e-7, sparse categorical cross-entropy, batch 32, inputs / 255, "
         f"glorot-uniform kernels / zero biases. Training: {a.images} images x {a.epochs} "
         "epoch(s), shuffled (wall time of the training loop alone); inference: the 10000 test "
         "images, batch 32 (median of 3 passes). Peak RSS: getrusage ru_maxrss of the whole "
         f"process (data sets as float32 included). {a.repeats} interleaved runs per "
         "configuration, each a fresh process.", "",
         f"Machine: {os.cpu_count()} CPUs ({cpu}){', pinned ' + a.pin if a.pin else ''}; "
         f"PyTorch {torch_v}."]
    if a.uptime_start:
        L.append(f"Load at start: `{a.uptime_start.strip()}`; at end: `{a.uptime_end.strip()}`.")
    L += ["", "## All runs (medians)", ""]
    med_all = medians(order, by)
    L += table(order, med_all) + [""] + ratios(med_all) + [""]

    contended = sum(1 for rs in by.values() for r in rs if r.get("other_cpu", 0.0) >= a.quiet_cpu)
    if contended:
        L += [f"## Quiet runs only (other processes < {a.quiet_cpu} CPUs during the run; "
              f"{contended} contended run(s) left out)", ""]
        med_q = medians(order, quiet)
        L += table(order, med_q) + [""] + ratios(med_q) + [""]

    L += ["## Per run", "",
          "training img/s / inference img/s (other procs in CPUs), in run order:", ""]
    for n in order:
        cells = [f"{r['train_img_s']:.0f} / {r['infer_img_s']:.0f} ({r.get('other_cpu', 0):.2f})"
                 if not r.get("failed") else "failed"
                 for r in runs if r["name"] == n]
        L.append(f"- {LABEL.get(n, n)}: " + "; ".join(cells))
    L += ["",
          "load1: 1-minute load average just before the run. other procs: CPU-seconds per second "
          "used by other processes during the run (busy time in /proc/stat minus the run's own "
          f"CPU time), out of {os.cpu_count()} CPUs. Best PyTorch = the configuration with the "
          "highest median training img/s (inference best chosen separately); memory compares "
          "with the best-training configuration's RSS."]
    text = "\n".join(L) + "\n"
    with open(a.md, "w") as f:
        f.write(text)
    print(text, end="")
    print(f"(written to {a.md}; per-run JSON in {a.runs})")


if __name__ == "__main__":
    main()
