/* SPDX-License-Identifier: MIT */
/*
 * png.h — a tiny RGB canvas (lines, rectangles, 5x7 upper-case text) written as PNG with zlib.
 * Enough for the allocation-versus-arrival figure of bench-place.
 */
#pragma once

#include <stdint.h>

struct canvas {
        int w, h;
        uint8_t *px; /* w*h*3 */
};

void canvas_init(struct canvas *c, int w, int h);
void canvas_done(struct canvas *c);
void canvas_rect(struct canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb);
/* Line of the given thickness (pixels). */
void canvas_line(struct canvas *c, double x0, double y0, double x1, double y1, int thick,
                 uint32_t rgb);
/* Text at (x, y) top-left, scale = pixel size of one font dot; lower case is drawn upper. */
void canvas_text(struct canvas *c, int x, int y, int scale, const char *s, uint32_t rgb);
int canvas_text_width(const char *s, int scale);
/* 0 or -errno. */
int canvas_write_png(const struct canvas *c, const char *path);
