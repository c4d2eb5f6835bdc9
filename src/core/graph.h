/* The engine's computation graph: nodes, ops, planned buffers.
 *
 * A graph is built once for a batch capacity, planned (every activation, gradient and
 * op scratch buffer gets an offset in one arena, reused across non-overlapping lifetimes),
 * and then run many times with no allocation. Dimension 0 of "batched" nodes is the batch
 * and may be set to any value up to the capacity before a run.
 *
 * Ops live in src/ops/, one family per file, each with its forward and backward together.
 * Backward convention: an op writes the gradient of each input that needs one. If
 * n->acc[i] is 0 it is the first writer in this pass and must overwrite (=); otherwise it
 * must accumulate (+=). This avoids zeroing gradient buffers every step. */
#ifndef MM_GRAPH_H
#define MM_GRAPH_H

#include "mediaml.h"
#include <stdint.h>

#define MM_MAX_INPUTS 8

typedef struct mm_node mm_node;
typedef struct mm_graph mm_graph;

/* Rows of a parameter touched in the current step (embedding tables): their gradient rows
 * are the only non-zero ones, so the optimizer updates just those and zeroes them again. */
typedef struct mm_rowset {
    int *rows;
    int n, cap;
    uint8_t *seen;  /* one flag per table row */
} mm_rowset;

typedef struct mm_op {
    const char *name;
    /* Checks the inputs and sets n->ndim/shape (shape[0] = batch capacity if batched).
     * Returns MM_OK or an error set with mm_error(). */
    mm_status (*infer)(mm_node *n);
    /* Bytes of per-node scratch that must survive from forward to backward (e.g. argmax
     * indices, dropout masks). May be NULL. Sized for the batch capacity. */
    size_t (*saved_bytes)(const mm_node *n);
    /* Bytes of temporary workspace needed only during forward or backward. May be NULL. */
    size_t (*work_bytes)(const mm_node *n);
    void (*forward)(mm_node *n);
    void (*backward)(mm_node *n);
    /* Which inputs' values the backward reads (bit i), and whether it reads its own output
     * (bit 31). Lets the planner free buffers early. 0xFFFFFFFF when unsure. */
    uint32_t backward_reads;
    /* 1: the output is the input's elements unchanged (reshape). The planner may then let it
     * share the input's buffers (n->aliased), and forward/backward must do nothing. */
    int view;
    /* Bit i: when input i has the output's shape, its gradient is the output's gradient
     * unchanged (add: both inputs; sub: the first). The planner may then give the input's
     * gradient the output's buffer, and the backward must not write it when in[i]->grad ==
     * n->grad (it already holds the result). */
    uint32_t grad_passthrough;
} mm_op;

#define MM_READS_OUTPUT (1u << 31)

enum mm_node_kind { MM_NODE_INPUT, MM_NODE_PARAM, MM_NODE_OP };

/* Per-op attributes. Ops read only the fields they document. */
typedef struct mm_attrs {
    int i[8];
    float f[4];
} mm_attrs;

struct mm_node {
    int kind;
    const mm_op *op;
    mm_graph *g;
    int id;                   /* index in g->nodes (topological order) */
    char name[48];
    int n_in;
    mm_node *in[MM_MAX_INPUTS];
    int acc[MM_MAX_INPUTS];   /* backward: 0 = overwrite input grad, 1 = accumulate */
    mm_attrs a;

    int ndim;
    int shape[MM_MAX_DIMS];   /* current shape; shape[0] is the current batch if batched */
    int batched;
    size_t size;              /* product of shape */

    float *value;             /* planned buffer (param: model storage) */
    float *grad;              /* NULL when no gradient flows here */
    void *saved;              /* saved_bytes() buffer */
    void *work;               /* work_bytes() buffer */
    int needs_grad;           /* a parameter is upstream */
    int trainable;            /* params: updated by the optimizer */
    uint64_t seed;            /* per-node RNG seed (dropout) */
    int keep;                 /* value stays valid after the run (outputs, loss) */
    mm_rowset *rows;          /* params with sparse row gradients (see mm_rowset) */

