/* PNG images through libpng's simplified API, as [H, W, C] floats in 0..255.
 *
 * Any PNG (palette, 16-bit, interlaced, with alpha) is converted to 8-bit gray or RGB by
 * libpng. An alpha channel is removed by compositing onto black. */
#include "mediaml.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

mm_status mm_png_read(const char *path, int channels, mm_array *out) {
    if (!out) return mm_error(MM_ERR_ARG, "mm_png_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return mm_error(MM_ERR_ARG, "mm_png_read: path is NULL");
    if (channels != 0 && channels != 1 && channels != 3)
        return mm_error(MM_ERR_ARG,
                        "%s: channels must be 0 (as stored), 1 (gray) or 3 (RGB), got %d", path,
                        channels);

    FILE *fp = fopen(path, "rb");
    if (!fp) return mm_error(MM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return mm_error(MM_ERR_IO, "%s: not a regular file", path);
    }

    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    unsigned char *buf = NULL;
    mm_status st = MM_OK;

    if (!png_image_begin_read_from_stdio(&image, fp)) {
        /* libpng reports "Not a PNG file" for a bad signature. */
        st = mm_error(MM_ERR_FORMAT, "%s: not a readable PNG: %s", path, image.message);
        goto done;
    }
    if (channels == 0) channels = (image.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    image.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;

    size_t w = image.width, h = image.height;
    if (w == 0 || h == 0 || w > 0x7fffffff / 4 || h > 0x7fffffff / 4 ||
        h > (size_t)-1 / 4 / w / sizeof(float)) {
        st = mm_error(MM_ERR_FORMAT, "%s: unsupported image size %zux%zu", path, w, h);
        png_image_free(&image);
        goto done;
    }
    size_t n = w * h * (size_t)channels;
    /* Zeroed: with no background given, libpng composites alpha onto the buffer's content. */
    buf = calloc(n, 1);
    if (!buf) {
        st = mm_error(MM_ERR_NOMEM, "%s: out of memory for a %zux%zu image", path, w, h);
        png_image_free(&image);
        goto done;
    }
    if (!png_image_finish_read(&image, NULL, buf, 0, NULL)) {
        st = mm_error(MM_ERR_FORMAT, "%s: corrupt PNG: %s", path, image.message);
        goto done;
    }

    int shape[3] = {(int)h, (int)w, channels};
    st = mm_array_alloc(out, 3, shape);
    if (st) {
        mm_error(st, "%s: out of memory for a %zux%zu image", path, w, h);
        goto done;
    }
    for (size_t i = 0; i < n; i++) out->data[i] = (float)buf[i];

done:
    free(buf);
    fclose(fp);
    return st;
}
