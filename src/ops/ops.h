/* Graph builders for every op. Each returns the new node, or NULL with mm_errmsg() set
 * (shape mismatch, bad attribute). Passing a NULL input returns NULL (errors propagate),
 * so a chain of builders needs one check at the end.
 *
 * Layout conventions: images are channels-last [N, H, W, C]; conv kernels are
 * [KH, KW, C_in, C_out] and dense kernels [in, out], as in Keras. Batched nodes carry the
 * batch as dimension 0. Losses return an unbatched scalar node of shape [1] holding the
 * mean over the batch. */
#ifndef MM_OPS_H
#define MM_OPS_H

#include "../core/graph.h"

#define MM_AXIS_ALL 99

/* x[..., K] @ w[K, N] (+ b[N]) -> [..., N]; b may be NULL. */
/* Elements of n at the graph's batch capacity (what buffers planned for n must hold when the
 * batch may grow back to it). */
static inline size_t mm_cap_size(const mm_node *n) {
    size_t s = mm_shape_size(n->ndim, n->shape);
    if (n->batched && n->g && n->g->batch_cap > n->shape[0]) s = s / (size_t)n->shape[0] * (size_t)n->g->batch_cap;
    return s;
}

mm_node *mm_g_matmul(mm_graph *g, mm_node *x, mm_node *w, mm_node *b);

/* Element-wise with NumPy broadcasting (shapes aligned from the right). */
mm_node *mm_g_add(mm_graph *g, mm_node *a, mm_node *b);
mm_node *mm_g_sub(mm_graph *g, mm_node *a, mm_node *b);
mm_node *mm_g_mul(mm_graph *g, mm_node *a, mm_node *b);
mm_node *mm_g_div(mm_graph *g, mm_node *a, mm_node *b);
/* Row-wise dot product over the last axis: a, b [..., K] of the same shape -> [..., 1]. */
mm_node *mm_g_dot(mm_graph *g, mm_node *a, mm_node *b);
/* sum_i a[i] * b[i] in double over 8 fixed lanes (i mod 8) added in lane order: vectorizes,
 * and the result depends only on the data (kernels that must not depend on threads use it). */
double mm_dot_lanes(const float *a, const float *b, long n);

/* Activations. gelu is the exact (erf) form, as PyTorch's and Keras's defaults. */
mm_node *mm_g_relu(mm_graph *g, mm_node *x);
mm_node *mm_g_leaky_relu(mm_graph *g, mm_node *x, float alpha);
mm_node *mm_g_sigmoid(mm_graph *g, mm_node *x);
mm_node *mm_g_tanh(mm_graph *g, mm_node *x);
mm_node *mm_g_gelu(mm_graph *g, mm_node *x);
/* Over the last axis. */
mm_node *mm_g_softmax(mm_graph *g, mm_node *x);
mm_node *mm_g_log_softmax(mm_graph *g, mm_node *x);
/* Builds an activation by its Keras name ("relu", "softmax", "linear"/NULL = x itself).
 * alpha is used by leaky_relu. */
mm_node *mm_g_activation(mm_graph *g, mm_node *x, const char *name, float alpha);
/* The named activation on one vector in place, outside any graph (same math as the op). */
mm_status mm_activation_apply(const char *name, float alpha, float *v, size_t n);
int mm_activation_known(const char *name);

/* x [N, H, W, C], w [KH, KW, C, F], b [F] or NULL. */
mm_node *mm_g_conv2d(mm_graph *g, mm_node *x, mm_node *w, mm_node *b, int stride_h, int stride_w,
                     int same_padding);
/* conv2d followed by relu in one pass (the layer uses it for activation="relu"). */
mm_node *mm_g_conv2d_relu(mm_graph *g, mm_node *x, mm_node *w, mm_node *b, int stride_h, int stride_w,
                          int same_padding);
/* conv2d (+relu if relu) followed by max pooling with stride = pool and valid padding, in one
 * op that never stores the full-resolution conv output. */
mm_node *mm_g_conv2d_maxpool(mm_graph *g, mm_node *x, mm_node *w, mm_node *b, int stride_h, int stride_w,
                             int same_padding, int relu, int pool_h, int pool_w);
int mm_conv2d_maxpool_fusable(int kh, int kw, int cin, int oh, int ow);
mm_node *mm_g_maxpool2d(mm_graph *g, mm_node *x, int pool_h, int pool_w, int stride_h,
                        int stride_w, int same_padding);
/* Same-padding average excludes the padded cells from the count, as Keras/TF. */
mm_node *mm_g_avgpool2d(mm_graph *g, mm_node *x, int pool_h, int pool_w, int stride_h,
                        int stride_w, int same_padding);

/* New shape excludes the batch dimension when x is batched; one entry may be -1. */
mm_node *mm_g_reshape(mm_graph *g, mm_node *x, int ndim, const int *shape);
mm_node *mm_g_flatten(mm_graph *g, mm_node *x);

