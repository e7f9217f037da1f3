/* The Bulk page block pass of bulkrows.py in one C pass (optional accelerator; bulkrows.py keeps
 * the regular-expression road and uses it when this module is not built).
 *
 * scan(block, kinds, counted) reads `block` (any buffer) as a run of whole records of the grammar
 * bulkrows.BulkLayout.records describes, column kind by column kind (`kinds`, one byte a column):
 *
 *   'I'  "[0-9A-Za-z]++"                                   the Id (first column)
 *   'D'  "[^"]*+"                                          datetimes (any text without quotes)
 *   'C'  "[^":]*+"                                         ids, booleans, numbers, dates: no colon
 *   'T'  "[^"]*+(?:""[^"]*+)*+(?<!T\d\d:\d\d:\d\d\.\d{3}Z)"  any text not ending like a datetime
 *
 * cells joined by commas, each record ended by CRLF. Every quantifier there is possessive, so the
 * grammar is deterministic and is parsed here byte by byte without backtracking, exactly as the
 * regular expression engine runs it. Returns
 *   None                         the block is not such records (the caller takes the csv module's road)
 *   (data, records, deleted)     data = the block with every datetime cell's ending
 *                                "T..:..:..\.dddZ" rewritten to "...+0000" (what the substitution
 *                                _DATETIME_END does on a block the grammar accepts); deleted = the
 *                                records whose column `counted` is "true" (-1: none counted)
 * and raises UnicodeDecodeError (the decoder's own, so its reason is the same) when the block is
 * such records but not UTF-8. The parse runs without the GIL: the read-ahead thread goes on reading.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef struct {
    Py_ssize_t *at; /* offsets of the 'Z' of each datetime ending to rewrite */
    Py_ssize_t len, cap;
} Stamps;

static int stamps_push(Stamps *s, Py_ssize_t at) {
    if (s->len == s->cap) {
        Py_ssize_t cap = s->cap ? s->cap * 2 : 4096;
        Py_ssize_t *grown = PyMem_RawRealloc(s->at, (size_t)cap * sizeof(Py_ssize_t));
        if (grown == NULL)
            return -1;
        s->at = grown;
        s->cap = cap;
    }
    s->at[s->len++] = at;
    return 0;
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static inline int is_alnum(unsigned char c) {
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Whether the 14 bytes at p are T\d\d:\d\d:\d\d\.\d{3}Z (the caller ensures 14 bytes exist). */
static int is_stamp_end(const unsigned char *p) {
    return p[0] == 'T' && is_digit(p[1]) && is_digit(p[2]) && p[3] == ':' && is_digit(p[4]) && is_digit(p[5]) &&
           p[6] == ':' && is_digit(p[7]) && is_digit(p[8]) && p[9] == '.' && is_digit(p[10]) && is_digit(p[11]) &&
           is_digit(p[12]) && p[13] == 'Z';
}

/* Length of the valid UTF-8 sequence starting at p (*p >= 0x80), or 0 if there is none before end.
 * The ranges are those of the strict decoder (no overlong forms, no surrogates, <= U+10FFFF). */
static Py_ssize_t utf8_sequence(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    Py_ssize_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (end - p < n || p[1] < lo || p[1] > hi)
        return 0;
    for (Py_ssize_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

/* The first byte at or after p that a cell's content loop must look at: a quote, a byte >= 0x80,
 * or (with `colon`) a colon; end if none. 16 bytes at a time while 16 remain, then one by one. */
static const unsigned char *find_special(const unsigned char *p, const unsigned char *end, int colon) {
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), colons = _mm_set1_epi8(colon ? ':' : '"');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* movemask takes each byte's top bit: set for bytes >= 0x80 and for the 0xFF of a match */
        __m128i hits = _mm_or_si128(v, _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, colons)));
        int mask = _mm_movemask_epi8(hits);
        if (mask)
            return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && *p != '"' && *p < 0x80 && !(colon && *p == ':'))
        p++;
    return p;
}

enum { FORM_OK = 0, NOT_RECORDS = 1, NO_MEMORY = 2 };

