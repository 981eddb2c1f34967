/* Painting on the generators' float canvas. Everything is plain C with a fixed order of
 * floating-point operations, so an image depends only on its random stream: byte-identical
 * output whatever the number of threads. */
#include "coco/gen_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Bilinear sample of an RGB photo at continuous coordinates (pixel centres at i + 0.5),
 * clamped at the borders. */
static void sample_rgb(const nd_image *im, double x, double y, float out[3]) {
    x -= 0.5, y -= 0.5;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x > im->width - 1) x = im->width - 1;
    if (y > im->height - 1) y = im->height - 1;
    int32_t x0 = (int32_t)x, y0 = (int32_t)y;
    int32_t x1 = x0 + 1 < im->width ? x0 + 1 : x0, y1 = y0 + 1 < im->height ? y0 + 1 : y0;
    float fx = (float)(x - x0), fy = (float)(y - y0);
    const uint8_t *p00 = im->data + ((size_t)y0 * (size_t)im->width + (size_t)x0) * 3;
    const uint8_t *p01 = im->data + ((size_t)y0 * (size_t)im->width + (size_t)x1) * 3;
    const uint8_t *p10 = im->data + ((size_t)y1 * (size_t)im->width + (size_t)x0) * 3;
    const uint8_t *p11 = im->data + ((size_t)y1 * (size_t)im->width + (size_t)x1) * 3;
    for (int c = 0; c < 3; c++) {
        float top = p00[c] + fx * (p01[c] - p00[c]);
        float bot = p10[c] + fx * (p11[c] - p10[c]);
        out[c] = top + fy * (bot - top);
    }
}

void gen_background(gen_canvas *cv, const gen_assets *a, nd_rng *rng, double min_frac, double max_frac) {
    const nd_image *ph = &a->photos[nd_rng_below(rng, (uint64_t)a->nphotos)];
    double shortest = ph->width < ph->height ? ph->width : ph->height;
    double side = shortest * nd_rng_range(rng, min_frac, max_frac);
    double cw = side * nd_rng_range(rng, 0.85, 1.15), ch = side;
    if (cw > ph->width) cw = ph->width;
    double ox = nd_rng_uniform(rng) * (ph->width - cw), oy = nd_rng_uniform(rng) * (ph->height - ch);
    int flip = nd_rng_below(rng, 2) == 1;
    float gain = (float)nd_rng_range(rng, 0.6, 1.25), bias = (float)nd_rng_range(rng, -25, 25);
    int gray = nd_rng_uniform(rng) < 0.15;
    double sx = cw / cv->width, sy = ch / cv->height;
    /* Supersample when shrinking a lot, so backgrounds are textured rather than aliased. */
    int ss = (int)ceil(sx > sy ? sx : sy);
    if (ss < 1) ss = 1;
    if (ss > 3) ss = 3;
    for (int32_t y = 0; y < cv->height; y++)
        for (int32_t x = 0; x < cv->width; x++) {
            float acc[3] = {0, 0, 0}, s[3];
            for (int j = 0; j < ss; j++)
                for (int i = 0; i < ss; i++) {
                    double u = (x + (i + 0.5) / ss) * sx, v = (y + (j + 0.5) / ss) * sy;
                    if (flip) u = cw - u;
                    sample_rgb(ph, ox + u, oy + v, s);
                    for (int c = 0; c < 3; c++) acc[c] += s[c];
                }
            float *p = cv->px + ((size_t)y * (size_t)cv->width + (size_t)x) * 3;
            float inv = 1.0f / (float)(ss * ss);
            if (gray) {
                float l = (0.299f * acc[0] + 0.587f * acc[1] + 0.114f * acc[2]) * inv;
                acc[0] = acc[1] = acc[2] = l / inv;
            }
            for (int c = 0; c < 3; c++) p[c] = clampf(acc[c] * inv * gain + bias, 0, 255);
        }
}

/* Forward map of cell coordinates to canvas: p = c + A (q - q0), A = R(angle) * Shear * Scale. */
static void glyph_matrix(const gen_assets *a, int32_t cell, const gen_glyph *g, double A[4], double q0[2]) {
    const uint8_t *ink = a->ink[cell];
    double ink_h = ink[3] - ink[1] + 1;
    double s = g->height / ink_h;
    q0[0] = (ink[0] + ink[2] + 1) * 0.5;
    q0[1] = (ink[1] + ink[3] + 1) * 0.5;
    double co = cos(g->angle), si = sin(g->angle);
    /* Scale (s * aspect, s), then shear x by shear * y, then rotate. */
    double m00 = s * g->aspect, m01 = g->shear * s, m10 = 0, m11 = s;
    A[0] = co * m00 - si * m10, A[1] = co * m01 - si * m11;
    A[2] = si * m00 + co * m10, A[3] = si * m01 + co * m11;
}

