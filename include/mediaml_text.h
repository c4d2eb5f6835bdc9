/* mediaml text: UTF-8 helpers and tokenizers for text generation.
 *
 *   mm_tokenizer *tok;
 *   mm_tokenizer_gpt2_load("data/gpt2-tokenizer", &tok);      // or _char_build, _bpe_train
 *   int32_t *ids; size_t n;
 *   mm_tokenizer_encode(tok, "Hello world", 11, &ids, &n);     // -> 15496 995
 *   char *text; size_t len;
 *   mm_tokenizer_decode(tok, ids, n, &text, &len);             // -> "Hello world"
 *   free(ids); free(text);
 *   char *json; mm_tokenizer_to_json(tok, &json);               // store in model metadata
 *   mm_tokenizer_free(tok);
 *
 * Three kinds of tokenizer share one handle type:
 *   char  one token per Unicode code point seen in a corpus (ids sorted by code point),
 *         optionally with an unknown token for code points not seen at build time;
 *   bpe   byte-level BPE as GPT-2: text is split with GPT-2's pre-tokenization regex
 *         's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *         (\s = Unicode White_Space), each piece's bytes are merged pairwise by merge rank.
 *         Loaded from GPT-2's files (ids exactly GPT-2's) or trained on a corpus.
 *
 * Conventions: every fallible call returns an mm_status and sets mm_errmsg(). Buffers returned
 * through pointer arguments (ids, text, json) are malloc'ed and owned by the caller (free()).
 * A tokenizer is immutable after creation; encode/decode on one tokenizer may run from several
 * threads at once. Text arguments are (pointer, byte length); they need not be NUL-terminated
 * and may hold NUL bytes. Input text for encode must be valid UTF-8 (error names the byte
 * offset of the first invalid sequence). */
#ifndef MEDIAML_TEXT_H
#define MEDIAML_TEXT_H

#include "mediaml.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ UTF-8 */

/* Checks that s[0..len) is well-formed UTF-8: no stray continuation bytes, no overlong
 * encodings, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence.
 * Returns MM_OK, or MM_ERR_ARG with a message naming the byte offset and the reason.
 * bad_offset (may be NULL) receives the offset of the first invalid sequence, or len if the
 * text is valid. */
mm_status mm_utf8_validate(const char *s, size_t len, size_t *bad_offset);

/* Decodes the code point starting at s (at most len bytes available). Returns the sequence
 * length (1..4) and stores the code point in *cp, or 0 if len == 0 or the bytes are not a
 * valid, complete sequence. */
int mm_utf8_decode(const char *s, size_t len, uint32_t *cp);

/* Encodes cp into out (up to 4 bytes, no NUL). Returns the number of bytes, or 0 if cp is a
 * surrogate or above U+10FFFF. */
int mm_utf8_encode(uint32_t cp, char out[4]);

/* ------------------------------------------------------------------ tokenizers */

typedef struct mm_tokenizer mm_tokenizer;

/* Character tokenizer over every distinct code point of text (valid UTF-8, not empty).
 * Ids 0..k-1 are the code points in increasing order. with_unk != 0 adds one more id, k,
 * the unknown token: encode maps unseen code points to it and decode turns it into U+FFFD.
 * Without it, encoding an unseen code point fails with MM_ERR_ARG naming it and its offset. */
mm_status mm_tokenizer_char_build(const char *text, size_t len, int with_unk, mm_tokenizer **out);

/* Trains a byte-level BPE tokenizer on text (valid UTF-8) with GPT-2's pre-tokenization.
 * Ids 0..255 are the single bytes; merge r (0-based) creates id 256 + r, so the vocabulary
 * size is 256 + merges. Each step merges the most frequent adjacent pair (ties: the smaller
 * left id, then the smaller right id), so training is deterministic. Stops early (fewer
 * merges) if no adjacent pair is left. merges must be in [0, 1000000]. */
mm_status mm_tokenizer_bpe_train(const char *text, size_t len, int merges, mm_tokenizer **out);

/* Loads GPT-2's byte-level BPE from dir: encoder.json (else vocab.json; JSON object token ->
 * id, ids 0..n-1) and vocab.bpe (else merges.txt; one "left right" merge per line by rank,
 * a first line starting with "#version" is skipped). Vocabulary tokens that are neither
 * single bytes nor merge results (GPT-2: "<|endoftext|>" = 50256) are special tokens: encode
 * never produces them (the text "<|endoftext|>" is encoded as ordinary text, like GPT-2's
 * encoder.py and tiktoken's encode_ordinary), decode gives their text. */
