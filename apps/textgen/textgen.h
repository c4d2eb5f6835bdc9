/* The textgen app: language models over token ids (a GPT-style Transformer or an LSTM),
 * trained on a text file with a char, trained-BPE or GPT-2 tokenizer, and sampled from with
 * temperature / top-k / nucleus sampling. Public mediaml API only (mediaml.h and
 * mediaml_text.h); every fallible call returns an mm_status with mm_errmsg() set, nothing
 * here prints, exits or aborts.
 *
 * A model file written by textgen_train holds, besides the weights (and the optimizer state
 * for --resume), two metadata strings:
 *   "tokenizer"  the tokenizer as mm_tokenizer_to_json writes it;
 *   "textgen"    a flat JSON object with the architecture and the training settings
 *                (textgen_meta_to_json), e.g.
 *                {"format":1,"arch":"gpt","vocab_size":65,"context":128,"layers":4,"heads":4,
 *                 "width":128,"position":"learned","dropout":0,"tokenizer":"char",...}. */
#ifndef MEDIAML_APP_TEXTGEN_H
#define MEDIAML_APP_TEXTGEN_H

#include <mediaml.h>
#include <mediaml_text.h>

#include <stddef.h>
#include <stdint.h>

#define TEXTGEN_META_TOKENIZER "tokenizer"
#define TEXTGEN_META_CONFIG "textgen"

/* ------------------------------------------------------------------ RNG */

/* splitmix64 step and a uniform double in [0, 1). */
uint64_t textgen_rng_next(uint64_t *state);
double textgen_rng_uniform(uint64_t *state);

/* ------------------------------------------------------------------ models */

typedef enum textgen_arch { TEXTGEN_GPT = 0, TEXTGEN_LSTM = 1 } textgen_arch;

typedef struct textgen_config {
    textgen_arch arch;
    int vocab_size;     /* from the tokenizer */
    int context;        /* T: positions the model sees (training window, generation window) */
    int layers;         /* Transformer blocks or LSTM layers */
    int heads;          /* gpt: attention heads (width % heads == 0) */
    int width;          /* gpt: model width C; lstm: embedding size and units */
    int sinusoidal;     /* gpt: fixed sinusoidal positions instead of a learned table */
    float dropout;      /* gpt: after attention and MLP (and on attention probabilities);
                           lstm: between layers */
} textgen_config;

/* The benchmark: gpt, 4 layers, 4 heads, width 128, context 128, no dropout. */
textgen_config textgen_default_config(void);
const char *textgen_arch_name(textgen_arch a);
mm_status textgen_arch_parse(const char *name, textgen_arch *out);
/* Checks ranges (vocab >= 2, context >= 1, layers >= 1, width % heads, dropout in [0, 1)). */
mm_status textgen_check_config(const textgen_config *c);

/* gpt: Embedding(V, C) -> PositionEmbedding(context or sinusoidal) -> L pre-LayerNorm blocks
 *      x = x + Dropout(MHA(LN(x), causal)); x = x + Dropout(Dense(C)(Dense(4C, gelu)(LN(x))))
 *      -> LN -> Dense(V, softmax). LayerNorm epsilon 1e-5.
 * lstm: Embedding(V, C) -> L x LSTM(C, return_sequences) (Dropout between) -> Dense(V, softmax).
 * Input [context] token ids, output [context, V] next-token probabilities. Not compiled. */
mm_status textgen_build(const textgen_config *c, mm_model **out);

/* ------------------------------------------------------------------ data */

/* Reads a whole file (limit > 0: at most limit bytes, cut back to a character boundary)
 * and checks it is non-empty UTF-8 (the error names the file and byte offset). *text is
 * NUL-terminated, caller frees. */
mm_status textgen_read_text(const char *path, long limit, char **text, size_t *len);

/* The values of one column of a CSV file with a header row (RFC 4180 quoting: "" inside
 * quotes, commas and newlines in quoted fields), non-empty ones joined with newlines
 * (limit > 0: about limit bytes, cut at a record end or character boundary). */
mm_status textgen_read_csv_column(const char *path, const char *column, long limit, char **text, size_t *len);

/* kind "char": one token per code point of text; "bpe": byte-level BPE trained on text to
 * vocab_size ids (>= 257); "gpt2": GPT-2's files from dir. */
mm_status textgen_make_tokenizer(const char *kind, const char *text, size_t len, int vocab_size, const char *dir,
                                 mm_tokenizer **out);

