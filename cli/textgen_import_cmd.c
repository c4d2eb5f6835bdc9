/* mediaml textgen import-gpt2: converts a Hugging Face GPT-2 checkpoint (model.safetensors +
 * config.json) into a mediaml model file with the GPT-2 tokenizer in its metadata. */
#include "commands.h"
#include "json.h"
#include "textgen/gpt2_import.h"

#include <mediaml.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_textgen_import_gpt2(int argc, char **argv) {
    const char *checkpoint = NULL, *tokenizer_dir = NULL, *config = NULL, *out = NULL;
    int context = 0, logits = 0, json = 0;
    cli_opt opts[] = {
        {"--checkpoint", OPT_STR, &checkpoint, "DIR",
         "Hugging Face GPT-2 directory with model.safetensors and config.json, or the .safetensors file (required)", 0},
        {"--tokenizer-dir", OPT_STR, &tokenizer_dir, "DIR",
         "GPT-2 tokenizer files: vocab.json + merges.txt or encoder.json + vocab.bpe (default: the checkpoint's directory)", 0},
        {"--config", OPT_STR, &config, "FILE", "config.json (default: beside the checkpoint)", 0},
        {"--out", OPT_STR, &out, "FILE", "mediaml model file to write (required)", 0},
        {"--context", OPT_INT, &context, "T", "model input length in tokens (default n_positions)", 0},
        {"--logits", OPT_BOOL, &logits, NULL, "linear LM head giving logits instead of softmax probabilities", 0},
        {"--json", OPT_BOOL, &json, NULL, "print the result as one JSON object", 0},
        {NULL, 0, NULL, NULL, NULL, 0}};
    cli_cmd c = {"textgen import-gpt2", "--checkpoint DIR --out FILE [OPTIONS]",
                 "Builds the equivalent mediaml model of a GPT-2 checkpoint (token and position embeddings, pre-LayerNorm\n"
                 "blocks with causal multi-head attention and a gelu_tanh MLP, final LayerNorm, LM head tied to the\n"
                 "token embeddings), copies the weights in and stores the GPT-2 tokenizer in the model's metadata.\n"
                 "config.json is checked against the tensor shapes; any mismatch names the tensor.",
                 opts,
                 "The output works with 'mediaml textgen generate' and 'mediaml textgen eval' (softmax head and a\n"
                 "tokenizer whose vocabulary is the model's), and with mm_model_load / mm_predict / mm_decoder.\n"
                 "Only safetensors checkpoints are read (F32, F16, BF16 or F64); weights are stored as float32."};
    int npos, rc = cli_parse(&c, argc, argv, NULL, 0, &npos);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!checkpoint) return cli_usage_error(&c, "--checkpoint DIR is required");
    if (!out) return cli_usage_error(&c, "--out FILE is required");
    if (cli_find(&c, "--context")->seen && context < 1) return cli_usage_error(&c, "--context must be at least 1, got %d", context);

    gpt2_import_report r;
    double t0 = now();
    mm_status st = gpt2_import(&(gpt2_import_args){.checkpoint = checkpoint,
                                                   .config = config,
                                                   .tokenizer_dir = tokenizer_dir,
                                                   .out = out,
                                                   .context = context,
                                                   .logits = logits},
                               &r);
    if (st) return cli_library_error();
    double secs = now() - t0;
    const gpt2_config *g = &r.config;
    if (json) {
        printf("{\"out\":");
        json_string(stdout, out);
        printf(",\"n_layer\":%d,\"n_head\":%d,\"n_embd\":%d,\"n_positions\":%d,\"vocab_size\":%d,\"n_inner\":%d,"
               "\"layer_norm_epsilon\":%g,\"activation\":",
               g->n_layer, g->n_head, g->n_embd, g->n_positions, g->vocab_size, g->n_inner, g->layer_norm_epsilon);
        json_string(stdout, g->activation);
        printf(",\"context\":%d,\"head\":\"%s\",\"params\":%ld,\"tokenizer_vocab\":%d,\"textgen\":%s,\"seconds\":", r.context,
               logits ? "logits" : "softmax", r.params, r.tokenizer_vocab, r.textgen_ready ? "true" : "false");
        json_number(stdout, secs);
        printf("}\n");
    } else {
        printf("GPT-2: %d layers, %d heads, width %d, MLP %d (%s), %d positions, vocabulary %d, LayerNorm eps %g\n", g->n_layer,
               g->n_head, g->n_embd, g->n_inner, g->activation, g->n_positions, g->vocab_size, g->layer_norm_epsilon);
        printf("model: input %d tokens, %s head, %ld parameters (the tied LM head stored as its own kernel)\n", r.context,
               logits ? "logits" : "softmax", r.params);
        if (r.has_tokenizer) printf("tokenizer: GPT-2 byte-level BPE, %d tokens, stored in the model\n", r.tokenizer_vocab);
        else printf("tokenizer: none found (give --tokenizer-dir DIR to store one)\n");
        if (!r.textgen_ready && r.has_tokenizer && !logits)
            printf("note: the tokenizer's vocabulary differs from the model's; 'mediaml textgen' will not take this file\n");
        printf("wrote %s in %.1f s\n", out, secs);
    }
    return 0;
}