/* Rows of table [V, D] picked by ids (float indices, any shape) -> [...ids shape, D]. An id
 * outside 0..V-1 fails the run (mm_graph_fail) and yields NaN rows. */
mm_node *mm_g_embedding(mm_graph *g, mm_node *ids, mm_node *table);
/* 1 where x != 0, else 0 (padding masks); passes no gradient. */
mm_node *mm_g_nonzero(mm_graph *g, mm_node *x);
/* x[..., begin:begin+size] */
mm_node *mm_g_slice(mm_graph *g, mm_node *x, int begin, int size);

/* Inverted dropout (scale by 1/(1-rate) in training, identity in inference). The mask
 * depends only on (node seed, graph step, element index): deterministic for any thread
 * count. */
mm_node *mm_g_dropout(mm_graph *g, mm_node *x, float rate);

/* Normalizes over all axes but the last. Training: normalizes with the batch mean and
 * biased variance and updates the moving stats as Keras does:
 * moving = moving * momentum + batch_stat * (1 - momentum) (biased variance). Inference:
 * moving stats. gamma, beta, moving_mean, moving_var are [C] params (moving ones not
 * trainable). */
mm_node *mm_g_batchnorm(mm_graph *g, mm_node *x, mm_node *gamma, mm_node *beta,
                        mm_node *moving_mean, mm_node *moving_var, float momentum, float epsilon);

/* Concatenates along axis (counted including the batch dim; negative from the end). */
mm_node *mm_g_concat(mm_graph *g, int n, mm_node **xs, int axis);

/* Reductions over one axis (including batch dim; negative from the end) or MM_AXIS_ALL
 * (result shape [1], unbatched). keepdims keeps the reduced axis as 1. */
mm_node *mm_g_sum(mm_graph *g, mm_node *x, int axis, int keepdims);
mm_node *mm_g_mean(mm_graph *g, mm_node *x, int axis, int keepdims);

/* ---- losses: scalar [1], mean over the batch ---- */

/* Fused softmax + cross-entropy on logits [N, K]. sparse: labels [N] class indices (floats);
 * else labels [N, K] probabilities. */
mm_node *mm_g_softmax_cross_entropy(mm_graph *g, mm_node *logits, mm_node *labels, int sparse);
/* Cross-entropy on probabilities [N, K] (clipped to [1e-7, 1-1e-7] as Keras), for models
 * whose output is not a softmax layer. */
mm_node *mm_g_prob_cross_entropy(mm_graph *g, mm_node *probs, mm_node *labels, int sparse);
/* Fused sigmoid + binary cross-entropy on logits, targets same shape; mean over elements. */
mm_node *mm_g_sigmoid_bce(mm_graph *g, mm_node *logits, mm_node *targets);
/* Binary cross-entropy on probabilities (clipped as Keras). */
mm_node *mm_g_prob_bce(mm_graph *g, mm_node *probs, mm_node *targets);
/* Mean squared error over all elements. */
mm_node *mm_g_mse(mm_graph *g, mm_node *pred, mm_node *targets);

/* l1 * sum|w| + l2 * sum w^2 as a scalar [1] (Keras's kernel_regularizer). */
mm_node *mm_g_l1l2(mm_graph *g, mm_node *w, float l1, float l2);

/* ==== Transformer ops (layernorm.c, attention.c, seq_loss.c, positional.c) ==== */

/* Layer normalization over the last axis (PyTorch F.layer_norm, Keras LayerNormalization):
 * y = (x - mean) / sqrt(biased var + eps) * gamma + beta; x [..., C], gamma and beta [C].
 * eps: PyTorch's default is 1e-5, Keras's 1e-3. */
mm_node *mm_g_layernorm(mm_graph *g, mm_node *x, mm_node *gamma, mm_node *beta, float eps);

/* Multi-head scaled dot-product attention. q, k, v [B, T, C] with C = n_heads * head_dim;
 * head h uses columns [h*head_dim, (h+1)*head_dim) (GPT-2's split). Output [B, T, C]: the
 * heads' softmax(q_h k_h^T / sqrt(head_dim) + masks) v_h side by side. causal: query i sees
 * keys 0..i. key_mask (or NULL): [B, T], 0 = padding key (never attended), else a real token;
 * a query whose keys are all masked outputs zeros. dropout_rate: inverted dropout on the
 * attention probabilities in training (mask from node seed, graph step and element index,
 * deterministic). Memory-efficient: keeps only per-row log-sum-exp statistics between forward
 * and backward and recomputes the scores; deterministic for any thread count. */
mm_node *mm_g_attention(mm_graph *g, mm_node *q, mm_node *k, mm_node *v, mm_node *key_mask,
                        int n_heads, int causal, float dropout_rate);

/* One step of incremental (KV-cache) decoding: the attention output out [C] of the newest
 * query q [C] (C = n_heads * head_dim) against the cached keys and values k_cache, v_cache
 * [t_plus_1, C] (row-major; the last row is the newest position's own key and value), i.e. the
 * last row of causal mm_g_attention over those t_plus_1 positions (no mask, no dropout).
 * scratch: at least t_plus_1 floats. Single-threaded; does nothing on invalid arguments. */
