/* tokenizer.h — Hugging Face tokenizer.json, encoded and decoded exactly as
 * the `tokenizers` library does it.
 *
 * The pipeline is the library's: added (special) tokens are cut out of the
 * raw text first and never split; each remaining piece goes through the
 * normalizer, then the pre-tokenizer cuts it into words, the BPE model turns
 * each word into ids, and the post-processor adds the template's special
 * tokens (add_special). Decoding runs the decoder chain. Supported parts:
 *   model          BPE (vocab, merges in "a b" or ["a","b"] form, byte_fallback,
 *                  ignore_merges, unk_token, fuse_unk, subword prefix/suffix)
 *   normalizer     Sequence, Prepend, Replace, Strip, ByteLevel
 *   pre_tokenizer  Sequence, ByteLevel, Split, Digits, Metaspace, Whitespace,
 *                  WhitespaceSplit, Punctuation, CharDelimiterSplit, BertPreTokenizer
 *   post_processor TemplateProcessing, ByteLevel, RobertaProcessing,
 *                  BertProcessing, Sequence
 *   decoder        ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence
 * Anything else is refused at load time with "unsupported <part> <type>".
 * Regexes are the tokenizer's own, run by PCRE2 (UTF + UCP, JIT).
 *
 * Every function that can fail returns -1 / NULL after dam_fail(). */
#ifndef DAM_TOKENIZER_H
#define DAM_TOKENIZER_H

#include <stddef.h>

struct tokenizer;

/* path: a model folder (its tokenizer.json, plus tokenizer_config.json or
 * chat_template.jinja when present, for the chat template) or the path of a
 * tokenizer.json file (a tokenizer_config.json beside it is read too). */
struct tokenizer *tokenizer_load(const char *path);
void tokenizer_free(struct tokenizer *t);

/* text (len bytes, UTF-8; invalid UTF-8 is an error naming the byte offset)
 * -> *ids (heap, caller frees; may be NULL when *n_ids is 0). add_special
 * applies the post-processor (e.g. adds BOS), like add_special_tokens=True.
 * Special tokens written in the text are always recognised. */
int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len,
                     int add_special, int **ids, int *n_ids);

/* Encodes text produced by chat_format(). The chat template already writes
 * the BOS it wants, so like transformers' apply_chat_template the text is
 * encoded without special tokens; with add_special the post-processor's
 * tokens are added too, except that a prefix the text already starts with
 * (a BOS) is not doubled. */
int tokenizer_encode_chat(const struct tokenizer *t, const char *text, size_t len,
                          int add_special, int **ids, int *n_ids);

/* ids -> heap NUL-terminated text. Unknown ids are skipped (as the library
 * does); skip_special drops special added tokens. Bytes that do not form
 * valid UTF-8 come out as U+FFFD, as the decoder chain specifies. */
char *tokenizer_decode(const struct tokenizer *t, const int *ids, int n, int skip_special);
/* The same, with the byte length: decoded text may hold NUL bytes (a <0x00>
 * or byte-level 'Ā' token), which the plain form's C string cuts off. */
char *tokenizer_decode_n(const struct tokenizer *t, const int *ids, int n, int skip_special, size_t *len);

/* 1 + the largest id of the model vocabulary and the added tokens. */
int tokenizer_vocab_size(const struct tokenizer *t);
/* The raw vocabulary string of an id ("Ġworld", "▁the", "<0x0A>", an added
 * token's content — normalized, for a token with normalized = true, as the
 * library's id_to_token gives it), or NULL for an unknown id. */
const char *tokenizer_piece(const struct tokenizer *t, int id);
/* The id of a vocabulary string or added token, -1 if absent. */
int tokenizer_token_id(const struct tokenizer *t, const char *piece);
/* 1 for added tokens marked special (BOS, EOS, <|im_start|>, ...). */
int tokenizer_is_special(const struct tokenizer *t, int id);

/* Checks that a text read from a file is text: valid UTF-8 without NUL
 * bytes. -1 + "WHAT: invalid UTF-8 at byte N (0xXX) ..." otherwise, so the
 * message names the file rather than "the input text". */
int text_check(const char *what, const char *text, size_t len);

/* Streaming decode: feed generated ids one at a time and get back the text
 * that became final, never half a UTF-8 character. Concatenating every
 * push() and the closing flush() gives exactly tokenizer_decode() of the same
 * ids (skip_special = 0 for detokenizer_new). Text is held back only while it
 * may still change: an incomplete UTF-8 sequence, a run of byte-fallback
 * tokens, characters a Strip decoder may remove at the end.
 *
 * The first token of a stream is special to some decoders (SentencePiece
 * strips its leading space). To print a continuation of a prompt as the
 * library would decode prompt + generation, push the prompt's ids first
 * (printing or discarding their text), then the generated ones. */
struct detokenizer;
struct detokenizer *detokenizer_new(const struct tokenizer *t);
/* Same, choosing whether special added tokens are dropped. */
struct detokenizer *detokenizer_new_opts(const struct tokenizer *t, int skip_special);
/* The newly final text (maybe ""); valid until the next call. */
const char *detokenizer_push(struct detokenizer *d, int id);
/* Whatever remains (an incomplete UTF-8 tail as U+FFFD); the detokenizer then
 * starts a fresh stream (the next push is a first token again). */
const char *detokenizer_flush(struct detokenizer *d);
/* With the byte length (the text may contain NUL bytes; see tokenizer_decode_n). */
const char *detokenizer_push_n(struct detokenizer *d, int id, size_t *len);
const char *detokenizer_flush_n(struct detokenizer *d, size_t *len);
/* The generation boundary: after pushing a prompt's ids (and discarding their
 * text), drops whatever text of theirs is still held back (a byte-fallback
 * run such as the bytes of a CJK character, an unfinished UTF-8 sequence), so
 * none of it comes out with the next ids; the stream stays a continuation
 * (no first-token treatment for the next id). */
void detokenizer_cut(struct detokenizer *d);
void detokenizer_free(struct detokenizer *d);

/* Chat templates. The Jinja template of tokenizer_config.json is recognised
 * by its markers: <|im_start|> -> "chatml", <|start_header_id|> -> "llama3",
 * [INST] -> "llama2". Writes the name; -1 + dam_fail when the tokenizer has
 * no template or an unrecognised one. */
int chat_template_detect(const struct tokenizer *t, char *name, size_t size);
/* The system prompt a ChatML template inserts when none is given (SmolLM2's
 * "You are a helpful AI assistant named SmolLM, ..."); NULL when it has none.
 * Heap string. */
char *chat_template_default_system(const struct tokenizer *t);
/* One user turn (and an optional system prompt, NULL or "" for none) in the
 * named format, ending with the assistant header so the model answers next.
 * llama3 and llama2 begin with their BOS text, as their templates do.
 * Heap text; NULL + dam_fail for an unknown name. */
char *chat_format(const char *template_name, const char *system, const char *user);
/* A follow-up question in the named format, for a transcript that ends with
 * the assistant's answer: the end of that turn, the user's turn, the
 * assistant header (encode it without special tokens). Heap text; NULL +
 * dam_fail for an unknown name. */
char *chat_format_next(const char *template_name, const char *user);

#endif