/* A tokenized corpus: ids[0..n_train) is the training part, ids[n_train..n) validation. */
typedef struct textgen_corpus {
    int32_t *ids;
    size_t n, n_train;
} textgen_corpus;

/* Encodes text and splits the ids: the first (1 - val_fraction) for training, the rest for
 * validation (val_fraction in [0, 1)). */
mm_status textgen_corpus_encode(const mm_tokenizer *tok, const char *text, size_t len, float val_fraction,
                                textgen_corpus *out);
void textgen_corpus_free(textgen_corpus *c);

/* count windows of context + 1 tokens at uniformly random offsets of ids[0..n) (seeded):
 * x [count, context] = the first context tokens, y [count, context] = the next tokens. */
mm_status textgen_sample_windows(const int32_t *ids, size_t n, int context, long count, uint64_t seed,
                                 mm_dataset *out);
/* Non-overlapping windows (stride context) over ids[0..n); max_windows > 0 keeps that many,
 * evenly spread. Fails if n < context + 1. */
mm_status textgen_fixed_windows(const int32_t *ids, size_t n, int context, long max_windows, mm_dataset *out);

/* ------------------------------------------------------------------ metadata */

/* Training settings stored with the model (so --resume and generation can use them). */
typedef struct textgen_train_meta {
    char tokenizer[16];      /* char, bpe, gpt2 */
    int batch_size;
    long steps;              /* total steps planned */
    int eval_every;
    uint64_t seed;
    float val_fraction;
    long val_windows;
    long limit;
    char csv_column[64];     /* data is this column of a CSV file ("" = plain text) */
} textgen_train_meta;

/* Flat JSON object of the config and settings (malloc'ed). */
mm_status textgen_meta_to_json(const textgen_config *c, const textgen_train_meta *t, char **json);
/* Parses it back (t may be NULL). Malformed or out-of-range input: MM_ERR_FORMAT. */
mm_status textgen_meta_from_json(const char *json, textgen_config *c, textgen_train_meta *t);

/* ------------------------------------------------------------------ training */

typedef struct textgen_eval_info {
    long step, steps;            /* optimizer steps done / planned */
    double train_loss;           /* mean training loss since the previous evaluation */
    double val_loss;             /* mean cross-entropy per token on the validation windows (nats) */
    double val_accuracy;         /* next-token accuracy */
    double train_seconds;        /* training time since the previous evaluation */
    double eval_seconds;         /* time of this validation pass */
    double tokens_per_second;    /* training tokens (batch * context per step) per second */
} textgen_eval_info;

typedef struct textgen_batch_info {
    long step, steps;            /* step just done (1-based), planned */
    long round_step, round_steps;/* within the current evaluation interval */
    double loss;                 /* running mean over the interval */
    double seconds;              /* since the interval started */
} textgen_batch_info;

typedef struct textgen_train_report {
    size_t train_tokens, val_tokens;
    long val_windows;
    int vocab_size;
    long params;
    textgen_config model;        /* the model trained (the file's, when resumed) */
    textgen_train_meta meta;
    int resumed;
    long initial_step, steps_done, steps;
    int stopped;                 /* a callback asked to stop: the file holds steps_done */
    int has_eval;
    textgen_eval_info last;      /* the last evaluation (has_eval) */
    double train_seconds;        /* total training time in this run (no validation) */
} textgen_train_report;

typedef struct textgen_train_config {
    const char *data_path;       /* UTF-8 text file (required) */
    const char *out_path;        /* model file, rewritten after every evaluation (required) */
    long limit;                  /* > 0: use the first limit bytes of the file */
    const char *csv_column;      /* the data is a CSV file: train on this column */
    const char *tokenizer;       /* "char" (default), "bpe" or "gpt2" */
    const char *tokenizer_dir;   /* gpt2: directory with encoder.json and vocab.bpe */
    int vocab_size;              /* bpe: vocabulary size incl. the 256 bytes (default 512) */
    textgen_config model;        /* vocab_size is set from the tokenizer */
    int batch_size;              /* default 32 */
    long steps;                  /* total optimizer steps (default 2000) */
    float epochs;                /* > 0 instead of steps: passes over the training tokens */
    const char *optimizer;       /* default "adamw" */
    float lr;                    /* default 1e-3 */
    float weight_decay;          /* adamw; < 0 = default 0.01 */
    float clipnorm;              /* global gradient norm clip; < 0 = default 1.0, 0 = off */
    const char *schedule;        /* "cosine" (default: warm-up, then cosine to min_lr * lr) or "constant" */
    int warmup;                  /* linear warm-up steps; < 0 = default 100 (at most steps / 10) */
    float min_lr;                /* cosine: final fraction of lr; < 0 = default 0.1 */
    int eval_every;              /* steps between validations (default 250) */
    long val_windows;            /* > 0: at most this many validation windows */
    float val_fraction;          /* default 0.1 */
    uint64_t seed;               /* weights, window sampling, dropout */
    int resume;                  /* continue from out_path when it exists */
    /* Optional callbacks; a non-zero return stops training (the file keeps the last
     * evaluated step). on_start runs once data and model are ready. */
    void (*on_start)(const textgen_train_report *r, void *user);
    int (*on_batch)(const textgen_batch_info *b, void *user);
    int (*on_eval)(const textgen_eval_info *e, void *user);
    void *user;
} textgen_train_config;

