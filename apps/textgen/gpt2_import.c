/* GPT-2 checkpoint import (see gpt2_import.h for the mapping and the checks).
 *
 * The public API has no weight setter, so the weights go in through the file: the model is
 * built (weights zero) and saved to a temporary file next to the output, that file is read
 * back with mm_st_read, each tensor's buffer is filled from the checkpoint (converted,
 * split or transposed as needed) and the result is written to the output with mm_st_write
 * (atomic). The temporary file is removed in every case. */
#include "textgen/gpt2_import.h"
#include "textgen/textgen.h"

#include <mediaml_text.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4096

/* ------------------------------------------------------------------ small helpers */

static int is_dir(const char *p) {
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p) {
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* dir/name; an over-long result becomes "" (which no file matches). */
static void join(char *out, size_t cap, const char *dir, const char *name) {
    size_t n = strlen(dir);
    int k = snprintf(out, cap, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
    if (k < 0 || (size_t)k >= cap) out[0] = 0;
}

/* Directory part of a file path ("." when none). */
static void dir_of(char *out, size_t cap, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, cap, ".");
    else if (slash == path) snprintf(out, cap, "/");
    else snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

static mm_status read_text(const char *path, char **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mm_error(MM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > 64L * 1024 * 1024) {
        fclose(f);
        return mm_error(MM_ERR_IO, "%s: not a regular file of reasonable size", path);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        fclose(f);
        return mm_error(MM_ERR_NOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, (size_t)sb.st_size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n != (size_t)sb.st_size) {
        free(buf);
        return mm_error(MM_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    return MM_OK;
}

static void shape_str(char *buf, size_t cap, int ndim, const int *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < ndim && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, i ? ", %d" : "%d", shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* ------------------------------------------------------------------ config.json */

/* An integer field: absent or null -> dflt (*present = 0); a non-integer -> error. */
static mm_status cfg_int(const cJSON *root, const char *path, const char *key, int dflt, int *out, int *present) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = dflt;
    if (present) *present = 0;
    if (!v || cJSON_IsNull(v)) return MM_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble || v->valuedouble < 0 ||
        v->valuedouble > INT_MAX)
        return mm_error(MM_ERR_FORMAT, "%s: \"%s\" must be a non-negative integer", path, key);
    *out = (int)v->valuedouble;
    if (present) *present = 1;
    return MM_OK;
}

static int cfg_true(const cJSON *root, const char *key) {
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, key));
}

mm_status gpt2_read_config(const char *path, gpt2_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char *text;
    mm_status st = read_text(path, &text);
    if (st) return st;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mm_error(MM_ERR_FORMAT, "%s: not a JSON object", path);
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "gpt2"))
        st = mm_error(MM_ERR_ARG, "%s: model_type is \"%s\", not \"gpt2\"", path, mt->valuestring);
    int has_pos = 0;
    if (!st) st = cfg_int(root, path, "n_layer", 0, &cfg->n_layer, NULL);
    if (!st) st = cfg_int(root, path, "n_head", 0, &cfg->n_head, NULL);
    if (!st) st = cfg_int(root, path, "n_embd", 0, &cfg->n_embd, NULL);
    if (!st) st = cfg_int(root, path, "n_positions", 0, &cfg->n_positions, &has_pos);
    if (!st && !has_pos) st = cfg_int(root, path, "n_ctx", 0, &cfg->n_positions, NULL);
    if (!st) st = cfg_int(root, path, "vocab_size", 0, &cfg->vocab_size, NULL);
    if (!st) st = cfg_int(root, path, "n_inner", 0, &cfg->n_inner, NULL);
    if (!st) st = cfg_int(root, path, "bos_token_id", -1, &cfg->bos_token_id, NULL);
    if (!st) st = cfg_int(root, path, "eos_token_id", -1, &cfg->eos_token_id, NULL);
    if (!st && cfg->n_head < 1) st = mm_error(MM_ERR_FORMAT, "%s: \"n_head\" is missing (it cannot be inferred from the weights)", path);
    if (!st) {
        const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon");
        cfg->layer_norm_epsilon = 1e-5f;
        if (eps && !cJSON_IsNull(eps)) {
            if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0 && eps->valuedouble < 1))
                st = mm_error(MM_ERR_FORMAT, "%s: \"layer_norm_epsilon\" must be a number in (0, 1)", path);
            else
                cfg->layer_norm_epsilon = (float)eps->valuedouble;
        }
    }
    if (!st) {
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
        const char *a = cJSON_IsString(act) ? act->valuestring : "gelu_new";
        const char *ours = !strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh") || !strcmp(a, "gelu_fast") ? "gelu_tanh"
                           : !strcmp(a, "gelu") ? "gelu"
                           : !strcmp(a, "relu") ? "relu"
                           : NULL;
        if (!ours) st = mm_error(MM_ERR_ARG, "%s: activation_function \"%s\" is not supported (gelu_new, gelu, relu)", path, a);
        else snprintf(cfg->activation, sizeof cfg->activation, "%s", ours);
    }
    /* Options that change the computation and that the mediaml model does not reproduce. */
    if (!st && cfg_true(root, "scale_attn_by_inverse_layer_idx"))
        st = mm_error(MM_ERR_ARG, "%s: scale_attn_by_inverse_layer_idx = true is not supported", path);
    if (!st && cfg_true(root, "reorder_and_upcast_attn"))
        st = mm_error(MM_ERR_ARG, "%s: reorder_and_upcast_attn = true is not supported", path);
    if (!st && cfg_true(root, "add_cross_attention"))
        st = mm_error(MM_ERR_ARG, "%s: add_cross_attention = true is not supported (decoder-only GPT-2 only)", path);
    if (!st) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "scale_attn_weights");
        if (s && cJSON_IsFalse(s)) st = mm_error(MM_ERR_ARG, "%s: scale_attn_weights = false is not supported", path);
    }
    cJSON_Delete(root);
    if (st) memset(cfg, 0, sizeof *cfg);
    return st;
}

