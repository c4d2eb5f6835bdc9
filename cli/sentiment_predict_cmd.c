/* mediaml sentiment predict: labels texts (arguments, a file or stdin, one per line) as JSON
 * lines, or as coloured text on a terminal, with occlusion attributions under --explain. */
#include "commands.h"
#include "json.h"
#include "sentiment/sentiment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 1024

typedef struct item {
    char *text;    /* owned */
    size_t len;
    long line;     /* 1-based input number */
    const char *problem;
    char why[160];
} item;

static void print_json(const sent_model *m, const item *it, const sent_prediction *p) {
    fputs("{\"line\":", stdout);
    printf("%ld,\"text\":", it->line);
    json_string_n(stdout, it->text, it->len);
    fputs(",\"label\":", stdout);
    json_string(stdout, m->labels[p->label]);
    json_field_number(stdout, "probability", p->probs[p->label]);
    fputs(",\"probabilities\":{", stdout);
    for (int k = 0; k < m->n_labels; k++) {
        if (k) putchar(',');
        json_string(stdout, m->labels[k]);
        putchar(':');
        json_number(stdout, p->probs[k]);
    }
    putchar('}');
    if (p->weight) {
        fputs(",\"explanation\":[", stdout);
        for (int k = 0; k < p->n_tokens; k++) {
            fputs(k ? ",{\"token\":" : "{\"token\":", stdout);
            json_string_n(stdout, it->text + p->start[k], (size_t)p->len[k]);
            printf(",\"start\":%d,\"weight\":", p->start[k]);
            json_number(stdout, p->weight[k]);
            putchar('}');
        }
        putchar(']');
    }
    if (p->truncated) fputs(",\"truncated\":true", stdout);
    fputs("}\n", stdout);
}

/* The text with each token coloured by its weight: green supports the predicted label, red
 * speaks against it; bold for the strongest. */
static void print_text(const sent_model *m, const item *it, const sent_prediction *p) {
    printf("%s %.3f  ", m->labels[p->label], p->probs[p->label]);
    if (!p->weight) {
        fwrite(it->text, 1, it->len, stdout);
        putchar('\n');
        return;
    }
    float top = 0;
    for (int k = 0; k < p->n_tokens; k++)
        if (p->weight[k] > top || -p->weight[k] > top) top = p->weight[k] > 0 ? p->weight[k] : -p->weight[k];
    size_t at = 0;
    for (int k = 0; k < p->n_tokens; k++) {
        fwrite(it->text + at, 1, (size_t)p->start[k] - at, stdout);
        float w = p->weight[k], a = w > 0 ? w : -w;
        const char *col = top > 0 && a >= 0.15f * top ? (w > 0 ? "32" : "31") : NULL;
        if (col) printf("\033[%s%sm", a >= 0.5f * top ? "1;" : "", col);
        fwrite(it->text + p->start[k], 1, (size_t)p->len[k], stdout);
        if (col) fputs("\033[0m", stdout);
        at = (size_t)(p->start[k] + p->len[k]);
    }
    fwrite(it->text + at, 1, it->len - at, stdout);
    putchar('\n');
}

/* Classifies the valid items of a batch and prints every item in order; returns the number of
 * items that could not be classified, or -1 on a library error. */
