/* Graph construction, buffer planning and execution.
 *
 * Planning: every buffer (node value, node gradient, op saved state, op workspace) gets a
 * lifetime [first step, last step] on the timeline forward(0..n-1), backward(n..2n-1), and
 * an offset in one arena, placed first-fit so that buffers whose lifetimes overlap never
 * share bytes. The arena is allocated once; runs then allocate nothing. */
#include "core/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ALIGN 64

mm_graph *mm_graph_new(void) {
    mm_graph *g = calloc(1, sizeof *g);
    return g;
}

void mm_graph_free(mm_graph *g) {
    if (!g) return;
    mm_profile_report(g);
    free(g->prof);
    for (int i = 0; i < g->n; i++) free(g->nodes[i]);
    free(g->nodes);
    free(g->arena);
    free(g);
}

static mm_node *new_node(mm_graph *g, int kind, const char *name) {
    if (!g) return NULL;
    if (g->arena) {
        mm_error(MM_ERR_STATE, "graph already planned: cannot add node '%s'", name ? name : "");
        return NULL;
    }
    if (g->n == g->cap) {
        int cap = g->cap ? g->cap * 2 : 32;
        mm_node **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            mm_error(MM_ERR_NOMEM, "out of memory adding graph node");
            return NULL;
        }
        g->nodes = nodes;
        g->cap = cap;
    }
    mm_node *n = calloc(1, sizeof *n);
    if (!n) {
        mm_error(MM_ERR_NOMEM, "out of memory adding graph node");
        return NULL;
    }
    n->kind = kind;
    n->g = g;
    n->id = g->n;
    snprintf(n->name, sizeof n->name, "%s", name ? name : "");
    n->seed = mm_hash64(0xD1B54A32D192ED03ull ^ (uint64_t)n->id);
    g->nodes[g->n++] = n;
    return n;
}

static int set_shape(mm_node *n, int ndim, const int *shape) {
    if (ndim < 1 || ndim > MM_MAX_DIMS) {
        mm_error(MM_ERR_SHAPE, "%s: rank %d out of range 1..%d", n->name, ndim, MM_MAX_DIMS);
        return 0;
    }
    n->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) {
            mm_error(MM_ERR_SHAPE, "%s: dimension %d is %d", n->name, i, shape[i]);
            return 0;
        }
        n->shape[i] = shape[i];
    }
    n->size = mm_shape_size(ndim, shape);
    return 1;
}

mm_node *mm_graph_input(mm_graph *g, const char *name, int ndim, const int *shape, int batched) {
    mm_node *n = new_node(g, MM_NODE_INPUT, name);
    if (!n || !set_shape(n, ndim, shape)) return NULL;
    n->batched = batched;
    return n;
}

mm_node *mm_graph_param(mm_graph *g, const char *name, int ndim, const int *shape, float *value,
                        float *grad, int trainable) {
    mm_node *n = new_node(g, MM_NODE_PARAM, name);
    if (!n || !set_shape(n, ndim, shape)) return NULL;
    n->value = value;
    n->grad = grad;
    n->trainable = trainable;
    n->needs_grad = grad != NULL;
    return n;
}

mm_node *mm_graph_op(mm_graph *g, const mm_op *op, int n_in, mm_node **in, const mm_attrs *a,
                     const char *name) {
    if (!g) return NULL;
    for (int i = 0; i < n_in; i++)
        if (!in[i]) return NULL; /* an earlier builder failed: its message stands */
    if (n_in > MM_MAX_INPUTS) {
        mm_error(MM_ERR_ARG, "%s: too many inputs (%d)", op->name, n_in);
        return NULL;
    }
    mm_node *n = new_node(g, MM_NODE_OP, name && *name ? name : op->name);
    if (!n) return NULL;
    n->op = op;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        n->in[i] = in[i];
        n->batched |= in[i]->batched;
        n->needs_grad |= in[i]->needs_grad;
    }
    if (a) n->a = *a;
    if (op->infer(n) != MM_OK) {
        /* Keep the message from infer; drop the node so the graph stays consistent. */
        g->n--;
        free(n);
        return NULL;
    }
    n->size = mm_shape_size(n->ndim, n->shape);
    return n;
}

