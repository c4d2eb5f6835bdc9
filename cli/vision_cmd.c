/* mediaml vision: dispatch to train, eval and predict. */
#include "commands.h"

int cmd_vision(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"train", cmd_vision_train, "train a model (default: the Keras MNIST CNN) and evaluate it on the test split"},
        {"eval", cmd_vision_eval, "evaluate a model file on the test split"},
        {"predict", cmd_vision_predict, "classify PNG images"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch("vision", "Image classification on IDX data sets (MNIST naming: train-images-idx3-ubyte[.gz], ...).",
                        subs, argc, argv);
}