/* ------------------------------------------------------------------ model */

mm_status gpt2_build_model(const gpt2_config *c, int context, int logits, mm_model **out) {
    *out = NULL;
    if (c->n_layer < 1 || c->n_head < 1 || c->n_embd < 1 || c->n_positions < 1 || c->vocab_size < 1 || c->n_inner < 1)
        return mm_error(MM_ERR_ARG, "gpt2: incomplete config (n_layer %d, n_head %d, n_embd %d, n_positions %d, vocab_size %d, n_inner %d)",
                        c->n_layer, c->n_head, c->n_embd, c->n_positions, c->vocab_size, c->n_inner);
    if (c->n_embd % c->n_head)
        return mm_error(MM_ERR_ARG, "gpt2: n_embd %d is not divisible by n_head %d", c->n_embd, c->n_head);
    if (context == 0) context = c->n_positions;
    if (context < 1 || context > c->n_positions)
        return mm_error(MM_ERR_ARG, "gpt2: context %d outside 1..n_positions (%d)", context, c->n_positions);
    mm_model *m = mm_functional("gpt2");
    if (!m) return mm_error(MM_ERR_NOMEM, "out of memory");
    char n1[48], n2[48];
    int x = mm_input(m, 1, (int[]){context});
    int h = mm_call(m, mm_Embedding(.input_dim = c->vocab_size, .output_dim = c->n_embd, .name = "wte"), x);
    h = mm_call(m, mm_PositionEmbedding(.max_length = c->n_positions, .name = "wpe"), h);
    for (int i = 0; i < c->n_layer; i++) {
        snprintf(n1, sizeof n1, "h%d_ln_1", i);
        int a = mm_call(m, mm_LayerNormalization(.epsilon = c->layer_norm_epsilon, .name = n1), h);
        snprintf(n1, sizeof n1, "h%d_attn", i);
        a = mm_call(m, mm_MultiHeadAttention(.num_heads = c->n_head, .causal = 1, .name = n1), a);
        snprintf(n1, sizeof n1, "h%d_add_1", i);
        h = mm_call(m, mm_Add(.name = n1), h, a);
        snprintf(n1, sizeof n1, "h%d_ln_2", i);
        a = mm_call(m, mm_LayerNormalization(.epsilon = c->layer_norm_epsilon, .name = n1), h);
        snprintf(n1, sizeof n1, "h%d_mlp_fc", i);
        a = mm_call(m, mm_Dense(.units = c->n_inner, .activation = c->activation, .name = n1), a);
        snprintf(n1, sizeof n1, "h%d_mlp_proj", i);
        a = mm_call(m, mm_Dense(.units = c->n_embd, .name = n1), a);
        snprintf(n2, sizeof n2, "h%d_add_2", i);
        h = mm_call(m, mm_Add(.name = n2), h, a);
    }
    h = mm_call(m, mm_LayerNormalization(.epsilon = c->layer_norm_epsilon, .name = "ln_f"), h);
    h = mm_call(m, mm_Dense(.units = c->vocab_size, .activation = logits ? "linear" : "softmax", .use_bias = -1,
                            .name = "lm_head"), h);
    if (h < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", mm_errmsg());
        mm_model_free(m);
        return mm_error(MM_ERR_ARG, "gpt2: building the model: %s", msg);
    }
    *out = m;
    return MM_OK;
}

