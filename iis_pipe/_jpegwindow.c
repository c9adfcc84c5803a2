/* Decode only a window of a JPEG with libjpeg-turbo, and re-code JPEGs so that windows are cheap.
 *
 * The training crop covers a fraction of the image. A JPEG's entropy-coded data can only be
 * read from its start, unless it has restart markers: after each marker the decoder starts
 * afresh. ``add_restarts`` re-codes a JPEG losslessly (the same DCT coefficients, so the same
 * pixels) with a marker every few MCUs, a divisor of an MCU row, so every MCU row is cut into
 * equal segments. ``decode_window`` then copies only the segments that hold the window into a
 * small JPEG of their own (header patched, markers renumbered) and decodes that: work in
 * proportion to the window, not the image. A JPEG stored untouched can carry an entry-point
 * index instead (``index_jpeg``, made once: for segments of about 64 pixels of each MCU row,
 * where their codes start and each component's DC predictor there); ``decode_window`` then
 * copies the window's segments into a small JPEG (``cut_index``: their bits shifted, each
 * row's first block of each component re-coded with the DC difference the cut needs) and
 * decodes that: rows above the window and columns beside it are not even entropy-decoded.
 * Other JPEGs take libjpeg-turbo's partial decoding API: rows above the window are
 * entropy-decoded only (no IDCT or colour conversion), columns outside it are cropped at iMCU
 * granularity, and decoding stops after the window's last row.
 * None of the Python JPEG wheels expose either, hence this small module; iis_pipe.images falls
 * back to storing JPEGs untouched and decoding whole images when it is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} error_mgr;

static void on_error(j_common_ptr cinfo) {
    error_mgr *err = (error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

/* Corrupt-data warnings are not errors here (as simplejpeg's strict=False): prepare already
 * proved every stored JPEG decodes cleanly. */
static void on_message(j_common_ptr cinfo, int level) { (void)cinfo; (void)level; }

/* The decode of rows [y0, y1), columns >= [x0, x1) (scaled pixels) of one JPEG buffer:
 * (pixels, top, left, height, width) with top/left in the buffer's own scaled pixels. */
static PyObject *decode_buffer(const unsigned char *buf, size_t len, int y0, int y1, int x0,
                               int x1, int denom, int fast) {
    struct jpeg_decompress_struct cinfo;
    error_mgr err;
    /* volatile: read after longjmp */
    PyObject *volatile pixels = NULL;
    volatile int created = 0;

    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    if (setjmp(err.jump)) {
        if (created)
            jpeg_destroy_decompress(&cinfo);
        Py_XDECREF(pixels);
        PyErr_Format(PyExc_ValueError, "JPEG window decode failed: %s", err.message);
        return NULL;
    }
    jpeg_create_decompress(&cinfo);
    created = 1;
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_RGB;
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned int)denom;
    cinfo.dct_method = fast ? JDCT_IFAST : JDCT_ISLOW;
    cinfo.do_fancy_upsampling = fast ? FALSE : TRUE;
    jpeg_start_decompress(&cinfo);

    int h = (int)cinfo.output_height, w = (int)cinfo.output_width;
    y0 = y0 < 0 ? 0 : y0;
    x0 = x0 < 0 ? 0 : x0;
    y1 = y1 > h ? h : y1;
    x1 = x1 > w ? w : x1;
    if (y1 <= y0 || x1 <= x0) {
        jpeg_destroy_decompress(&cinfo);
        PyErr_Format(PyExc_ValueError, "empty window [%d:%d, %d:%d] of a %dx%d image",
                     y0, y1, x0, x1, h, w);
        return NULL;
    }
    JDIMENSION left = (JDIMENSION)x0, width = (JDIMENSION)(x1 - x0);
    if (width < (JDIMENSION)w)
        jpeg_crop_scanline(&cinfo, &left, &width);
    if (y0 > 0)
        jpeg_skip_scanlines(&cinfo, (JDIMENSION)y0);

    Py_ssize_t pitch = (Py_ssize_t)width * 3;
    pixels = PyBytes_FromStringAndSize(NULL, pitch * (y1 - y0));
    if (pixels == NULL) {
        jpeg_destroy_decompress(&cinfo);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(pixels);
    JSAMPROW rows[16];  /* a few rows per call: the decoder's natural chunk is up to 16 */
    while ((int)cinfo.output_scanline < y1) {
        int first = (int)cinfo.output_scanline, n = y1 - first < 16 ? y1 - first : 16;
        for (int i = 0; i < n; i++)
            rows[i] = out + pitch * (Py_ssize_t)(first + i - y0);
        jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)n);
    }
    /* the rows below the window are never decoded */
    jpeg_abort_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return Py_BuildValue("(Niiii)", pixels, y0, (int)left, y1 - y0, (int)width);
}

/* Layout of a JPEG whose single sequential Huffman scan restarts on MCU-row-aligned segments. */
typedef struct {
    size_t sof;        /* offset of the SOF marker */
    size_t data;       /* first byte of entropy-coded data */
    int width, height;
    int mcu_w, mcu_h;  /* MCU size in pixels */
    int seg_w;         /* segment width in pixels (restart interval * mcu_w) */
    int per_row;       /* segments per MCU row */
    int rows;          /* MCU rows */
} tiled_t;

static unsigned read16(const unsigned char *p) { return ((unsigned)p[0] << 8) | p[1]; }