void mm_attention_decode_step(const float *q, const float *k_cache, const float *v_cache, int t_plus_1,
                              int n_heads, int head_dim, float *out, float *scratch);

/* Cross-entropy of logits [..., V] (e.g. [B, T, V]) against class ids (floats) of the
 * logits' shape without the last axis (e.g. [B, T]), fused log-softmax; scalar [1] = mean
 * over the positions whose target != ignore_index (PyTorch F.cross_entropy with ignore_index,
 * whose default is -100). All positions ignored: loss 0, gradient 0. Any other target outside
 * 0..V-1 fails the run (mm_graph_fail) and gives a NaN loss. */
mm_node *mm_g_sequence_cross_entropy(mm_graph *g, mm_node *logits, mm_node *targets, int ignore_index);

/* x [..., T, C] + the Transformer's sinusoidal table: PE[t, 2i] = sin(t / 10000^(2i/C)),
 * PE[t, 2i+1] = cos(t / 10000^(2i/C)). Backward: identity. */
mm_node *mm_g_sinusoidal_positions(mm_graph *g, mm_node *x);
/* x [..., T, C] + table[0:T] for a learned table [max_T, C] (T <= max_T), broadcast over the
 * leading axes. The table's gradient is dense: rows 0..T-1 get the sum of dy over the leading
 * axes, rows >= T get 0 (overwrite) or nothing (accumulate); a table with a rowset gets rows
 * 0..T-1 added and recorded instead. */
mm_node *mm_g_add_positions(mm_graph *g, mm_node *x, mm_node *table);

/* ==== end of Transformer ops ==== */

/* ---- recurrent layers (src/ops/rnn.c) ----
 * x [B, T, D]; kernel W [D, G*H]; recurrent kernel U [H, G*H]; bias b [G*H] (GRU: [2, 3H] =
 * input bias; recurrent bias) or NULL (use_bias=False); mask [B, T] or NULL (nonzero = real
 * step; batched exactly when x is). Keras formulations and gate orders: SimpleRNN tanh (G 1),
 * LSTM i, f, c, o (G 4), GRU z, r, h with reset_after=True (G 3); zero initial state.
 * Output: every step's h, [B, T, H] ([B, T, 2H] = (h, c) on the last axis with MM_RNN_CELL).
 * Masked step: the state is carried unchanged and the output is the carried state (0 for
 * every output column with MM_RNN_ZERO_MASKED, Keras's zero_output_for_mask).
 * MM_RNN_BACKWARDS: time runs T-1 -> 0 but outputs stay aligned with input positions
 * (Keras's go_backwards output reversed back, as Bidirectional returns it), so the final
 * state of a backwards run is at position 0. */
#define MM_RNN_BACKWARDS 1
#define MM_RNN_CELL 2
#define MM_RNN_ZERO_MASKED 4
enum { MM_RNN_SIMPLE = 0, MM_RNN_LSTM = 1, MM_RNN_GRU = 2 };
mm_node *mm_g_rnn(mm_graph *g, int cell, mm_node *x, mm_node *mask, mm_node *W, mm_node *U, mm_node *b,
                  int flags);
mm_node *mm_g_simple_rnn(mm_graph *g, mm_node *x, mm_node *mask, mm_node *W, mm_node *U, mm_node *b,
                         int go_backwards);
mm_node *mm_g_lstm(mm_graph *g, mm_node *x, mm_node *mask, mm_node *W, mm_node *U, mm_node *b, int go_backwards,
                   int want_cell);
mm_node *mm_g_gru(mm_graph *g, mm_node *x, mm_node *mask, mm_node *W, mm_node *U, mm_node *b, int go_backwards);
/* seq [B, T, F] -> [B, F]: the value at the last real (nonzero-mask) step of each row, or at
 * T-1 without a mask; a row with no real step gives 0. first_step: the first real step /
 * position 0 (the final state of an MM_RNN_BACKWARDS run). */
mm_node *mm_g_last_step(mm_graph *g, mm_node *seq, mm_node *mask);
mm_node *mm_g_first_step(mm_graph *g, mm_node *seq, mm_node *mask);
/* ---- end recurrent layers ---- */

/* ---- sequence convolution and pooling (src/ops/conv1d.c, src/ops/pool1d.c) ---- */
/* x [B, T, C] * w [K, C, F] (+ b [F] or NULL) -> [B, T-K+1, F]: stride 1, valid padding. */
mm_node *mm_g_conv1d(mm_graph *g, mm_node *x, mm_node *w, mm_node *b);
/* x [B, T, C] -> [B, C]: mean (is_max 0) or maximum (is_max 1) over the steps whose mask
 * [B, T] is nonzero (all steps when mask is NULL); a row without real steps gives 0. */
mm_node *mm_g_global_pool1d(mm_graph *g, mm_node *x, mm_node *mask, int is_max);

#endif
