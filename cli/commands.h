/* The mediaml commands. Each takes its own argv (argv[0] is the command word) and returns
 * the process exit status: 0 ok, 1 library error, 2 usage error, 130 interrupted. */
#ifndef MEDIAML_CLI_COMMANDS_H
#define MEDIAML_CLI_COMMANDS_H

#include "args.h"

int cmd_vision(int argc, char **argv);
int cmd_vision_train(int argc, char **argv);
int cmd_vision_eval(int argc, char **argv);
int cmd_vision_predict(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_recommend_train(int argc, char **argv);
int cmd_recommend_eval(int argc, char **argv);
int cmd_recommend_top(int argc, char **argv);
int cmd_recommend_similar(int argc, char **argv);
int cmd_textgen(int argc, char **argv);
int cmd_textgen_train(int argc, char **argv);
int cmd_textgen_generate(int argc, char **argv);
int cmd_textgen_eval(int argc, char **argv);
int cmd_textgen_import_gpt2(int argc, char **argv);
int cmd_sentiment(int argc, char **argv);
int cmd_sentiment_train(int argc, char **argv);
int cmd_sentiment_eval(int argc, char **argv);
int cmd_sentiment_predict(int argc, char **argv);

/* A command group's subcommands, ending with {NULL}: dispatches argv[1] (argv[0] is the group
 * word) or prints the group's help made from about and the table. */
typedef struct cli_subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help; /* one line; a continuation starts with "\n" and spaces */
} cli_subcommand;
int cli_dispatch(const char *group, const char *about, const cli_subcommand *subs, int argc, char **argv);

/* Applies --threads when given (T >= 1); returns 0 or EXIT_USAGE. */
int cli_apply_threads(const cli_cmd *c, const char *flag, int threads);

/* Applies --matmul-precision when given, else checks MEDIAML_MATMUL_PRECISION (highest or
 * medium; a note on stderr when medium has no bfloat16 unit to run on); returns 0 or EXIT_USAGE. */
int cli_apply_matmul_precision(const cli_cmd *c, const char *flag, const char *name);
#define CLI_MATMUL_PRECISION_HELP                                                                  \
    "highest (default: float32) or medium (bfloat16 operands, float32 sums, on CPUs with AMX or " \
    "AVX512-BF16; as torch.set_float32_matmul_precision)"

#endif