/* ------------------------------------------------------------------ checkpoint access */

enum { DT_F32, DT_F16, DT_BF16, DT_F64 };

typedef struct ckpt {
    mm_st_file f;
    const char *path;
    char *used;     /* per tensor: referenced by the mapping */
} ckpt;

/* The tensor named name (also tried with the "transformer." prefix); marks it used. */
static const mm_st_tensor *ck_find(ckpt *ck, const char *name) {
    char pre[256];
    const mm_st_tensor *t = mm_st_find(&ck->f, name);
    if (!t) {
        snprintf(pre, sizeof pre, "transformer.%s", name);
        t = mm_st_find(&ck->f, pre);
    }
    if (t) ck->used[t - ck->f.tensors] = 1;
    return t;
}

static int dtype_code(const char *d) {
    return !strcmp(d, "F32") ? DT_F32 : !strcmp(d, "F16") ? DT_F16 : !strcmp(d, "BF16") ? DT_BF16 : !strcmp(d, "F64") ? DT_F64 : -1;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float elem(const mm_st_tensor *t, int code, size_t i) {
    switch (code) {
    case DT_F32: return ((const float *)t->data)[i];
    case DT_F64: return (float)((const double *)t->data)[i];
    case DT_F16: return half_to_float(((const uint16_t *)t->data)[i]);
    default: {
        uint32_t bits = (uint32_t)((const uint16_t *)t->data)[i] << 16;
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    }
}

/* dst[r * cols + c] = src[r * src_cols + off + c] for r < rows, c < cols. */
static void copy_block(const mm_st_tensor *t, float *dst, size_t rows, size_t src_cols, size_t off, size_t cols) {
    int code = dtype_code(t->dtype);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) dst[r * cols + c] = elem(t, code, r * src_cols + off + c);
}

/* dst [cols, rows] = src [rows, cols]^T. */
static void copy_transposed(const mm_st_tensor *t, float *dst, size_t rows, size_t cols) {
    int code = dtype_code(t->dtype);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) dst[c * rows + r] = elem(t, code, r * cols + c);
}

/* Looks up a tensor and checks its dtype and shape (ndim entries of want). why says where the
 * expected shape comes from. */