static int flush(sent_model *m, item *items, int n, int explain, int json) {
    const char **texts = calloc((size_t)n + 1, sizeof(char *));
    size_t *lens = calloc((size_t)n + 1, sizeof(size_t));
    sent_prediction *pred = calloc((size_t)n + 1, sizeof *pred);
    int nv = 0, bad = 0;
    if (!texts || !lens || !pred) {
        free(texts), free(lens), free(pred);
        mm_error(MM_ERR_NOMEM, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        items[i].problem = sent_text_problem(items[i].text, items[i].len, items[i].why, sizeof items[i].why);
        if (!items[i].problem) texts[nv] = items[i].text, lens[nv++] = items[i].len;
    }
    mm_status st = sent_predict(m, nv, texts, lens, explain, pred);
    for (int i = 0, v = 0; !st && i < n; i++) {
        if (items[i].problem) {
            bad++;
            if (json) {
                printf("{\"line\":%ld,\"error\":", items[i].line);
                json_string(stdout, items[i].problem);
                fputs("}\n", stdout);
            }
            fflush(stdout);
            fprintf(stderr, "mediaml: input %ld: %s\n", items[i].line, items[i].problem);
            continue;
        }
        if (json) print_json(m, &items[i], &pred[v]);
        else print_text(m, &items[i], &pred[v]);
        sent_prediction_free(&pred[v++]);
    }
    fflush(stdout);
    free(texts), free(lens), free(pred);
    return st ? -1 : bad;
}

int cmd_sentiment_predict(int argc, char **argv) {
    const char *model = NULL, *file = NULL;
    int threads = 0, json = 0, explain = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model, "FILE", "model file (required)", 0},
        {"--file", OPT_STR, &file, "PATH", "read texts from PATH, one per line ('-': stdin)", 0},
        {"--explain", OPT_BOOL, &explain, NULL, "add per-token attributions (occlusion: the drop of the label's log-odds when the token is replaced by <unk>)", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--json", OPT_BOOL, &json, NULL, "JSON lines even on a terminal", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"sentiment predict", "--model FILE [--explain] [TEXT...]",
                 "Labels texts with a sentiment model: the TEXT arguments, else the lines of --file, else the lines of\n"
                 "stdin. Output: one JSON object per text (line, text, label, probability, probabilities, explanation);\n"
                 "on a terminal without --json, the label, its probability and the text, with --explain colouring\n"
                 "the words that support the label green and those against it red (bold: the strongest).",
                 opts,
                 "An empty text, invalid UTF-8 or a text over 65536 bytes gives {\"line\":N,\"error\":...} (and a message\n"
                 "on stderr); the other texts are still labelled and the exit status is 1. Texts longer than the\n"
                 "model's input are cut (\"truncated\":true).\n"};
    char **pos = malloc((size_t)argc * sizeof *pos);
    if (!pos) return EXIT_LIBRARY;
    int npos, rc = cli_parse(&c, argc, argv, pos, argc, &npos);
    if (!rc && !model) rc = cli_usage_error(&c, "--model FILE is required");
    if (!rc && file && npos) rc = cli_usage_error(&c, "give texts as arguments or --file, not both");
    if (!rc) rc = cli_apply_threads(&c, "--threads", threads);
    if (rc) {
        free(pos);
        return rc == CLI_HELP ? 0 : rc;
    }
    if (!json && !isatty(fileno(stdout))) json = 1;
    sent_model m;
    if (sent_model_load(model, &m)) {
        free(pos);
        return cli_library_error();
    }
    FILE *in = NULL;
    if (!npos) {
        in = !file || !strcmp(file, "-") ? stdin : fopen(file, "rb");
        if (!in) {
            fprintf(stderr, "mediaml: %s: cannot open\n", file);
            sent_model_free(&m);
            free(pos);
            return EXIT_LIBRARY;
        }
    }
    item *items = calloc(BATCH, sizeof *items);
    int n = 0, bad = 0, failed = !items;
    long line = 0;
    char *buf = NULL;
    size_t cap = 0;
    for (int a = 0; !failed; a++) {
        if (in) {
            ssize_t got = getline(&buf, &cap, in);
            if (got < 0) break;
            size_t len = (size_t)got;
            if (len && buf[len - 1] == '\n') len--;
            if (len && buf[len - 1] == '\r') len--;
            items[n].text = malloc(len + 1);
            if (items[n].text) memcpy(items[n].text, buf, len), items[n].text[len] = 0;
            items[n].len = len;
        } else {
            if (a >= npos) break;
            items[n].len = strlen(pos[a]);
            items[n].text = strdup(pos[a]);
        }
        items[n].line = ++line;
        if (!items[n].text) failed = 1;
        else n++;
        if (n == BATCH) {
            int r = flush(&m, items, n, explain, json);
            for (int i = 0; i < n; i++) free(items[i].text);
            if (r < 0) failed = 1;
            else bad += r;
            n = 0;
        }
    }
    if (!failed && n) {
        int r = flush(&m, items, n, explain, json);
        if (r < 0) failed = 1;
        else bad += r;
    }
    for (int i = 0; i < n; i++) free(items[i].text);
    if (in && in != stdin) fclose(in);
    free(buf), free(items), free(pos);
    sent_model_free(&m);
    if (failed) return cli_library_error();
    if (!line) {
        fputs("mediaml: no texts given\n", stderr);
        return EXIT_USAGE;
    }
    return bad ? EXIT_LIBRARY : 0;
}
