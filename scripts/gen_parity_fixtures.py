#!/usr/bin/python3
"""Generates tests/fixtures/parity.safetensors: PyTorch reference values for tests/test_parity.c.

Regenerate (from the repository root; needs Debian's python3-torch and python3-numpy):

    /usr/bin/python3 scripts/gen_parity_fixtures.py

The output is deterministic: fixed seed (torch.manual_seed(0)), one CPU thread, tensors
written in case order. The file is written by hand in the safetensors format (no safetensors
package): 8-byte little-endian header length, a JSON header padded with spaces to a multiple
of 8, then the raw little-endian float32 data.

Precision convention: every input and upstream gradient is drawn in float64 and rounded to
float32 first (so the C side reads exactly the values torch used); all reference computation
then runs in float64 and the results are rounded to float32 when stored. All tensors are F32.

Layout: tensors are stored in mediaml's conventions (channels-last NHWC images, conv kernels
[KH, KW, Cin, Cout], dense kernels [in, out]). The torch graphs permute internally, so the
gradients come back in mediaml's layout.

Tensor names, for a case NAME:
  NAME.in0, NAME.in1, ...   the op's inputs, in mediaml builder order
  NAME.gy                   upstream gradient seeded into the output's grad
  NAME.y                    forward output (losses and full reductions: shape [1])
  NAME.ginK                 gradient of input K, present exactly for the differentiable inputs
  NAME.afterK               value of input K after the forward (batchnorm moving statistics)
Optimizer cases (no graph): NAME.in0 = initial weights [n], NAME.in1 = gradients [steps, n],
NAME.y = weights after each step [steps, n].
"""
import os
import sys

import numpy as np
from fixture_io import D, case, f32, put, randn, tensors, uniform, write_safetensors
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "parity.safetensors")

torch.manual_seed(0)
torch.set_num_threads(1)

def away_from_zero(*shape, lo=0.1, hi=2.0):
    """Values with lo <= |v| <= hi (keeps relu/leaky_relu/abs away from their kink)."""
    mag = lo + (hi - lo) * torch.rand(*shape, dtype=D)
    sign = torch.where(torch.rand(*shape, dtype=D) < 0.5, -1.0, 1.0).to(D)
    return f32(mag * sign)


def distinct(*shape, scale=1.0):
    """Pairwise-distinct values (no ties for max pooling)."""
    n = int(np.prod(shape))
    perm = torch.randperm(n).to(D)
    return f32(((perm + 0.5) / n * 2 - 1).reshape(shape) * scale)


# ---- layout helpers: mediaml NHWC / [KH,KW,Cin,Cout] <-> torch NCHW / [Cout,Cin,KH,KW]

def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def oihw(w):
    return w.permute(3, 2, 0, 1)


def tf_same_pad(size, k, s):
    """TensorFlow "same" padding: (before, after), the smaller half before."""
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def conv(x, w, b, stride, same):
    xt = nchw(x)
    if same:
        pt, pb = tf_same_pad(x.shape[1], w.shape[0], stride)
        pl, pr = tf_same_pad(x.shape[2], w.shape[1], stride)
        xt = F.pad(xt, (pl, pr, pt, pb))
    return nhwc(F.conv2d(xt, oihw(w), b, stride=stride))


def maxpool(x, k, s, same):
    xt = nchw(x)
    if same:
        pt, pb = tf_same_pad(x.shape[1], k, s)
        pl, pr = tf_same_pad(x.shape[2], k, s)
        xt = F.pad(xt, (pl, pr, pt, pb), value=-float("inf"))
    return nhwc(F.max_pool2d(xt, k, s))


# ------------------------------------------------------------------ dense / element-wise

case("matmul_bias", [randn(4, 6), randn(6, 5), randn(5)],
     lambda x, w, b: x @ w + b, [1, 1, 1])
case("matmul_3d", [randn(2, 3, 4), randn(4, 5)], lambda x, w: x @ w, [1, 1])

