/* Writing JSON lines: escaped strings and numbers (null when not finite). */
#ifndef MEDIAML_CLI_JSON_H
#define MEDIAML_CLI_JSON_H

#include <stddef.h>
#include <stdio.h>

void json_string(FILE *f, const char *s);
/* len bytes of s (need not be NUL-terminated; a NUL byte is written as \u0000). */
void json_string_n(FILE *f, const char *s, size_t len);
void json_number(FILE *f, double v);
/* ,"key":v (keys are plain ASCII, written as they are) */
void json_field_number(FILE *f, const char *key, double v);

#endif