static mm_status ck_expect(ckpt *ck, const char *name, int ndim, const int *want, const char *why, const mm_st_tensor **out) {
    const mm_st_tensor *t = ck_find(ck, name);
    *out = t;
    if (!t) return mm_error(MM_ERR_FORMAT, "%s: tensor '%s' is missing", ck->path, name);
    if (dtype_code(t->dtype) < 0)
        return mm_error(MM_ERR_FORMAT, "%s: tensor '%s' has dtype %s (F32, F16, BF16 or F64 expected)", ck->path, name, t->dtype);
    if (t->ndim != ndim || memcmp(t->shape, want, (size_t)ndim * sizeof(int))) {
        char a[96], b[96];
        shape_str(a, sizeof a, t->ndim, t->shape);
        shape_str(b, sizeof b, ndim, want);
        return mm_error(MM_ERR_SHAPE, "%s: tensor '%s' has shape %s but %s needs %s", ck->path, name, a, why, b);
    }
    return MM_OK;
}

/* "h.<i>.<rest>" (with or without "transformer.") -> i, else -1. */
static int block_index(const char *name, const char **rest) {
    if (!strncmp(name, "transformer.", 12)) name += 12;
    if (strncmp(name, "h.", 2)) return -1;
    char *end;
    long i = strtol(name + 2, &end, 10);
    if (end == name + 2 || *end != '.' || i < 0 || i > 100000) return -1;
    if (rest) *rest = end + 1;
    return (int)i;
}

/* Cross-checks the config with the checkpoint, fills the fields the config left out, and
 * verifies every tensor's shape and dtype. */