case("add_bcast", [randn(2, 3, 4), randn(4)], lambda a, b: a + b, [1, 1])
case("add_both_bcast", [randn(2, 1, 4), randn(3, 1)], lambda a, b: a + b, [1, 1])
case("sub_bcast", [randn(3, 1), randn(2, 1, 4)], lambda a, b: a - b, [1, 1])
case("mul_bcast", [randn(2, 3, 4), randn(3, 1)], lambda a, b: a * b, [1, 1])
case("mul_scalar", [randn(3, 4), randn(1)], lambda a, b: a * b, [1, 1])
case("div_bcast", [randn(2, 3, 4), away_from_zero(1, 4, lo=0.5, hi=2.0)], lambda a, b: a / b, [1, 1])
case("div_same", [randn(3, 4), away_from_zero(3, 4, lo=0.5, hi=2.0)], lambda a, b: a / b, [1, 1])

# ------------------------------------------------------------------ activations

case("relu", [away_from_zero(4, 5)], F.relu, [1])
case("leaky_relu", [away_from_zero(4, 5)], lambda x: F.leaky_relu(x, 0.3), [1])
case("sigmoid", [randn(4, 5, scale=2)], torch.sigmoid, [1])
case("tanh", [randn(4, 5, scale=2)], torch.tanh, [1])
case("gelu", [randn(4, 5, scale=2)], lambda x: F.gelu(x), [1])  # exact (erf) form
case("softmax", [randn(4, 5, scale=2)], lambda x: F.softmax(x, -1), [1])
case("softmax_3d", [randn(2, 3, 4, scale=2)], lambda x: F.softmax(x, -1), [1])
case("log_softmax", [randn(4, 5, scale=2)], lambda x: F.log_softmax(x, -1), [1])
case("log_softmax_3d", [randn(2, 3, 4, scale=2)], lambda x: F.log_softmax(x, -1), [1])

# ------------------------------------------------------------------ conv / pool / shape

case("conv_valid", [randn(2, 6, 6, 3), randn(3, 3, 3, 4, scale=0.5), randn(4)],
     lambda x, w, b: conv(x, w, b, 1, False), [1, 1, 1])
case("conv_same", [randn(2, 5, 5, 2), randn(3, 3, 2, 3, scale=0.5), randn(3)],
     lambda x, w, b: conv(x, w, b, 1, True), [1, 1, 1])
case("conv_stride2", [randn(2, 7, 7, 3), randn(3, 3, 3, 4, scale=0.5), randn(4)],
     lambda x, w, b: conv(x, w, b, 2, False), [1, 1, 1])
# TensorFlow "same" with stride 2 on an even size pads only bottom/right (asymmetric).
case("conv_same_stride2", [randn(2, 6, 6, 2), randn(3, 3, 2, 3, scale=0.5), randn(3)],
     lambda x, w, b: conv(x, w, b, 2, True), [1, 1, 1])
case("conv_multi", [randn(2, 5, 4, 4), randn(2, 2, 4, 6, scale=0.5), randn(6)],
     lambda x, w, b: conv(x, w, b, 1, False), [1, 1, 1])
case("conv_nobias", [randn(1, 5, 5, 3), randn(3, 3, 3, 2, scale=0.5)],
     lambda x, w: conv(x, w, None, 1, True), [1, 1])
case("conv_relu", [randn(2, 6, 6, 3), randn(3, 3, 3, 4, scale=0.5), randn(4, scale=0.3)],
     lambda x, w, b: F.relu(conv(x, w, b, 1, True)), [1, 1, 1])

case("maxpool", [distinct(2, 4, 6, 3)], lambda x: maxpool(x, 2, 2, False), [1])
case("maxpool_same", [distinct(2, 5, 5, 2)], lambda x: maxpool(x, 2, 2, True), [1])
case("maxpool_3x3_same", [distinct(1, 5, 5, 2)], lambda x: maxpool(x, 3, 1, True), [1])
case("avgpool", [randn(2, 4, 6, 3)], lambda x: nhwc(F.avg_pool2d(nchw(x), 2, 2)), [1])
case("avgpool_3x3_same", [randn(2, 5, 5, 2)],
     lambda x: nhwc(F.avg_pool2d(nchw(x), 3, 1, padding=1, count_include_pad=False)), [1])

