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
mm_node *mm_g_matmul(mm_graph *g, mm_node *x, mm_node *w, mm_node *b);

/* Element-wise with NumPy broadcasting (shapes aligned from the right). */
mm_node *mm_g_add(mm_graph *g, mm_node *a, mm_node *b);
mm_node *mm_g_sub(mm_graph *g, mm_node *a, mm_node *b);
mm_node *mm_g_mul(mm_graph *g, mm_node *a, mm_node *b);
mm_node *mm_g_div(mm_graph *g, mm_node *a, mm_node *b);

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

#endif
