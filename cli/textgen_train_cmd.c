/* mediaml textgen train: flags, a progress bar on a terminal, one line (or JSON object) per
 * evaluation, Ctrl-C handling around textgen_train. */
#include "commands.h"
#include "interrupt.h"
#include "json.h"
#include "textgen/textgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>


typedef struct train_ctx {
    const cli_cmd *cmd;
    const textgen_train_config *cfg;
    int json, bar, bar_shown, stop_noted;
    double last_draw;
} train_ctx;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void commas(char *buf, size_t n, long v) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%ld", v), o = 0;
    for (int i = 0; i < len && o + 2 < (int)n; i++) {
        if (i && tmp[i - 1] != '-' && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
}

static void duration(char *buf, size_t n, double s) {
    long t = (long)(s + 0.5);
    if (t < 60) snprintf(buf, n, "%lds", t);
    else if (t < 3600) snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static void clear_bar(train_ctx *t) {
    if (t->bar_shown) fputs("\r\033[K", stdout);
    t->bar_shown = 0;
}

static int on_batch(const textgen_batch_info *b, void *user) {
    train_ctx *t = user;
    if (cli_interrupted && !t->stop_noted) {
        clear_bar(t);
        fflush(stdout);
        long end = b->step - b->round_step + b->round_steps;
        fprintf(stderr, "Stopping after step %ld, at the next evaluation (Ctrl-C again to quit now)\n", end);
        fflush(stderr);
        t->stop_noted = 1;
    }
    if (!t->bar) return 0;
    double now = now_seconds();
    if (b->round_step != 1 && b->round_step != b->round_steps && now - t->last_draw < 0.1) return 0;
    t->last_draw = now;
    enum { W = 20 };
    char bar[W + 1], eta[32], line[256];
    int filled = (int)(W * b->round_step / b->round_steps);
    for (int i = 0; i < W; i++) bar[i] = i < filled ? '=' : i == filled ? '>' : '.';
    bar[W] = 0;
    double per = b->seconds / (double)b->round_step;
    duration(eta, sizeof eta, per * (double)(b->steps - b->step));
    double tps = b->seconds > 0 ? (double)b->round_step * t->cfg->batch_size * t->cfg->model.context / b->seconds : 0;
    snprintf(line, sizeof line, "step %ld/%ld [%s] loss: %.4f - %.0f tok/s - %.2fs/step - ETA %s", b->step, b->steps, bar,
             b->loss, tps, per, eta);
    struct winsize ws;
    int cols = ioctl(fileno(stdout), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20 ? ws.ws_col : 80;
    if ((int)strlen(line) > cols - 1) line[cols - 1] = 0;
    printf("\r%s\033[K", line);
    fflush(stdout);
    t->bar_shown = 1;
    return 0;
}

static int on_eval(const textgen_eval_info *e, void *user) {
    train_ctx *t = user;
    clear_bar(t);
    if (t->json) {
        printf("{\"step\":%ld,\"steps\":%ld,\"loss\":", e->step, e->steps);
        json_number(stdout, e->train_loss);
        json_field_number(stdout, "val_loss", e->val_loss);
        json_field_number(stdout, "val_accuracy", e->val_accuracy);
        json_field_number(stdout, "train_seconds", e->train_seconds);
        json_field_number(stdout, "eval_seconds", e->eval_seconds);
        json_field_number(stdout, "tokens_per_second", e->tokens_per_second);
        /* what the matmuls computed in: bfloat16 only with precision medium on AMX or AVX512-BF16 */
        printf(",\"matmul_dtype\":\"%s\"}\n",
               !strcmp(mm_get_matmul_precision(), "medium") && mm_bf16_matmul_available() ? "bfloat16" : "float32");
    } else {
        printf("step %ld/%ld - loss: %.4f - val_loss: %.4f - val_accuracy: %.4f - %.0f tok/s - %.1fs (+%.1fs eval)\n",
               e->step, e->steps, e->train_loss, e->val_loss, e->val_accuracy, e->tokens_per_second, e->train_seconds,
               e->eval_seconds);
    }
    fflush(stdout);
    return cli_interrupted != 0;
}

static void on_start(const textgen_train_report *r, void *user) {
    train_ctx *t = user;
    const textgen_config *m = &r->model;
    char a[32], b[32], p[32];
    commas(a, sizeof a, (long)r->train_tokens);
    commas(b, sizeof b, (long)r->val_tokens);
    commas(p, sizeof p, r->params);
    fprintf(stderr, "Data: %s: %s training tokens, %s validation tokens (%ld windows); %s tokenizer, vocabulary %d\n",
            t->cfg->data_path, a, b, r->val_windows, r->meta.tokenizer, r->vocab_size);
    if (m->arch == TEXTGEN_GPT)
        fprintf(stderr, "Model: gpt, %d layers, %d heads, width %d, context %d, %s positions, dropout %g: %s params\n",
                m->layers, m->heads, m->width, m->context, m->sinusoidal ? "sinusoidal" : "learned", m->dropout, p);
    else
        fprintf(stderr, "Model: lstm, %d layers of %d units, context %d, dropout %g: %s params\n", m->layers, m->width,
                m->context, m->dropout, p);
    if (r->resumed) {
        static const char *ignored[] = {"--tokenizer", "--vocab-size", "--tokenizer-dir", "--arch", "--layers", "--heads",
                                        "--width", "--context", "--position", "--dropout", "--batch-size", "--eval-every",
                                        "--optimizer", "--lr", "--weight-decay", "--clipnorm", "--schedule", "--warmup",
                                        "--min-lr", "--val-fraction", "--val-windows", "--seed", "--csv-column"};
        for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++) {
            const cli_opt *o = cli_find(t->cmd, ignored[i]);
            if (o && o->seen)
                fprintf(stderr, "note: %s is ignored when resuming: %s keeps its own\n", ignored[i], t->cfg->out_path);
        }
        if (r->initial_step >= r->steps)
            fprintf(stderr, "%s has already been trained for %ld steps (--steps %ld): nothing to train\n", t->cfg->out_path,
                    r->initial_step, r->steps);
        else
            fprintf(stderr, "Resuming %s at step %ld of %ld\n", t->cfg->out_path, r->initial_step, r->steps);
    } else {
        fprintf(stderr, "Training: %ld steps of %d x %d tokens, evaluating every %d steps\n", r->steps, r->meta.batch_size,
                m->context, r->meta.eval_every);
    }
    fflush(stderr);
}

static int one_of(const char *s, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return 1;
    return 0;
}

int cmd_textgen_train(int argc, char **argv) {
    static char gpt2_dir[4096];
    const char *env = getenv("MEDIAML_DATA");
    snprintf(gpt2_dir, sizeof gpt2_dir, "%s/gpt2-tokenizer", env && *env ? env : "../shared/data");
    textgen_train_config c = {.tokenizer = "char", .tokenizer_dir = gpt2_dir, .model = textgen_default_config(),
                              .batch_size = 32, .optimizer = "adamw", .lr = 1e-3f, .weight_decay = -1, .clipnorm = -1,
                              .schedule = "cosine", .warmup = -1, .min_lr = -1, .eval_every = 250, .val_fraction = 0.1f};
    const char *arch = "gpt", *position = "learned";
    int threads = 0, json = 0;
    const char *matmul_precision = NULL;
    cli_opt opts[] = {
        {"--data", OPT_STR, &c.data_path, "FILE", "UTF-8 text file: the first 90% of its tokens train, the rest validate (required)", 0},
        {"--out", OPT_STR, &c.out_path, "FILE", "model file, rewritten (with optimizer state) at every evaluation (required)", 0},
        {"--limit", OPT_LONG, &c.limit, "BYTES", "use only the first BYTES bytes of --data", 0},
        {"--csv-column", OPT_STR, &c.csv_column, "NAME", "--data is a CSV file with a header: train on this column's values, one per line", 0},
        {"--tokenizer", OPT_STR, &c.tokenizer, "KIND", "char (default), bpe (trained on --data) or gpt2", 0},
        {"--vocab-size", OPT_INT, &c.vocab_size, "N", "bpe: vocabulary size, 256 bytes + merges (default 512)", 0},
        {"--tokenizer-dir", OPT_STR, &c.tokenizer_dir, "DIR", "gpt2: encoder.json + vocab.bpe (default $MEDIAML_DATA/gpt2-tokenizer, else ../shared/data/gpt2-tokenizer)", 0},
        {"--arch", OPT_STR, &arch, "NAME", "gpt (default) or lstm", 0},
        {"--layers", OPT_INT, &c.model.layers, "L", "Transformer blocks or LSTM layers (default: gpt 4, lstm 2)", 0},
        {"--heads", OPT_INT, &c.model.heads, "H", "gpt: attention heads (default 4)", 0},
        {"--width", OPT_INT, &c.model.width, "C", "gpt: model width (default 128); lstm: units (default 256)", 0},
        {"--context", OPT_INT, &c.model.context, "T", "tokens per window (default 128)", 0},
        {"--position", OPT_STR, &position, "KIND", "gpt: learned (default) or sinusoidal position embeddings", 0},
        {"--dropout", OPT_FLOAT, &c.model.dropout, "P", "dropout rate (default 0)", 0},
        {"--batch-size", OPT_INT, &c.batch_size, "B", "windows per step (default 32)", 0},
        {"--steps", OPT_LONG, &c.steps, "S", "total optimizer steps (default 2000)", 0},
        {"--epochs", OPT_FLOAT, &c.epochs, "E", "instead of --steps: E passes over the training tokens", 0},
        {"--optimizer", OPT_STR, &c.optimizer, "NAME", "adamw (default), adam, sgd or rmsprop", 0},
        {"--lr", OPT_FLOAT, &c.lr, "LR", "peak learning rate (default 0.001)", 0},
        {"--weight-decay", OPT_FLOAT, &c.weight_decay, "W", "adamw decoupled weight decay (default 0.01)", 0},
        {"--clipnorm", OPT_FLOAT, &c.clipnorm, "N", "clip gradients to this global norm, 0 = off (default 1)", 0},
        {"--schedule", OPT_STR, &c.schedule, "NAME", "cosine (default: decay to --min-lr after warm-up) or constant", 0},
        {"--warmup", OPT_INT, &c.warmup, "N", "linear warm-up steps (default min(100, steps/10))", 0},
        {"--min-lr", OPT_FLOAT, &c.min_lr, "F", "cosine: final learning rate as a fraction of --lr (default 0.1)", 0},
        {"--eval-every", OPT_INT, &c.eval_every, "N", "steps between validation passes and checkpoints (default 250)", 0},
        {"--val-windows", OPT_LONG, &c.val_windows, "N", "validate on at most N windows (default: all non-overlapping ones)", 0},
        {"--val-fraction", OPT_FLOAT, &c.val_fraction, "F", "fraction of the tokens held out for validation (default 0.1)", 0},
        {"--seed", OPT_U64, &c.seed, "S", "seed for weights, window sampling and dropout (default 0)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--matmul-precision", OPT_STR, &matmul_precision, "P", CLI_MATMUL_PRECISION_HELP, 0},
        {"--resume", OPT_BOOL, &c.resume, NULL, "continue the model in --out, if it exists, up to --steps", 0},
        {"--json", OPT_BOOL, &json, NULL, "one JSON object per evaluation", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd cmd = {"textgen train", "--data FILE --out FILE [OPTIONS]",
                   "Trains a next-token language model on a text file. Every step takes --batch-size windows of\n"
                   "--context + 1 tokens at random offsets of the training part (seeded); every --eval-every steps\n"
                   "the model is evaluated on fixed windows of the validation part and saved with its tokenizer,\n"
                   "its settings and the optimizer state.",
                   opts,
                   "Models:\n"
                   "  gpt   token + position embeddings, L pre-LayerNorm blocks (causal multi-head attention, then\n"
                   "        a 4x-wide gelu MLP, each added back to the residual stream), final LayerNorm, softmax\n"
                   "  lstm  token embedding, L stacked LSTMs returning sequences, softmax\n"
                   "Losses are mean cross-entropies per token in nats (a char model: nats per character).\n"
                   "Progress: a bar on a terminal and one line per evaluation (--json: one JSON object per line).\n"
                   "Ctrl-C stops at the next evaluation (a second Ctrl-C quits at once); --out then holds the last\n"
                   "evaluated step and --resume continues from it, sampling the same windows an uninterrupted run\n"
                   "would have seen.\n"};
    int npos, rc = cli_parse(&cmd, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
#define SEEN(f) (cli_find(&cmd, f)->seen)
    if (!c.data_path) return cli_usage_error(&cmd, "--data FILE is required");
    if (!c.out_path) return cli_usage_error(&cmd, "--out FILE is required");
    static const char *const toks[] = {"char", "bpe", "gpt2"}, *const opts_names[] = {"adamw", "adam", "sgd", "rmsprop"},
                             *const scheds[] = {"cosine", "constant"};
    if (!one_of(c.tokenizer, toks, 3)) return cli_usage_error(&cmd, "unknown tokenizer '%s' (expected char, bpe or gpt2)", c.tokenizer);
    if (SEEN("--vocab-size") && strcmp(c.tokenizer, "bpe"))
        return cli_usage_error(&cmd, "--vocab-size applies to --tokenizer bpe only");
    if (SEEN("--vocab-size") && (c.vocab_size < 257 || c.vocab_size > 1000256))
        return cli_usage_error(&cmd, "--vocab-size must be in 257..1000256 (256 bytes + merges), got %d", c.vocab_size);
    if (textgen_arch_parse(arch, &c.model.arch)) return cli_usage_error(&cmd, "unknown --arch '%s' (expected gpt or lstm)", arch);
    if (c.model.arch == TEXTGEN_LSTM) {
        if (!SEEN("--layers")) c.model.layers = 2;
        if (!SEEN("--width")) c.model.width = 256;
        if (SEEN("--heads") || SEEN("--position")) return cli_usage_error(&cmd, "--heads and --position apply to --arch gpt only");
        c.model.heads = 0;
    }
    if (strcmp(position, "learned") && strcmp(position, "sinusoidal"))
        return cli_usage_error(&cmd, "unknown --position '%s' (expected learned or sinusoidal)", position);
    c.model.sinusoidal = !strcmp(position, "sinusoidal");
    if (c.model.layers < 1) return cli_usage_error(&cmd, "--layers must be at least 1, got %d", c.model.layers);
    if (c.model.arch == TEXTGEN_GPT && c.model.heads < 1) return cli_usage_error(&cmd, "--heads must be at least 1, got %d", c.model.heads);
    if (c.model.width < 1) return cli_usage_error(&cmd, "--width must be at least 1, got %d", c.model.width);
    if (c.model.arch == TEXTGEN_GPT && c.model.width % c.model.heads)
        return cli_usage_error(&cmd, "--width %d is not divisible by --heads %d", c.model.width, c.model.heads);
    if (c.model.context < 1 || c.model.context > 65536) return cli_usage_error(&cmd, "--context must be in 1..65536, got %d", c.model.context);
    if (!(c.model.dropout >= 0 && c.model.dropout < 1)) return cli_usage_error(&cmd, "--dropout must be in [0, 1), got %g", c.model.dropout);
    if (c.batch_size < 1) return cli_usage_error(&cmd, "--batch-size must be at least 1, got %d", c.batch_size);
    if (SEEN("--steps") && SEEN("--epochs")) return cli_usage_error(&cmd, "give --steps or --epochs, not both");
    if (SEEN("--steps") && c.steps < 1) return cli_usage_error(&cmd, "--steps must be at least 1, got %ld", c.steps);
    if (SEEN("--epochs") && !(c.epochs > 0)) return cli_usage_error(&cmd, "--epochs must be positive, got %g", c.epochs);
    if (!one_of(c.optimizer, opts_names, 4))
        return cli_usage_error(&cmd, "unknown optimizer '%s' (expected adamw, adam, sgd or rmsprop)", c.optimizer);
    if (!(c.lr > 0)) return cli_usage_error(&cmd, "--lr must be positive, got %g", c.lr);
    if (SEEN("--weight-decay") && c.weight_decay < 0) return cli_usage_error(&cmd, "--weight-decay must not be negative, got %g", c.weight_decay);
    if (SEEN("--clipnorm") && c.clipnorm < 0) return cli_usage_error(&cmd, "--clipnorm must not be negative, got %g", c.clipnorm);
    if (!one_of(c.schedule, scheds, 2)) return cli_usage_error(&cmd, "unknown --schedule '%s' (expected cosine or constant)", c.schedule);
    if (SEEN("--warmup") && c.warmup < 0) return cli_usage_error(&cmd, "--warmup must not be negative, got %d", c.warmup);
    if (SEEN("--min-lr") && !(c.min_lr >= 0 && c.min_lr <= 1)) return cli_usage_error(&cmd, "--min-lr must be in [0, 1], got %g", c.min_lr);
    if (c.eval_every < 1) return cli_usage_error(&cmd, "--eval-every must be at least 1, got %d", c.eval_every);
    if (SEEN("--val-windows") && c.val_windows < 1) return cli_usage_error(&cmd, "--val-windows must be at least 1, got %ld", c.val_windows);
    if (!(c.val_fraction > 0 && c.val_fraction < 1)) return cli_usage_error(&cmd, "--val-fraction must be in (0, 1), got %g", c.val_fraction);
    if (SEEN("--limit") && c.limit < 1) return cli_usage_error(&cmd, "--limit must be at least 1, got %ld", c.limit);
    if ((rc = cli_apply_threads(&cmd, "--threads", threads))) return rc;
    if ((rc = cli_apply_matmul_precision(&cmd, "--matmul-precision", matmul_precision))) return rc;
#undef SEEN

    train_ctx t = {.cmd = &cmd, .cfg = &c, .json = json, .bar = !json && isatty(fileno(stdout))};
    c.on_start = on_start;
    c.on_batch = on_batch;
    c.on_eval = on_eval;
    c.user = &t;

    cli_catch_sigint();
    textgen_train_report r;
    mm_status st = textgen_train(&c, &r);
    cli_release_sigint();
    clear_bar(&t);
    fflush(stdout);
    if (st) return cli_library_error();
    if (r.stopped) {
        if (r.steps_done == 0)
            fprintf(stderr, "mediaml: stopped before the first evaluation; nothing was saved\n");
        else
            fprintf(stderr, "mediaml: stopped; %s holds step %ld (continue with --resume)\n", c.out_path, r.steps_done);
        return 130;
    }
    if (r.steps_done > r.initial_step) {
        double tokens = (double)(r.steps_done - r.initial_step) * r.meta.batch_size * r.model.context;
        fprintf(stderr, "Saved %s (step %ld, val_loss %.4f); trained %.1fs, %.0f tok/s, %.3fs/step\n", c.out_path,
                r.steps_done, r.last.val_loss, r.train_seconds, r.train_seconds > 0 ? tokens / r.train_seconds : 0,
                r.train_seconds / (double)(r.steps_done - r.initial_step));
    }
    return 0;
}
