#!/usr/bin/python3
"""Generates tests/fixtures/parity_rnn.safetensors: PyTorch reference values for the recurrent
ops (SimpleRNN, LSTM, GRU, last_step), checked by tests/test_parity_rnn.c.

Regenerate (from the repository root; needs Debian's python3-torch and python3-numpy):

    /usr/bin/python3 scripts/gen_rnn_fixtures.py

Deterministic: torch.manual_seed(0), one CPU thread, tensors written in case order, the
safetensors file written by hand (8-byte little-endian header length, JSON header padded
with spaces to a multiple of 8, raw little-endian float32 data). Inputs and upstream
gradients are drawn in float64 and rounded to float32; the references run in float64 and are
rounded to float32 when stored.

Weights are stored in mediaml's (Keras's) layouts and mapped to PyTorch inside the
differentiable graph, so the gradients come back in Keras layout:
  nn.RNN / nn.LSTM: weight_ih = W.T, weight_hh = U.T, bias_ih = b, bias_hh = 0
                    (Keras's single bias is torch's bias_ih + bias_hh; LSTM gate order
                    i, f, g, o is the same in both).
  nn.GRU:           torch's gate blocks are (r, z, n), Keras's (z, r, h): with the block swap
                    P = (1, 0, 2), weight_ih = P(W.T), weight_hh = P(U.T), bias_ih = P(b[0]),
                    bias_hh = P(b[1]). Torch's h' = (1 - z) n + z h is Keras reset_after=True.
Backward direction (go_backwards): the torch layer runs on the input flipped in time and
its output is flipped back (outputs aligned with input positions); the bidirectional case
uses nn.LSTM(bidirectional=True) itself. Masked cases run the torch cell (nn.LSTMCell /
GRUCell / RNNCell with the same weights) step by step with Keras's rule: on a masked step
the state is carried over, and the output is the carried state (or 0 with zero-masked
outputs).

Tensor names, for a case NAME:
  NAME.in0, NAME.in1, ...   inputs in mediaml builder order: x, W, U, b, mask
                            (bidirectional: x, Wf, Uf, bf, Wb, Ub, bb)
  NAME.gy                   upstream gradient seeded into the output's grad
  NAME.y                    forward output
  NAME.ginK                 gradient of input K (all but the mask)
"""
import os
import sys

import numpy as np
from fixture_io import D, f32, put, randn, tensors, write_safetensors
import torch
import torch.nn as nn
from torch.nn.utils import stateless

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "parity_rnn.safetensors")

torch.manual_seed(0)
torch.set_num_threads(1)

B, T, DIN, H = 3, 5, 4, 6
# row 0 all real, row 1 right-padded, row 2 with left padding and a hole
MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 1, 0, 1]], dtype=D)

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def gru_perm(w):
    """Swaps the first two H-blocks along dim 0 (Keras z, r, h <-> torch r, z, n)."""
    return torch.cat([w[H:2 * H], w[0:H], w[2 * H:]], 0)


def keras_params(kind, bias=True):
    g = GATES[kind]
    s = 1.0 / np.sqrt(H)
    W = randn(DIN, g * H, scale=s)
    U = randn(H, g * H, scale=s)
    if not bias:
        return [W, U]
    b = randn(2, g * H, scale=0.3) if kind == "gru" else randn(g * H, scale=0.3)
    return [W, U, b]


def torch_params(kind, ps, suffix=""):
    """Keras-layout (W, U[, b]) -> dict of torch parameter tensors (differentiable)."""
    W, U = ps[0], ps[1]
    b = ps[2] if len(ps) > 2 else None
    if kind == "gru":
        d = {"weight_ih": gru_perm(W.t()), "weight_hh": gru_perm(U.t())}
        if b is not None:
            d["bias_ih"], d["bias_hh"] = gru_perm(b[0]), gru_perm(b[1])
    else:
        d = {"weight_ih": W.t(), "weight_hh": U.t()}
        if b is not None:
            d["bias_ih"], d["bias_hh"] = b, torch.zeros_like(b)
    return {k + suffix: v for k, v in d.items()}


def layer(kind, bias=True, bidirectional=False):
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    kw = {"nonlinearity": "tanh"} if kind == "rnn" else {}
    return cls(DIN, H, batch_first=True, bias=bias, bidirectional=bidirectional, **kw).to(D)