    /* planner bookkeeping */
    int runs_backward;
    int has_work;
    int aliased;              /* shares in[0]'s value and grad buffers (view ops) */
    size_t work_fwd_off, work_bwd_off;
};

struct mm_graph {
    int n, cap;
    mm_node **nodes;
    int batch_cap;            /* batch capacity the buffers were planned for */
    int batch;                /* current batch */
    int threads;              /* kernel threads the workspaces were sized for */
    int training;             /* forward in training mode (dropout, batchnorm batch stats) */
    int with_backward;        /* planned for backward */
    uint64_t step;            /* incremented per training step; feeds dropout RNG */
    char *arena;
    size_t arena_bytes;
    mm_node *loss;            /* backward starts here (scalar) */
    int failed;               /* an op met bad data at run time (e.g. id out of range) */
    char error[256];
    int external_seed;        /* 1: caller fills loss->grad before backward (tests) */
    double *prof;             /* MEDIAML_PROFILE: per node forward/backward seconds and calls */
};

mm_graph *mm_graph_new(void);
void mm_graph_free(mm_graph *g);

/* Node constructors. Shapes include the batch dimension for batched nodes. */
mm_node *mm_graph_input(mm_graph *g, const char *name, int ndim, const int *shape, int batched);
/* A parameter whose value and grad live in caller storage (the model's contiguous arrays). */
mm_node *mm_graph_param(mm_graph *g, const char *name, int ndim, const int *shape, float *value,
                        float *grad, int trainable);
/* Adds an op node; infers its shape. Returns NULL with mm_errmsg() set on a shape error. */
mm_node *mm_graph_op(mm_graph *g, const mm_op *op, int n_in, mm_node **in, const mm_attrs *a,
                     const char *name);

/* Plans buffers for batch capacity and allocates the arena (once). with_backward plans
 * gradient buffers and keeps forward values alive for backward. */
mm_status mm_graph_plan(mm_graph *g, mm_node *loss, int with_backward);
/* Sets the current batch (<= capacity) on every batched node. */
void mm_graph_set_batch(mm_graph *g, int batch);
void mm_graph_forward(mm_graph *g);
/* Backward from g->loss (seeded with d loss = 1). Parameter grads are overwritten. */
void mm_graph_backward(mm_graph *g);

/* Records a run-time data error from inside an op (ops cannot return a status); the caller
 * checks g->failed after forward and reports g->error. The first error wins. */
/* Op timing (profile.c): on when MEDIAML_PROFILE is set at plan time; the table prints to
 * stderr when the graph is freed. */
void mm_profile_start(mm_graph *g);
void mm_profile_report(const mm_graph *g);
double mm_profile_now(void);

void mm_graph_fail(mm_graph *g, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Helpers for ops. */
size_t mm_shape_size(int ndim, const int *shape);
static inline size_t mm_node_rows(const mm_node *n) { return n->size / (size_t)n->shape[n->ndim - 1]; }

/* Thread-count used by kernels. */
int mm_threads(void);
/* 1 when matmuls should run in bfloat16 (precision "medium" and a bfloat16 GEMM ready). */
int mm_matmul_bf16(void);

/* Deterministic counter-based random numbers (splitmix64). */
static inline uint64_t mm_hash64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
/* Uniform float in [0, 1) from a 64-bit hash. */
static inline float mm_u01(uint64_t h) { return (float)(h >> 40) * (1.0f / 16777216.0f); }

/* Sequential RNG (xoshiro-style state) for init and shuffling. */
typedef struct mm_rng { uint64_t s; } mm_rng;
static inline uint64_t mm_rng_next(mm_rng *r) { r->s += 0x9E3779B97F4A7C15ull; return mm_hash64(r->s); }
static inline float mm_rng_uniform(mm_rng *r) { return mm_u01(mm_rng_next(r)); }
float mm_rng_normal(mm_rng *r);

#endif
