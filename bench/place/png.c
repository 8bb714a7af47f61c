/* SPDX-License-Identifier: MIT */
/*
 * png.c — RGB canvas and PNG output (PNG: IHDR, one IDAT of zlib data, IEND; every scanline
 * with filter type 0; CRC-32 over type and data — the PNG specification, ISO/IEC 15948).
 */
#include "png.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "util/alloc.h"

void canvas_init(struct canvas *c, int w, int h)
{
        c->w = w;
        c->h = h;
        c->px = xmalloc((size_t)w * h * 3);
        memset(c->px, 0xff, (size_t)w * h * 3);
}

void canvas_done(struct canvas *c)
{
        free(c->px);
        c->px = NULL;
}

static void put(struct canvas *c, int x, int y, uint32_t rgb)
{
        uint8_t *p;

        if (x < 0 || y < 0 || x >= c->w || y >= c->h)
                return;
        p = c->px + ((size_t)y * c->w + x) * 3;
        p[0] = (uint8_t)(rgb >> 16);
        p[1] = (uint8_t)(rgb >> 8);
        p[2] = (uint8_t)rgb;
}

void canvas_rect(struct canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb)
{
        for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++)
                        put(c, x, y, rgb);
}

void canvas_line(struct canvas *c, double x0, double y0, double x1, double y1, int thick,
                 uint32_t rgb)
{
        double dx = x1 - x0, dy = y1 - y0;
        int steps = (int)ceil(fmax(fabs(dx), fabs(dy))) + 1;

        for (int i = 0; i <= steps; i++) {
                double t = (double)i / steps;
                int x = (int)lround(x0 + t * dx), y = (int)lround(y0 + t * dy);
                canvas_rect(c, x - thick / 2, y - thick / 2, x + (thick - 1) / 2,
                            y + (thick - 1) / 2, rgb);
        }
}

/* 5x7 glyphs, one byte per row, bit 4 = leftmost dot. */
struct glyph {
        char ch;
        uint8_t row[7];
};
static const struct glyph font[] = {
        { '0', { 0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e } },
        { '1', { 0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e } },
        { '2', { 0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f } },
        { '3', { 0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e } },
        { '4', { 0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02 } },
        { '5', { 0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e } },
        { '6', { 0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e } },
        { '7', { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 } },
        { '8', { 0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e } },
        { '9', { 0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c } },
        { 'A', { 0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11 } },
        { 'B', { 0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e } },
        { 'C', { 0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e } },
        { 'D', { 0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c } },
        { 'E', { 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f } },
        { 'F', { 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10 } },
        { 'G', { 0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f } },
        { 'H', { 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11 } },
        { 'I', { 0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e } },
        { 'J', { 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c } },
        { 'K', { 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11 } },
        { 'L', { 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f } },
        { 'M', { 0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11 } },
        { 'N', { 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 } },
        { 'O', { 0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e } },
        { 'P', { 0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10 } },
        { 'Q', { 0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d } },
        { 'R', { 0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11 } },
        { 'S', { 0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e } },
        { 'T', { 0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 } },
        { 'U', { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e } },
        { 'V', { 0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04 } },
        { 'W', { 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a } },
        { 'X', { 0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11 } },
        { 'Y', { 0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04 } },
        { 'Z', { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f } },
        { '-', { 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00 } },
        { '.', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c } },
        { ',', { 0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08 } },
        { ':', { 0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00 } },
        { '%', { 0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03 } },
        { '(', { 0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02 } },
        { ')', { 0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08 } },
        { '/', { 0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00 } },
        { '=', { 0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00 } },
        { '_', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f } },
        { 'x', { 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x00 } },
};

static const struct glyph *glyph_of(char ch)
{
        if (ch >= 'a' && ch <= 'z' && ch != 'x')
                ch = (char)(ch - 'a' + 'A');
        for (size_t i = 0; i < ELEMENTSOF(font); i++)
                if (font[i].ch == ch)
                        return &font[i];
        return NULL;
}

int canvas_text_width(const char *s, int scale)
{
        return (int)strlen(s) * 6 * scale;
}

void canvas_text(struct canvas *c, int x, int y, int scale, const char *s, uint32_t rgb)
{
        for (; *s; s++, x += 6 * scale) {
                const struct glyph *g = glyph_of(*s);
                if (!g)
                        continue;
                for (int r = 0; r < 7; r++)
                        for (int b = 0; b < 5; b++)
                                if (g->row[r] & (0x10 >> b))
                                        canvas_rect(c, x + b * scale, y + r * scale,
                                                    x + b * scale + scale - 1,
                                                    y + r * scale + scale - 1, rgb);
        }
}

static void be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static int write_chunk(FILE *f, const char *type, const uint8_t *data, uint32_t len)
{
        uint8_t hdr[8], crc[4];
        uLong sum = crc32(0, (const Bytef *)type, 4);

        if (len)
                sum = crc32(sum, data, len);
        be32(hdr, len);
        memcpy(hdr + 4, type, 4);
        be32(crc, (uint32_t)sum);
        if (fwrite(hdr, 1, 8, f) != 8 || (len && fwrite(data, 1, len, f) != len) ||
            fwrite(crc, 1, 4, f) != 4)
                return -EIO;
        return 0;
}

int canvas_write_png(const struct canvas *c, const char *path)
{
        static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
        size_t raw_len = (size_t)c->h * (1 + (size_t)c->w * 3);
        _cleanup_free_ uint8_t *raw = xmalloc(raw_len);
        uLongf z_len = compressBound(raw_len);
        _cleanup_free_ uint8_t *z = xmalloc(z_len);
        _cleanup_fclose_ FILE *f = NULL;
        uint8_t ihdr[13];
        int fd, r;

        for (int y = 0; y < c->h; y++) {
                uint8_t *row = raw + (size_t)y * (1 + (size_t)c->w * 3);
                row[0] = 0;
                memcpy(row + 1, c->px + (size_t)y * c->w * 3, (size_t)c->w * 3);
        }
        if (compress2(z, &z_len, raw, raw_len, 9) != Z_OK)
                return -ENOMEM;
        be32(ihdr, (uint32_t)c->w);
        be32(ihdr + 4, (uint32_t)c->h);
        ihdr[8] = 8;  /* bit depth */
        ihdr[9] = 2;  /* colour type: RGB */
        ihdr[10] = 0; /* deflate */
        ihdr[11] = 0; /* adaptive filtering */
        ihdr[12] = 0; /* no interlace */

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f) {
                r = -errno;
                close(fd);
                return r;
        }
        if (fwrite(sig, 1, 8, f) != 8)
                return -EIO;
        if ((r = write_chunk(f, "IHDR", ihdr, 13)) < 0 ||
            (r = write_chunk(f, "IDAT", z, (uint32_t)z_len)) < 0 ||
            (r = write_chunk(f, "IEND", NULL, 0)) < 0)
                return r;
        if (fflush(f) != 0)
                return -errno;
        return 0;
}