/* 1 and the layout when ``buf`` is such a JPEG, else 0 (then the caller decodes it otherwise). */
static int parse_tiled(const unsigned char *buf, size_t len, tiled_t *t) {
    size_t i = 2, sof = 0;
    unsigned restart = 0;
    int max_h = 1, max_v = 1, ncomp = 0;
    if (len < 4 || buf[0] != 0xFF || buf[1] != 0xD8)
        return 0;
    for (;;) {
        while (i < len && buf[i] == 0xFF && i + 1 < len && buf[i + 1] == 0xFF)
            i++;  /* fill bytes */
        if (i + 4 > len || buf[i] != 0xFF)
            return 0;
        unsigned m = buf[i + 1], seg = read16(buf + i + 2);
        if (i + 2 + seg > len)
            return 0;
        if (m == 0xC0 || m == 0xC1) {  /* baseline / extended sequential, Huffman */
            sof = i;
            if (seg < 8)
                return 0;
            ncomp = buf[i + 9];
            if (seg < 8 + 3 * (unsigned)ncomp || ncomp < 1)
                return 0;
            for (int c = 0; c < ncomp; c++) {
                int hv = buf[i + 11 + 3 * c], hs = hv >> 4, vs = hv & 15;
                max_h = hs > max_h ? hs : max_h;
                max_v = vs > max_v ? vs : max_v;
            }
        } else if ((m >= 0xC2 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC)) {
            return 0;  /* progressive, lossless or arithmetic */
        } else if (m == 0xDD) {
            if (seg < 4)
                return 0;
            restart = read16(buf + i + 4);
        } else if (m == 0xDA) {
            if (seg < 3 || !sof || !restart || buf[i + 4] != ncomp)
                return 0;  /* one scan must hold every component */
            t->data = i + 2 + seg;
            break;
        }
        i += 2 + seg;
    }
    t->sof = sof;
    t->height = (int)read16(buf + sof + 5);
    t->width = (int)read16(buf + sof + 7);
    /* one component: non-interleaved, an MCU is one 8x8 block whatever its sampling factors */
    t->mcu_w = ncomp == 1 ? 8 : 8 * max_h;
    t->mcu_h = ncomp == 1 ? 8 : 8 * max_v;
    if (t->height == 0 || t->width == 0)
        return 0;  /* DNL: height given after the scan */
    int per_row_mcus = (t->width + t->mcu_w - 1) / t->mcu_w;
    if (per_row_mcus % (int)restart)
        return 0;
    t->seg_w = (int)restart * t->mcu_w;
    t->per_row = per_row_mcus / (int)restart;
    t->rows = (t->height + t->mcu_h - 1) / t->mcu_h;
    return 1;
}

/* A JPEG of the segments that hold original rows [y0, y1) and columns [x0, x1): written to
 * ``*out`` (malloc'd; 0 when the data is not laid out as the header says), with the original
 * (y, x) of its first pixel. */
static size_t cut_tiles(const unsigned char *buf, size_t len, const tiled_t *t, int y0, int y1,
                        int x0, int x1, unsigned char **out, int *oy, int *ox) {
    int r0 = y0 / t->mcu_h, r1 = (y1 + t->mcu_h - 1) / t->mcu_h;
    int c0 = x0 / t->seg_w, c1 = (x1 + t->seg_w - 1) / t->seg_w;
    r1 = r1 > t->rows ? t->rows : r1;
    c1 = c1 > t->per_row ? t->per_row : c1;
    if (r0 >= r1 || c0 >= c1)
        return 0;
    size_t needed = (size_t)r1 * t->per_row;  /* segments up to the window's last row */
    size_t *start = malloc(sizeof(size_t) * (needed + 1));
    unsigned char *dst = malloc(len + 2);  /* the cut is never longer than the whole */
    if (!start || !dst) {
        free(start);
        free(dst);
        return 0;
    }
    /* segment k is start[k] .. (its end: the marker that follows); find the markers */
    size_t k = 0, p = t->data;
    start[0] = p;
    const unsigned char *b = buf;
    while (k + 1 < needed) {
        const unsigned char *f = memchr(b + p, 0xFF, len - p);
        if (!f || (size_t)(f - b) + 1 >= len)
            goto bad;
        p = (size_t)(f - b);
        unsigned m = b[p + 1];
        if (m == 0x00 || m == 0xFF) {  /* stuffed zero, or fill before a marker */
            p += 1 + (m == 0x00);
            continue;
        }
        if (m != 0xD0 + (k & 7))
            goto bad;  /* any other marker: not one scan of equal segments */
        start[++k] = p + 2;
        p += 2;
    }
    {
        /* the end of the last needed segment: the next marker */
        for (;;) {
            const unsigned char *f = memchr(b + p, 0xFF, len - p);
            if (!f || (size_t)(f - b) + 1 >= len)
                goto bad;
            p = (size_t)(f - b);
            if (b[p + 1] == 0x00 || b[p + 1] == 0xFF) {
                p += 1 + (b[p + 1] == 0x00);
                continue;
            }
            break;
        }
        start[needed] = p + 2;  /* as if a 2-byte marker ended it */
    }
    memcpy(dst, buf, t->data);
    int h = (r1 * t->mcu_h < t->height ? r1 * t->mcu_h : t->height) - r0 * t->mcu_h;
    int w = (c1 * t->seg_w < t->width ? c1 * t->seg_w : t->width) - c0 * t->seg_w;
    dst[t->sof + 5] = (unsigned char)(h >> 8);
    dst[t->sof + 6] = (unsigned char)h;
    dst[t->sof + 7] = (unsigned char)(w >> 8);
    dst[t->sof + 8] = (unsigned char)w;
    size_t q = t->data, n = 0;
    for (int r = r0; r < r1; r++)
        for (int c = c0; c < c1; c++, n++) {
            size_t s = (size_t)r * t->per_row + c;
            if (n) {  /* markers renumbered from RST0 */
                dst[q++] = 0xFF;
                dst[q++] = (unsigned char)(0xD0 + ((n - 1) & 7));
            }
            size_t seg = start[s + 1] - 2 - start[s];
            memcpy(dst + q, buf + start[s], seg);
            q += seg;
        }
    dst[q++] = 0xFF;
    dst[q++] = 0xD9;
    free(start);
    *out = dst;
    *oy = r0 * t->mcu_h;
    *ox = c0 * t->seg_w;
    return q;
bad:
    free(start);
    free(dst);
    return 0;
}

/* ---- Entry points of untouched sequential Huffman JPEGs ----
 *
 * A JPEG without restart markers can only be entropy-decoded from its start: every code's
 * position depends on all the codes before it, and each block's DC is coded as the difference
 * to the previous block's of its component. ``index_jpeg`` walks the codes once (Huffman
 * symbols and extra bits only: no dequantisation, no IDCT) and records, for every segment of
 * ``seg_mcus`` MCUs of each MCU row, where its first code starts (byte of the byte-stuffed
 * data, bit in it) and each component's DC predictor there. ``cut_index`` then makes a small
 * JPEG of the segments a window needs: the header with the size patched, and each MCU row's
 * run of those segments, its bits unstuffed, shifted and stuffed again, the run's first block
 * of each component re-coded with the difference between its DC and the predictor the cut has
 * there (0 at the start, then the DC where the previous row's run ended), so the rest decodes
 * as it did in the whole image (a DC table without a code for that difference is extended in
 * the cut's header, see dc_extended). */

#define JIX_MAGIC "JIX1"
#define JIX_HEAD 20  /* magic, JPEG length, data offset, width, height, components, segment
                      * MCUs, rows (see build_index) */
#define LOOK 9       /* Huffman codes up to this length decode by one table look-up */

