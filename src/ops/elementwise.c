/* add / sub / mul / div with NumPy broadcasting (shapes aligned from the right).
 *
 * Broadcast strides are computed from the inputs' current shapes on every run, so a batched
 * input may change its batch between runs. Fast paths: equal shapes (flat loop) and b a
 * trailing-dims broadcast of a (bias-like, [N, C] + [C]). Backward reduces over broadcast
 * dimensions: each input-gradient element is summed sequentially in a fixed order (or from
 * fixed-size row blocks combined in order), so results do not depend on the thread count.
 *
 * attrs: i[0] = operation (EW_ADD, EW_SUB, EW_MUL, EW_DIV); i[1] (set by infer) = doubles of
 * workspace for the blocked bias gradient, from the shapes at batch capacity. */
#include "ops/ops.h"

#include <stdio.h>
#include <string.h>

enum { EW_ADD, EW_SUB, EW_MUL, EW_DIV };

#define PAR_MIN 32768
#define ROW_BLOCK 256 /* rows per partial sum in the bias-gradient reduction */

static int nthreads(const mm_node *n) {
    return n->g && n->g->threads > 0 ? n->g->threads : mm_threads();
}

static const char *op_name(int op) {
    static const char *names[] = {"add", "sub", "mul", "div"};
    return names[op];
}

