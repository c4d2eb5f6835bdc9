/* Training progress: Keras-like bar on a terminal, plain or JSON lines otherwise. */
#include "progress.h"

#include "json.h"

#include <math.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 24
#define REDRAW_SECONDS 0.1

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int terminal_columns(FILE *f) {
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

/* 42s, 3:07, 1:02:03 */
static void duration(char *buf, size_t n, double s) {
    long t = (long)(s + 0.5);
    if (t < 60) snprintf(buf, n, "%lds", t);
    else if (t < 3600) snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

void progress_init(progress_state *s, FILE *out, int json, const volatile sig_atomic_t *stop) {
    memset(s, 0, sizeof *s);
    s->out = out;
    s->stop = stop;
    s->unit = "img/s";
    s->mode = json ? PROGRESS_JSON : isatty(fileno(out)) ? PROGRESS_BAR : PROGRESS_LINES;
}

static void draw_bar(progress_state *s, const mm_progress *p) {
    char line[512], eta[32];
    int filled = p->batches ? (int)(BAR_WIDTH * p->batch / p->batches) : 0;
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '=' : i == filled ? '>' : '.';
    bar[BAR_WIDTH] = 0;
    double per_batch = p->batch ? p->seconds / (double)p->batch : 0;
    duration(eta, sizeof eta, per_batch * (double)(p->batches - p->batch));
    double rate = p->seconds > 0 ? (double)p->seen / p->seconds : 0;
    snprintf(line, sizeof line, "Epoch %d/%d [%s] %ld/%ld - loss: %.4f - accuracy: %.4f - %.0f %s - ETA %s", p->epoch,
             p->epochs, bar, p->batch, p->batches, p->loss, p->accuracy, rate, s->unit, eta);
    int cols = terminal_columns(s->out);
    if ((int)strlen(line) > cols - 1) line[cols - 1] = 0;
    fprintf(s->out, "\r%s\033[K", line);
    fflush(s->out);
    s->bar_shown = 1;
}

static void epoch_line(progress_state *s, const mm_progress *p) {
    double rate = s->train_seconds > 0 ? (double)p->seen / s->train_seconds : 0;
    if (s->mode == PROGRESS_JSON) {
        fprintf(s->out, "{\"epoch\":%d,\"epochs\":%d,\"loss\":", p->epoch, p->epochs);
        json_number(s->out, p->loss);
        json_field_number(s->out, "accuracy", p->accuracy);
        json_field_number(s->out, "val_loss", p->has_val ? p->val_loss : NAN); /* NaN -> null */
        json_field_number(s->out, "val_accuracy", p->has_val ? p->val_accuracy : NAN);
        json_field_number(s->out, "seconds", p->seconds);
        json_field_number(s->out, "images_per_second", rate);
        fputs("}\n", s->out);
        fflush(s->out);
        return;
    }
    if (s->bar_shown) fputs("\r\033[K", s->out);
    s->bar_shown = 0;
    fprintf(s->out, "Epoch %d/%d - %ld batches - loss: %.4f - accuracy: %.4f", p->epoch, p->epochs, p->batches, p->loss,
            p->accuracy);
    if (p->has_val) fprintf(s->out, " - val_loss: %.4f - val_accuracy: %.4f", p->val_loss, p->val_accuracy);
    fprintf(s->out, " - %.1fs - %.0f %s\n", p->seconds, rate, s->unit);
    fflush(s->out);
}

/* Stopping mid-epoch would leave a checkpoint that counts the partial epoch as done, so a
 * stop request takes effect at the end of the epoch. */
static void note_stop(progress_state *s, const mm_progress *p) {
    if (s->bar_shown) fputc('\n', s->out);
    s->bar_shown = 0;
    fflush(s->out);
    fprintf(stderr, "Stopping after epoch %d (Ctrl-C again to quit now)\n", p->epoch);
    fflush(stderr);
    s->stop_noted = 1;
}

int progress_callback(const mm_progress *p, void *user) {
    progress_state *s = user;
    int stop = s->stop && *s->stop;
    if (stop && !s->stop_noted && !p->epoch_end) note_stop(s, p);
    if (p->epoch_end) {
        epoch_line(s, p);
    } else {
        s->train_seconds = p->seconds;
        if (s->mode == PROGRESS_BAR) {
            double t = now_seconds();
            if (p->batch == 1 || p->batch == p->batches || t - s->last_draw >= REDRAW_SECONDS) {
                draw_bar(s, p);
                s->last_draw = t;
            }
        }
    }
    return stop && p->epoch_end;
}

void progress_finish(progress_state *s) {
    if (s->bar_shown) fputc('\n', s->out);
    s->bar_shown = 0;
    fflush(s->out);
}

void progress_test(progress_state *s, double loss, double accuracy) {
    if (s->mode == PROGRESS_JSON) {
        fputs("{\"test_loss\":", s->out);
        json_number(s->out, loss);
        json_field_number(s->out, "test_accuracy", accuracy);
        fputs("}\n", s->out);
    } else {
        fprintf(s->out, "test_loss: %.4f - test_accuracy: %.4f\n", loss, accuracy);
    }
    fflush(s->out);
}