typedef struct {
    size_t sof, sos, data;       /* SOF and SOS marker offsets, first byte of entropy data */
    int width, height, ncomp;    /* ncomp: the scan's components, in scan order below */
    int h[4], v[4], dc[4], ac[4];
    int mcu_w, mcu_h, per_row, rows;
    const unsigned char *dht[2][4]; /* the last definition of each table: 16 counts, symbols */
} seq_t;

/* 1 and the layout when ``buf`` is an 8-bit baseline / extended sequential Huffman JPEG with
 * one scan of all (1 or 3) components and no restart interval, else 0. */
static int parse_seq(const unsigned char *buf, size_t len, seq_t *s) {
    size_t i = 2;
    int sof_comps = 0, ids[4] = {0}, hs[4] = {0}, vs[4] = {0}, max_h = 1, max_v = 1;
    memset(s, 0, sizeof(*s));
    if (len < 4 || buf[0] != 0xFF || buf[1] != 0xD8)
        return 0;
    for (;;) {
        while (i + 1 < len && buf[i] == 0xFF && buf[i + 1] == 0xFF)
            i++;
        if (i + 4 > len || buf[i] != 0xFF)
            return 0;
        unsigned m = buf[i + 1], seg = read16(buf + i + 2);
        const unsigned char *p = buf + i + 4;
        if (seg < 2 || i + 2 + seg > len)
            return 0;
        if (m == 0xC0 || m == 0xC1) {
            if (s->sof || seg < 8 || p[0] != 8)
                return 0;
            s->sof = i;
            sof_comps = p[5];
            if ((sof_comps != 1 && sof_comps != 3) || seg < 8 + 3 * (unsigned)sof_comps)
                return 0;
            for (int c = 0; c < sof_comps; c++) {
                ids[c] = p[6 + 3 * c];
                hs[c] = p[7 + 3 * c] >> 4;
                vs[c] = p[7 + 3 * c] & 15;
                if (hs[c] < 1 || hs[c] > 4 || vs[c] < 1 || vs[c] > 4)
                    return 0;
                max_h = hs[c] > max_h ? hs[c] : max_h;
                max_v = vs[c] > max_v ? vs[c] : max_v;
            }
        } else if (m >= 0xC2 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            return 0;  /* progressive, lossless or arithmetic */
        } else if (m == 0xC4) {
            size_t q = 0, n = seg - 2;
            while (q < n) {
                if (q + 17 > n)
                    return 0;
                int tc = p[q] >> 4, th = p[q] & 15, count = 0;
                for (int l = 0; l < 16; l++)
                    count += p[q + 1 + l];
                if (tc > 1 || th > 3 || count > 256 || q + 17 + count > n)
                    return 0;
                s->dht[tc][th] = p + q + 1;
                q += 17 + count;
            }
        } else if (m == 0xDD) {
            if (seg < 4 || read16(p))
                return 0;  /* restart markers: not indexed */
        } else if (m == 0xDA) {
            if (!s->sof || seg < 3 || p[0] != sof_comps || seg < 6 + 2 * (unsigned)sof_comps)
                return 0;  /* one scan must hold every component */
            s->ncomp = sof_comps;
            for (int j = 0; j < sof_comps; j++) {
                int c = 0;
                while (c < sof_comps && ids[c] != p[1 + 2 * j])
                    c++;
                if (c == sof_comps)
                    return 0;
                s->h[j] = sof_comps == 1 ? 1 : hs[c];
                s->v[j] = sof_comps == 1 ? 1 : vs[c];
                s->dc[j] = p[2 + 2 * j] >> 4;
                s->ac[j] = p[2 + 2 * j] & 15;
                if (s->dc[j] > 3 || s->ac[j] > 3 || !s->dht[0][s->dc[j]] || !s->dht[1][s->ac[j]])
                    return 0;
            }
            const unsigned char *e = p + 1 + 2 * sof_comps;  /* Ss, Se, Ah/Al */
            if (e[0] != 0 || e[1] != 63 || e[2] != 0)
                return 0;
            s->sos = i;
            s->data = i + 2 + seg;
            break;
        } else if (m == 0xD9 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
            return 0;
        }
        i += 2 + seg;
    }
    s->height = (int)read16(buf + s->sof + 5);
    s->width = (int)read16(buf + s->sof + 7);
    if (!s->height || !s->width)
        return 0;  /* DNL: height given after the scan */
    s->mcu_w = s->ncomp == 1 ? 8 : 8 * max_h;
    s->mcu_h = s->ncomp == 1 ? 8 : 8 * max_v;
    s->per_row = (s->width + s->mcu_w - 1) / s->mcu_w;
    s->rows = (s->height + s->mcu_h - 1) / s->mcu_h;
    return 1;
}

typedef struct {
    unsigned short look[1 << LOOK]; /* code length << 8 | symbol; 0: a longer code */
    unsigned short skip[1 << LOOK]; /* AC: bits of code and value << 8 | coefficients they
                                     * cover (0x80: end of block); 0: more than LOOK bits */
    int maxcode[17], valoff[17];    /* canonical decoding of codes longer than LOOK */
    unsigned char sym[256];
    unsigned short code[256];       /* encoding: each symbol's code and its length (0: none) */
    unsigned char size[256];
} huff_t;

/* The table of a DHT definition (16 counts, then the symbols); 0 when it is not a valid code. */
static int huff_build(huff_t *t, const unsigned char *def) {
    unsigned code = 0;
    int k = 0;
    memset(t->look, 0, sizeof(t->look));
    memset(t->skip, 0, sizeof(t->skip));
    memset(t->size, 0, sizeof(t->size));
    for (int l = 1; l <= 16; l++) {
        int n = def[l - 1];
        t->valoff[l] = k - (int)code;
        for (int j = 0; j < n; j++, k++, code++) {
            unsigned char sym = def[16 + k];
            t->sym[k] = sym;
            t->code[sym] = (unsigned short)code;
            t->size[sym] = (unsigned char)l;
            int z = sym & 15, covers = z ? (sym >> 4) + 1 : sym == 0xF0 ? 16 : 0x80;
            if (l <= LOOK)
                for (unsigned f = 0; f < 1u << (LOOK - l); f++) {
                    t->look[(code << (LOOK - l)) | f] = (unsigned short)(l << 8 | sym);
                    if (l + z <= LOOK)
                        t->skip[(code << (LOOK - l)) | f] = (unsigned short)((l + z) << 8 | covers);
                }
        }
        t->maxcode[l] = n ? (int)code - 1 : -1;
        if (code >= (1u << l))
            return 0;  /* as libjpeg: no code may be all ones */
        code <<= 1;
    }
    return 1;
}