static mm_status check_checkpoint(ckpt *ck, const char *cfg_path, gpt2_config *c, int *ignored) {
    const mm_st_tensor *wte = ck_find(ck, "wte.weight"), *wpe = ck_find(ck, "wpe.weight"), *t;
    char s[96];
    if (!wte) return mm_error(MM_ERR_FORMAT, "%s: tensor 'wte.weight' is missing (not a GPT-2 checkpoint?)", ck->path);
    if (!wpe) return mm_error(MM_ERR_FORMAT, "%s: tensor 'wpe.weight' is missing", ck->path);
    if (wte->ndim != 2) {
        shape_str(s, sizeof s, wte->ndim, wte->shape);
        return mm_error(MM_ERR_SHAPE, "%s: tensor 'wte.weight' has shape %s, expected [vocab_size, n_embd]", ck->path, s);
    }
    if (c->vocab_size && c->vocab_size != wte->shape[0])
        return mm_error(MM_ERR_SHAPE, "%s: vocab_size is %d but tensor 'wte.weight' in %s has %d rows (shape [%d, %d])", cfg_path,
                        c->vocab_size, ck->path, wte->shape[0], wte->shape[0], wte->shape[1]);
    if (c->n_embd && c->n_embd != wte->shape[1])
        return mm_error(MM_ERR_SHAPE, "%s: n_embd is %d but tensor 'wte.weight' in %s has %d columns (shape [%d, %d])", cfg_path,
                        c->n_embd, ck->path, wte->shape[1], wte->shape[0], wte->shape[1]);
    c->vocab_size = wte->shape[0];
    c->n_embd = wte->shape[1];
    if (wpe->ndim == 2 && c->n_positions && c->n_positions != wpe->shape[0])
        return mm_error(MM_ERR_SHAPE, "%s: n_positions is %d but tensor 'wpe.weight' in %s has %d rows (shape [%d, %d])", cfg_path,
                        c->n_positions, ck->path, wpe->shape[0], wpe->shape[0], wpe->shape[1]);
    if (wpe->ndim == 2 && !c->n_positions) c->n_positions = wpe->shape[0];
    const int C = c->n_embd;
    /* blocks present */
    int max_block = -1;
    for (int i = 0; i < ck->f.n; i++) {
        int b = block_index(ck->f.tensors[i].name, NULL);
        if (b > max_block) max_block = b;
    }
    int blocks = max_block + 1;
    if (blocks < 1) return mm_error(MM_ERR_FORMAT, "%s: no transformer blocks (tensors h.0.*)", ck->path);
    if (c->n_layer && c->n_layer != blocks)
        return mm_error(MM_ERR_SHAPE, "%s: n_layer is %d but %s has %d blocks (h.0 .. h.%d)", cfg_path, c->n_layer, ck->path, blocks,
                        blocks - 1);
    c->n_layer = blocks;
    const mm_st_tensor *fc = ck_find(ck, "h.0.mlp.c_fc.weight");
    if (fc && fc->ndim == 2) {
        if (c->n_inner && c->n_inner != fc->shape[1])
            return mm_error(MM_ERR_SHAPE, "%s: n_inner is %d but tensor 'h.0.mlp.c_fc.weight' in %s is [%d, %d]", cfg_path, c->n_inner,
                            ck->path, fc->shape[0], fc->shape[1]);
        if (!c->n_inner) c->n_inner = fc->shape[1];
    }
    if (!c->n_inner) c->n_inner = 4 * C;
    if (C % c->n_head)
        return mm_error(MM_ERR_SHAPE, "%s: n_embd %d is not divisible by n_head %d", cfg_path, C, c->n_head);
    if (!c->n_positions) return mm_error(MM_ERR_FORMAT, "%s: n_positions unknown", cfg_path);

    /* every tensor's shape */
    mm_status st;
    char why[160];
    snprintf(why, sizeof why, "vocab_size %d, n_embd %d", c->vocab_size, C);
    if ((st = ck_expect(ck, "wte.weight", 2, (int[]){c->vocab_size, C}, why, &t))) return st;
    snprintf(why, sizeof why, "n_positions %d, n_embd %d", c->n_positions, C);
    if ((st = ck_expect(ck, "wpe.weight", 2, (int[]){c->n_positions, C}, why, &t))) return st;
    snprintf(why, sizeof why, "n_embd %d", C);
    for (int i = 0; i < blocks; i++) {
        static const char *vec_c[] = {"ln_1.weight", "ln_1.bias", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_proj.bias"};
        char nm[96];
        for (size_t k = 0; k < sizeof vec_c / sizeof vec_c[0]; k++) {
            snprintf(nm, sizeof nm, "h.%d.%s", i, vec_c[k]);
            if ((st = ck_expect(ck, nm, 1, (int[]){C}, why, &t))) return st;
        }
        snprintf(nm, sizeof nm, "h.%d.attn.c_attn.weight", i);
        if ((st = ck_expect(ck, nm, 2, (int[]){C, 3 * C}, why, &t))) return st;
        snprintf(nm, sizeof nm, "h.%d.attn.c_attn.bias", i);
        if ((st = ck_expect(ck, nm, 1, (int[]){3 * C}, why, &t))) return st;
        snprintf(nm, sizeof nm, "h.%d.attn.c_proj.weight", i);
        if ((st = ck_expect(ck, nm, 2, (int[]){C, C}, why, &t))) return st;
        char why2[160];
        snprintf(why2, sizeof why2, "n_embd %d, n_inner %d", C, c->n_inner);
        snprintf(nm, sizeof nm, "h.%d.mlp.c_fc.weight", i);
        if ((st = ck_expect(ck, nm, 2, (int[]){C, c->n_inner}, why2, &t))) return st;
        snprintf(nm, sizeof nm, "h.%d.mlp.c_fc.bias", i);
        if ((st = ck_expect(ck, nm, 1, (int[]){c->n_inner}, why2, &t))) return st;
        snprintf(nm, sizeof nm, "h.%d.mlp.c_proj.weight", i);
        if ((st = ck_expect(ck, nm, 2, (int[]){c->n_inner, C}, why2, &t))) return st;
    }
    if ((st = ck_expect(ck, "ln_f.weight", 1, (int[]){C}, why, &t)) || (st = ck_expect(ck, "ln_f.bias", 1, (int[]){C}, why, &t)))
        return st;
    if (ck_find(ck, "lm_head.weight")) {
        snprintf(why, sizeof why, "vocab_size %d, n_embd %d", c->vocab_size, C);
        if ((st = ck_expect(ck, "lm_head.weight", 2, (int[]){c->vocab_size, C}, why, &t))) return st;
    }
    /* anything else must be a known buffer */
    *ignored = 0;
    for (int i = 0; i < ck->f.n; i++) {
        if (ck->used[i]) continue;
        const char *name = ck->f.tensors[i].name, *rest = NULL;
        int b = block_index(name, &rest);
        if (b >= 0 && (!strcmp(rest, "attn.bias") || !strcmp(rest, "attn.masked_bias"))) {
            (*ignored)++;
            continue;
        }
        return mm_error(MM_ERR_FORMAT, "%s: unexpected tensor '%s' (not part of a GPT-2 LM checkpoint)", ck->path, name);
    }
    return MM_OK;
}

/* Fills one mediaml parameter (by its name in the saved model) from the checkpoint. */
static mm_status fill_param(ckpt *ck, const gpt2_config *c, mm_st_tensor *p) {
    const size_t C = (size_t)c->n_embd;
    float *dst = p->data;
    char layer[48], param[48], name[96];
    if (sscanf(p->name, "%47[^/]/%47s", layer, param) != 2) return mm_error(MM_ERR_STATE, "gpt2: unexpected parameter '%s'", p->name);
    const mm_st_tensor *t = NULL;
    /* plain copies: a checkpoint tensor with the same element count and layout */
    name[0] = 0;
    if (!strcmp(p->name, "wte/embeddings")) snprintf(name, sizeof name, "wte.weight");
    else if (!strcmp(p->name, "wpe/embeddings")) snprintf(name, sizeof name, "wpe.weight");
    else if (!strcmp(layer, "ln_f")) snprintf(name, sizeof name, "ln_f.%s", !strcmp(param, "gamma") ? "weight" : "bias");
    if (!strcmp(p->name, "lm_head/kernel")) {
        t = ck_find(ck, "lm_head.weight");
        if (!t) t = ck_find(ck, "wte.weight");
        if (!t || t->size != p->size) return mm_error(MM_ERR_STATE, "gpt2: no source for lm_head/kernel");
        copy_transposed(t, dst, (size_t)c->vocab_size, C);
        return MM_OK;
    }
    int blk = -1;
    char part[48];
    if (!name[0] && sscanf(layer, "h%d_%47s", &blk, part) == 2) {
        const char *ln_param = !strcmp(param, "gamma") ? "weight" : "bias";
        if (!strcmp(part, "ln_1") || !strcmp(part, "ln_2")) snprintf(name, sizeof name, "h.%d.%s.%s", blk, part, ln_param);
        else if (!strcmp(part, "mlp_fc")) snprintf(name, sizeof name, "h.%d.mlp.c_fc.%s", blk, !strcmp(param, "kernel") ? "weight" : "bias");
        else if (!strcmp(part, "mlp_proj")) snprintf(name, sizeof name, "h.%d.mlp.c_proj.%s", blk, !strcmp(param, "kernel") ? "weight" : "bias");
        else if (!strcmp(part, "attn")) {
            if (!strcmp(param, "output_kernel")) snprintf(name, sizeof name, "h.%d.attn.c_proj.weight", blk);
            else if (!strcmp(param, "output_bias")) snprintf(name, sizeof name, "h.%d.attn.c_proj.bias", blk);
            else {
                /* query/key/value: columns [0, C), [C, 2C), [2C, 3C) of c_attn */
                size_t off = !strncmp(param, "query_", 6) ? 0 : !strncmp(param, "key_", 4) ? C : !strncmp(param, "value_", 6) ? 2 * C : 3 * C;
                int kernel = strstr(param, "_kernel") != NULL;
                if (off == 3 * C) return mm_error(MM_ERR_STATE, "gpt2: unexpected parameter '%s'", p->name);
                snprintf(name, sizeof name, "h.%d.attn.c_attn.%s", blk, kernel ? "weight" : "bias");
                t = ck_find(ck, name);
                if (!t || p->size != (kernel ? C * C : C)) return mm_error(MM_ERR_STATE, "gpt2: no source for '%s'", p->name);
                copy_block(t, dst, kernel ? C : 1, 3 * C, off, C);
                return MM_OK;
            }
        }
    }
    if (!name[0]) return mm_error(MM_ERR_STATE, "gpt2: no checkpoint tensor for parameter '%s'", p->name);
    t = ck_find(ck, name);
    if (!t || t->size != p->size)
        return mm_error(MM_ERR_STATE, "gpt2: parameter '%s' (%zu values) has no matching tensor '%s'", p->name, p->size, name);
    copy_block(t, dst, 1, t->size, 0, t->size);
    return MM_OK;
}

/* ------------------------------------------------------------------ metadata */

static char *config_json(const gpt2_config *c, const char *source) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(j, "n_head", c->n_head);
    cJSON_AddNumberToObject(j, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(j, "n_positions", c->n_positions);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "n_inner", c->n_inner);
    cJSON_AddNumberToObject(j, "layer_norm_epsilon", c->layer_norm_epsilon);
    cJSON_AddStringToObject(j, "activation", c->activation);
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(j, "bos_token_id", c->bos_token_id);
    if (c->eos_token_id >= 0) cJSON_AddNumberToObject(j, "eos_token_id", c->eos_token_id);
    cJSON_AddStringToObject(j, "source", source);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* The textgen app's metadata (see textgen.h), so that 'mediaml textgen generate' and textgen_load
 * accept the imported model: a flat object, as textgen_meta_to_json writes it. */
static char *textgen_json(const gpt2_config *c, int context) {
    char *s = malloc(512);
    if (s)
        snprintf(s, 512,
                 "{\"format\":1,\"arch\":\"gpt\",\"vocab_size\":%d,\"context\":%d,\"layers\":%d,\"heads\":%d,"
                 "\"width\":%d,\"position\":\"learned\",\"dropout\":0,\"tokenizer\":\"gpt2\",\"source\":\"gpt2-import\"}",
                 c->vocab_size, context, c->n_layer, c->n_head, c->n_embd);
    return s;
}

static int has_tokenizer_files(const char *dir) {
    char a[PATH_CAP], b[PATH_CAP];
    join(a, sizeof a, dir, "vocab.json");
    join(b, sizeof b, dir, "merges.txt");
    if (is_file(a) && is_file(b)) return 1;
    join(a, sizeof a, dir, "encoder.json");
    join(b, sizeof b, dir, "vocab.bpe");
    return is_file(a) && is_file(b);
}

/* ------------------------------------------------------------------ import */

mm_status gpt2_import(const gpt2_import_args *a, gpt2_import_report *report) {
    gpt2_import_report rep;
    memset(&rep, 0, sizeof rep);
    if (report) memset(report, 0, sizeof *report);
    if (!a || !a->checkpoint || !a->out) return mm_error(MM_ERR_ARG, "gpt2 import: checkpoint and out are required");

    char st_path[PATH_CAP], dir[PATH_CAP], cfg_path[PATH_CAP];
    if (is_dir(a->checkpoint)) {
        snprintf(dir, sizeof dir, "%s", a->checkpoint);
        join(st_path, sizeof st_path, dir, "model.safetensors");
        if (!is_file(st_path)) {
            char alt[PATH_CAP];
            join(alt, sizeof alt, dir, "model.safetensors.index.json");
            if (is_file(alt)) return mm_error(MM_ERR_ARG, "%s: sharded checkpoints (model.safetensors.index.json) are not supported", dir);
            join(alt, sizeof alt, dir, "pytorch_model.bin");
            if (is_file(alt))
                return mm_error(MM_ERR_ARG, "%s: holds pytorch_model.bin but no model.safetensors (only safetensors is read; "
                                            "convert it, e.g. with safetensors.torch.save_file)", dir);
            return mm_error(MM_ERR_IO, "%s: no model.safetensors in this directory", dir);
        }
    } else {
        if (!is_file(a->checkpoint)) return mm_error(MM_ERR_IO, "%s: no such file or directory", a->checkpoint);
        snprintf(st_path, sizeof st_path, "%s", a->checkpoint);
        dir_of(dir, sizeof dir, a->checkpoint);
    }
    if (a->config) snprintf(cfg_path, sizeof cfg_path, "%s", a->config);
    else join(cfg_path, sizeof cfg_path, dir, "config.json");
    if (!is_file(cfg_path)) return mm_error(MM_ERR_IO, "%s: config.json not found (give its path with the config option)", cfg_path);

    gpt2_config cfg;
    mm_status st = gpt2_read_config(cfg_path, &cfg);
    if (st) return st;

    /* the tokenizer first: it is cheap, and its failure should not cost a checkpoint read */
    mm_tokenizer *tok = NULL;
    const char *tok_dir = a->tokenizer_dir ? a->tokenizer_dir : has_tokenizer_files(dir) ? dir : NULL;
    if (tok_dir && (st = mm_tokenizer_gpt2_load(tok_dir, &tok))) return st;

    ckpt ck = {.path = st_path};
    mm_model *m = NULL;
    char *tok_json = NULL, *cfg_json = NULL, tmp[PATH_CAP + 32];
    mm_st_file saved = {0};
    int have_tmp = 0;
    snprintf(tmp, sizeof tmp, "%s.gpt2-import-tmp", a->out);

    if ((st = mm_st_read(st_path, &ck.f))) goto done;
    ck.used = calloc((size_t)ck.f.n + 1, 1);
    if (!ck.used) {
        st = mm_error(MM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = check_checkpoint(&ck, cfg_path, &cfg, &rep.ignored_tensors))) goto done;
    if (tok && mm_tokenizer_vocab_size(tok) > cfg.vocab_size) {
        st = mm_error(MM_ERR_SHAPE, "%s: the tokenizer has %d tokens but the model's vocabulary (wte.weight) has %d rows", tok_dir,
                      mm_tokenizer_vocab_size(tok), cfg.vocab_size);
        goto done;
    }
    int context = a->context ? a->context : cfg.n_positions;
    if ((st = gpt2_build_model(&cfg, context, a->logits, &m))) goto done;
    if (tok) {
        if ((st = mm_tokenizer_to_json(tok, &tok_json)) || (st = mm_model_set_metadata(m, TEXTGEN_META_TOKENIZER, tok_json)))
            goto done;
        rep.has_tokenizer = 1;
        rep.tokenizer_vocab = mm_tokenizer_vocab_size(tok);
    }
    cfg_json = config_json(&cfg, st_path);
    if (!cfg_json) {
        st = mm_error(MM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = mm_model_set_metadata(m, "gpt2_config", cfg_json))) goto done;
    if (tok && !a->logits && rep.tokenizer_vocab == cfg.vocab_size) {
        char *tg = textgen_json(&cfg, context);
        st = tg ? mm_model_set_metadata(m, TEXTGEN_META_CONFIG, tg) : mm_error(MM_ERR_NOMEM, "out of memory");
        free(tg);
        if (st) goto done;
        rep.textgen_ready = 1;
    }
    rep.params = mm_count_params(m);
    rep.context = context;
    /* weights in through the file (no setter in the public API) */
    have_tmp = 1;
    if ((st = mm_model_save(m, tmp, 0))) goto done;
    mm_model_free(m);
    m = NULL;
    if ((st = mm_st_read(tmp, &saved))) goto done;
    for (int i = 0; i < saved.n && st == MM_OK; i++) {
        if (strcmp(saved.tensors[i].dtype, "F32")) {
            st = mm_error(MM_ERR_STATE, "gpt2: saved parameter '%s' is not F32", saved.tensors[i].name);
            break;
        }
        st = fill_param(&ck, &cfg, &saved.tensors[i]);
    }
    if (st == MM_OK) st = mm_st_write(a->out, &saved);

done:
    if (have_tmp) unlink(tmp);
    mm_st_free(&saved);
    mm_model_free(m);
    free(tok_json);
    free(cfg_json);
    mm_tokenizer_free(tok);
    mm_st_free(&ck.f);
    free(ck.used);
    if (st == MM_OK) {
        rep.config = cfg;
        if (report) *report = rep;
    }
    return st;
}
