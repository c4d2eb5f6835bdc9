/* The vision app's prediction: one PNG through a model, best classes first. The model file
 * carries the preprocessing, so the image goes in as read (0..255). */
#include "vision/vision.h"

#include <string.h>

mm_status vision_predict_png(mm_model *m, const char *path, int k, int *classes, float *scores, int *n) {
    *n = 0;
    int in[MM_MAX_DIMS];
    int nd = mm_model_input_shape(m, in);
    if (nd != 3 || (in[2] != 1 && in[2] != 3))
        return mm_error(MM_ERR_SHAPE, "the model does not take images (its input is not H x W x 1 or H x W x 3)");
    mm_array img;
    mm_status st = mm_png_read(path, in[2], &img);
    if (st) return st;
    if (img.shape[0] != in[0] || img.shape[1] != in[1]) {
        st = mm_error(MM_ERR_SHAPE, "%s is %dx%d but the model expects %dx%d", path, img.shape[1], img.shape[0], in[1],
                      in[0]);
        mm_array_free(&img);
        return st;
    }
    /* The same pixels as a batch of one. */
    mm_array x = img;
    x.ndim = 4;
    x.shape[0] = 1;
    memcpy(x.shape + 1, img.shape, 3 * sizeof(int));
    mm_array out;
    st = mm_predict(m, &x, 1, &out);
    mm_array_free(&img);
    if (st) return st;
    int units = (int)out.size;
    if (k > units) k = units;
    /* Partial selection of the k highest outputs (ties: lower class first). */
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < units; i++) {
            int taken = 0;
            for (int t = 0; t < j && !taken; t++) taken = classes[t] == i;
            if (!taken && (best < 0 || out.data[i] > out.data[best])) best = i;
        }
        classes[j] = best;
        scores[j] = out.data[best];
    }
    *n = k;
    mm_array_free(&out);
    return MM_OK;
}