/* Bits of an unstuffed buffer, most significant first; the buffer has 8 readable bytes past
 * its end. */
static inline uint64_t peek64(const unsigned char *u, uint64_t pos) {
    uint64_t w;
    memcpy(&w, u + (pos >> 3), 8);
    return __builtin_bswap64(w) << (pos & 7);  /* at least 57 valid bits */
}

/* A reader of those bits: ``acc`` holds the ``n`` bits from ``pos`` on, first at the top, and
 * is reloaded when fewer than a code and its value (27 bits) are left, so that each code costs
 * a table look-up and a shift, not a load from memory. */
typedef struct {
    const unsigned char *u;
    uint64_t pos, acc;
    int n;
} bits_t;

static inline void bits_at(bits_t *b, const unsigned char *u, uint64_t pos) {
    b->u = u;
    b->pos = pos;
    b->acc = peek64(u, pos);
    b->n = 57;
}

static inline void bits_fill(bits_t *b) {
    if (b->n < 27) {
        b->acc = peek64(b->u, b->pos);
        b->n = 57;
    }
}

static inline void bits_skip(bits_t *b, int k) {
    b->acc <<= k;
    b->n -= k;
    b->pos += (uint64_t)k;
}

/* The next symbol (after bits_fill), or -1 for a code the table does not hold. */
static inline int huff_decode(const huff_t *t, bits_t *b) {
    unsigned e = t->look[b->acc >> (64 - LOOK)];
    if (e) {
        bits_skip(b, (int)(e >> 8));
        return (int)(e & 0xFF);
    }
    unsigned top = (unsigned)(b->acc >> 48);
    for (int l = LOOK + 1; l <= 16; l++) {
        int c = (int)(top >> (16 - l));
        if (c <= t->maxcode[l]) {
            bits_skip(b, l);
            return t->sym[t->valoff[l] + c];
        }
    }
    return -1;
}

/* One block's codes: its DC difference in ``*diff`` and where its AC codes start in
 * ``*ac_at``; 0 on a code the tables do not hold or a run past the block's end. */
static inline int skip_block(const huff_t *dc, const huff_t *ac, bits_t *b, int *diff,
                             uint64_t *ac_at) {
    bits_fill(b);
    int s = huff_decode(dc, b);
    if (s < 0 || s > 11)
        return 0;
    int d = 0;
    if (s) {
        d = (int)(b->acc >> (64 - s));
        bits_skip(b, s);
        if (d < (1 << (s - 1)))
            d -= (1 << s) - 1;
    }
    *diff = d;
    *ac_at = b->pos;
    for (int k = 1; k < 64;) {
        bits_fill(b);
        unsigned f = ac->skip[b->acc >> (64 - LOOK)];
        if (f) {  /* a code and its value within the look-ahead: one step */
            bits_skip(b, (int)(f >> 8));
            if (f & 0x80)
                break;
            k += (int)(f & 0x7F);
            if (k > 64)
                return 0;
            continue;
        }
        int rs = huff_decode(ac, b);
        if (rs < 0)
            return 0;
        int r = rs >> 4, z = rs & 15;
        if (z) {
            k += r + 1;
            bits_skip(b, z);
            if (k > 64)
                return 0;
        } else if (r == 15) {
            k += 16;
            if (k > 64)
                return 0;
        } else {
            break;  /* end of block */
        }
    }
    return 1;
}

/* The scan's tables, per scan component; 0 when one is not a valid code. */
static int seq_tables(const seq_t *s, huff_t dc[4], huff_t ac[4]) {
    for (int j = 0; j < s->ncomp; j++)
        if (!huff_build(&dc[j], s->dht[0][s->dc[j]]) || !huff_build(&ac[j], s->dht[1][s->ac[j]]))
            return 0;
    return 1;
}

/* The entropy-coded data from ``from`` up to ``limit`` or its first marker, without the
 * stuffed zero bytes: written to ``u`` (room for all of it plus 8 bytes); returns its length,
 * the offset where it stopped in ``*end``. ``stuffed``, when given, receives the unstuffed
 * offsets of the bytes that were followed by a stuffed zero (``*n_stuffed`` of them). */
static size_t unstuff(const unsigned char *buf, size_t len, size_t from, size_t limit,
                      unsigned char *u, size_t *end, size_t *stuffed, size_t *n_stuffed) {
    size_t p = from, n = 0, k = 0;
    limit = limit > len ? len : limit;
    while (p < limit) {
        const unsigned char *f = memchr(buf + p, 0xFF, limit - p);
        size_t q = f ? (size_t)(f - buf) : limit;
        memcpy(u + n, buf + p, q - p);
        n += q - p;
        p = q;
        if (!f || q + 1 >= len || buf[q + 1] != 0x00)
            break;  /* the limit, or a marker */
        if (stuffed)
            stuffed[k++] = n;
        u[n++] = 0xFF;
        p = q + 2;
    }
    memset(u + n, 0, 8);
    *end = p;
    if (n_stuffed)
        *n_stuffed = k;
    return n;
}