/* The parse: no Python objects touched (runs without the GIL). */
static int parse(const unsigned char *data, Py_ssize_t size, const char *kinds, Py_ssize_t width,
                 Py_ssize_t counted, Py_ssize_t *records, Py_ssize_t *deleted, int *utf8_ok, Stamps *stamps) {
    const unsigned char *p = data, *end = data + size;
    if (size == 0)
        return NOT_RECORDS;
    while (p < end) {
        for (Py_ssize_t col = 0; col < width; col++) {
            if (col > 0) {
                if (p >= end || *p != ',')
                    return NOT_RECORDS;
                p++;
            }
            if (p >= end || *p != '"')
                return NOT_RECORDS;
            const unsigned char *open = p++; /* the opening quote */
            char kind = kinds[col];
            if (kind == 'I') {
                while (p < end && is_alnum(*p))
                    p++;
                if (p == open + 1)
                    return NOT_RECORDS;
            } else {
                for (;;) { /* content up to a quote ('C': or a colon, which ends the record's form) */
                    p = find_special(p, end, kind == 'C');
                    if (p >= end)
                        return NOT_RECORDS; /* no closing quote in the block */
                    if (*p >= 0x80) {
                        Py_ssize_t n = utf8_sequence(p, end);
                        if (n == 0) {
                            *utf8_ok = 0; /* go on: whether the block is records decides the road */
                            n = 1;
                        }
                        p += n; /* continuation bytes are >= 0x80: no quote, comma or colon inside */
                        continue;
                    }
                    /* a quote (or a colon, which the closing-quote test below refuses): only
                     * text cells hold doubled quotes; the others end at their first */
                    if (kind == 'T' && end - p >= 2 && p[1] == '"') {
                        p += 2;
                        continue;
                    }
                    break;
                }
                /* p is at the closing quote; content is open+1 .. p */
                if (p - (open + 1) >= 14 && is_stamp_end(p - 14)) {
                    if (kind == 'T')
                        return NOT_RECORDS; /* text ending like a datetime: not of the form */
                    if (kind == 'D' && stamps_push(stamps, (p - 1) - data) < 0)
                        return NO_MEMORY;
                }
            }
            if (p >= end || *p != '"')
                return NOT_RECORDS;
            p++;
            if (col == counted && p - open == 6 && memcmp(open, "\"true\"", 6) == 0)
                (*deleted)++;
        }
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return NOT_RECORDS;
        p += 2;
        (*records)++;
    }
    return FORM_OK;
}

static PyObject *scan(PyObject *Py_UNUSED(module), PyObject *args) {
    Py_buffer block, kinds;
    Py_ssize_t counted;
    if (!PyArg_ParseTuple(args, "y*y*n:scan", &block, &kinds, &counted))
        return NULL;
    PyObject *result = NULL;
    Stamps stamps = {NULL, 0, 0};
    Py_ssize_t records = 0, deleted = 0;
    int utf8_ok = 1, form;
    if (kinds.len == 0) {
        PyErr_SetString(PyExc_ValueError, "scan: kinds must name at least one column");
        goto done;
    }
    for (Py_ssize_t i = 0; i < kinds.len; i++) {
        char k = ((const char *)kinds.buf)[i];
        if (k != 'I' && k != 'D' && k != 'C' && k != 'T') {
            PyErr_Format(PyExc_ValueError, "scan: unknown column kind %c (one of I, D, C, T)", k);
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS;
    form = parse(block.buf, block.len, kinds.buf, kinds.len, counted, &records, &deleted, &utf8_ok, &stamps);
    Py_END_ALLOW_THREADS;
    if (form == NO_MEMORY) {
        PyErr_NoMemory();
        goto done;
    }
    if (form == NOT_RECORDS) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (!utf8_ok) { /* the decoder raises its UnicodeDecodeError; it must, since the check above failed */
        PyObject *text = PyUnicode_DecodeUTF8(block.buf, block.len, "strict");
        if (text != NULL) {
            Py_DECREF(text);
            PyErr_SetString(PyExc_SystemError, "scan: the UTF-8 check and the decoder disagree");
        }
        goto done;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, block.len + 4 * stamps.len);
    if (out == NULL)
        goto done;
    char *to = PyBytes_AS_STRING(out);
    const char *from = block.buf;
    Py_BEGIN_ALLOW_THREADS;
    Py_ssize_t done_upto = 0;
    for (Py_ssize_t i = 0; i < stamps.len; i++) { /* copy up to the Z, then +0000 in its place */
        Py_ssize_t z = stamps.at[i];
        memcpy(to, from + done_upto, (size_t)(z - done_upto));
        to += z - done_upto;
        memcpy(to, "+0000", 5);
        to += 5;
        done_upto = z + 1;
    }
    memcpy(to, from + done_upto, (size_t)(block.len - done_upto));
    Py_END_ALLOW_THREADS;
    result = Py_BuildValue("(Nnn)", out, records, deleted);
done:
    PyMem_RawFree(stamps.at);
    PyBuffer_Release(&block);
    PyBuffer_Release(&kinds);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(block, kinds, counted) -> (data, records, deleted) | None: the Bulk block pass (see bulkrows.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_bulkscan", "The Bulk page block pass in C.", -1, methods};

PyMODINIT_FUNC PyInit__bulkscan(void) { return PyModule_Create(&module); }