mm_status mm_tokenizer_gpt2_load(const char *dir, mm_tokenizer **out);

/* Encodes len bytes of UTF-8 text into *ids (*n of them; *ids is never NULL on success). */
mm_status mm_tokenizer_encode(const mm_tokenizer *tok, const char *text, size_t len,
                              int32_t **ids, size_t *n);

/* Decodes ids into *text (*len bytes plus a terminating NUL not counted in *len). The bytes
 * are exactly the concatenation of the tokens' bytes; for BPE an arbitrary id sequence may cut
 * a character in two, so the result is valid UTF-8 only if the ids came from encode (use
 * mm_token_stream for output that must stay valid). An id outside [0, vocab size) fails with
 * MM_ERR_ARG. */
mm_status mm_tokenizer_decode(const mm_tokenizer *tok, const int32_t *ids, size_t n, char **text,
                              size_t *len);

/* Number of ids (ids are 0..vocab_size-1); 0 for NULL. */
int mm_tokenizer_vocab_size(const mm_tokenizer *tok);
/* "char" or "bpe" ("" for NULL). */
const char *mm_tokenizer_kind(const mm_tokenizer *tok);
/* Id of the unknown token of a char tokenizer built with_unk, else -1. */
int32_t mm_tokenizer_unk_id(const mm_tokenizer *tok);

/* Bytes of one token (pointer into the tokenizer, valid until it is freed; not NUL-terminated).
 * For BPE a token may be part of a multi-byte character. */
mm_status mm_tokenizer_token_bytes(const mm_tokenizer *tok, int32_t id, const char **bytes,
                                   size_t *len);
/* Id of the token whose bytes are exactly bytes[0..len) (e.g. "<|endoftext|>" -> 50256 for
 * GPT-2), or -1 if there is none. */
int32_t mm_tokenizer_lookup(const mm_tokenizer *tok, const char *bytes, size_t len);

/* Serializes the tokenizer into one NUL-terminated JSON string (for a model file's string
 * metadata); mm_tokenizer_from_json rebuilds a tokenizer that encodes and decodes identically.
 *   {"type":"char","chars":"<code points in id order>","unk":false}
 *     ("nul":true is added when U+0000 is one of the characters; it has id 0)
 *   {"type":"bpe","pattern":"gpt2","vocab_size":N,"merges":[l0,r0,l1,r1,...]}
 *     merge r joins ids l_r and r_r into id 256 + r; ids 0..255 are the bytes 0..255.
 *     Optional: "bytes":[256 ids] (id of each byte value, when not the identity),
 *     "merge_ids":[...] (result id of each merge, when not 256 + r),
 *     "special":{"<|endoftext|>":50256} (token text in GPT-2's byte-to-unicode alphabet).
 * GPT-2's tokenizer serializes to about 0.45 MB; a trained one with m merges to ~10*m bytes. */
mm_status mm_tokenizer_to_json(const mm_tokenizer *tok, char **json);
/* Parses a string made by mm_tokenizer_to_json. Malformed or inconsistent input fails with
 * MM_ERR_FORMAT and a message saying what is wrong. */
mm_status mm_tokenizer_from_json(const char *json, mm_tokenizer **out);

void mm_tokenizer_free(mm_tokenizer *tok);

/* ------------------------------------------------------------------ streaming output */

/* Turns a stream of generated token ids into text that is always valid UTF-8: bytes of a
 * character split across tokens are held back until the character is complete; bytes that
 * cannot form a valid character come out as U+FFFD.
 *
 *   mm_token_stream *s; mm_token_stream_new(tok, &s);
 *   for each generated id: mm_token_stream_push(s, id, &t, &n); fwrite(t, 1, n, stdout);
 *   mm_token_stream_flush(s, &t, &n); fwrite(t, 1, n, stdout); mm_token_stream_free(s);
 *
 * The text pointers stay valid until the next call on the stream (they are NUL-terminated;
 * n may be 0). The tokenizer must outlive the stream. */
typedef struct mm_token_stream mm_token_stream;
mm_status mm_token_stream_new(const mm_tokenizer *tok, mm_token_stream **out);
mm_status mm_token_stream_push(mm_token_stream *s, int32_t id, const char **text, size_t *len);
/* Emits what is held back (an incomplete character becomes U+FFFD) and resets the stream. */
mm_status mm_token_stream_flush(mm_token_stream *s, const char **text, size_t *len);
void mm_token_stream_free(mm_token_stream *s);

#ifdef __cplusplus
}
#endif
#endif
