/* Decode only a window of a JPEG with libjpeg-turbo's partial decoding API.
 *
 * The training crop covers a fraction of the image; rows above the window are skipped
 * (entropy-decoded only, no IDCT or colour conversion), columns outside it are cropped at iMCU
 * granularity (jpeg_crop_scanline), and decoding stops after the window's last row. None of
 * the Python JPEG wheels expose this, hence this small module; iis_pipe.images falls back to
 * a whole-image decode when it is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <setjmp.h>
#include <stdio.h>
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

PyDoc_STRVAR(decode_window_doc,
"decode_window(data, y0, y1, x0, x1, denom, fast) -> (pixels, top, left, height, width)\n\n"
"Rows [y0, y1) and at least columns [x0, x1) of the JPEG decoded to RGB at scale 1/denom\n"
"(denom in 1, 2, 4, 8; coordinates in scaled pixels, clipped to the image). ``pixels`` is\n"
"``height * width * 3`` bytes, row-major; ``left <= x0`` because columns are cut on iMCU\n"
"boundaries. ``fast``: libjpeg-turbo's fast integer IDCT and plain chroma upsampling.");

static PyObject *decode_window(PyObject *self, PyObject *args) {
    Py_buffer data;
    int y0, y1, x0, x1, denom, fast;
    if (!PyArg_ParseTuple(args, "y*iiiiip", &data, &y0, &y1, &x0, &x1, &denom, &fast))
        return NULL;

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
        PyBuffer_Release(&data);
        Py_XDECREF(pixels);
        PyErr_Format(PyExc_ValueError, "JPEG window decode failed: %s", err.message);
        return NULL;
    }
    jpeg_create_decompress(&cinfo);
    created = 1;
    jpeg_mem_src(&cinfo, (const unsigned char *)data.buf, (unsigned long)data.len);
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
        PyBuffer_Release(&data);
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
        PyBuffer_Release(&data);
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
    PyBuffer_Release(&data);
    return Py_BuildValue("(Niiii)", pixels, y0, (int)left, y1 - y0, (int)width);
}

static PyMethodDef methods[] = {
    {"decode_window", decode_window, METH_VARARGS, decode_window_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jpegwindow",
    "Partial (window) JPEG decoding with libjpeg-turbo.", -1, methods,
};

PyMODINIT_FUNC PyInit__jpegwindow(void) { return PyModule_Create(&module); }