static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t fnv1a(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* An entry point: the byte of the (stuffed) entropy-coded data, counted from its start, the
 * bit in it, and each component's DC predictor there. */
typedef struct {
    uint32_t byte;
    int bit, pred[4];
} entry_t;

/* MCUs per indexed segment of a row: about 64 pixels, the restart segments' width. */
static int seg_mcus(const seq_t *s) { return s->mcu_w >= 64 ? 1 : 64 / s->mcu_w; }

static unsigned char *put_varint(unsigned char *p, uint64_t v) {
    for (; v >= 0x80; v >>= 7)
        *p++ = (unsigned char)(v | 0x80);
    *p++ = (unsigned char)v;
    return p;
}

/* 0 past ``end`` or beyond 35 bits */
static const unsigned char *get_varint(const unsigned char *p, const unsigned char *end,
                                       uint64_t *v) {
    *v = 0;
    for (int shift = 0; p < end && shift < 35; shift += 7) {
        *v |= (uint64_t)(*p & 0x7F) << shift;
        if (!(*p++ & 0x80))
            return p;
    }
    return NULL;
}

static uint64_t zigzag(int v) { return v < 0 ? ((uint64_t)(-(int64_t)v) << 1) - 1 : (uint64_t)v << 1; }

/* ``n`` entries coded as from ``put_entries``, or 0 when the bytes are not exactly that. */
static int get_entries(const unsigned char *p, const unsigned char *end, size_t n, int ncomp,
                       entry_t *e) {
    uint64_t pos = 0;
    int pred[4] = {0};
    for (size_t k = 0; k < n; k++) {
        uint64_t v;
        if (!(p = get_varint(p, end, &v)))
            return 0;
        pos += v;
        if (pos >> 35)
            return 0;
        e[k].byte = (uint32_t)(pos >> 3);
        e[k].bit = (int)(pos & 7);
        for (int j = 0; j < ncomp; j++) {
            if (!(p = get_varint(p, end, &v)))
                return 0;
            pred[j] += v & 1 ? -(int)((v + 1) >> 1) : (int)(v >> 1);
            if (pred[j] < -32768 || pred[j] > 32767)
                return 0;
            e[k].pred[j] = pred[j];
        }
    }
    return p == end;
}

/* The index of ``buf`` (malloc'd, its length in ``*out_len``), or NULL when the JPEG is not
 * one ``parse_seq`` accepts or its codes do not decode to the MCUs its header promises.
 * Layout: "JIX1", the JPEG's length and its entropy-coded data's offset (u32, little-endian),
 * width, height (u16, big-endian as in SOF), components, MCUs per segment (u8), MCU rows (u16,
 * big-endian); then an entry for each segment of every MCU row in scan order and one for the
 * data's end, each as varints (7 bits a byte, low first) of its increase over the previous
 * entry (the first over 0): the position in bits (8 per stuffed byte), then each component's
 * DC predictor (zigzag: 0, -1, 1, -2, ...); then FNV-1a of all that (u32, little-endian). */
static unsigned char *build_index(const unsigned char *buf, size_t len, size_t *out_len) {
    seq_t s;
    huff_t dc[4], ac[4];
    if (!parse_seq(buf, len, &s) || len > 0xFFFFFFFFu || !seq_tables(&s, dc, ac))
        return NULL;
    int k_seg = seg_mcus(&s), nseg = (s.per_row + k_seg - 1) / k_seg;
    size_t room = len - s.data, count = (size_t)s.rows * nseg + 1;
    unsigned char *u = malloc(room + 8), *idx = malloc(JIX_HEAD + count * 5 * (1 + s.ncomp) + 4);
    size_t *stuffed = malloc(sizeof(size_t) * (room / 2 + 1));
    entry_t *entries = malloc(sizeof(entry_t) * count);
    if (!u || !idx || !stuffed || !entries)
        goto bad;
    size_t end, n_stuffed;
    size_t n = unstuff(buf, len, s.data, len, u, &end, stuffed, &n_stuffed);
    uint64_t total = (uint64_t)n * 8;
    bits_t bits;
    bits_at(&bits, u, 0);
    int pred[4] = {0};
    size_t k = 0, at = 0;  /* k: stuffed bytes before the entry's byte */
    for (int r = 0; r <= s.rows; r++)
        for (int m = 0; m < (r < s.rows ? s.per_row : 1); m++) {
            if (m % k_seg == 0) {
                size_t ub = (size_t)(bits.pos >> 3);
                while (k < n_stuffed && stuffed[k] < ub)
                    k++;
                entries[at].byte = (uint32_t)(ub + k);
                entries[at].bit = (int)(bits.pos & 7);
                memcpy(entries[at++].pred, pred, sizeof(pred));
            }
            if (r == s.rows)
                break;
            for (int j = 0; j < s.ncomp; j++)
                for (int b = 0; b < s.h[j] * s.v[j]; b++) {
                    int diff;
                    uint64_t ac_at;
                    if (!skip_block(&dc[j], &ac[j], &bits, &diff, &ac_at) || bits.pos > total)
                        goto bad;
                    pred[j] += diff;
                    if (pred[j] < -32768 || pred[j] > 32767)
                        goto bad;
                }
        }
    unsigned char *p = idx + JIX_HEAD;
    uint64_t last = 0;
    int prev[4] = {0};
    for (size_t i = 0; i < count; i++) {
        uint64_t bits = (uint64_t)entries[i].byte * 8 + (uint64_t)entries[i].bit;
        p = put_varint(p, bits - last);
        last = bits;
        for (int j = 0; j < s.ncomp; j++) {
            p = put_varint(p, zigzag(entries[i].pred[j] - prev[j]));
            prev[j] = entries[i].pred[j];
        }
    }
    memcpy(idx, JIX_MAGIC, 4);
    put32(idx + 4, (uint32_t)len);
    put32(idx + 8, (uint32_t)s.data);
    idx[12] = (unsigned char)(s.width >> 8);
    idx[13] = (unsigned char)s.width;
    idx[14] = (unsigned char)(s.height >> 8);
    idx[15] = (unsigned char)s.height;
    idx[16] = (unsigned char)s.ncomp;
    idx[17] = (unsigned char)k_seg;
    idx[18] = (unsigned char)(s.rows >> 8);
    idx[19] = (unsigned char)s.rows;
    size_t n_idx = (size_t)(p - idx) + 4;
    put32(p, fnv1a(idx, n_idx - 4));
    free(u);
    free(stuffed);
    free(entries);
    *out_len = n_idx;
    return idx;
bad:
    free(u);
    free(idx);
    free(stuffed);
    free(entries);
    return NULL;
}

/* Bits written most significant first into a zeroed buffer with 8 bytes of room past them. */
static inline void put_bits(unsigned char *o, uint64_t *at, uint64_t v, int n) {
    if (!n)
        return;
    uint64_t w;
    unsigned char *p = o + (*at >> 3);
    memcpy(&w, p, 8);
    w = __builtin_bswap64(w) | (v << (64 - n) >> (*at & 7));
    w = __builtin_bswap64(w);
    memcpy(p, &w, 8);
    *at += (uint64_t)n;
}

static void copy_bits(unsigned char *o, uint64_t *at, const unsigned char *u, uint64_t from,
                      uint64_t to) {
    while (to - from >= 56) {
        put_bits(o, at, peek64(u, from) >> 8, 56);
        from += 56;
    }
    if (to > from)
        put_bits(o, at, peek64(u, from) >> (64 - (to - from)), (int)(to - from));
}

/* An optimised DC table codes only the categories its image used, and a cut may need others.
 * Every table leaves code space free (no code may be all ones): the missing categories get
 * one code each at the lengths after its longest, which leaves every other code as it was. Writes the extended definition (16 counts, symbols) to ``def`` and its
 * table to ``t``; 0 when nothing is missing or it does not fit. */
static int dc_extended(const unsigned char *orig, unsigned char *def, huff_t *t) {
    int total = 0, longest = 0, missing = 0;
    for (int l = 1; l <= 16; l++) {
        total += orig[l - 1];
        longest = orig[l - 1] ? l : longest;
    }
    memcpy(def, orig, 16 + (size_t)total);
    for (int cat = 0; cat <= 11; cat++) {
        int found = 0;
        for (int k = 0; k < total; k++)
            found |= orig[16 + k] == cat;
        if (!found) {
            if (longest + missing + 1 > 16)
                return 0;
            def[16 + total + missing] = (unsigned char)cat;
            def[longest + missing]++;  /* counts[longest + missing + 1 - 1] */
            missing++;
        }
    }
    return missing && huff_build(t, def);
}

/* A JPEG of the indexed segments that hold original rows [y0, y1) and columns [x0, x1) of
 * ``buf`` (malloc'd in ``*out``, its length returned, the original (y, x) of its first pixel
 * in ``*oy``, ``*ox``), or 0 with the reason in ``*why``. Each MCU row's run of segments is
 * copied whole, its first block of each component re-coded: its DC difference made to the
 * predictor the cut has there (0, or the DC where the previous row's run ended). */
static size_t cut_index(const unsigned char *buf, size_t len, const unsigned char *idx,
                        size_t idx_len, int y0, int y1, int x0, int x1, unsigned char **out,
                        int *oy, int *ox, const char **why) {
    seq_t s;
    huff_t dc[4], ac[4];
    *why = "the JPEG is not an indexable sequential JPEG";
    if (!parse_seq(buf, len, &s))
        return 0;
    int k_seg = seg_mcus(&s), nseg = (s.per_row + k_seg - 1) / k_seg, seg_w = k_seg * s.mcu_w;
    *why = "the entry index does not belong to this JPEG (or is corrupt)";
    if (idx_len < JIX_HEAD + 4 ||
        memcmp(idx, JIX_MAGIC, 4) || get32(idx + idx_len - 4) != fnv1a(idx, idx_len - 4) ||
        get32(idx + 4) != len || get32(idx + 8) != s.data ||
        read16(idx + 12) != (unsigned)s.width || read16(idx + 14) != (unsigned)s.height ||
        idx[16] != s.ncomp || idx[17] != k_seg || read16(idx + 18) != (unsigned)s.rows)
        return 0;
    *why = "the JPEG has an invalid Huffman table";
    if (!seq_tables(&s, dc, ac))
        return 0;
    /* the cut's DC codes: each table's own, or its extension, defined again before the scan
     * (a later DHT replaces a table) */
    huff_t ext[4];
    const huff_t *enc[4];
    unsigned char dht[4 + 4 * (17 + 256 + 12)];
    size_t dht_len = 0;
    int done[4] = {0};
    for (int j = 0; j < s.ncomp; j++) {
        int id = s.dc[j];
        enc[j] = &dc[j];
        for (int i = 0; i < j; i++)
            if (s.dc[i] == id)
                enc[j] = enc[i];
        if (done[id])
            continue;
        done[id] = 1;
        unsigned char def[16 + 256 + 12];
        if (!dc_extended(s.dht[0][id], def, &ext[id]))
            continue;
        int n = 0;
        for (int l = 0; l < 16; l++)
            n += def[l];
        dht[dht_len ? dht_len : 4] = (unsigned char)id;  /* class 0 (DC), this id */
        size_t at = (dht_len ? dht_len : 4) + 1;
        memcpy(dht + at, def, 16 + (size_t)n);
        dht_len = at + 16 + (size_t)n;
        enc[j] = &ext[id];
    }
    if (dht_len) {
        dht[0] = 0xFF;
        dht[1] = 0xC4;
        dht[2] = (unsigned char)((dht_len - 2) >> 8);
        dht[3] = (unsigned char)(dht_len - 2);
    }
    int r0 = (y0 < 0 ? 0 : y0) / s.mcu_h, r1 = (y1 + s.mcu_h - 1) / s.mcu_h;
    int c0 = (x0 < 0 ? 0 : x0) / seg_w, c1 = (x1 + seg_w - 1) / seg_w;
    r1 = r1 > s.rows ? s.rows : r1;
    c1 = c1 > nseg ? nseg : c1;
    *why = "empty window";
    if (r0 >= r1 || c0 >= c1)
        return 0;
    size_t count = (size_t)s.rows * nseg + 1;
    entry_t *entries = malloc(sizeof(entry_t) * count);
    unsigned char *u = NULL, *o = NULL, *dst = NULL;
    *why = "out of memory";
    if (!entries)
        goto bad;
    *why = "the entry index does not belong to this JPEG (or is corrupt)";
    if (!get_entries(idx + JIX_HEAD, idx + idx_len - 4, count, s.ncomp, entries))
        goto bad;
    size_t room = 0, max_span = 0, data_len = len - s.data;
    *why = "the entry index points outside the JPEG's data";
    for (int r = r0; r < r1; r++) {
        const entry_t *e0 = &entries[(size_t)r * nseg + c0], *e1 = &entries[(size_t)r * nseg + c1];
        if (e0->byte > e1->byte || e1->byte + (e1->bit > 0) > data_len)
            goto bad;
        size_t span = e1->byte - e0->byte + 1;
        room += span;
        max_span = span > max_span ? span : max_span;
    }
    u = malloc(max_span + 8);
    o = calloc(room + 16 * (size_t)(r1 - r0) + 64, 1);
    *why = "out of memory";
    if (!u || !o)
        goto bad;
    uint64_t at = 0;
    int have[4] = {0};  /* the cut's DC predictors */
    for (int r = r0; r < r1; r++) {
        const entry_t *e0 = &entries[(size_t)r * nseg + c0], *e1 = &entries[(size_t)r * nseg + c1];
        size_t b0 = e0->byte, span = e1->byte - b0 + (e1->bit > 0), stop;
        size_t n = unstuff(buf, len, s.data + b0, s.data + b0 + span, u, &stop, NULL, NULL);
        *why = "the entry index does not match the JPEG's data";
        if (stop < s.data + b0 + span)
            goto bad;  /* a marker inside the segments */
        uint64_t from = (uint64_t)e0->bit, to = (uint64_t)(n - (e1->bit > 0)) * 8 + (uint64_t)e1->bit;
        if (to < from)
            goto bad;
        bits_t bits;
        bits_at(&bits, u, from);
        for (int j = 0; j < s.ncomp; j++) {
            int pred = e0->pred[j];
            for (int b = 0; b < s.h[j] * s.v[j]; b++) {
                uint64_t start = from, ac_at;
                int diff;
                *why = "the entry index does not match the JPEG's data";
                if (!skip_block(&dc[j], &ac[j], &bits, &diff, &ac_at) || bits.pos > to)
                    goto bad;
                from = bits.pos;
                if (b) {
                    copy_bits(o, &at, u, start, from);
                    continue;
                }
                int v = pred + diff - have[j], a = v < 0 ? -v : v, cat = 0;
                while (a >> cat)
                    cat++;
                *why = "the DC table has no code for a difference the cut needs";
                if (cat > 11 || !enc[j]->size[cat])
                    goto bad;
                put_bits(o, &at, enc[j]->code[cat], enc[j]->size[cat]);
                put_bits(o, &at, (uint64_t)(v < 0 ? v - 1 : v) & ((1u << cat) - 1), cat);
                copy_bits(o, &at, u, ac_at, from);
            }
            have[j] = e1->pred[j];
        }
        copy_bits(o, &at, u, from, to);
    }
    if (at & 7)  /* pad the last byte with ones */
        put_bits(o, &at, (1u << (8 - (at & 7))) - 1, (int)(8 - (at & 7)));
    size_t nbytes = (size_t)(at >> 3);
    dst = malloc(s.data + dht_len + 2 * nbytes + 2);
    *why = "out of memory";
    if (!dst)
        goto bad;
    memcpy(dst, buf, s.sos);
    memcpy(dst + s.sos, dht, dht_len);
    memcpy(dst + s.sos + dht_len, buf + s.sos, s.data - s.sos);
    int h = (r1 * s.mcu_h < s.height ? r1 * s.mcu_h : s.height) - r0 * s.mcu_h;
    int w = (c1 * seg_w < s.width ? c1 * seg_w : s.width) - c0 * seg_w;
    dst[s.sof + 5] = (unsigned char)(h >> 8);
    dst[s.sof + 6] = (unsigned char)h;
    dst[s.sof + 7] = (unsigned char)(w >> 8);
    dst[s.sof + 8] = (unsigned char)w;
    size_t q = s.data + dht_len;
    for (size_t p = 0; p < nbytes;) {  /* stuff a zero after every 0xFF */
        const unsigned char *f = memchr(o + p, 0xFF, nbytes - p);
        size_t z = f ? (size_t)(f - o) + 1 : nbytes;
        memcpy(dst + q, o + p, z - p);
        q += z - p;
        if (f)
            dst[q++] = 0x00;
        p = z;
    }
    dst[q++] = 0xFF;
    dst[q++] = 0xD9;
    free(entries);
    free(u);
    free(o);
    *out = dst;
    *oy = r0 * s.mcu_h;
    *ox = c0 * seg_w;
    return q;
bad:
    free(entries);
    free(u);
    free(o);
    return 0;
}

PyDoc_STRVAR(decode_window_doc,
"decode_window(data, y0, y1, x0, x1, denom, fast, index=None)\n"
"    -> (pixels, top, left, height, width)\n\n"
"Rows [y0, y1) and at least columns [x0, x1) of the JPEG decoded to RGB at scale 1/denom\n"
"(denom in 1, 2, 4, 8; coordinates in scaled pixels, clipped to the image). ``pixels`` is\n"
"``height * width * 3`` bytes, row-major; ``left <= x0`` because columns are cut on iMCU\n"
"boundaries. ``fast``: libjpeg-turbo's fast integer IDCT and plain chroma upsampling.\n"
"A JPEG with restart markers on MCU-row-aligned segments (see add_restarts) is decoded from\n"
"the window's segments only; one with its ``index`` (see index_jpeg) from the indexed\n"
"segments that hold it (see cut_index; an index that does not fit is ignored).");

/* decode_buffer's result for a cut whose first pixel is (oy, ox) of the original (scaled). */
static PyObject *shift_result(PyObject *res, int oy, int ox) {
    if (!res)
        return NULL;
    PyObject *shifted = Py_BuildValue(
        "(Oiiii)", PyTuple_GET_ITEM(res, 0), (int)PyLong_AsLong(PyTuple_GET_ITEM(res, 1)) + oy,
        (int)PyLong_AsLong(PyTuple_GET_ITEM(res, 2)) + ox,
        (int)PyLong_AsLong(PyTuple_GET_ITEM(res, 3)), (int)PyLong_AsLong(PyTuple_GET_ITEM(res, 4)));
    Py_DECREF(res);
    return shifted;
}

static PyObject *decode_window(PyObject *self, PyObject *args) {
    Py_buffer data, index = {0};
    int y0, y1, x0, x1, denom, fast;
    if (!PyArg_ParseTuple(args, "y*iiiiip|z*", &data, &y0, &y1, &x0, &x1, &denom, &fast,
                          &index))
        return NULL;
    const unsigned char *buf = (const unsigned char *)data.buf;
    size_t len = (size_t)data.len;
    tiled_t t;
    unsigned char *cut = NULL;
    int oy = 0, ox = 0;
    size_t cut_len = 0;
    int ok_denom = denom == 1 || denom == 2 || denom == 4 || denom == 8;
    int ty0 = (y0 < 0 ? 0 : y0) * denom, ty1 = y1 * denom;
    if (ok_denom && parse_tiled(buf, len, &t))
        cut_len = cut_tiles(buf, len, &t, ty0, ty1, (x0 < 0 ? 0 : x0) * denom, x1 * denom,
                            &cut, &oy, &ox);
    else if (ok_denom && index.buf) {
        const char *why;
        cut_len = cut_index(buf, len, (const unsigned char *)index.buf, (size_t)index.len, ty0,
                            ty1, (x0 < 0 ? 0 : x0) * denom, x1 * denom, &cut, &oy, &ox, &why);
    }
    PyObject *res;
    if (cut_len) {  /* MCU sizes are multiples of 8, so the cut's origin scales exactly */
        oy /= denom;
        ox /= denom;
        res = shift_result(
            decode_buffer(cut, cut_len, y0 - oy, y1 - oy, x0 - ox, x1 - ox, denom, fast), oy, ox);
        free(cut);
    } else {
        res = decode_buffer(buf, len, y0, y1, x0, x1, denom, fast);
    }
    if (index.buf)
        PyBuffer_Release(&index);
    PyBuffer_Release(&data);
    return res;
}

PyDoc_STRVAR(index_jpeg_doc,
"index_jpeg(data) -> bytes | None\n\n"
"The entry-point index of an 8-bit baseline or extended sequential Huffman JPEG of one\n"
"interleaved scan (gray or 3 components, any chroma subsampling) without restart markers:\n"
"for each MCU row, cut in segments of about 64 pixels, where each segment's codes start in\n"
"the entropy-coded data and each component's DC predictor there (varints of the increases,\n"
"5-6 bytes a segment with colour; the format is this module's own). None for other JPEGs,\n"
"or codes that do not decode to the MCUs the header promises.");

static PyObject *index_jpeg(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data))
        return NULL;
    size_t n = 0;
    unsigned char *idx;
    Py_BEGIN_ALLOW_THREADS
    idx = build_index((const unsigned char *)data.buf, (size_t)data.len, &n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (!idx)
        Py_RETURN_NONE;
    PyObject *res = PyBytes_FromStringAndSize((const char *)idx, (Py_ssize_t)n);
    free(idx);
    return res;
}

