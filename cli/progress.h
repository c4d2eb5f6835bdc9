/* Training progress for mm_fit's callback: a one-line bar on a terminal, one line per epoch
 * otherwise, or one JSON object per epoch. */
#ifndef MEDIAML_CLI_PROGRESS_H
#define MEDIAML_CLI_PROGRESS_H

#include <mediaml.h>

#include <signal.h>
#include <stdio.h>

typedef enum progress_mode {
    PROGRESS_BAR,    /* terminal: \r-updated bar, then a final line per epoch */
    PROGRESS_LINES,  /* one line per epoch */
    PROGRESS_JSON    /* one JSON object per epoch */
} progress_mode;

typedef struct progress_state {
    progress_mode mode;
    FILE *out;
    const volatile sig_atomic_t *stop; /* non-zero: stop at the end of this epoch (SIGINT) */
    int stop_noted;                    /* the stop has been announced */
    double last_draw;                  /* monotonic time of the last bar update */
    double train_seconds;              /* training time of the epoch so far (no validation) */
    int bar_shown;                     /* a bar line is on screen */
    const char *unit;                  /* rate in text output: "img/s" unless set after init */
} progress_state;

/* PROGRESS_BAR when out is a terminal, else PROGRESS_LINES; PROGRESS_JSON when json. */
void progress_init(progress_state *s, FILE *out, int json, const volatile sig_atomic_t *stop);

/* mm_progress_fn: user is a progress_state. */
int progress_callback(const mm_progress *p, void *user);

/* Ends a bar line left on screen (after an interrupted epoch). */
void progress_finish(progress_state *s);

/* The test-split result: a text line or a JSON object. */
void progress_test(progress_state *s, double loss, double accuracy);

#endif