/* ---- planning ---- */

typedef struct buffer {
    size_t bytes, off;
    int begin, end;
    int node, kind; /* kind: 0 value, 1 grad, 2 saved, 3 work fwd, 4 work bwd */
} buffer;

static size_t align_up(size_t x) { return (x + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

/* From 4 MiB, the arena is whole 2 MiB pages and asks Linux for transparent huge pages (which
 * Debian grants only on request, "madvise"): the kernels' strided passes over activations (the
 * transposes of the bfloat16 path, attention's heads) touch a new 4 KiB page every row, and a
 * TLB miss each. Without huge pages it is the same memory. */
#define HUGE_PAGE ((size_t)2 << 20)
static char *alloc_arena(size_t total) {
    if (total < 2 * HUGE_PAGE) return aligned_alloc(ALIGN, total ? total : ALIGN);
    const size_t bytes = (total + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    char *p = aligned_alloc(HUGE_PAGE, bytes);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure changes nothing */
#endif
    return p;
}

static int cmp_size_desc(const void *a, const void *b) {
    const buffer *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->begin - y->begin;
}

/* First-fit placement: the lowest offset not overlapping any placed buffer that is alive at
 * the same time. Buffers are placed largest first, which keeps fragmentation low. */
static size_t place_buffers(buffer *b, int nb) {
    qsort(b, (size_t)nb, sizeof *b, cmp_size_desc);
    size_t total = 0;
    for (int i = 0; i < nb; i++) {
        size_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int j = 0; j < i; j++) {
                if (b[j].end < b[i].begin || b[i].end < b[j].begin) continue;
                if (off < b[j].off + b[j].bytes && b[j].off < off + b[i].bytes) {
                    off = b[j].off + b[j].bytes;
                    moved = 1;
                }
            }
        }
        b[i].off = off;
        if (off + b[i].bytes > total) total = off + b[i].bytes;
    }
    return total;
}

/* The consumer that passes its gradient to node k unchanged, or -1: k's latest consumer that
 * runs backward (where k's gradient begins), with k once among its inputs at a
 * grad_passthrough slot, in the output's shape; k is an op with its own value group (no
 * views). */
static int passthrough_consumer(const mm_graph *g, const int *root, const int *gb, int k) {
    const int n = g->n;
    const mm_node *x = g->nodes[k];
    if (x->kind != MM_NODE_OP || gb[k] < 0 || root[k] != k) return -1;
    for (int c = k + 1; c < n; c++)
        if (root[c] == k) return -1;
    const int c = 2 * n - 1 - gb[k];
    if (c <= k || c >= n) return -1;
    const mm_node *y = g->nodes[c];
    if (!y->runs_backward || gb[c] < 0) return -1;
    int slot = -1, uses = 0;
    for (int i = 0; i < y->n_in; i++)
        if (y->in[i] == x) slot = i, uses++;
    if (uses != 1 || !(y->op->grad_passthrough & (1u << slot)) || x->ndim != y->ndim ||
        memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof x->shape[0]) != 0)
        return -1;
    return c;
}

/* Whether every consumer of node k other than c has an id below limit. */
static int consumers_below(const mm_graph *g, int k, int c, int limit) {
    for (int j = limit; j < g->n; j++) {
        if (j == c) continue;
        for (int i = 0; i < g->nodes[j]->n_in; i++)
            if (g->nodes[j]->in[i] == g->nodes[k]) return 0;
    }
    return 1;
}

/* An op y whose gradient for an input x is its own gradient unchanged (the residual adds of a
 * Transformer; op->grad_passthrough) would copy it into x's gradient when it is x's first
 * writer. Instead x's gradient takes over y's buffer: y's gradient is dead once y's backward
 * has run, which is when x's begins, and y's backward skips the copy (in[i]->grad ==
 * n->grad). Chains (the add of an add) pass the buffer along. The second input of a binary y
 * may share it too when the two lifetimes cannot meet: the later-built input (hi) is read
 * only by its own backward, which comes first, and nothing writes the earlier one's (lo's)
 * gradient before that (its other consumers come before hi) and hi never passes its buffer
 * on. groot[k]: the node whose gradient buffer k uses; lifetimes merge into it. */
