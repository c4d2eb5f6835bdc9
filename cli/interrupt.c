#define _POSIX_C_SOURCE 200809L
#include "interrupt.h"

#include <string.h>

volatile sig_atomic_t cli_interrupted;
static struct sigaction previous;

static void on_sigint(int sig) {
    (void)sig;
    cli_interrupted = 1;
}

void cli_catch_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &previous);
}

void cli_release_sigint(void) { sigaction(SIGINT, &previous, NULL); }