/* Trains (or resumes) a model: each interval of eval_every steps samples fresh random
 * windows (seeded by the seed and the step, so a resumed run sees the same data as an
 * uninterrupted one), fits on them, evaluates on fixed validation windows and writes the
 * model with its optimizer state (atomically). */
mm_status textgen_train(const textgen_train_config *c, textgen_train_report *r);

/* ------------------------------------------------------------------ loading and generation */

typedef struct textgen_lm {
    mm_model *model;
    mm_tokenizer *tok;
    textgen_config cfg;
    textgen_train_meta meta;
} textgen_lm;

/* Loads a model file written by textgen_train: checks the metadata (tokenizer and config)
 * against the model's shapes. */
mm_status textgen_load(const char *path, textgen_lm *out);
void textgen_lm_free(textgen_lm *lm);

/* Encodes a prompt (must be valid UTF-8; a char model names any character it does not
 * know). An empty prompt starts from a newline (char and bpe, when the vocabulary has
 * one) or GPT-2's <|endoftext|>; else it is an error. *ids is malloc'ed. */
mm_status textgen_encode_prompt(const textgen_lm *lm, const char *prompt, size_t len, int32_t **ids, size_t *n);

typedef struct textgen_sampling {
    float temperature;  /* 0 = greedy (argmax); default 1 */
    int top_k;          /* keep the k most likely tokens, 0 = all */
    float top_p;        /* nucleus: the smallest set with probability >= top_p, 1 = all */
} textgen_sampling;

/* Samples an id from probabilities p[0..n) (need not sum to 1). scratch: 2 * n floats +
 * n ints as one buffer of textgen_sample_scratch_bytes(n) bytes. */
size_t textgen_sample_scratch_bytes(int n);
int32_t textgen_sample(const float *p, int n, const textgen_sampling *s, uint64_t *rng, void *scratch);

/* Incremental generation. With use_cache the model runs through mm_decoder (KV cache: one
 * row pass per token); when the context is full the cache restarts from the last context/2
 * tokens. Without it (or for models the decoder cannot run, e.g. LSTM) every token re-runs
 * the model on the last `context` tokens (placed at positions 0..n-1, rest padded). */
typedef struct textgen_generator textgen_generator;
mm_status textgen_generator_new(textgen_lm *lm, int use_cache, textgen_generator **out);
/* 1 when the KV cache is used. */
int textgen_generator_cached(const textgen_generator *g);
/* Why the cache is not used although asked for ("" if it is, or was not asked for). */
const char *textgen_generator_note(const textgen_generator *g);
/* Starts from prompt ids (n >= 1; only the last `context` are kept). */
mm_status textgen_generator_start(textgen_generator *g, const int32_t *ids, size_t n);
/* Next-token probabilities after everything so far (vocab_size floats, owned by g). */
mm_status textgen_generator_probs(textgen_generator *g, const float **probs);
/* Samples the next token and appends it. */
mm_status textgen_generator_next(textgen_generator *g, const textgen_sampling *s, uint64_t *rng, int32_t *id);
/* Appends a token chosen by the caller. */
mm_status textgen_generator_push(textgen_generator *g, int32_t id);
void textgen_generator_free(textgen_generator *g);

/* Mean cross-entropy (nats per token) and accuracy of a model on fixed windows of text's
 * validation part (the last val_fraction; 0 = all of it). */
mm_status textgen_evaluate(textgen_lm *lm, const char *text, size_t len, float val_fraction, long max_windows,
                           int batch_size, double *loss, double *accuracy, long *windows);

#endif