case("flatten", [randn(2, 3, 2, 4)], lambda x: x.reshape(x.shape[0], -1), [1])
case("dropout0", [randn(3, 5)], lambda x: x * 1.0, [1])           # rate 0, training
case("dropout_infer", [randn(3, 5)], lambda x: x * 1.0, [1])      # rate 0.5, inference

# ------------------------------------------------------------------ batchnorm

KERAS_MOMENTUM = 0.9
BN_EPS = 1e-3


def bn_case(name, x, training):
    c = x.shape[-1]
    gamma, beta = uniform(0.5, 1.5, c), randn(c, scale=0.5)
    mmean, mvar = randn(c, scale=0.3), uniform(0.5, 2.0, c)
    run_mean, run_var = mmean.clone(), mvar.clone()

    def fn(x, g, b, m, v):
        # PyTorch's momentum is the weight of the new batch statistic: 1 - Keras momentum.
        xt = nchw(x) if x.dim() == 4 else x
        y = F.batch_norm(xt, run_mean, run_var, g, b, training=training,
                         momentum=1 - KERAS_MOMENTUM, eps=BN_EPS)
        return nhwc(y) if x.dim() == 4 else y

    def after():
        if not training:
            return {3: mmean, 4: mvar}
        xs = x.reshape(-1, c).numpy()
        n = xs.shape[0]
        biased = xs.var(axis=0)  # Keras/mediaml: biased batch variance
        # PyTorch's running_var uses the unbiased variance; check that, then use Keras's rule.
        torch_var = mvar.numpy() * KERAS_MOMENTUM + biased * n / (n - 1) * (1 - KERAS_MOMENTUM)
        assert np.allclose(run_var.numpy(), torch_var), "unexpected torch running_var"
        keras_var = mvar.numpy() * KERAS_MOMENTUM + biased * (1 - KERAS_MOMENTUM)
        return {3: run_mean, 4: torch.from_numpy(keras_var)}

    case(name, [x, gamma, beta, mmean, mvar], fn, [1, 1, 1, 0, 0], after)


bn_case("bn_train", randn(4, 3, 3, 2, scale=2) + 0.5, True)
bn_case("bn_train_2d", randn(8, 3, scale=1.5) - 0.3, True)
bn_case("bn_infer", randn(4, 3, 3, 2, scale=2), False)

# ------------------------------------------------------------------ concat / reductions

case("concat_axis1", [randn(2, 3), randn(2, 1), randn(2, 4)],
     lambda a, b, c: torch.cat([a, b, c], 1), [1, 1, 1])
case("concat_last_3d", [randn(2, 3, 2), randn(2, 3, 3)], lambda a, b: torch.cat([a, b], -1), [1, 1])
case("concat_axis0", [randn(2, 3, 2), randn(1, 3, 2)], lambda a, b: torch.cat([a, b], 0), [1, 1])

for op in ("sum", "mean"):
    f = torch.sum if op == "sum" else torch.mean
    case(op + "_axis0", [randn(2, 3, 4)], lambda x: f(x, 0), [1])
    case(op + "_axis1_keep", [randn(2, 3, 4)], lambda x: f(x, 1, keepdim=True), [1])
    case(op + "_last", [randn(2, 3, 4)], lambda x: f(x, -1), [1])
    case(op + "_all", [randn(2, 3, 4)], lambda x: f(x).reshape(1), [1])

# ------------------------------------------------------------------ losses

# Keras clips probabilities to [eps, 1 - eps] with eps = 1e-7, in float32: the bounds are the
# float32 values (1 - 1e-7 rounds to 1 - 2^-23), which matters for log(1 - clip(1.0)).
CLIP_LO, CLIP_HI = float(np.float32(1e-7)), float(np.float32(1 - 1e-7))


def clip(p):
    return torch.clamp(p, CLIP_LO, CLIP_HI)