def cell(kind, bias=True):
    cls = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind]
    kw = {"nonlinearity": "tanh"} if kind == "rnn" else {}
    return cls(DIN, H, bias=bias, **kw).to(D)


def run_layer(kind, x, ps, backwards=False, bidirectional=False):
    """The real nn.RNN / nn.LSTM / nn.GRU module with the Keras-layout weights copied in
    (bidirectional: ps = forward weights + backward weights). Returns (y, grads) where
    grads(gy) backpropagates sum(y * gy) and returns the gradients of x and of every Keras
    weight, mapped back to Keras layout by hand."""
    nb = 3 if len(ps) in (3, 6) else 2
    sets = [ps[:nb], ps[nb:]] if bidirectional else [ps]
    mod = layer(kind, bias=nb == 3, bidirectional=bidirectional)
    with torch.no_grad():
        for suffix, p in zip(["_l0", "_l0_reverse"], sets):
            for k, v in torch_params(kind, p, suffix).items():
                getattr(mod, k).copy_(v)
    xl = x.detach().clone().requires_grad_(True)
    xin = torch.flip(xl, [1]) if backwards else xl
    y = mod(xin)[0]
    y = torch.flip(y, [1]) if backwards else y

    def grads(gy):
        (y * gy).sum().backward()
        out = [xl.grad]
        for suffix in ["_l0", "_l0_reverse"][:len(sets)]:
            gw = {k: getattr(mod, k + suffix).grad for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                  if hasattr(mod, k + suffix)}
            if kind == "gru":
                out += [gru_perm(gw["weight_ih"]).t(), gru_perm(gw["weight_hh"]).t()]
                if nb == 3:
                    out.append(torch.stack([gru_perm(gw["bias_ih"]), gru_perm(gw["bias_hh"])]))
            else:
                out += [gw["weight_ih"].t(), gw["weight_hh"].t()]
                if nb == 3:
                    assert torch.allclose(gw["bias_ih"], gw["bias_hh"], atol=1e-13)
                    out.append(gw["bias_ih"])
        return out

    return y.detach(), grads


def run_cells(kind, x, ps, mask, backwards, zero_out=False, want_cell=False):
    """Step-by-step with Keras masking. Returns (outputs [B, T, H or 2H], final h)."""
    mod = cell(kind, bias=len(ps) > 2)
    tp = torch_params(kind, ps)
    h = torch.zeros(x.shape[0], H, dtype=D)
    c = torch.zeros_like(h)
    outs = [None] * T
    order = range(T - 1, -1, -1) if backwards else range(T)
    for t in order:
        if kind == "lstm":
            hn, cn = stateless.functional_call(mod, tp, (x[:, t], (h, c)))
        else:
            hn = stateless.functional_call(mod, tp, (x[:, t], h))
            cn = c
        real = (mask[:, t:t + 1] != 0) if mask is not None else torch.ones(x.shape[0], 1, dtype=torch.bool)
        h = torch.where(real, hn, h)
        c = torch.where(real, cn, c)
        o = torch.cat([h, c], 1) if want_cell else h
        outs[t] = torch.where(real, o, torch.zeros_like(o)) if zero_out else o
    return torch.stack(outs, 1), h


def emit(name, inputs, differentiable, fn):
    """Reference by autograd through fn (the cell loops: the Keras -> torch weight mapping is
    part of the graph, so the gradients arrive in Keras layout)."""
    leaves = [t.clone().requires_grad_(d) for t, d in zip(inputs, differentiable)]
    y = fn(*leaves)
    gy = randn(*y.shape)
    (y * gy).sum().backward()
    store(name, inputs, gy, y, [t.grad if d else None for t, d in zip(leaves, differentiable)])


def emit_layer(name, kind, inputs, backwards=False, bidirectional=False):
    """Reference from the nn layer module itself (inputs: x and Keras weights)."""
    y, grads = run_layer(kind, inputs[0], inputs[1:], backwards, bidirectional)
    gy = randn(*y.shape)
    store(name, inputs, gy, y, grads(gy))


def store(name, inputs, gy, y, gins):
    for k, t in enumerate(inputs):
        put("%s.in%d" % (name, k), t)
    put(name + ".gy", gy)
    put(name + ".y", y)
    for k, g in enumerate(gins):
        if g is not None:
            put("%s.gin%d" % (name, k), g)