static void fmt_shape(char *buf, size_t len, int ndim, const int *shape) {
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, i ? ",%d" : "%d", shape[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

/* Dimension d (0..nd-1 of the nd-dim aligned shape) of x, 1 where x has no such dim. */
static int aligned_dim(const mm_node *x, int nd, int d) {
    int k = d - (nd - x->ndim);
    return k < 0 ? 1 : x->shape[k];
}

/* ------------------------------------------------------------------ run-time layout */

typedef struct bcast {
    int nd;
    int shape[MM_MAX_DIMS];   /* output shape */
    size_t sa[MM_MAX_DIMS];   /* element strides of a / b in output coordinates (0: broadcast) */
    size_t sb[MM_MAX_DIMS];
    size_t so[MM_MAX_DIMS];   /* output strides */
    size_t size;
} bcast;

static void strides_of(const mm_node *x, int nd, size_t *s) {
    size_t st = 1;
    for (int d = nd - 1; d >= 0; d--) {
        int dim = aligned_dim(x, nd, d);
        s[d] = dim == 1 ? 0 : st;
        st *= (size_t)dim;
    }
}

static void bcast_setup(const mm_node *a, const mm_node *b, bcast *bc) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    bc->nd = nd;
    bc->size = 1;
    for (int d = 0; d < nd; d++) {
        int da = aligned_dim(a, nd, d), db = aligned_dim(b, nd, d);
        bc->shape[d] = da == 1 ? db : da;
        bc->size *= (size_t)bc->shape[d];
    }
    strides_of(a, nd, bc->sa);
    strides_of(b, nd, bc->sb);
    size_t st = 1;
    for (int d = nd - 1; d >= 0; d--) {
        bc->so[d] = st;
        st *= (size_t)bc->shape[d];
    }
}

static int same_shape(const mm_node *x, const bcast *bc) {
    if (x->ndim != bc->nd) return 0;
    for (int d = 0; d < bc->nd; d++)
        if (x->shape[d] != bc->shape[d]) return 0;
    return 1;
}

/* If x is a trailing-dims broadcast of the output (leading dims 1 or missing, the rest equal
 * to the output's), returns the length of the trailing block it covers; else 0. */
static size_t trailing_block(const mm_node *x, const bcast *bc) {
    int nd = bc->nd, k = nd;
    while (k > 0 && aligned_dim(x, nd, k - 1) == bc->shape[k - 1]) k--;
    for (int d = 0; d < k; d++)
        if (aligned_dim(x, nd, d) != 1) return 0;
    size_t t = 1;
    for (int d = k; d < nd; d++) t *= (size_t)bc->shape[d];
    return t;
}

/* ------------------------------------------------------------------ infer */

static mm_status ew_infer(mm_node *n) {
    mm_node *a = n->in[0], *b = n->in[1];
    const char *name = op_name(n->a.i[0]);
    char sa[96], sb[96];
    fmt_shape(sa, sizeof sa, a->ndim, a->shape);
    fmt_shape(sb, sizeof sb, b->ndim, b->shape);
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = 0; d < nd; d++) {
        int da = aligned_dim(a, nd, d), db = aligned_dim(b, nd, d);
        if (da != db && da != 1 && db != 1)
            return mm_error(MM_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", name, sa, sb);
        n->shape[d] = da == 1 ? db : da;
    }
    n->ndim = nd;
    /* The batch dimension must stay dimension 0 of the output and line up only with another
     * batch dimension or with a 1, so the broadcast holds for every batch size. */
    const mm_node *xs[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        const mm_node *x = xs[i], *y = xs[1 - i];
        if (!x->batched) continue;
        if (x->ndim < nd)
            return mm_error(MM_ERR_SHAPE,
                            "%s: shapes %s and %s do not broadcast: the batched input must have "
                            "the higher rank", name, sa, sb);
        if (y->ndim == nd && !y->batched && y->shape[0] != 1)
            return mm_error(MM_ERR_SHAPE,
                            "%s: shapes %s and %s do not broadcast for every batch size "
                            "(dimension 0 of %s is the batch)", name, sa, sb, i == 0 ? sa : sb);
    }
    n->batched = a->batched || b->batched;
    /* Shapes are at batch capacity here: size the blocked bias-gradient workspace. */
    n->a.i[1] = 0;
    bcast bc;
    bcast_setup(a, b, &bc);
    size_t tb = (same_shape(a, &bc) && !same_shape(b, &bc)) ? trailing_block(b, &bc) : 0;
    if (tb && bc.size / tb > ROW_BLOCK) {
        size_t doubles = (bc.size / tb + ROW_BLOCK - 1) / ROW_BLOCK * tb;
        if (doubles > (size_t)INT32_MAX)
            return mm_error(MM_ERR_SHAPE, "%s: shapes %s and %s are too large", name, sa, sb);
        n->a.i[1] = (int)doubles;
    }
    return MM_OK;
}

/* ------------------------------------------------------------------ forward */

#define EW_APPLY(OP, x, y) \
    ((OP) == EW_ADD ? (x) + (y) : (OP) == EW_SUB ? (x) - (y) : (OP) == EW_MUL ? (x) * (y) : (x) / (y))

/* One loop per op so that the compiler sees a constant operation in each. */
#define EW_FORWARD_CASES(OP)                                                                  \
    if (mode == 0) {                                                                          \
        _Pragma("omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)")        \
        for (long i = 0; i < (long)size; i++) y[i] = EW_APPLY(OP, av[i], bv[i]);              \
    } else if (mode == 1) {                                                                   \
        long rows = (long)(size / tb);                                                        \
        _Pragma("omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)")        \
        for (long r = 0; r < rows; r++) {                                                     \
            const float *ar = av + (size_t)r * tb;                                            \
            float *yr = y + (size_t)r * tb;                                                   \
            for (size_t t = 0; t < tb; t++) yr[t] = EW_APPLY(OP, ar[t], bv[t]);               \
        }                                                                                     \
    } else {                                                                                  \
        int nd = bc.nd;                                                                       \
        size_t inner = (size_t)bc.shape[nd - 1];                                              \
        size_t ia = bc.sa[nd - 1], ib = bc.sb[nd - 1];                                        \
        long rows = (long)(size / inner);                                                     \
        _Pragma("omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)")        \
        for (long r = 0; r < rows; r++) {                                                     \
            size_t rem = (size_t)r, oa = 0, ob = 0;                                           \
            for (int d = nd - 2; d >= 0; d--) {                                               \
                size_t idx = rem % (size_t)bc.shape[d];                                       \
                rem /= (size_t)bc.shape[d];                                                   \
                oa += idx * bc.sa[d];                                                         \
                ob += idx * bc.sb[d];                                                         \
            }                                                                                 \
            float *yr = y + (size_t)r * inner;                                                \
            for (size_t t = 0; t < inner; t++) yr[t] = EW_APPLY(OP, av[oa + t * ia], bv[ob + t * ib]); \
        }                                                                                     \
    }

static void ew_forward(mm_node *n) {
    const mm_node *a = n->in[0], *b = n->in[1];
    bcast bc;
    bcast_setup(a, b, &bc);
    const float *av = a->value, *bv = b->value;
    float *y = n->value;
    size_t size = bc.size, tb = 0;
    int nt = nthreads(n);
    int mode = 2;
    if (same_shape(a, &bc) && same_shape(b, &bc)) mode = 0;
    else if (same_shape(a, &bc) && (tb = trailing_block(b, &bc)) > 0) mode = 1;
    switch (n->a.i[0]) {
    case EW_ADD: EW_FORWARD_CASES(EW_ADD) break;
    case EW_SUB: EW_FORWARD_CASES(EW_SUB) break;
    case EW_MUL: EW_FORWARD_CASES(EW_MUL) break;
    default: EW_FORWARD_CASES(EW_DIV) break;
    }
}

/* ------------------------------------------------------------------ backward */

/* d out / d (input which) times the upstream gradient gy, given the input values. */
static inline float ew_dfac(int op, int which, float gy, float av, float bv) {
    switch (op) {
    case EW_ADD: return gy;
    case EW_SUB: return which ? -gy : gy;
    case EW_MUL: return which ? gy * av : gy * bv;
    default: return which ? -gy * av / (bv * bv) : gy / bv;
    }
}

static inline void put(float *dst, int acc, float v) {
    if (acc) *dst += v;
    else *dst = v;
}

/* General case: each element j of input `which` sums, in a fixed order, the output elements
 * that broadcast from it. */
static void grad_general(mm_node *n, int which, const bcast *bc) {
    const mm_node *x = n->in[which];
    const int op = n->a.i[0], acc = n->acc[which], nd = bc->nd;
    const float *av = n->in[0]->value, *bv = n->in[1]->value, *gy = n->grad;
    float *gx = x->grad;
    const size_t *sother = which ? bc->sa : bc->sb;
    const float *xv = which ? bv : av, *othv = which ? av : bv;
    /* Reduced dims: output dims where x is broadcast. */
    int rd[MM_MAX_DIMS], nr = 0;
    size_t rcount = 1;
    for (int d = 0; d < nd; d++)
        if (aligned_dim(x, nd, d) == 1 && bc->shape[d] > 1) {
            rd[nr++] = d;
            rcount *= (size_t)bc->shape[d];
        }
    size_t xsize = mm_shape_size(x->ndim, x->shape);
    int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(bc->size > PAR_MIN)
    for (long j = 0; j < (long)xsize; j++) {
        /* Output / other-input offsets of element j (x's index along its own dims). */
        size_t rem = (size_t)j, oo = 0, ot = 0;
        for (int d = nd - 1; d >= 0; d--) {
            int dim = aligned_dim(x, nd, d);
            size_t idx = rem % (size_t)dim;
            rem /= (size_t)dim;
            oo += idx * bc->so[d];
            ot += idx * sother[d];
        }
        double s = 0;
        int ridx[MM_MAX_DIMS] = {0};
        size_t ro = 0, rt = 0;
        for (size_t c = 0; c < rcount; c++) {
            float gv = gy[oo + ro];
            float other = (op == EW_MUL || op == EW_DIV) ? othv[ot + rt] : 0.0f;
            float self = (op == EW_DIV && which == 1) ? xv[j] : 0.0f;
            float avv = which ? other : self, bvv = which ? self : other;
            s += ew_dfac(op, which, gv, avv, bvv);
            /* Next reduced index (odometer over the broadcast dims). */
            for (int k = nr - 1; k >= 0; k--) {
                int d = rd[k];
                ro += bc->so[d];
                rt += sother[d];
                if (++ridx[k] < bc->shape[d]) break;
                ro -= (size_t)bc->shape[d] * bc->so[d];
                rt -= (size_t)bc->shape[d] * sother[d];
                ridx[k] = 0;
            }
        }
        put(gx + j, acc, (float)s);
    }
}

/* Equal shapes: flat loops. */
static void grad_flat(mm_node *n, int which, size_t size) {
    const int op = n->a.i[0], acc = n->acc[which];
    const float *av = n->in[0]->value, *bv = n->in[1]->value, *gy = n->grad;
    float *gx = n->in[which]->grad;
    int nt = nthreads(n);
    if (op == EW_ADD || (op == EW_SUB && which == 0)) {
        if (!acc) memcpy(gx, gy, size * sizeof(float));
        else {
#pragma omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)
            for (long i = 0; i < (long)size; i++) gx[i] += gy[i];
        }
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)
    for (long i = 0; i < (long)size; i++) {
        float v = ew_dfac(op, which, gy[i], av[i], bv[i]);
        if (acc) gx[i] += v;
        else gx[i] = v;
    }
}

/* a full-shape, b a trailing block of length tb: gradient of a. */
static void grad_trailing_a(mm_node *n, size_t size, size_t tb) {
    const int op = n->a.i[0], acc = n->acc[0];
    const float *bv = n->in[1]->value, *gy = n->grad;
    float *gx = n->in[0]->grad;
    long rows = (long)(size / tb);
    int nt = nthreads(n);
#pragma omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)
    for (long r = 0; r < rows; r++) {
        const float *g = gy + (size_t)r * tb;
        float *d = gx + (size_t)r * tb;
        for (size_t t = 0; t < tb; t++) {
            float v = ew_dfac(op, 0, g[t], 0.0f, bv[t]);
            if (acc) d[t] += v;
            else d[t] = v;
        }
    }
}

/* b a trailing block of length tb: gradient of b, summed over rows. Few rows: one sequential
 * sum per column. Many rows: fixed blocks of ROW_BLOCK rows summed in parallel into the
 * workspace, then combined in block order. */
static void grad_trailing_b(mm_node *n, size_t size, size_t tb) {
    const int op = n->a.i[0], acc = n->acc[1];
    const float *av = n->in[0]->value, *bv = n->in[1]->value, *gy = n->grad;
    float *gb = n->in[1]->grad;
    size_t rows = size / tb;
    int nt = nthreads(n);
    /* The blocked path needs the workspace planned at capacity; a batch of 1 can make a
     * broadcast trailing that was not at capacity, then the column path serves. */
    size_t nbk = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
    if (rows <= ROW_BLOCK || nbk * tb > (size_t)n->a.i[1]) {
#pragma omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)
        for (long t = 0; t < (long)tb; t++) {
            double s = 0;
            for (size_t r = 0; r < rows; r++)
                s += ew_dfac(op, 1, gy[r * tb + (size_t)t], av[r * tb + (size_t)t], bv[t]);
            put(gb + t, acc, (float)s);
        }
        return;
    }
    double *part = n->work;
    long nb = (long)nbk;
#pragma omp parallel for num_threads(nt) schedule(static) if(size > PAR_MIN)
    for (long k = 0; k < nb; k++) {
        double *p = part + (size_t)k * tb;
        for (size_t t = 0; t < tb; t++) p[t] = 0;
        size_t r0 = (size_t)k * ROW_BLOCK, r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
        for (size_t r = r0; r < r1; r++) {
            const float *g = gy + r * tb, *ar = av + r * tb;
            for (size_t t = 0; t < tb; t++) p[t] += ew_dfac(op, 1, g[t], ar[t], bv[t]);
        }
    }
#pragma omp parallel for num_threads(nt) schedule(static) if(tb > 4096)
    for (long t = 0; t < (long)tb; t++) {
        double s = 0;
        for (long k = 0; k < nb; k++) s += part[(size_t)k * tb + (size_t)t];
        put(gb + t, acc, (float)s);
    }
}

static void ew_backward(mm_node *n) {
    const mm_node *a = n->in[0], *b = n->in[1];
    bcast bc;
    bcast_setup(a, b, &bc);
    int a_full = same_shape(a, &bc), b_full = same_shape(b, &bc);
    size_t tb = (a_full && !b_full) ? trailing_block(b, &bc) : 0;
    /* Input 0 first: when a and b are the same node, input 1 accumulates onto it. An input
     * whose gradient is this node's own buffer (grad_passthrough) already holds its result. */
    if (a->grad && a->grad != n->grad) {
        if (a_full && b_full) grad_flat(n, 0, bc.size);
        else if (tb) grad_trailing_a(n, bc.size, tb);
        else grad_general(n, 0, &bc);
    }
    if (b->grad && b->grad != n->grad) {
        if (a_full && b_full) grad_flat(n, 1, bc.size);
        else if (tb) grad_trailing_b(n, bc.size, tb);
        else grad_general(n, 1, &bc);
    }
}

/* Workspace for the blocked bias-gradient reduction: a.i[1] doubles, decided by infer from
 * the shapes at batch capacity. */
static size_t ew_work_bytes(const mm_node *n) {
    if (!n->in[1]->needs_grad) return 0;
    return (size_t)n->a.i[1] * sizeof(double);
}

#define EW_OP(NAME, READS, PASS)                                                              \
    static const mm_op NAME##_op = {                                                          \
        .name = #NAME,                                                                        \
        .infer = ew_infer,                                                                    \
        .saved_bytes = NULL,                                                                  \
        .work_bytes = ew_work_bytes,                                                          \
        .forward = ew_forward,                                                                \
        .backward = ew_backward,                                                              \
        .backward_reads = (READS),                                                            \
        .grad_passthrough = (PASS),                                                           \
    };

EW_OP(add, 0, 3u)
EW_OP(sub, 0, 1u)
EW_OP(mul, 3u, 0)
EW_OP(div, 3u, 0)

static mm_node *ew_build(mm_graph *g, const mm_op *op, int code, mm_node *a, mm_node *b) {
    if (!g || !a || !b) return NULL;
    mm_attrs at = {0};
    at.i[0] = code;
    mm_node *in[2] = {a, b};
    return mm_graph_op(g, op, 2, in, &at, op->name);
}

mm_node *mm_g_add(mm_graph *g, mm_node *a, mm_node *b) { return ew_build(g, &add_op, EW_ADD, a, b); }
mm_node *mm_g_sub(mm_graph *g, mm_node *a, mm_node *b) { return ew_build(g, &sub_op, EW_SUB, a, b); }
mm_node *mm_g_mul(mm_graph *g, mm_node *a, mm_node *b) { return ew_build(g, &mul_op, EW_MUL, a, b); }
mm_node *mm_g_div(mm_graph *g, mm_node *a, mm_node *b) { return ew_build(g, &div_op, EW_DIV, a, b); }