void gen_glyph_bounds(const gen_assets *a, int32_t cell, const gen_glyph *g, double box[4]) {
    double A[4], q0[2];
    glyph_matrix(a, cell, g, A, q0);
    const uint8_t *ink = a->ink[cell];
    double xs[2] = {ink[0], ink[2] + 1.0}, ys[2] = {ink[1], ink[3] + 1.0};
    box[0] = box[1] = 1e30, box[2] = box[3] = -1e30;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double u = xs[i] - q0[0], v = ys[j] - q0[1];
            double px = g->cx + A[0] * u + A[1] * v, py = g->cy + A[2] * u + A[3] * v;
            if (px < box[0]) box[0] = px;
            if (px > box[2]) box[2] = px;
            if (py < box[1]) box[1] = py;
            if (py > box[3]) box[3] = py;
        }
}

/* Coverage of the cell at continuous cell coordinates, 0 outside the cell. */
static float cell_alpha(const gen_assets *a, int32_t cell, double u, double v) {
    u -= 0.5, v -= 0.5;
    if (u <= -1 || v <= -1 || u >= GEN_CELL || v >= GEN_CELL) return 0;
    int32_t x0 = (int32_t)floor(u), y0 = (int32_t)floor(v);
    float fx = (float)(u - x0), fy = (float)(v - y0);
    const uint8_t *base = a->digits.data + (size_t)(cell / GEN_CELLS_PER_ROW) * GEN_CELL * (size_t)a->digits.width +
                          (size_t)(cell % GEN_CELLS_PER_ROW) * GEN_CELL;
    float p[2][2];
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            int32_t x = x0 + i, y = y0 + j;
            p[j][i] = (x < 0 || y < 0 || x >= GEN_CELL || y >= GEN_CELL)
                          ? 0.0f
                          : base[(size_t)y * (size_t)a->digits.width + (size_t)x] / 255.0f;
        }
    float top = p[0][0] + fx * (p[0][1] - p[0][0]), bot = p[1][0] + fx * (p[1][1] - p[1][0]);
    return top + fy * (bot - top);
}

int gen_paste_digit(gen_canvas *cv, const gen_assets *a, int32_t cell, const gen_glyph *g, int32_t ink[4]) {
    double A[4], q0[2];
    glyph_matrix(a, cell, g, A, q0);
    double det = A[0] * A[3] - A[1] * A[2];
    if (fabs(det) < 1e-9) return 0;
    double inv[4] = {A[3] / det, -A[1] / det, -A[2] / det, A[0] / det};
    /* The whole cell's image bounds the pixels to visit. */
    double xs[2] = {0, GEN_CELL}, ys[2] = {0, GEN_CELL};
    double bx0 = 1e30, by0 = 1e30, bx1 = -1e30, by1 = -1e30;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double u = xs[i] - q0[0], v = ys[j] - q0[1];
            double px = g->cx + A[0] * u + A[1] * v, py = g->cy + A[2] * u + A[3] * v;
            bx0 = fmin(bx0, px), bx1 = fmax(bx1, px), by0 = fmin(by0, py), by1 = fmax(by1, py);
        }
    int32_t x0 = (int32_t)fmax(0, floor(bx0) - 1), y0 = (int32_t)fmax(0, floor(by0) - 1);
    int32_t x1 = (int32_t)fmin(cv->width - 1, ceil(bx1) + 1), y1 = (int32_t)fmin(cv->height - 1, ceil(by1) + 1);
    int found = 0;
    ink[0] = ink[1] = INT32_MAX, ink[2] = ink[3] = -1;
    for (int32_t y = y0; y <= y1; y++)
        for (int32_t x = x0; x <= x1; x++) {
            double dx = x + 0.5 - g->cx, dy = y + 0.5 - g->cy;
            double u = q0[0] + inv[0] * dx + inv[1] * dy, v = q0[1] + inv[2] * dx + inv[3] * dy;
            float al = cell_alpha(a, cell, u, v);
            if (al <= 0) continue;
            if (al >= 0.35f) {
                found = 1;
                if (x < ink[0]) ink[0] = x;
                if (x > ink[2]) ink[2] = x;
                if (y < ink[1]) ink[1] = y;
                if (y > ink[3]) ink[3] = y;
            }
            float w = al * g->opacity;
            float *p = cv->px + ((size_t)y * (size_t)cv->width + (size_t)x) * 3;
            for (int c = 0; c < 3; c++) p[c] += w * (g->rgb[c] - p[c]);
        }
    return found;
}