PyDoc_STRVAR(cut_index_doc,
"cut_index(data, index, y0, y1, x0, x1) -> (jpeg, top, left)\n\n"
"The JPEG of the indexed segments (MCU rows cut about every 64 pixels) that hold rows\n"
"[y0, y1) and columns [x0, x1) (original pixels) of a JPEG with its index (see index_jpeg),\n"
"and the original (row, column) of its first pixel: it decodes to exactly those pixels of the\n"
"whole image, but for smooth chroma upsampling at its edges. ValueError says why when the\n"
"index does not fit the JPEG or a DC difference has no code in its table.");

static PyObject *cut_index_py(PyObject *self, PyObject *args) {
    Py_buffer data, index;
    int y0, y1, x0, x1;
    if (!PyArg_ParseTuple(args, "y*y*iiii", &data, &index, &y0, &y1, &x0, &x1))
        return NULL;
    unsigned char *cut = NULL;
    int oy = 0, ox = 0;
    const char *why = "";
    size_t n = cut_index((const unsigned char *)data.buf, (size_t)data.len,
                         (const unsigned char *)index.buf, (size_t)index.len, y0, y1, x0, x1,
                         &cut, &oy, &ox, &why);
    PyBuffer_Release(&data);
    PyBuffer_Release(&index);
    if (!n) {
        PyErr_Format(PyExc_ValueError, "cannot cut the JPEG: %s", why);
        return NULL;
    }
    PyObject *res = Py_BuildValue("(y#ii)", (const char *)cut, (Py_ssize_t)n, oy, ox);
    free(cut);
    return res;
}

