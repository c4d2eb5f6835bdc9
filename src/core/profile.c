/* Per-op wall-clock profile of a graph, for finding where a training step spends its time
 * (like torch.profiler's table, without a Python stack). MEDIAML_PROFILE=1 turns it on for
 * every graph planned afterwards; the table goes to stderr when the graph is freed. Timing costs
 * two clock reads per op call, so it is off unless asked for. */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double mm_profile_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void mm_profile_start(mm_graph *g) {
    const char *env = getenv("MEDIAML_PROFILE");
    if (!env || !*env || strcmp(env, "0") == 0) return;
    /* per node: forward seconds, backward seconds, forward calls, backward calls */
    g->prof = calloc((size_t)g->n * 4, sizeof(double));
}

typedef struct {
    const char *op;
    double fwd, bwd, calls;
} prof_row;

static int by_total_desc(const void *a, const void *b) {
    const prof_row *x = a, *y = b;
    const double tx = x->fwd + x->bwd, ty = y->fwd + y->bwd;
    return tx < ty ? 1 : tx > ty ? -1 : strcmp(x->op, y->op);
}

void mm_profile_report(const mm_graph *g) {
    if (!g->prof) return;
    prof_row *rows = calloc((size_t)g->n, sizeof *rows);
    if (!rows) return;
    int nr = 0;
    double total = 0;
    for (int i = 0; i < g->n; i++) {
        const mm_node *x = g->nodes[i];
        const double *p = g->prof + 4 * (size_t)i;
        if (x->kind != MM_NODE_OP || p[2] + p[3] == 0) continue;
        int r = 0;
        while (r < nr && strcmp(rows[r].op, x->op->name) != 0) r++;
        if (r == nr) rows[nr++].op = x->op->name;
        rows[r].fwd += p[0], rows[r].bwd += p[1], rows[r].calls += p[2] + p[3];
        total += p[0] + p[1];
    }
    if (nr > 0 && total > 0) {
        qsort(rows, (size_t)nr, sizeof *rows, by_total_desc);
        fprintf(stderr, "mediaml profile (graph of %d nodes): wall seconds per op kind\n", g->n);
        fprintf(stderr, "  %-22s %10s %10s %10s %7s %10s\n", "op", "forward", "backward", "total", "share", "calls");
        for (int r = 0; r < nr; r++)
            fprintf(stderr, "  %-22s %10.3f %10.3f %10.3f %6.1f%% %10.0f\n", rows[r].op, rows[r].fwd, rows[r].bwd,
                    rows[r].fwd + rows[r].bwd, 100.0 * (rows[r].fwd + rows[r].bwd) / total, rows[r].calls);
        fprintf(stderr, "  %-22s %32.3f\n", "all ops", total);
    }
    free(rows);
}