def labels(n, k):
    return torch.randint(0, k, (n,)).to(D)


def soft_targets(n, k):
    return f32(F.softmax(torch.randn(n, k, dtype=D) * 2, -1))


def probs_with_edges(n, k):
    """Softmax probabilities with a few exact 0 / 1 entries (exercise Keras's clipping)."""
    p = soft_targets(n, k)
    p[0] = 0
    p[0, 1] = 1
    p[1, 0] = 0
    p[1] = p[1] / p[1].sum()
    return f32(p)


case("sce_sparse", [randn(5, 4, scale=2), labels(5, 4)],
     lambda z, y: F.cross_entropy(z, y.long()), [1, 0])
case("sce_soft", [randn(5, 4, scale=2), soft_targets(5, 4)],
     lambda z, y: F.cross_entropy(z, y), [1, 0])
case("sce_soft_target_grad", [randn(5, 4, scale=2), soft_targets(5, 4)],
     lambda z, y: F.cross_entropy(z, y), [1, 1])
# Keras's clipped cross-entropy on probabilities: -sum y*log(clip(p)), mean over the batch.
case("pce_soft", [probs_with_edges(5, 4), soft_targets(5, 4)],
     lambda p, y: -(y * torch.log(clip(p))).sum(-1).mean(), [1, 0])
case("pce_sparse", [probs_with_edges(5, 4), torch.tensor([1.0, 2, 0, 3, 1], dtype=D)],
     lambda p, y: -torch.log(clip(p))[torch.arange(5), y.long()].mean(), [1, 0])
case("pce_soft_target_grad", [soft_targets(5, 4), soft_targets(5, 4)],
     lambda p, y: -(y * torch.log(clip(p))).sum(-1).mean(), [1, 1])
bce_t = f32(torch.cat([torch.randint(0, 2, (6,)).to(D), torch.rand(6, dtype=D)]).reshape(3, 4))
case("sigmoid_bce", [randn(3, 4, scale=3), bce_t],
     lambda z, t: F.binary_cross_entropy_with_logits(z, t), [1, 0])
case("sigmoid_bce_target_grad", [randn(3, 4, scale=3), bce_t],
     lambda z, t: F.binary_cross_entropy_with_logits(z, t), [1, 1])
bce_p = uniform(0.02, 0.98, 3, 4)
bce_p[0, 0], bce_p[0, 1] = 0.0, 1.0  # clipped: flat loss, zero gradient


def prob_bce(p, t):
    q = clip(p)
    return -(t * torch.log(q) + (1 - t) * torch.log(1 - q)).mean()


case("prob_bce", [bce_p, bce_t], prob_bce, [1, 0])
case("prob_bce_target_grad", [bce_p, bce_t], prob_bce, [1, 1])
case("mse", [randn(3, 4), randn(3, 4)], lambda p, t: F.mse_loss(p, t), [1, 0])
case("mse_both", [randn(3, 4), randn(3, 4)], lambda p, t: F.mse_loss(p, t), [1, 1])
case("l1l2", [away_from_zero(3, 4, lo=0.05, hi=1.5)],
     lambda w: 0.01 * w.abs().sum() + 0.02 * (w * w).sum(), [1])

# ------------------------------------------------------------------ small whole networks

case("dense_net", [randn(4, 6), randn(6, 5, scale=0.5), randn(5, scale=0.1)],
     lambda x, w, b: F.softmax(x @ w + b, -1), [1, 1, 1])


def conv_net(x, w1, b1, w2, b2, y):
    h = F.relu(conv(x, w1, b1, 1, False))     # [2,6,6,4]
    h = maxpool(h, 2, 2, False)               # [2,3,3,4]
    h = h.reshape(h.shape[0], -1)             # [2,36]
    return F.cross_entropy(h @ w2 + b2, y.long())


case("conv_net", [randn(3, 8, 8, 1), randn(3, 3, 1, 4, scale=0.5), randn(4, scale=0.1),
                  randn(36, 3, scale=0.3), randn(3, scale=0.1), labels(3, 3)],
     conv_net, [1, 1, 1, 1, 1, 0])