static void pass_gradients(mm_graph *g, const int *root, int *gb, int *ge, int *groot) {
    const int n = g->n;
    int *taker = calloc((size_t)n, sizeof *taker); /* 1 + the input that took y's buffer */
    if (!taker) return; /* an optimization only: every gradient keeps its own buffer */
    for (int k = n - 1; k >= 0; k--) { /* consumers first: their groot is final */
        const int c = passthrough_consumer(g, root, gb, k);
        if (c < 0) continue;
        if (taker[c]) { /* second input: hi = the first taker, lo = k */
            const int hi = taker[c] - 1;
            if (taker[c] < 0 || g->nodes[hi]->op->grad_passthrough || !consumers_below(g, hi, c, hi + 1) ||
                !consumers_below(g, k, c, hi))
                continue;
            taker[c] = -1; /* both inputs share it now */
        } else {
            taker[c] = k + 1;
        }
        const int r = groot[c];
        groot[k] = r;
        if (gb[k] < gb[r]) gb[r] = gb[k];
        if (ge[k] > ge[r]) ge[r] = ge[k];
    }
    free(taker);
}

mm_status mm_graph_plan(mm_graph *g, mm_node *loss, int with_backward) {
    if (!g || g->n == 0) return mm_error(MM_ERR_STATE, "cannot plan an empty graph");
    if (g->arena) return mm_error(MM_ERR_STATE, "graph already planned");
    if (with_backward && !loss) return mm_error(MM_ERR_ARG, "backward needs a loss node");
    int n = g->n;
    g->loss = loss;
    g->with_backward = with_backward;
    g->batch_cap = g->batch = 0;
    g->threads = mm_threads();
    for (int i = 0; i < n; i++)
        if (g->nodes[i]->batched) {
            g->batch_cap = g->batch = g->nodes[i]->shape[0];
            break;
        }
    if (loss) loss->keep = 1;

    /* Which nodes lie on a path to the loss and need a gradient. */
    char *on_path = calloc((size_t)n, 1);
    char *written = calloc((size_t)n, 1);
    buffer *bufs = calloc((size_t)n * 5, sizeof *bufs);
    if (!on_path || !written || !bufs) {
        free(on_path), free(written), free(bufs);
        return mm_error(MM_ERR_NOMEM, "out of memory planning graph");
    }
    if (with_backward) {
        on_path[loss->id] = 1;
        for (int k = loss->id; k >= 0; k--) {
            mm_node *x = g->nodes[k];
            if (!on_path[k] || !x->needs_grad) continue;
            for (int i = 0; i < x->n_in; i++) on_path[x->in[i]->id] = 1;
        }
    }
    for (int k = 0; k < n; k++) {
        mm_node *x = g->nodes[k];
        x->runs_backward = with_backward && on_path[k] && x->needs_grad && x->kind == MM_NODE_OP;
        if (x->kind == MM_NODE_OP) x->grad = NULL;
    }

    /* Lifetimes. F(k) = k, B(k) = 2n-1-k. */
    int last = 2 * n; /* beyond every step: "kept" */
    /* Value and gradient lifetimes per node; -2 marks "no buffer". */
    int *vb = malloc((size_t)n * 6 * sizeof(int));
    if (!vb) {
        free(on_path), free(written), free(bufs);
        return mm_error(MM_ERR_NOMEM, "out of memory planning graph");
    }
    int *ve = vb + n, *gb = vb + 2 * n, *ge = vb + 3 * n, *root = vb + 4 * n, *groot = vb + 5 * n;
    for (int k = 0; k < n; k++) {
        mm_node *x = g->nodes[k];
        vb[k] = ve[k] = gb[k] = ge[k] = -2;
        root[k] = k;
        if (x->kind == MM_NODE_PARAM) continue;
        int end = k, consumers = 0;
        for (int c = k + 1; c < n; c++) {
            mm_node *y = g->nodes[c];
            for (int i = 0; i < y->n_in; i++) {
                if (y->in[i] != x) continue;
                consumers++;
                if (c > end) end = c;
                uint32_t reads = y->op->backward_reads;
                if (y->runs_backward && (reads & (1u << i)) && 2 * n - 1 - c > end)
                    end = 2 * n - 1 - c;
            }
        }
        if (x->runs_backward && (x->op->backward_reads & MM_READS_OUTPUT) && 2 * n - 1 - k > end)
            end = 2 * n - 1 - k;
        if (x->keep) end = last;
        vb[k] = x->kind == MM_NODE_INPUT ? -1 : k;
        ve[k] = end;
        /* A view op (reshape) whose input has no other consumer shares the input's buffers. */
        x->aliased = 0;
        if (x->kind == MM_NODE_OP && x->op->view && x->in[0]->kind != MM_NODE_PARAM) {
            int src = x->in[0]->id, uses = 0;
            for (int c = src + 1; c < n; c++)
                for (int i = 0; i < g->nodes[c]->n_in; i++) uses += g->nodes[c]->in[i] == x->in[0];
            if (uses == 1) root[k] = root[src], x->aliased = 1;
        }
        (void)consumers;
        if (x->kind != MM_NODE_OP) continue;
        if (x->runs_backward || (with_backward && x == loss && x->needs_grad)) {
            int begin = 2 * n - 1 - k;
            for (int c = k + 1; c < n; c++) {
                mm_node *y = g->nodes[c];
                if (!y->runs_backward) continue;
                for (int i = 0; i < y->n_in; i++)
                    if (y->in[i] == x && 2 * n - 1 - c < begin) begin = 2 * n - 1 - c;
            }
            if (g->external_seed && x == loss) begin = n; /* caller writes it after forward */
            gb[k] = begin;
            ge[k] = 2 * n - 1 - k;
        }
    }
    /* Merge each alias group's lifetimes into its root. */
    for (int k = 0; k < n; k++) {
        int r = root[k];
        if (r == k) continue;
        if (ve[k] > ve[r]) ve[r] = ve[k];
        if (gb[k] >= 0 && (gb[r] < 0 || gb[k] < gb[r])) gb[r] = gb[k];
        if (ge[k] > ge[r]) ge[r] = ge[k];
    }
    /* Gradients share buffers with their value groups, and beyond: see pass_gradients. */
    for (int k = 0; k < n; k++) groot[k] = root[k];
    pass_gradients(g, root, gb, ge, groot);
    int nb = 0;
    for (int k = 0; k < n; k++) {
        mm_node *x = g->nodes[k];
        if (x->kind == MM_NODE_PARAM) continue;
        if (root[k] == k) {
            bufs[nb++] = (buffer){align_up(x->size * sizeof(float)), 0, vb[k], ve[k], k, 0};
        }
        if (groot[k] == k && gb[k] >= 0)
            bufs[nb++] = (buffer){align_up(x->size * sizeof(float)), 0, gb[k], ge[k], k, 1};
        if (x->kind != MM_NODE_OP) continue;
        size_t saved = x->op->saved_bytes ? x->op->saved_bytes(x) : 0;
        if (saved)
            bufs[nb++] = (buffer){align_up(saved), 0, k, x->runs_backward ? 2 * n - 1 - k : k, k, 2};
        size_t work = x->op->work_bytes ? x->op->work_bytes(x) : 0;
        x->has_work = work > 0;
        if (work) {
            bufs[nb++] = (buffer){align_up(work), 0, k, k, k, 3};
            if (x->runs_backward)
                bufs[nb++] = (buffer){align_up(work), 0, 2 * n - 1 - k, 2 * n - 1 - k, k, 4};
        }
    }
    size_t total = place_buffers(bufs, nb);
    g->arena = alloc_arena(total);
    if (!g->arena) {
        free(on_path), free(written), free(bufs);
        return mm_error(MM_ERR_NOMEM, "out of memory allocating %zu bytes of activations", total);
    }
    memset(g->arena, 0, total ? total : ALIGN);
    g->arena_bytes = total;
    mm_profile_start(g);
    for (int i = 0; i < nb; i++) {
        mm_node *x = g->nodes[bufs[i].node];
        char *p = g->arena + bufs[i].off;
        switch (bufs[i].kind) {
        case 0: x->value = (float *)p; break;
        case 1: x->grad = (float *)p; break;
        case 2: x->saved = p; break;
        case 3: x->work_fwd_off = bufs[i].off; x->work = p; break;
        case 4: x->work_bwd_off = bufs[i].off; break;
        }
    }
    for (int k = 0; k < n; k++) {
        mm_node *x = g->nodes[k];
        if (root[k] != k) x->value = g->nodes[root[k]]->value;
        if (groot[k] != k && gb[k] >= 0) x->grad = g->nodes[groot[k]]->grad;
    }
    free(vb);
    /* First writer of each gradient overwrites, later ones accumulate. Backward runs in
     * reverse node order, so the first writer is the latest consumer. */
    for (int k = n - 1; k >= 0; k--) {
        mm_node *y = g->nodes[k];
        if (!y->runs_backward) continue;
        for (int i = 0; i < y->n_in; i++) {
            mm_node *x = y->in[i];
            if (!x->grad) continue;
            y->acc[i] = written[x->id];
            written[x->id] = 1;
        }
    }
    /* Parameters that no backward writes still hand the optimizer a zero gradient. */
    for (int k = 0; k < n; k++) {
        mm_node *x = g->nodes[k];
        if (x->kind == MM_NODE_PARAM && x->grad && !written[k]) memset(x->grad, 0, x->size * sizeof(float));
    }
    free(on_path), free(written), free(bufs);
    return MM_OK;
}

