/* GPT-2 checkpoint import: turns a Hugging Face "gpt2" checkpoint (model.safetensors +
 * config.json, the layout of the Hub's gpt2 / gpt2-medium / distilgpt2 repositories) into a
 * mediaml model file that mm_model_load, mm_predict and the textgen commands use directly.
 *
 * The mediaml model (functional, input [context] token ids as floats):
 *
 *   wte   Embedding(vocab_size, n_embd)                 wte/embeddings      = wte.weight
 *   wpe   PositionEmbedding(max_length = n_positions)   wpe/embeddings      = wpe.weight
 *   for each block i:
 *     hI_ln_1   LayerNormalization(layer_norm_epsilon)  gamma, beta         = h.I.ln_1.weight, .bias
 *     hI_attn   MultiHeadAttention(n_head, causal)      query/key/value_kernel [C, C] = columns
 *               [0, C) / [C, 2C) / [2C, 3C) of h.I.attn.c_attn.weight [C, 3C], *_bias likewise
 *               from c_attn.bias; output_kernel, output_bias = h.I.attn.c_proj.weight, .bias
 *     hI_add_1  Add(x, attn)
 *     hI_ln_2   LayerNormalization
 *     hI_mlp_fc    Dense(n_inner, gelu_tanh)            kernel, bias        = h.I.mlp.c_fc.weight, .bias
 *     hI_mlp_proj  Dense(n_embd)                        kernel, bias        = h.I.mlp.c_proj.weight, .bias
 *     hI_add_2  Add
 *   ln_f     LayerNormalization                         gamma, beta         = ln_f.weight, .bias
 *   lm_head  Dense(vocab_size, softmax, no bias)        kernel [C, V]       = wte.weight^T (tied), or
 *                                                                             lm_head.weight^T if present
 *
 * HF's Conv1D weights are [in, out], which is mediaml's Dense kernel layout, so only c_attn is
 * split and the tied head transposed. Head h of the attention uses columns [h*hd, (h+1)*hd) of
 * q, k and v, as GPT-2 does. Tensor names may carry a "transformer." prefix (GPT2LMHeadModel
 * saved by save_pretrained); the causal-mask buffers h.I.attn.bias / h.I.attn.masked_bias are
 * ignored. F32, F16, BF16 and F64 tensors are read (converted to float32).
 *
 * Checks: config.json is cross-checked against the tensor shapes (vocab_size and n_embd from
 * wte.weight, n_positions from wpe.weight, n_layer from the h.I blocks present, n_inner from
 * c_fc.weight); a mismatch, a missing tensor, a tensor of the wrong shape or dtype, an unknown
 * tensor name or an unsupported config option (activation, scale_attn_by_inverse_layer_idx,
 * reorder_and_upcast_attn, cross attention) is an error naming it. Nothing is written then.
 *
 * Metadata stored in the model file (mm_model_get_metadata):
 *   "tokenizer"    mm_tokenizer_to_json of the GPT-2 tokenizer (when one is given or found)
 *   "gpt2_config"  {"n_layer":..,"n_head":..,"n_embd":..,"n_positions":..,"vocab_size":..,
 *                   "n_inner":..,"layer_norm_epsilon":..,"activation":"gelu_tanh",
 *                   "eos_token_id":..,"bos_token_id":..,"source":"<checkpoint path>"}
 *   "textgen"      the textgen app's model description (textgen.h), written when the head is
 *                  softmax and the tokenizer's vocabulary is the model's (vocab_size), so that
 *                  textgen_load and 'mediaml textgen generate' take the file:
 *                  {"format":1,"arch":"gpt","vocab_size":V,"context":T,"layers":L,"heads":H,
 *                   "width":C,"position":"learned","dropout":0,"tokenizer":"gpt2",
 *                   "source":"gpt2-import"}
 *
 * Everything here goes through the public API (mediaml.h, mediaml_text.h). Errors are returned
 * as mm_status with mm_errmsg() set; nothing prints or exits. */
#ifndef MEDIAML_APP_GPT2_IMPORT_H
#define MEDIAML_APP_GPT2_IMPORT_H

#include <mediaml.h>

typedef struct gpt2_config {
    int n_layer, n_head, n_embd, n_positions, vocab_size;
    int n_inner;                 /* MLP width (config's n_inner, null = 4 * n_embd) */
    float layer_norm_epsilon;    /* default 1e-5 */
    char activation[24];         /* mediaml name of the MLP activation ("gelu_tanh" for gelu_new) */
    int bos_token_id, eos_token_id; /* -1 when the config has none */
} gpt2_config;

/* Reads a Hugging Face GPT-2 config.json. Missing sizes are left 0 (inferred from the tensors
 * by gpt2_import); n_head is required. Maps activation_function gelu_new / gelu_pytorch_tanh /
 * gelu_fast -> "gelu_tanh", gelu -> "gelu", relu -> "relu"; others are MM_ERR_ARG. */
mm_status gpt2_read_config(const char *path, gpt2_config *cfg);

/* Builds the mediaml model above (weights left zero) for a complete config. context is the
 * model's input length in tokens (1..n_positions; 0 = n_positions). logits != 0 gives a linear
 * LM head (logits) instead of softmax probabilities. */
mm_status gpt2_build_model(const gpt2_config *cfg, int context, int logits, mm_model **out);

typedef struct gpt2_import_args {
    const char *checkpoint;    /* a directory holding model.safetensors (and config.json), or the
                                  .safetensors file itself (config.json beside it) */
    const char *config;        /* config.json path; NULL = beside the checkpoint */
    const char *tokenizer_dir; /* GPT-2 tokenizer files (vocab.json + merges.txt or encoder.json +
                                  vocab.bpe); NULL = the checkpoint's directory when it holds them,
                                  else no tokenizer is stored */
    const char *out;           /* mediaml model file to write */
    int context;               /* model input length; 0 = n_positions */
    int logits;                /* 1: linear LM head (logits) instead of softmax */
} gpt2_import_args;

typedef struct gpt2_import_report {
    gpt2_config config;        /* as used (inferred fields filled in) */
    long params;               /* parameters of the mediaml model (the tied head counted twice) */
    int context;
    int has_tokenizer;
    int tokenizer_vocab;       /* 0 when no tokenizer */
    int ignored_tensors;       /* causal-mask buffers skipped */
    int textgen_ready;         /* "textgen" metadata written (see above) */
} gpt2_import_report;

/* Reads the checkpoint, checks it, builds the model, copies the weights in and writes a.out
 * (atomically). report may be NULL. */
mm_status gpt2_import(const gpt2_import_args *a, gpt2_import_report *report);

#endif
