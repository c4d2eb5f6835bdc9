#!/usr/bin/python3
"""Markdown table for bench/textgen.sh: medians per configuration of the runs in a JSONL file.

    textgen_table.py RUNS.jsonl OUT.md [--steps N] [--gen-tokens N] [--val-windows N] [--repeats N]
                     [--uptime-start S] [--uptime-end S] [--pin S] [--seconds N]
"""
import argparse
import json
import statistics

p = argparse.ArgumentParser()
p.add_argument("runs")
p.add_argument("out")
p.add_argument("--steps", type=int, default=0)
p.add_argument("--gen-tokens", type=int, default=0)
p.add_argument("--val-windows", type=int, default=0)
p.add_argument("--repeats", type=int, default=1)
p.add_argument("--uptime-start", default="")
p.add_argument("--uptime-end", default="")
p.add_argument("--pin", default="")
p.add_argument("--seconds", type=int, default=0)
a = p.parse_args()

runs = [json.loads(l) for l in open(a.runs) if l.strip()]
order = ["mediaml", "mediaml1", "bf16", "default", "blas1", "omp1", "t2blas1", "passive", "torch_bf16", "torch_bf16t2"]
label = {
    "mediaml": "mediaml (MEDIAML_THREADS=2)",
    "mediaml1": "mediaml (MEDIAML_THREADS=1)",
    "default": "PyTorch default",
    "blas1": "PyTorch OPENBLAS_NUM_THREADS=1",
    "omp1": "PyTorch set_num_threads(1)",
    "t2blas1": "PyTorch set_num_threads(2) + OPENBLAS 1",
    "passive": "PyTorch OMP_WAIT_POLICY=PASSIVE",
    "bf16": "mediaml --matmul-precision medium (MEDIAML_THREADS=2)",
    "torch_bf16": "PyTorch autocast bf16",
    "torch_bf16t2": "PyTorch autocast bf16, set_num_threads(2) + PASSIVE",
}
by = {}
for r in runs:
    if not r.get("failed"):
        # both sides have a "bf16" configuration: PyTorch's are torch_bf16*
        name = r["name"] if r.get("impl") == "mediaml" or not r["name"].startswith("bf16") else "torch_" + r["name"]
        by.setdefault(name, []).append(r)


def med(rs, key):
    v = [r[key] for r in rs if isinstance(r.get(key), (int, float))]
    return statistics.median(v) if v else None


def fmt(v, f):
    return "-" if v is None else f % v


names = [n for n in order if n in by] + sorted(n for n in by if n not in order)
mm_names = [n for n in names if by[n][0].get("impl") == "mediaml"]
torch_names = [n for n in names if n not in mm_names]


def dtype(n):
    return by[n][0].get("matmul_dtype", "float32")


def fastest(ns):
    return max(ns, key=lambda n: med(by[n], "train_tok_s") or 0) if ns else None


best = fastest(torch_names)
lines = [
    "# Char-level GPT on Tiny Shakespeare: mediaml vs PyTorch",
    "",
    "4 layers, 4 heads, width 128, context 128, batch 32, AdamW 1e-3 (wd 0.01, eps 1e-7), clip 1, warm-up + cosine;"
    " %d steps; validation on %s windows of the last 10%%; generation of %d tokens from a newline."
    % (a.steps, a.val_windows or "all 871", a.gen_tokens),
    "Medians of %d run(s) per configuration. Pinned: %s. Total %d s." % (a.repeats, a.pin or "no", a.seconds),
    "",
    "| configuration | train tok/s | train tok per CPU-s | val loss | val acc | peak RSS MiB | gen tok/s (KV cache) | gen tok/s (no cache) | load1 | other CPUs |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for r in runs:
    # PyTorch: CPU time of its training loop; mediaml: CPU time of the whole training process
    # (loading, one validation pass and the checkpoint included: a slight underestimate).
    cpu = r.get("train_cpu_seconds") or r.get("process_cpu_seconds")
    if cpu and r.get("steps") and r.get("train_tok_s"):
        r["tok_per_cpu_s"] = r["train_tok_s"] * r["train_seconds"] / cpu if r.get("train_seconds") else None
for n in names:
    rs = by[n]
    tag = " (best PyTorch)" if n == best and len(torch_names) > 1 else ""
    lines.append("| %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        label.get(n, n), tag, fmt(med(rs, "train_tok_s"), "%.0f"), fmt(med(rs, "tok_per_cpu_s"), "%.0f"),
        fmt(med(rs, "val_loss"), "%.4f"),
        fmt(med(rs, "val_accuracy"), "%.4f"), fmt(med(rs, "peak_rss_mib"), "%.0f"),
        fmt(med(rs, "gen_tok_s_cache"), "%.0f"), fmt(med(rs, "gen_tok_s_nocache"), "%.0f"),
        fmt(med(rs, "load1"), "%.2f"), fmt(med(rs, "other_cpu"), "%.2f")))
# training speed ratios: each matmul precision against PyTorch's best in it, then the fastest
# of each side whatever the precision
lines.append("")
for dt in ("float32", "bfloat16"):
    mb = fastest([n for n in mm_names if dtype(n) == dt])
    tb = fastest([n for n in torch_names if dtype(n) == dt])
    if mb and tb and med(by[mb], "train_tok_s") and med(by[tb], "train_tok_s"):
        lines.append("%s matmuls: best mediaml (%s) / best PyTorch (%s) training speed: %.2fx" % (
            dt, mb, tb, med(by[mb], "train_tok_s") / med(by[tb], "train_tok_s")))
mm_best = fastest(mm_names)
if mm_best and best:
    m, t = med(by[mm_best], "train_tok_s"), med(by[best], "train_tok_s")
    if m and t:
        lines.append("any precision: best mediaml (%s) / best PyTorch (%s) training speed: %.2fx" % (mm_best, best, m / t))
lines += ["", "start: " + a.uptime_start, "", "end: " + a.uptime_end,
          "", "other CPUs: CPU-seconds per second used by other processes during the run (0..number of CPUs);"
          " values well above 0 mean the timings are contended.",
          "", "train tok per CPU-s: training tokens per CPU-second of the run (PyTorch: CPU time of the training loop;"
          " mediaml: of the whole training process, so slightly low); less sensitive to contention than tok/s."]
open(a.out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
