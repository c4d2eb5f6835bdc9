/* See sentiment_out.h. */
#include "sentiment_out.h"

#include "args.h"
#include "json.h"

#include <string.h>

void sent_print_metrics(FILE *f, const sent_metrics *m, char *const *labels, const char *what, int json) {
    const int K = m->n_labels;
    if (json) {
        fputs("{\"set\":", f);
        json_string(f, what);
        fprintf(f, ",\"count\":%ld,\"accuracy\":", m->count);
        json_number(f, m->accuracy);
        json_field_number(f, "macro_f1", m->macro_f1);
        fputs(",\"labels\":[", f);
        for (int k = 0; k < K; k++) {
            if (k) fputc(',', f);
            json_string(f, labels[k]);
        }
        fputs("],\"confusion\":[", f);
        for (int i = 0; i < K; i++) {
            fputs(i ? ",[" : "[", f);
            for (int j = 0; j < K; j++) fprintf(f, "%s%ld", j ? "," : "", m->confusion[i * K + j]);
            fputc(']', f);
        }
        fputs("]}\n", f);
        fflush(f);
        return;
    }
    fprintf(f, "%s: %ld texts - accuracy: %.4f - macro-F1: %.4f\n", what, m->count, m->accuracy, m->macro_f1);
    int w = 9;
    for (int k = 0; k < K; k++)
        if ((int)strlen(labels[k]) + 2 > w) w = (int)strlen(labels[k]) + 2;
    fprintf(f, "confusion matrix (rows: true label, columns: predicted)\n%*s", w, "");
    for (int k = 0; k < K; k++) fprintf(f, "%*s", w, labels[k]);
    fputc('\n', f);
    for (int i = 0; i < K; i++) {
        fprintf(f, "%*s", w, labels[i]);
        for (int j = 0; j < K; j++) fprintf(f, "%*ld", w, m->confusion[i * K + j]);
        fputc('\n', f);
    }
    fflush(f);
}

void sent_note_skipped(const sent_corpus *c, const char *path) {
    if (c->skipped_empty)
        fprintf(stderr, "mediaml: %s: skipped %d record%s with an empty text (first at line %d)\n", path, c->skipped_empty,
                c->skipped_empty == 1 ? "" : "s", c->first_empty_line);
}

int sent_load_cli(const char *path, const char *format, int n_known, char *const *known, sent_corpus *out) {
    sent_format fmt = SENT_FMT_AUTO;
    if ((format && sent_format_parse(format, &fmt)) || sent_load(path, fmt, n_known, known, out)) return cli_library_error();
    sent_note_skipped(out, path);
    return 0;
}