PyDoc_STRVAR(add_restarts_doc,
"add_restarts(data, mcus) -> bytes\n\n"
"The JPEG re-coded without loss (its DCT coefficients copied: the same pixels) as one\n"
"sequential scan with the standard Huffman tables and a restart marker every n MCUs, n the\n"
"largest divisor of an MCU row's count not above ``mcus``. APPn and COM markers are kept.");

static PyObject *add_restarts(PyObject *self, PyObject *args) {
    Py_buffer data;
    int mcus;
    if (!PyArg_ParseTuple(args, "y*i", &data, &mcus))
        return NULL;
    if (mcus < 1) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "mcus must be at least 1");
        return NULL;
    }
    struct jpeg_decompress_struct src;
    struct jpeg_compress_struct dst;
    error_mgr err;
    unsigned char *volatile out = NULL;
    unsigned long out_len = 0;
    volatile int created = 0;

    src.err = jpeg_std_error(&err.pub);
    dst.err = &err.pub;
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    if (setjmp(err.jump)) {
        if (created & 1)
            jpeg_destroy_decompress(&src);
        if (created & 2)
            jpeg_destroy_compress(&dst);
        free(out);
        PyBuffer_Release(&data);
        PyErr_Format(PyExc_ValueError, "JPEG re-coding failed: %s", err.message);
        return NULL;
    }
    jpeg_create_decompress(&src);
    created |= 1;
    jpeg_mem_src(&src, (const unsigned char *)data.buf, (unsigned long)data.len);
    jpeg_save_markers(&src, JPEG_COM, 0xFFFF);
    for (int m = 0; m < 16; m++)
        jpeg_save_markers(&src, JPEG_APP0 + m, 0xFFFF);
    jpeg_read_header(&src, TRUE);
    jvirt_barray_ptr *coefs = jpeg_read_coefficients(&src);
    jpeg_create_compress(&dst);
    created |= 2;
    jpeg_mem_dest(&dst, (unsigned char **)&out, &out_len);
    jpeg_copy_critical_parameters(&src, &dst);
    /* standard tables: one entropy pass (optimised ones take a second, twice the time on
     * DAVIS, for files 1.5 % instead of 2.8 % larger than the sources) */
    dst.optimize_coding = FALSE;
    int max_h = 1;
    for (int c = 0; c < dst.num_components; c++)
        max_h = dst.comp_info[c].h_samp_factor > max_h ? dst.comp_info[c].h_samp_factor : max_h;
    int mcu_w = dst.num_components == 1 ? 8 : 8 * max_h;
    int per_row = ((int)dst.image_width + mcu_w - 1) / mcu_w, n = mcus;
    while (per_row % n)
        n--;
    dst.restart_interval = (unsigned int)n;
    dst.restart_in_rows = 0;
    jpeg_write_coefficients(&dst, coefs);
    for (jpeg_saved_marker_ptr m = src.marker_list; m; m = m->next) {
        /* libjpeg writes its own JFIF / Adobe marker (as jpegtran does) */
        if (dst.write_JFIF_header && m->marker == JPEG_APP0 && m->data_length >= 5 &&
            memcmp(m->data, "JFIF", 5) == 0)
            continue;
        if (dst.write_Adobe_marker && m->marker == JPEG_APP0 + 14 && m->data_length >= 5 &&
            memcmp(m->data, "Adobe", 5) == 0)
            continue;
        jpeg_write_marker(&dst, m->marker, m->data, m->data_length);
    }
    jpeg_finish_compress(&dst);
    jpeg_finish_decompress(&src);
    jpeg_destroy_compress(&dst);
    jpeg_destroy_decompress(&src);
    PyBuffer_Release(&data);
    PyObject *res = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)out_len);
    free(out);
    return res;
}

static PyMethodDef methods[] = {
    {"decode_window", decode_window, METH_VARARGS, decode_window_doc},
    {"add_restarts", add_restarts, METH_VARARGS, add_restarts_doc},
    {"index_jpeg", index_jpeg, METH_VARARGS, index_jpeg_doc},
    {"cut_index", cut_index_py, METH_VARARGS, cut_index_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jpegwindow",
    "Window JPEG decoding and restart-marker re-coding with libjpeg-turbo.", -1, methods,
};

PyMODINIT_FUNC PyInit__jpegwindow(void) { return PyModule_Create(&module); }