# ------------------------------------------------------------------ optimizers

STEPS, NW = 3, 10


def opt_case(name, w0, gs, ws):
    put(name + ".in0", w0)
    put(name + ".in1", gs)
    put(name + ".y", ws)


# Keras Adam (lr 1e-3, b1 .9, b2 .999, eps 1e-7), computed in numpy (float64):
# m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; alpha = lr sqrt(1-b2^t)/(1-b1^t);
# w -= alpha m / (sqrt(v) + eps). (PyTorch's Adam puts eps outside the bias correction.)
w0, gs = randn(NW).numpy(), randn(STEPS, NW).numpy()
w, m, v, out = w0.copy(), np.zeros(NW), np.zeros(NW), []
lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7
for t in range(1, STEPS + 1):
    g = gs[t - 1]
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    w = w - alpha * m / (np.sqrt(v) + eps)
    out.append(w.copy())
opt_case("adam", w0, gs, np.stack(out))


# SGD with momentum: torch (buf = mu buf + g; w -= lr buf) equals Keras (v = mu v - lr g; w += v)
# for a constant rate; Nesterov likewise (torch g' = g + mu buf; Keras w += mu v - lr g).
def torch_sgd(nesterov):
    w0, gs = randn(NW), randn(STEPS, NW)
    p = torch.nn.Parameter(w0.clone())
    opt = torch.optim.SGD([p], lr=0.01, momentum=0.9, nesterov=nesterov)
    out = []
    for t in range(STEPS):
        p.grad = gs[t].clone()
        opt.step()
        out.append(p.detach().clone())
    return w0, gs, torch.stack(out)


opt_case("sgd_momentum", *torch_sgd(False))
opt_case("sgd_nesterov", *torch_sgd(True))

# ------------------------------------------------------------------ sequence conv and pooling
# (added after every earlier case, so the earlier random draws and tensors are unchanged)

def conv1d(x, w, b=None):
    """mediaml conv1d: x [B, T, C], kernel [K, C, F] -> [B, T-K+1, F]."""
    return F.conv1d(x.transpose(1, 2), w.permute(2, 1, 0), b).transpose(1, 2)


case("conv1d", [randn(2, 7, 4), randn(3, 4, 5, scale=0.5), randn(5)], conv1d, [1, 1, 1])
case("conv1d_nobias", [randn(2, 5, 3), randn(5, 3, 2, scale=0.5)], conv1d, [1, 1])

POOL_MASK = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=D)


def masked_avg(x, m):
    return (x * m[..., None]).sum(1) / torch.clamp(m.sum(1, keepdim=True), min=1)


def masked_max(x, m):
    y = torch.where(m[..., None] > 0, x, torch.full_like(x, -float("inf"))).max(1).values
    return torch.where(m.sum(1, keepdim=True) > 0, y, torch.zeros_like(y))


case("global_avg_pool1d_masked", [randn(3, 5, 4), POOL_MASK], masked_avg, [1, 0])
case("global_max_pool1d_masked", [distinct(3, 5, 4), POOL_MASK], masked_max, [1, 0])
case("global_max_pool1d", [distinct(2, 5, 3)], lambda x: x.max(1).values, [1])

# ------------------------------------------------------------------ write


def write(path):
    return write_safetensors(path, tensors, {"generator": "scripts/gen_parity_fixtures.py", "torch": torch.__version__, "seed": "0"})


# ------------------------------------------------------------------ dot (last here: earlier
# cases keep their random draws)

case("dot_rows", [randn(4, 19), randn(4, 19)], lambda a, b: (a * b).sum(-1, keepdim=True), [1, 1])
case("dot_3d", [randn(2, 3, 8), randn(2, 3, 8)], lambda a, b: (a * b).sum(-1, keepdim=True), [1, 1])

size = write(OUT)
print("wrote %s: %d tensors, %d bytes" % (os.path.relpath(OUT, ROOT), len(tensors), size))
if size >= 300 * 1024:
    sys.exit("fixture too large")