void gen_stroke(gen_canvas *cv, double x0, double y0, double x1, double y1, double width, const float rgb[3],
                float opacity) {
    double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    double r = width * 0.5;
    int32_t bx0 = (int32_t)fmax(0, floor(fmin(x0, x1) - r - 1)), by0 = (int32_t)fmax(0, floor(fmin(y0, y1) - r - 1));
    int32_t bx1 = (int32_t)fmin(cv->width - 1, ceil(fmax(x0, x1) + r + 1));
    int32_t by1 = (int32_t)fmin(cv->height - 1, ceil(fmax(y0, y1) + r + 1));
    for (int32_t y = by0; y <= by1; y++)
        for (int32_t x = bx0; x <= bx1; x++) {
            double px = x + 0.5 - x0, py = y + 0.5 - y0;
            double t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double ex = px - t * dx, ey = py - t * dy;
            double d = sqrt(ex * ex + ey * ey);
            float cover = (float)(r + 0.5 - d); /* one pixel of anti-aliasing at the edge */
            if (cover <= 0) continue;
            if (cover > 1) cover = 1;
            float w = cover * opacity;
            float *p = cv->px + ((size_t)y * (size_t)cv->width + (size_t)x) * 3;
            for (int c = 0; c < 3; c++) p[c] += w * (rgb[c] - p[c]);
        }
}

void gen_mean_colour(const gen_canvas *cv, int32_t x0, int32_t y0, int32_t x1, int32_t y1, float rgb[3]) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > cv->width) x1 = cv->width;
    if (y1 > cv->height) y1 = cv->height;
    double acc[3] = {0, 0, 0};
    int64_t n = 0;
    for (int32_t y = y0; y < y1; y++)
        for (int32_t x = x0; x < x1; x++, n++)
            for (int c = 0; c < 3; c++) acc[c] += cv->px[((size_t)y * (size_t)cv->width + (size_t)x) * 3 + (size_t)c];
    for (int c = 0; c < 3; c++) rgb[c] = n ? (float)(acc[c] / (double)n) : 128.0f;
}

static float luma(const float c[3]) { return 0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2]; }

void gen_contrast_colour(nd_rng *rng, const float bg[3], double contrast, float rgb[3]) {
    float lb = luma(bg);
    /* Go the way there is room for; sometimes the other way when both have room. */
    int darker = lb - contrast >= 0 && (lb + contrast > 255 || nd_rng_uniform(rng) < 0.5);
    float target = (float)(darker ? lb - contrast : lb + contrast);
    target = clampf(target, 0, 255);
    /* A random hue around the target luminance: random colour, then shift it to the target. */
    float c[3];
    for (int i = 0; i < 3; i++) c[i] = (float)nd_rng_range(rng, 0, 255);
    float shift = target - luma(c);
    for (int i = 0; i < 3; i++) rgb[i] = clampf(c[i] + shift, 0, 255);
}

void gen_blur(gen_canvas *cv) {
    size_t row = (size_t)cv->width * 3;
    float *prev = malloc(row * sizeof(float) * 2);
    if (!prev) return; /* blurring is an optional nuisance: skipping it is harmless */
    float *cur = prev + row;
    memcpy(prev, cv->px, row * sizeof(float));
    for (int32_t y = 0; y < cv->height; y++) {
        memcpy(cur, cv->px + (size_t)y * row, row * sizeof(float));
        const float *up = prev, *mid = cur;
        const float *down = y + 1 < cv->height ? cv->px + (size_t)(y + 1) * row : cur;
        for (int32_t x = 0; x < cv->width; x++) {
            int32_t xl = x > 0 ? x - 1 : 0, xr = x + 1 < cv->width ? x + 1 : x;
            for (int c = 0; c < 3; c++) {
                float s = 0;
                const float *rows[3] = {up, mid, down};
                for (int r = 0; r < 3; r++)
                    s += rows[r][xl * 3 + c] + rows[r][x * 3 + c] + rows[r][xr * 3 + c];
                cv->px[(size_t)y * row + (size_t)x * 3 + (size_t)c] = s / 9.0f;
            }
        }
        memcpy(prev, cur, row * sizeof(float));
    }
    free(prev);
}

void gen_quantize(const gen_canvas *cv, nd_rng *rng, double sigma, uint8_t *out) {
    size_t n = (size_t)cv->width * (size_t)cv->height * 3;
    for (size_t i = 0; i < n; i++) {
        float v = cv->px[i] + (sigma > 0 ? (float)(sigma * nd_rng_normal(rng)) : 0.0f);
        out[i] = (uint8_t)lrintf(clampf(v, 0, 255));
    }
}
