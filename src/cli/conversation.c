/* conversation.c — questions and the transcript of `dam run -i`.
 *
 * The session is never rewound: each question's tokens are appended to the
 * transcript and only what the session has not seen yet is evaluated (the
 * question, and the answer's last token, which generation samples but never
 * evaluates). A question is a block of lines ended by an empty line, so a
 * pasted paragraph stays one question and a script can send several with
 * printf 'q1\n\nq2\n'. */
#include "conversation.h"
#include "dam/common.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

int conversation_append(struct conversation *c, const int *ids, int n, const char *text) {
    if (c->n + n > c->cap) {
        int cap = c->n + n > 2 * c->cap ? c->n + n : 2 * c->cap;
        int *grown = realloc(c->ids, (size_t)cap * sizeof *grown);
        if (!grown) return dam_fail("out of memory for the conversation (%d tokens)", cap);
        c->ids = grown;
        c->cap = cap;
    }
    memcpy(c->ids + c->n, ids, (size_t)n * sizeof *ids);
    c->n += n;
    if (text && *text) c->last = text[strlen(text) - 1];
    return 0;
}

int conversation_ask(struct conversation *c, const char *question) {
    char *text;
    if (c->chat) {
        text = chat_format_next(c->chat, question);
    } else {                                    /* plain text: the question on a line of its own */
        const char *sep = c->last && c->last != '\n' ? "\n" : "";
        text = malloc(strlen(sep) + strlen(question) + 1);
        if (text) { strcpy(text, sep); strcat(text, question); }
        else dam_fail("out of memory");
    }
    if (!text) return -1;
    int *ids = NULL, n = 0;
    /* a later turn: no BOS (a chat turn's markers are in its text) */
    int rc = c->chat ? tokenizer_encode_chat(c->tok, text, strlen(text), 0, &ids, &n)
                     : tokenizer_encode(c->tok, text, strlen(text), 0, &ids, &n);
    if (!rc) rc = conversation_append(c, ids, n, text);
    free(ids);
    free(text);
    return rc;
}

void conversation_free(struct conversation *c) {
    free(c->ids);
    c->ids = NULL;
    c->n = c->cap = 0;
}

char *read_question(FILE *in) {
    char *line = NULL, *q = NULL;
    size_t cap = 0, len = 0;
    ssize_t n;
    errno = 0;
    while ((n = getline(&line, &cap, in)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) {
            if (len) break;                     /* the empty line that ends it */
            continue;                           /* empty lines before it */
        }
        char *grown = realloc(q, len + (size_t)n + 2);
        if (!grown) { free(q); free(line); dam_fail("out of memory reading a question"); errno = ENOMEM; return NULL; }
        q = grown;
        if (len) q[len++] = '\n';
        memcpy(q + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    int e = errno;
    free(line);
    if (n < 0 && ferror(in) && e == EINTR) { free(q); errno = EINTR; return NULL; }
    errno = 0;
    return q;
}
