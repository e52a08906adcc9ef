/* conversation.h — the transcript of `dam run -i`: questions read from
 * standard input, each appended as the next turn (src/cli/conversation.c). */
#ifndef DAM_CLI_CONVERSATION_H
#define DAM_CLI_CONVERSATION_H

#include <stdio.h>
#include "dam/tokenizer.h"

struct conversation {
    const struct tokenizer *tok;
    const char *chat;      /* chat template name; NULL: plain text */
    int *ids;              /* (n) every token so far: prompt, answers, questions */
    int n, cap;
    char last;             /* the last character of its text, 0 when none */
};

/* Appends ids (the prompt, an answer); text: their text, for `last` (NULL:
 * unknown, left as it was). */
int conversation_append(struct conversation *c, const int *ids, int n, const char *text);
/* Appends a question as the next turn: with a chat template its follow-up
 * turn (chat_format_next), else the text itself, on a line of its own. */
int conversation_ask(struct conversation *c, const char *question);
void conversation_free(struct conversation *c);

/* The next question of in: its lines up to an empty line or the end (empty
 * lines before it skipped), joined by '\n', without the last newline. NULL
 * at the end, or when reading failed (errno says: EINTR for Ctrl-C). Heap. */
char *read_question(FILE *in);

#endif
