/* Internal to coco/: the real material the demo generators draw from (digits.png and the
 * photographs) and the float canvas they paint on. Not part of the public API. */
#ifndef COCO_GEN_INTERNAL_H
#define COCO_GEN_INTERNAL_H

#include "common/cvshim.h"
#include "common/rng.h"

#include <stdint.h>

enum {
    GEN_CELL = 20,            /* digits.png: 20x20 cells ... */
    GEN_CELLS_PER_ROW = 100,  /* ... 100 a row ... */
    GEN_ROWS_PER_CLASS = 5,   /* ... 5 rows (500 digits) per class, classes 0..9 top to bottom */
    GEN_PER_CLASS = 500,
    GEN_TRAIN_PER_CLASS = 400 /* the first 80% of a class's cells by position are train */
};

typedef struct gen_assets {
    nd_image digits;           /* gray, 2000 x 1000 */
    nd_image *photos;          /* RGB */
    int32_t nphotos;
    uint8_t ink[10 * GEN_PER_CLASS][4]; /* per cell: ink box x0, y0, x1, y1 (inclusive) */
} gen_assets;

/* Load digits.png and the files in data/photos through nd_data_path. */
int gen_assets_load(gen_assets *a);
void gen_assets_free(gen_assets *a);

/* Cell index (0..4999) of a digit of class `cls` drawn at random from split 0 (train) or
 * 1 (test/val). */
int32_t gen_pick_cell(nd_rng *rng, int32_t cls, int split);

/* An RGB float canvas, values in 0..255, rows top first, channels interleaved. */
typedef struct gen_canvas {
    int32_t width, height;
    float *px;
} gen_canvas;

/* Fill the canvas with a random crop of a random photograph: the crop's side is a random
 * fraction in [min_frac, max_frac] of the photo's short side; random flip and brightness. */
void gen_background(gen_canvas *cv, const gen_assets *a, nd_rng *rng, double min_frac, double max_frac);

/* Where and how to paste one digit: its ink box's centre lands on (cx, cy), the ink is
 * `height` pixels tall, `aspect` scales its width, `angle` (radians) rotates, `shear` slants. */
typedef struct gen_glyph {
    double cx, cy, height, aspect, angle, shear;
    float rgb[3];
    float opacity; /* 0..1 */
} gen_glyph;

/* The axis-aligned box that the glyph's ink box covers after the transform (a superset of the
 * painted ink), as x0, y0, x1, y1 in canvas pixels. */
void gen_glyph_bounds(const gen_assets *a, int32_t cell, const gen_glyph *g, double box[4]);
/* Paint the digit. Returns 1 and the tight ink box (pixels whose coverage >= 0.35, inclusive
 * x0, y0, x1, y1) when any ink is visible, 0 otherwise. */
int gen_paste_digit(gen_canvas *cv, const gen_assets *a, int32_t cell, const gen_glyph *g, int32_t ink[4]);
/* A straight stroke from (x0, y0) to (x1, y1), `width` pixels wide, anti-aliased. */
void gen_stroke(gen_canvas *cv, double x0, double y0, double x1, double y1, double width, const float rgb[3],
                float opacity);
/* Mean colour of the canvas over [x0, x1) x [y0, y1) (clipped). */
void gen_mean_colour(const gen_canvas *cv, int32_t x0, int32_t y0, int32_t x1, int32_t y1, float rgb[3]);
/* A colour whose luminance differs from `bg` by about `contrast` (0..255), random hue. */
void gen_contrast_colour(nd_rng *rng, const float bg[3], double contrast, float rgb[3]);
/* 3x3 box blur, in place. */
void gen_blur(gen_canvas *cv);
/* Add Gaussian noise of standard deviation `sigma`, then round and clamp into `out`
 * (interleaved RGB, width * height * 3 bytes). */
void gen_quantize(const gen_canvas *cv, nd_rng *rng, double sigma, uint8_t *out);

#endif
