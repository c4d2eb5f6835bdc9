/* mediaml textgen: dispatch to train, generate, eval and import-gpt2. */
#include "commands.h"

int cmd_textgen(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"train", cmd_textgen_train, "train a model on a UTF-8 text file (90% train, 10% validation)"},
        {"generate", cmd_textgen_generate, "sample text from a model, streamed token by token"},
        {"eval", cmd_textgen_eval, "validation loss (nats per token) of a model on a text file"},
        {"import-gpt2", cmd_textgen_import_gpt2, "convert a Hugging Face GPT-2 checkpoint (safetensors) into a mediaml model"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch("textgen",
                        "Language models over characters or BPE tokens: a GPT-style Transformer (default) or an LSTM.",
                        subs, argc, argv);
}
