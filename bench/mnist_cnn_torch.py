#!/usr/bin/python3
"""Side-by-side benchmark, PyTorch half: the Keras MNIST CNN in PyTorch (NCHW).

    Conv2d(1, 32, 3) + ReLU -> MaxPool2d(2) -> Flatten -> Linear(5408, 10) (+ softmax)
    Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-7), cross-entropy, batch 32, inputs / 255,
    xavier_uniform_ kernels and zero biases (Keras's glorot_uniform / zeros, not torch's
    default init), shuffled each epoch.

Prints one JSON line with training images/s (wall time of the training loop alone), inference
images/s on the 10000 test images (torch.inference_mode, batch 32, median of
--predict-repeats runs), peak RSS (resource.getrusage) and test accuracy, like
bench/mnist_cnn_bench.c. Threads: --threads N calls torch.set_num_threads(N); environment
variables (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS) are taken as set by the caller.

Usage: /usr/bin/python3 bench/mnist_cnn_torch.py [--data DIR] [--images N] [--epochs E]
           [--batch B] [--threads T] [--seed S] [--predict-repeats R] [--config NAME]
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    """Reads an IDX file (plain or .gz) into a numpy array with its own shape."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(directory, prefix, limit=0):
    x = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte"))
    y = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte"))
    if limit > 0:
        x, y = x[:limit], y[:limit]
    # float32 NCHW, scaled by 1/255 (Keras: x_train / 255.0), in place so that no second
    # float32 copy inflates the peak RSS; the uint8 buffer is dropped on return.
    xf = x.astype(np.float32)
    xf /= np.float32(255.0)
    xt = torch.from_numpy(xf).unsqueeze(1)  # a view: [N, 1, 28, 28], still contiguous
    yt = torch.from_numpy(y.astype(np.int64))
    return xt, yt


class MnistCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, kernel_size=3)   # valid padding, stride 1
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 13 * 13, 10)
        for layer in (self.conv, self.fc):             # Keras defaults
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):                              # returns logits; softmax in the loss
        x = self.pool(F.relu(self.conv(x)))
        return self.fc(torch.flatten(x, 1))


def main():
    default_data = os.path.join(os.environ.get("MEDIAML_DATA") or "../shared/data", "mnist")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data)
    ap.add_argument("--images", type=int, default=60000,
                    help="train on the first N training images (default 60000 = one epoch)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads(N); 0 leaves torch's default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--predict-repeats", type=int, default=3)
    ap.add_argument("--config", default="", help="label echoed in the JSON line")
    a = ap.parse_args()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    x_train, y_train = load_split(a.data, "train", a.images)
    x_test, y_test = load_split(a.data, "t10k")
    n_train, n_test = x_train.shape[0], x_test.shape[0]

    model = MnistCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)

    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    t0 = time.perf_counter()
    for _ in range(a.epochs):
        loss_sum.zero_()
        correct.zero_()
        perm = torch.randperm(n_train)
        for s in range(0, n_train, a.batch):
            idx = perm[s:s + a.batch]
            xb, yb = x_train[idx], y_train[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():   # running loss / accuracy, as Keras's progress reports
                loss_sum += loss.detach() * yb.shape[0]
                correct += (logits.argmax(1) == yb).sum()
    train_s = time.perf_counter() - t0

    model.eval()
    infer_s = []
    probs = torch.empty(n_test, 10)
    with torch.no_grad(), torch.inference_mode():
        for _ in range(a.predict_repeats):
            t1 = time.perf_counter()
            for s in range(0, n_test, a.batch):
                probs[s:s + a.batch] = F.softmax(model(x_test[s:s + a.batch]), dim=1)
            infer_s.append(time.perf_counter() - t1)
    test_acc = (probs.argmax(1) == y_test).double().mean().item()

    ru = resource.getrusage(resource.RUSAGE_SELF)
    rss_mib = ru.ru_maxrss / 1024.0  # KiB on Linux
    print(json.dumps({
        "impl": "pytorch",
        "config": a.config or f"threads={torch.get_num_threads()}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                if k in os.environ},
        "train_images": n_train * a.epochs,
        "epochs": a.epochs,
        "batch": a.batch,
        "train_seconds": round(train_s, 4),
        "train_img_s": round(n_train * a.epochs / train_s, 1),
        "infer_images": n_test,
        "infer_seconds": [round(t, 4) for t in infer_s],
        "infer_img_s": round(n_test / statistics.median(infer_s), 1),
        "peak_rss_mib": round(rss_mib, 1),
        "train_loss": round(loss_sum.item() / n_train, 4),
        "train_accuracy": round(correct.item() / n_train, 4),
        "test_accuracy": round(test_acc, 4),
        "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 3),
    }))


if __name__ == "__main__":
    main()
