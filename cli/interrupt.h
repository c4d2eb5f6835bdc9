/* Ctrl-C during training: the first one sets cli_interrupted, which the trainer's callback
 * reports so training stops at the next safe point, saves, and the command exits 130; the
 * handler then resets itself, so a second Ctrl-C ends the process at once. */
#ifndef MEDIAML_CLI_INTERRUPT_H
#define MEDIAML_CLI_INTERRUPT_H

#include <signal.h>

extern volatile sig_atomic_t cli_interrupted;

void cli_catch_sigint(void);
void cli_release_sigint(void); /* restores the handler cli_catch_sigint replaced */

#endif
