/* Optimizers over one contiguous array of trainable weights and its gradient. */
#ifndef MM_OPTIM_H
#define MM_OPTIM_H

#include "mediaml.h"

enum mm_optim_kind { MM_OPT_SGD, MM_OPT_ADAM, MM_OPT_ADAMW, MM_OPT_RMSPROP };
enum mm_schedule_kind { MM_SCHED_CONSTANT, MM_SCHED_STEP, MM_SCHED_COSINE };

typedef struct mm_optimizer {
    int kind, schedule;
    float lr, momentum, beta_1, beta_2, epsilon, weight_decay, rho, global_clipnorm;
    int nesterov, warmup_steps, decay_steps;
    float decay_rate, alpha;
    size_t n;
    float *slot1, *slot2; /* adam/adamw: m, v; sgd: velocity; rmsprop: mean square, momentum */
    long step;            /* updates applied so far */
    float cur_lr, cur_alpha; /* this step's rate and Adam step size (mm_optimizer_begin_step) */
} mm_optimizer;

/* Fills Keras defaults for zero fields and allocates state for n weights. */
mm_status mm_optimizer_new(const mm_compile_args *a, size_t n, mm_optimizer **out);
void mm_optimizer_free(mm_optimizer *o);
/* Learning rate used for update number step (0-based), after warm-up and schedule. */
float mm_optimizer_lr(const mm_optimizer *o, long step);
/* Clips g to the global norm (if set) and applies one update to all of w. */
void mm_optimizer_step(mm_optimizer *o, float *w, float *g);
/* The same in parts, for updates that skip untouched rows: begin_step once, then update any
 * ranges [begin, end) of w/g (state slots at the same offsets). */
void mm_optimizer_begin_step(mm_optimizer *o);
void mm_optimizer_update(mm_optimizer *o, float *w, float *g, size_t begin, size_t end);
/* Row-sparse tables: updates rows[0..n) of the [*, d] table starting at offset base of w/g
 * (after begin_step), then zeroes those gradient rows for the next step's accumulation. One
 * call per table per step: the per-row work is a few vectors, so the loop stays here. */
void mm_optimizer_update_rows(mm_optimizer *o, float *w, float *g, size_t base, size_t d, const int *rows, int n);
/* Scales g[begin, end) so that a gradient whose squares sum to sum_squares has at most the
 * clip norm (call per range with the global sum). */
void mm_optimizer_clip(const mm_optimizer *o, float *g, size_t begin, size_t end, double sum_squares);
/* Number of state slots (arrays of n floats) and their names, for checkpoints. */
int mm_optimizer_slots(const mm_optimizer *o, float **slots, const char **names);
const char *mm_optimizer_name(const mm_optimizer *o);
int mm_optimizer_kind_from_name(const char *name);

#endif