void mm_graph_set_batch(mm_graph *g, int batch) {
    if (batch < 1) batch = 1;
    if (batch > g->batch_cap && g->batch_cap > 0) batch = g->batch_cap;
    g->batch = batch;
    for (int k = 0; k < g->n; k++) {
        mm_node *x = g->nodes[k];
        if (!x->batched) continue;
        x->shape[0] = batch;
        x->size = mm_shape_size(x->ndim, x->shape);
    }
}

void mm_graph_fail(mm_graph *g, const char *fmt, ...) {
    int first = 0;
#pragma omp critical(mm_graph_fail)
    {
        if (!g->failed) first = g->failed = 1;
    }
    if (!first) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
}

void mm_graph_forward(mm_graph *g) {
    g->failed = 0;
    for (int k = 0; k < g->n; k++) {
        mm_node *x = g->nodes[k];
        if (x->kind != MM_NODE_OP) continue;
        x->work = x->has_work ? g->arena + x->work_fwd_off : NULL;
        if (!g->prof) {
            x->op->forward(x);
            continue;
        }
        const double t0 = mm_profile_now();
        x->op->forward(x);
        g->prof[4 * (size_t)k] += mm_profile_now() - t0, g->prof[4 * (size_t)k + 2] += 1;
    }
}

void mm_graph_backward(mm_graph *g) {
    if (!g->with_backward || !g->loss) return;
    if (!g->external_seed)
        for (size_t i = 0; i < g->loss->size; i++) g->loss->grad[i] = 1.0f;
    for (int k = g->loss->id; k >= 0; k--) {
        mm_node *x = g->nodes[k];
        if (!x->runs_backward) continue;
        x->work = x->has_work ? g->arena + x->work_bwd_off : NULL;
        if (!g->prof) {
            x->op->backward(x);
            continue;
        }
        const double t0 = mm_profile_now();
        x->op->backward(x);
        g->prof[4 * (size_t)k + 1] += mm_profile_now() - t0, g->prof[4 * (size_t)k + 3] += 1;
    }
}
