/* mediaml textgen generate: sample text from a model file, streaming each token to stdout as
 * it is produced (valid UTF-8 throughout, via the tokenizer's stream decoder). */
#include "commands.h"
#include "textgen/textgen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int read_prompt_file(const char *path, char **out, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "mediaml: %s: %s\n", path, strerror(errno));
        return EXIT_LIBRARY;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || err) {
        free(buf);
        fprintf(stderr, "mediaml: %s: %s\n", path, buf ? "read error" : "out of memory");
        return EXIT_LIBRARY;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int emit(const char *s, size_t n) {
    if (n && fwrite(s, 1, n, stdout) != n) return -1;
    return fflush(stdout);
}

int cmd_textgen_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *prompt_file = NULL;
    int max_tokens = 200, threads = 0, no_cache = 0, no_echo = 0, verbose = 0;
    const char *matmul_precision = NULL;
    textgen_sampling s = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
    uint64_t seed = 0;
    cli_opt opts[] = {
        {"--model", OPT_STR, &model, "FILE", "model file written by 'mediaml textgen train' (required)", 0},
        {"--prompt", OPT_STR, &prompt, "TEXT", "text to continue (default: empty, see below)", 0},
        {"--prompt-file", OPT_STR, &prompt_file, "FILE", "read the prompt from FILE ('-' for stdin) instead", 0},
        {"--max-tokens", OPT_INT, &max_tokens, "N", "tokens to generate (default 200)", 0},
        {"--temperature", OPT_FLOAT, &s.temperature, "T", "divide log-probabilities by T; 0 = greedy (default 1)", 0},
        {"--top-k", OPT_INT, &s.top_k, "K", "sample from the K most likely tokens only, 0 = all (default 0)", 0},
        {"--top-p", OPT_FLOAT, &s.top_p, "P", "nucleus sampling: the fewest tokens with probability >= P (default 1 = all)", 0},
        {"--seed", OPT_U64, &seed, "S", "sampling seed (default 0): the same seed gives the same text", 0},
        {"--no-cache", OPT_BOOL, &no_cache, NULL, "re-run the model on the whole window for every token (no KV cache)", 0},
        {"--no-echo", OPT_BOOL, &no_echo, NULL, "print only the generated text, not the prompt before it", 0},
        {"--threads", OPT_INT, &threads, "T", "kernel threads (default $MEDIAML_THREADS, else the core count)", 0},
        {"--matmul-precision", OPT_STR, &matmul_precision, "P", CLI_MATMUL_PRECISION_HELP, 0},
        {"--verbose", OPT_BOOL, &verbose, NULL, "print the model, the prompt length and the speed (tokens/s) on stderr", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd cmd = {"textgen generate", "--model FILE [--prompt TEXT] [OPTIONS]",
                   "Continues a prompt with text sampled from a language model, writing each token to stdout as\n"
                   "soon as it is produced (a character split across BPE tokens is held back until complete, so\n"
                   "the output is always valid UTF-8).",
                   opts,
                   "Context: the model sees at most its context length of tokens. A longer prompt keeps its last\n"
                   "`context` tokens (a note says so on stderr). With the KV cache (default for GPT models) each\n"
                   "new token costs one position; once the window is full the cache restarts from the last\n"
                   "context/2 tokens. --no-cache (and LSTM models) re-run the model on the last `context` tokens\n"
                   "for every new token, so the window slides one token at a time.\n"
                   "An empty prompt starts from a newline (or GPT-2's <|endoftext|>); a model whose vocabulary has\n"
                   "neither needs a prompt. A char model rejects characters it has never seen.\n"
                   "Sampling: temperature first, then top-k, then top-p; generation also stops at <|endoftext|>.\n"};
    int npos, rc = cli_parse(&cmd, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!model) return cli_usage_error(&cmd, "--model FILE is required");
    if (prompt && prompt_file) return cli_usage_error(&cmd, "give --prompt or --prompt-file, not both");
    if (max_tokens < 1) return cli_usage_error(&cmd, "--max-tokens must be at least 1, got %d", max_tokens);
    if (!(s.temperature >= 0)) return cli_usage_error(&cmd, "--temperature must not be negative, got %g", s.temperature);
    if (s.top_k < 0) return cli_usage_error(&cmd, "--top-k must not be negative, got %d", s.top_k);
    if (!(s.top_p > 0 && s.top_p <= 1)) return cli_usage_error(&cmd, "--top-p must be in (0, 1], got %g", s.top_p);
    if ((rc = cli_apply_threads(&cmd, "--threads", threads))) return rc;
    if ((rc = cli_apply_matmul_precision(&cmd, "--matmul-precision", matmul_precision))) return rc;

    char *prompt_buf = NULL;
    size_t prompt_len = 0;
    if (prompt_file) {
        if ((rc = read_prompt_file(prompt_file, &prompt_buf, &prompt_len))) return rc;
        prompt = prompt_buf;
    } else if (!prompt) {
        prompt = "";
    }
    if (!prompt_file) prompt_len = strlen(prompt);

    textgen_lm lm;
    if (textgen_load(model, &lm)) {
        free(prompt_buf);
        return cli_library_error();
    }
    int32_t *ids = NULL;
    size_t n = 0;
    textgen_generator *g = NULL;
    mm_token_stream *ts = NULL;
    mm_status st = textgen_encode_prompt(&lm, prompt, prompt_len, &ids, &n);
    if (!st) st = textgen_generator_new(&lm, !no_cache, &g);
    if (!st) st = mm_token_stream_new(lm.tok, &ts);
    if (st) goto fail;
    if (n > (size_t)lm.cfg.context)
        fprintf(stderr, "note: the prompt has %zu tokens; the model sees only its last %d (its context)\n", n, lm.cfg.context);
    if (!no_cache && !textgen_generator_cached(g))
        fprintf(stderr, "note: no KV cache for this model (%s); re-running the model on the window for every token\n",
                textgen_generator_note(g));
    if (verbose) {
        const textgen_config *c = &lm.cfg;
        if (c->layers == 0)
            fprintf(stderr, "Model: %s: context %d; %s tokenizer, vocabulary %d\n", model, c->context,
                    mm_tokenizer_kind(lm.tok), c->vocab_size);
        else if (c->arch == TEXTGEN_GPT)
            fprintf(stderr, "Model: %s: gpt, %d layers, %d heads, width %d, context %d; %s tokenizer, vocabulary %d\n", model,
                    c->layers, c->heads, c->width, c->context, mm_tokenizer_kind(lm.tok), c->vocab_size);
        else
            fprintf(stderr, "Model: %s: lstm, %d layers of %d units, context %d; %s tokenizer, vocabulary %d\n", model,
                    c->layers, c->width, c->context, mm_tokenizer_kind(lm.tok), c->vocab_size);
    }
    if (!no_echo && prompt_len && emit(prompt, prompt_len)) goto write_error;

    double t0 = now_seconds();
    const float *probs;
    if ((st = textgen_generator_start(g, ids, n)) || (st = textgen_generator_probs(g, &probs))) goto fail;
    double t1 = now_seconds();
    int32_t eot = mm_tokenizer_lookup(lm.tok, "<|endoftext|>", 13);
    uint64_t rng = seed;
    int produced = 0;
    const char *text;
    size_t len;
    for (int i = 0; i < max_tokens; i++) {
        int32_t id;
        if ((st = textgen_generator_next(g, &s, &rng, &id))) goto fail;
        produced++;
        if (id == eot && eot >= 0 && !strcmp(mm_tokenizer_kind(lm.tok), "bpe")) break;
        if ((st = mm_token_stream_push(ts, id, &text, &len))) goto fail;
        if (emit(text, len)) goto write_error;
    }
    if ((st = mm_token_stream_flush(ts, &text, &len))) goto fail;
    if (emit(text, len)) goto write_error;
    double t2 = now_seconds();
    if (isatty(fileno(stdout))) emit("\n", 1);
    if (verbose) {
        size_t kept = n < (size_t)lm.cfg.context ? n : (size_t)lm.cfg.context;
        fprintf(stderr, "prompt: %zu tokens in %.3f s\n", kept, t1 - t0);
        /* the time includes the prompt (its last position gives the first token) */
        fprintf(stderr, "generated %d tokens in %.3f s, %.1f tok/s (%s)\n", produced, t2 - t0,
                t2 > t0 ? produced / (t2 - t0) : 0.0, textgen_generator_cached(g) ? "cache" : "no cache");
    }
    mm_token_stream_free(ts);
    textgen_generator_free(g);
    free(ids);
    textgen_lm_free(&lm);
    free(prompt_buf);
    return 0;

write_error:
    fprintf(stderr, "mediaml: writing the output: %s\n", strerror(errno));
    rc = EXIT_LIBRARY;
    goto cleanup;
fail:
    rc = cli_library_error();
cleanup:
    mm_token_stream_free(ts);
    textgen_generator_free(g);
    free(ids);
    textgen_lm_free(&lm);
    free(prompt_buf);
    return rc;
}