# ------------------------------------------------------------------ sanity: cells == layers
# The two reference paths (nn layer + hand-mapped gradients, cell loop + autograd through the
# mapping) must agree without a mask, values and gradients.

def leaf_grads(kind, x, ps, gy, back):
    leaves = [t.clone().requires_grad_(True) for t in [x] + ps]
    y, _ = run_cells(kind, leaves[0], leaves[1:], None, back)
    (y * gy).sum().backward()
    return y, [t.grad for t in leaves]


for kind in ("rnn", "lstm", "gru"):
    for bias in (True, False):
        for back in (False, True):
            x, ps = randn(B, T, DIN), keras_params(kind, bias)
            a, grads = run_layer(kind, x, ps, back)
            gy = randn(*a.shape)
            b_, gb = leaf_grads(kind, x, ps, gy, back)
            assert torch.allclose(a, b_, atol=1e-12), "cell loop differs from nn layer: " + kind
            for u, v in zip(grads(gy), gb):
                assert u.shape == v.shape and torch.allclose(u, v, atol=1e-12), "gradients differ: " + kind

# ------------------------------------------------------------------ cases

# Unmasked: nn.RNN / nn.LSTM / nn.GRU, both directions.
for kind in ("rnn", "lstm", "gru"):
    for back in (False, True):
        x, ps = randn(B, T, DIN), keras_params(kind)
        emit_layer(kind + ("_back" if back else ""), kind, [x] + ps, backwards=back)

# No bias (use_bias=False).
x, ps = randn(B, T, DIN), keras_params("gru", bias=False)
emit_layer("gru_nobias", "gru", [x] + ps)
x, ps = randn(B, T, DIN), keras_params("lstm", bias=False)
emit_layer("lstm_nobias", "lstm", [x] + ps)

# Masked (carry-over outputs), both directions.
for kind in ("rnn", "lstm", "gru"):
    for back in (False, True):
        x, ps = randn(B, T, DIN), keras_params(kind)
        emit(kind + "_mask" + ("_back" if back else ""), [x] + ps + [MASK], [True] * 4 + [False],
             lambda x, W, U, b, m, kind=kind, back=back: run_cells(kind, x, [W, U, b], m, back)[0])

# LSTM want_cell (h, c) with zero-masked outputs, forward and backward.
for back in (False, True):
    x, ps = randn(B, T, DIN), keras_params("lstm")
    emit("lstm_cell_zero" + ("_back" if back else ""), [x] + ps + [MASK], [True] * 4 + [False],
         lambda x, W, U, b, m, back=back: run_cells("lstm", x, [W, U, b], m, back, zero_out=True,
                                                    want_cell=True)[0])
# LSTM want_cell without a mask (return_state: c at every step).
x, ps = randn(B, T, DIN), keras_params("lstm")
emit("lstm_cell", [x] + ps, [True] * 4,
     lambda x, W, U, b: run_cells("lstm", x, [W, U, b], None, False, want_cell=True)[0])

# Final state through last_step (forward) / first_step (backwards) on zero-masked outputs.
for kind in ("lstm", "gru"):
    for back in (False, True):
        x, ps = randn(B, T, DIN), keras_params(kind)
        emit(kind + ("_first" if back else "_last"), [x] + ps + [MASK], [True] * 4 + [False],
             lambda x, W, U, b, m, kind=kind, back=back: run_cells(kind, x, [W, U, b], m, back,
                                                                  zero_out=True)[1])


# Bidirectional(merge_mode="concat") = nn.LSTM / nn.GRU (bidirectional=True).
for kind in ("lstm", "gru"):
    x = randn(B, T, DIN)
    emit_layer(kind + "_bidir", kind, [x] + keras_params(kind) + keras_params(kind), bidirectional=True)

# ------------------------------------------------------------------ write


def write(path):
    return write_safetensors(path, tensors, {"generator": "scripts/gen_rnn_fixtures.py", "torch": torch.__version__, "seed": "0"})


size = write(OUT)
print("wrote %s: %d tensors, %d bytes" % (os.path.relpath(OUT, ROOT), len(tensors), size))
if size >= 200 * 1024:
    sys.exit("fixture too large")
