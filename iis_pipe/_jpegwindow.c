/* Decode only a window of a JPEG with libjpeg-turbo, and re-code JPEGs so that windows are cheap.
 *
 * The training crop covers a fraction of the image. A JPEG's entropy-coded data can only be
 * read from its start, unless it has restart markers: after each marker the decoder starts
 * afresh. ``add_restarts`` re-codes a JPEG losslessly (the same DCT coefficients, so the same
 * pixels) with a marker every few MCUs, a divisor of an MCU row, so every MCU row is cut into
 * equal segments. ``decode_window`` then copies only the segments that hold the window into a
 * small JPEG of their own (header patched, markers renumbered) and decodes that: work in
 * proportion to the window, not the image. Other JPEGs take libjpeg-turbo's partial decoding
 * API: rows above the window are entropy-decoded only (no IDCT or colour conversion), columns
 * outside it are cropped at iMCU granularity, and decoding stops after the window's last row.
 * None of the Python JPEG wheels expose either, hence this small module; iis_pipe.images falls
 * back to storing JPEGs untouched and decoding whole images when it is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <setjmp.h>
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

PyDoc_STRVAR(decode_window_doc,
"decode_window(data, y0, y1, x0, x1, denom, fast) -> (pixels, top, left, height, width)\n\n"
"Rows [y0, y1) and at least columns [x0, x1) of the JPEG decoded to RGB at scale 1/denom\n"
"(denom in 1, 2, 4, 8; coordinates in scaled pixels, clipped to the image). ``pixels`` is\n"
"``height * width * 3`` bytes, row-major; ``left <= x0`` because columns are cut on iMCU\n"
"boundaries. ``fast``: libjpeg-turbo's fast integer IDCT and plain chroma upsampling.\n"
"A JPEG with restart markers on MCU-row-aligned segments (see add_restarts) is decoded from\n"
"the window's segments only.");

static PyObject *decode_window(PyObject *self, PyObject *args) {
    Py_buffer data;
    int y0, y1, x0, x1, denom, fast;
    if (!PyArg_ParseTuple(args, "y*iiiiip", &data, &y0, &y1, &x0, &x1, &denom, &fast))
        return NULL;
    const unsigned char *buf = (const unsigned char *)data.buf;
    size_t len = (size_t)data.len;
    tiled_t t;
    unsigned char *cut = NULL;
    int oy = 0, ox = 0;
    size_t cut_len = 0;
    if (denom >= 1 && denom <= 8 && parse_tiled(buf, len, &t))
        cut_len = cut_tiles(buf, len, &t, (y0 < 0 ? 0 : y0) * denom, y1 * denom,
                            (x0 < 0 ? 0 : x0) * denom, x1 * denom, &cut, &oy, &ox);
    PyObject *res;
    if (cut_len) {  /* MCU sizes are multiples of 8, so the cut's origin scales exactly */
        oy /= denom;
        ox /= denom;
        res = decode_buffer(cut, cut_len, y0 - oy, y1 - oy, x0 - ox, x1 - ox, denom, fast);
        free(cut);
        if (res) {
            PyObject *shifted = Py_BuildValue(
                "(Oiiii)", PyTuple_GET_ITEM(res, 0),
                (int)PyLong_AsLong(PyTuple_GET_ITEM(res, 1)) + oy,
                (int)PyLong_AsLong(PyTuple_GET_ITEM(res, 2)) + ox,
                (int)PyLong_AsLong(PyTuple_GET_ITEM(res, 3)),
                (int)PyLong_AsLong(PyTuple_GET_ITEM(res, 4)));
            Py_DECREF(res);
            res = shifted;
        }
    } else {
        res = decode_buffer(buf, len, y0, y1, x0, x1, denom, fast);
    }
    PyBuffer_Release(&data);
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
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jpegwindow",
    "Window JPEG decoding and restart-marker re-coding with libjpeg-turbo.", -1, methods,
};

PyMODINIT_FUNC PyInit__jpegwindow(void) { return PyModule_Create(&module); }
