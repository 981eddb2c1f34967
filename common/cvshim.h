/* Images, through a thin C interface over OpenCV (whose C++ headers cannot be included from C).
 *
 * nd_image is our own struct: 8-bit pixels, rows top to bottom, channels interleaved, in RGB
 * order (1 channel: gray; 3: R,G,B). No OpenCV type crosses this boundary, and no C++
 * exception does either: every function returns 0 or a negative nd_status with a message
 * (a corrupt, truncated or absurdly large image is an ND_ERR_FORMAT, never a crash).
 * Output images are allocated by the callee (malloc); release them with nd_image_free. */
#ifndef ND_CVSHIM_H
#define ND_CVSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nd_image {
    int32_t width, height, channels; /* channels 1 or 3 */
    uint8_t *data;                   /* width * channels bytes per row, no padding */
} nd_image;

typedef enum nd_interp {
    ND_INTERP_NEAREST = 0,
    ND_INTERP_LINEAR = 1, /* bilinear */
    ND_INTERP_AREA = 2    /* pixel-area averaging: the right choice when shrinking */
} nd_interp;

/* A blank (zeroed) image. */
int nd_image_alloc(nd_image *img, int32_t width, int32_t height, int32_t channels);
/* Release pixels and zero the struct; NULL or an empty image is fine. */
void nd_image_free(nd_image *img);
int nd_image_copy(const nd_image *src, nd_image *dst);

/* Decode a JPEG, PNG, BMP (and whatever else libopencv-imgcodecs reads) file or buffer.
 * `channels` 1 or 3 converts to gray or RGB; 0 keeps gray as gray and anything else as RGB.
 * Images over 2^28 pixels are refused before decoding. */
int nd_image_read(const char *path, int channels, nd_image *out);
int nd_image_decode(const void *data, size_t len, int channels, nd_image *out);

/* Encode by extension (".jpg", ".png", ".bmp"); `quality` is JPEG quality 1-100 (0: 95).
 * nd_image_write writes atomically. nd_image_encode returns a malloc'ed buffer. */
int nd_image_write(const char *path, const nd_image *img, int quality);
int nd_image_encode(const nd_image *img, const char *ext, int quality, uint8_t **data, size_t *len);

/* Resize to width x height. */
int nd_image_resize(const nd_image *src, int32_t width, int32_t height, nd_interp interp, nd_image *dst);
/* Convert between gray (1) and RGB (3). */
int nd_image_convert(const nd_image *src, int32_t channels, nd_image *dst);
/* Copy the rectangle [x, x+w) x [y, y+h), which must lie inside `src`. */
int nd_image_crop(const nd_image *src, int32_t x, int32_t y, int32_t w, int32_t h, nd_image *dst);

/* dst(x, y) = src(M^-1 (x, y)) where `m` is the 2x3 forward matrix (src -> dst) in row-major
 * order, as OpenCV's warpAffine. Outside pixels take `border` (one value per channel). */
int nd_image_warp_affine(const nd_image *src, const double m[6], int32_t width, int32_t height,
                         nd_interp interp, const uint8_t border[3], nd_image *dst);

/* Scale to fit width x height keeping the aspect ratio, pad the rest with `pad`; reports the
 * scale and the top-left offset of the scaled image so that boxes can be mapped back. */
int nd_image_letterbox(const nd_image *src, int32_t width, int32_t height, uint8_t pad, nd_image *dst,
                       double *scale, int32_t *offset_x, int32_t *offset_y);

/* Draw in place. Coordinates are clipped to the image. Colours are RGB (gray images use R). */
int nd_image_draw_rect(nd_image *img, int32_t x0, int32_t y0, int32_t x1, int32_t y1, const uint8_t rgb[3],
                       int32_t thickness);
/* A line segment from (x0, y0) to (x1, y1), anti-aliased. */
int nd_image_draw_line(nd_image *img, int32_t x0, int32_t y0, int32_t x1, int32_t y1, const uint8_t rgb[3],
                       int32_t thickness);
/* A filled disc of `radius` pixels centred at (x, y), for scatter plots. */
int nd_image_draw_dot(nd_image *img, int32_t x, int32_t y, int32_t radius, const uint8_t rgb[3]);
/* Text with its baseline-left corner at (x, y) (Hershey simplex font); when `background` is not
 * NULL a filled box is drawn behind it first, as for labels on detection boxes. */
int nd_image_draw_text(nd_image *img, const char *text, int32_t x, int32_t y, double scale, const uint8_t rgb[3],
                       int32_t thickness, const uint8_t *background);
/* Size in pixels that nd_image_draw_text would cover (width, height above the baseline, and
 * the baseline's depth below). */
int nd_image_text_size(const char *text, double scale, int32_t thickness, int32_t *width, int32_t *height,
                       int32_t *baseline);

#ifdef __cplusplus
}
#endif

#endif
