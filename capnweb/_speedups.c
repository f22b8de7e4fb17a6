/* The codec's tree walks in C: an optional accelerator for capnweb/_codec.py.
 *
 * Each walk handles the common nodes itself (plain scalars, plain dicts and lists) and hands
 * every other node to the pure-Python method that would have handled it (bigints, nan, bytes,
 * dates, errors, capabilities, special forms, every error and limit), so the results and
 * error messages are those of _codec.py. The depth rules are the Python code's, node for node.
 *
 * _codec.setup() passes the Python side in once; until then (or after enable(False)) every
 * entry point calls its pure-Python counterpart.
 *
 * Also here: WebSocket framing for capnweb/transports/_ws.py (ws_frame, ws_frames), which
 * keeps its pure-Python forms for when this module is not built.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#ifndef CAPNWEB_SOURCE_HASH
#define CAPNWEB_SOURCE_HASH ""
#endif

#define MAX_SAFE 9007199254740991LL /* 2**53 - 1 */

/* -- state passed in by setup() (strong references, kept for the process's lifetime) */

static int enabled = 0;
static Py_ssize_t send_depth = 256;

static PyObject *py_encode, *py_decode, *py_dumps, *py_loads, *py_encode_text; /* pure */
static PyObject *dumps_fallback;                              /* text for what orjson refuses */
static PyObject *orjson_dumps, *orjson_loads, *orjson_decode_error; /* NULL without orjson */
static PyObject *encoder_cls, *enc_value_py, *enc_seq_py, *wire_key;
static PyObject *make_decoder, *dec_value_py, *dec_special_py, *dec_seq_py, *too_deep;
static PyObject *default_limits, *proto_keys;
static Py_ssize_t default_max_depth, default_max_size;

static PyObject *str_max_depth, *str_max_message_size, *str_fresh;
static PyObject *str_value, *str_exporter, *str_expr, *str_importer, *str_limits, *str_text,
    *str_message;

/* -- helpers */

/* func(self, v, depth) */
static PyObject *
call_at(PyObject *func, PyObject *self, PyObject *v, Py_ssize_t depth)
{
    PyObject *d = PyLong_FromSsize_t(depth);
    if (d == NULL) {
        return NULL;
    }
    PyObject *args[3] = {self, v, d};
    PyObject *r = PyObject_Vectorcall(func, args, 3, NULL);
    Py_DECREF(d);
    return r;
}

/* func(self, *args, **kwargs) for vectorcall arguments. */
static PyObject *
call_method_py(PyObject *func, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    Py_ssize_t total = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject **call = PyMem_Malloc((total + 1) * sizeof(PyObject *));
    if (call == NULL) {
        return PyErr_NoMemory();
    }
    call[0] = self;
    for (Py_ssize_t i = 0; i < total; i++) {
        call[i + 1] = args[i];
    }
    PyObject *r = PyObject_Vectorcall(func, call, nargs + 1, kwnames);
    PyMem_Free(call);
    return r;
}

/* An exact int within +/-(2**53 - 1). */
static inline int
safe_int(PyObject *v)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (PyUnstable_Long_IsCompact((PyLongObject *)v)) {
        return 1;
    }
#else
    Py_ssize_t size = Py_SIZE(v);
    if (size >= -1 && size <= 1) {
        return 1;
    }
#endif
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    return !overflow && x >= -MAX_SAFE && x <= MAX_SAFE;
}

/* A positive Py_ssize_t from an exact int (capped), or -1 for anything else. */
static Py_ssize_t
limit_value(PyObject *v)
{
    if (v == NULL || !PyLong_CheckExact(v)) {
        return -1;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow > 0 || x > PY_SSIZE_T_MAX) {
        return PY_SSIZE_T_MAX;
    }
    if (overflow < 0 || x < 0) {
        return -1;
    }
    return (Py_ssize_t)x;
}

/* Arguments of a Python-style signature; -1 (no exception set) when they do not fit it, and the
 * caller then lets the pure-Python function raise the TypeError. */
static int
parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **names,
           Py_ssize_t npositional, Py_ssize_t nnames, Py_ssize_t nrequired, PyObject **out)
{
    for (Py_ssize_t i = 0; i < nnames; i++) {
        out[i] = NULL;
    }
    if (nargs > npositional) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
    }
    if (kwnames != NULL) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t j = 0; j < nkw; j++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, j);
            Py_ssize_t found = -1;
            for (Py_ssize_t i = 0; i < nnames && found < 0; i++) {
                if (name == names[i]) {
                    found = i;
                }
            }
            for (Py_ssize_t i = 0; i < nnames && found < 0; i++) {
                int eq = PyUnicode_Compare(name, names[i]);
                if (eq == -1 && PyErr_Occurred()) {
                    PyErr_Clear();
                    return -1;
                }
                if (eq == 0) {
                    found = i;
                }
            }
            if (found < 0 || out[found] != NULL) {
                return -1;
            }
            out[found] = args[nargs + j];
        }
    }
    for (Py_ssize_t i = 0; i < nrequired; i++) {
        if (out[i] == NULL) {
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Encoding: Python value -> expression (mirrors _Encoder.value/seq/obj)
 */

typedef struct {
    PyObject *encoder;  /* owned; made on first need */
    PyObject *exporter; /* borrowed */
} Enc;

static PyObject *
enc_fallback(Enc *st, PyObject *func, PyObject *v, Py_ssize_t depth)
{
    if (st->encoder == NULL) {
        st->encoder = PyObject_CallOneArg(encoder_cls, st->exporter);
        if (st->encoder == NULL) {
            return NULL;
        }
    }
    return call_at(func, st->encoder, v, depth);
}

/* What the Python fast paths leave as it is. */
static inline int
enc_plain(PyObject *x)
{
    PyTypeObject *t = Py_TYPE(x);
    if (t == &PyUnicode_Type || x == Py_None || t == &PyBool_Type) {
        return 1;
    }
    if (t == &PyLong_Type) {
        return safe_int(x);
    }
    if (t == &PyFloat_Type) {
        return isfinite(PyFloat_AS_DOUBLE(x));
    }
    return 0;
}

static PyObject *enc_value(Enc *st, PyObject *v, Py_ssize_t depth);

/* _Encoder.seq: a new list of the encoded items of an exact list or tuple. */
static PyObject *
enc_seq(Enc *st, PyObject *v, Py_ssize_t d)
{
    if (d >= send_depth) {
        return enc_fallback(st, enc_seq_py, v, d);
    }
    int is_list = PyList_CheckExact(v);
    Py_ssize_t n = Py_SIZE(v);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t i = 0;
    for (;; i++) {
        PyObject *x, *y;
        if (is_list) {
            if (i >= PyList_GET_SIZE(v)) { /* a callback may have changed it, as in Python */
                break;
            }
            x = PyList_GET_ITEM(v, i);
        }
        else {
            if (i >= n) {
                break;
            }
            x = PyTuple_GET_ITEM(v, i);
        }
        if (enc_plain(x)) {
            y = Py_NewRef(x);
        }
        else {
            Py_INCREF(x);
            y = enc_value(st, x, d);
            Py_DECREF(x);
            if (y == NULL) {
                Py_DECREF(out);
                return NULL;
            }
        }
        if (i < n) {
            PyList_SET_ITEM(out, i, y);
        }
        else {
            int r = PyList_Append(out, y);
            Py_DECREF(y);
            if (r < 0) {
                Py_DECREF(out);
                return NULL;
            }
        }
    }
    if (i < n) {
        Py_SET_SIZE(out, i); /* the list shrank while it was encoded */
    }
    return out;
}

/* _Encoder.obj for an exact dict: the dict itself when nothing in it changes. */
static PyObject *
enc_obj(Enc *st, PyObject *v, Py_ssize_t depth)
{
    Py_ssize_t pos = 0;
    PyObject *k, *x;
    if (depth + 1 < send_depth) {
        int plain = 1;
        while (PyDict_Next(v, &pos, &k, &x)) {
            if (!PyUnicode_CheckExact(k) || !enc_plain(x)) {
                plain = 0;
                break;
            }
        }
        if (plain) {
            return Py_NewRef(v);
        }
    }
    Py_ssize_t n = PyDict_GET_SIZE(v);
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    pos = 0;
    while (PyDict_Next(v, &pos, &k, &x)) {
        PyObject *key, *y;
        Py_INCREF(x);
        if (PyUnicode_CheckExact(k)) {
            key = Py_NewRef(k);
        }
        else {
            key = PyObject_CallOneArg(wire_key, k);
            if (key == NULL) {
                Py_DECREF(x);
                goto error;
            }
        }
        y = depth + 1 < send_depth && enc_plain(x) ? Py_NewRef(x) : enc_value(st, x, depth + 1);
        Py_DECREF(x);
        if (y == NULL) {
            Py_DECREF(key);
            goto error;
        }
        int r = PyDict_SetItem(out, key, y);
        Py_DECREF(key);
        Py_DECREF(y);
        if (r < 0) {
            goto error;
        }
        if (PyDict_GET_SIZE(v) != n) {
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            goto error;
        }
    }
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

/* _Encoder.value */
static PyObject *
enc_value(Enc *st, PyObject *v, Py_ssize_t depth)
{
    if (depth >= send_depth) {
        return enc_fallback(st, enc_value_py, v, depth); /* raises */
    }
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyUnicode_Type || v == Py_None || t == &PyBool_Type) {
        return Py_NewRef(v);
    }
    if (t == &PyLong_Type) {
        if (safe_int(v)) {
            return Py_NewRef(v);
        }
    }
    else if (t == &PyFloat_Type) {
        if (isfinite(PyFloat_AS_DOUBLE(v))) {
            return Py_NewRef(v);
        }
    }
    /* (no recursion guard: depth < send_depth bounds the nesting of these calls) */
    else if (t == &PyList_Type || t == &PyTuple_Type) {
        PyObject *inner = enc_seq(st, v, depth + 1);
        if (inner == NULL) {
            return NULL;
        }
        PyObject *wrapped = PyList_New(1);
        if (wrapped == NULL) {
            Py_DECREF(inner);
            return NULL;
        }
        PyList_SET_ITEM(wrapped, 0, inner);
        return wrapped;
    }
    else if (t == &PyDict_Type) {
        return enc_obj(st, v, depth);
    }
    return enc_fallback(st, enc_value_py, v, depth);
}

/* encode(value, exporter=None) */
static PyObject *
sp_encode(PyObject *module, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *a[2];
    PyObject *names[2] = {str_value, str_exporter};
    if (!enabled || parse_args(args, nargs, kwnames, names, 2, 2, 1, a) < 0) {
        return PyObject_Vectorcall(py_encode, args, nargsf, kwnames);
    }
    Enc st = {NULL, a[1] != NULL ? a[1] : Py_None};
    PyObject *r = enc_value(&st, a[0], 0);
    Py_XDECREF(st.encoder);
    return r;
}

/* _Encoder.value(self, v, depth), installed on the class by _codec */
static PyObject *
sp_encoder_value(PyObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t depth = -1;
    if (nargs == 2 && kwnames == NULL && PyLong_CheckExact(args[1])) {
        depth = PyLong_AsSsize_t(args[1]);
        if (depth == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
    }
    if (depth < 0) { /* let the Python method deal with odd arguments */
        return call_method_py(enc_value_py, self, args, nargs, kwnames);
    }
    Enc st = {Py_NewRef(self), Py_None};
    PyObject *r = enc_value(&st, args[0], depth);
    Py_XDECREF(st.encoder);
    return r;
}

/* ------------------------------------------------------------------------------------------
 * Decoding: expression -> Python value (mirrors _Decoder.value/obj/seq)
 */

typedef struct {
    PyObject *decoder;  /* owned; made on first need */
    PyObject *importer; /* borrowed, as are the two below */
    PyObject *limits;
    PyObject *fresh_arg;
    Py_ssize_t max_depth;
    int fresh;
} Dec;

static PyObject *
dec_fallback(Dec *st, PyObject *func, PyObject *e, Py_ssize_t depth)
{
    if (st->decoder == NULL) {
        PyObject *args[3] = {st->importer, st->limits, st->fresh_arg};
        st->decoder = PyObject_Vectorcall(make_decoder, args, 3, NULL);
        if (st->decoder == NULL) {
            return NULL;
        }
    }
    return call_at(func, st->decoder, e, depth);
}

/* What the Python fast paths leave as it is. */
static inline int
dec_plain(PyObject *x)
{
    PyTypeObject *t = Py_TYPE(x);
    if (t == &PyUnicode_Type || x == Py_None || t == &PyBool_Type || t == &PyFloat_Type) {
        return 1;
    }
    return t == &PyLong_Type && safe_int(x);
}

static PyObject *dec_value(Dec *st, PyObject *e, Py_ssize_t depth);

/* _Decoder.seq for an exact list: a new list of the decoded items, or, for a fresh tree, the
 * list itself with its items decoded in place. */
static PyObject *
dec_seq(Dec *st, PyObject *items, Py_ssize_t d)
{
    if (d >= st->max_depth) {
        return dec_fallback(st, dec_seq_py, items, d);
    }
    Py_ssize_t n = PyList_GET_SIZE(items);
    PyObject *out = st->fresh ? Py_NewRef(items) : PyList_New(n);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t i = 0;
    for (; i < PyList_GET_SIZE(items); i++) { /* a callback may change the list, as in Python */
        PyObject *x = PyList_GET_ITEM(items, i), *y;
        if (dec_plain(x)) {
            if (st->fresh) {
                continue;
            }
            y = Py_NewRef(x);
        }
        else {
            Py_INCREF(x);
            y = dec_value(st, x, d);
            Py_DECREF(x);
            if (y == NULL) {
                Py_DECREF(out);
                return NULL;
            }
        }
        if (st->fresh) {
            if (i >= PyList_GET_SIZE(items)) {
                Py_DECREF(y);
                break;
            }
            if (y == x) {
                Py_DECREF(y);
            }
            else {
                PyList_SetItem(items, i, y); /* steals y; cannot fail at a valid index */
            }
        }
        else if (i < n) {
            PyList_SET_ITEM(out, i, y);
        }
        else {
            int r = PyList_Append(out, y);
            Py_DECREF(y);
            if (r < 0) {
                Py_DECREF(out);
                return NULL;
            }
        }
    }
    if (!st->fresh && i < n) {
        Py_SET_SIZE(out, i);
    }
    return out;
}

/* Deletes the Object.prototype keys from a dict. */
static int
strip_proto_keys(PyObject *d)
{
    PyObject *found = NULL, *k, *x;
    Py_ssize_t pos = 0;
    while (PyDict_Next(d, &pos, &k, &x)) {
        int hit = PySet_Contains(proto_keys, k);
        if (hit < 0) {
            Py_XDECREF(found);
            return -1;
        }
        if (hit) {
            if (found == NULL && (found = PyList_New(0)) == NULL) {
                return -1;
            }
            if (PyList_Append(found, k) < 0) {
                Py_DECREF(found);
                return -1;
            }
        }
    }
    if (found == NULL) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(found); i++) {
        if (PyDict_DelItem(d, PyList_GET_ITEM(found, i)) < 0) {
            Py_DECREF(found);
            return -1;
        }
    }
    Py_DECREF(found);
    return 0;
}

/* _Decoder.obj for an exact dict: a new dict of the decoded values, or, for a fresh tree, the
 * dict itself with its values decoded in place; without the Object.prototype keys either way
 * (their values are still decoded first, as in Python). */
static PyObject *
dec_obj(Dec *st, PyObject *e, Py_ssize_t depth)
{
    Py_ssize_t pos = 0, n = PyDict_GET_SIZE(e);
    PyObject *k, *x;
    int shallow = depth + 1 < st->max_depth, proto = 0;
    PyObject *out = st->fresh ? Py_NewRef(e) : PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    while (PyDict_Next(e, &pos, &k, &x)) {
        int hit = PySet_Contains(proto_keys, k);
        if (hit < 0) {
            goto error;
        }
        proto |= hit;
        if (shallow && dec_plain(x)) {
            if (!st->fresh && !hit && PyDict_SetItem(out, k, x) < 0) {
                goto error;
            }
            continue;
        }
        Py_INCREF(k);
        Py_INCREF(x);
        PyObject *y = dec_value(st, x, depth + 1);
        Py_DECREF(x);
        int r = 0;
        if (y == NULL) {
            r = -1;
        }
        else if (st->fresh) {
            if (y != x && !hit) { /* a prototype key goes below anyway */
                r = PyDict_SetItem(e, k, y); /* replaces the value: the dict keeps its layout */
            }
        }
        else if (!hit) {
            r = PyDict_SetItem(out, k, y);
        }
        Py_DECREF(k);
        Py_XDECREF(y);
        if (r < 0) {
            goto error;
        }
        if (PyDict_GET_SIZE(e) != n) {
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            goto error;
        }
    }
    if (st->fresh && proto && strip_proto_keys(e) < 0) {
        goto error;
    }
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

/* _Decoder.value */
static PyObject *
dec_value(Dec *st, PyObject *e, Py_ssize_t depth)
{
    if (depth >= st->max_depth) {
        return dec_fallback(st, dec_value_py, e, depth); /* raises */
    }
    PyTypeObject *t = Py_TYPE(e);
    if (t == &PyUnicode_Type || e == Py_None || t == &PyBool_Type || t == &PyFloat_Type) {
        return Py_NewRef(e);
    }
    if (t == &PyLong_Type) {
        if (safe_int(e)) {
            return Py_NewRef(e);
        }
    }
    else if (t == &PyDict_Type) {
        if (Py_EnterRecursiveCall(" while decoding a value")) {
            return NULL;
        }
        PyObject *r = dec_obj(st, e, depth);
        Py_LeaveRecursiveCall();
        return r;
    }
    else if (t == &PyList_Type) {
        PyObject *inner = PyList_GET_SIZE(e) == 1 ? PyList_GET_ITEM(e, 0) : NULL;
        if (inner == NULL || !PyList_CheckExact(inner)) {
            return dec_fallback(st, dec_special_py, e, depth); /* a special form, or an error */
        }
        if (Py_EnterRecursiveCall(" while decoding a value")) {
            return NULL;
        }
        Py_INCREF(inner);
        PyObject *r = dec_seq(st, inner, depth + 1);
        Py_DECREF(inner);
        Py_LeaveRecursiveCall();
        return r;
    }
    return dec_fallback(st, dec_value_py, e, depth);
}

/* decode(expr, importer=None, limits=DEFAULT_LIMITS, *, fresh=False) */
static PyObject *
sp_decode(PyObject *module, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *a[4];
    PyObject *names[4] = {str_expr, str_importer, str_limits, str_fresh};
    if (!enabled || parse_args(args, nargs, kwnames, names, 3, 4, 1, a) < 0) {
        return PyObject_Vectorcall(py_decode, args, nargsf, kwnames);
    }
    Dec st = {NULL, a[1] != NULL ? a[1] : Py_None, a[2] != NULL ? a[2] : default_limits,
              a[3] != NULL ? a[3] : Py_False, default_max_depth, 0};
    if (st.limits != default_limits) {
        PyObject *m = PyObject_GetAttr(st.limits, str_max_depth);
        st.max_depth = limit_value(m);
        Py_XDECREF(m);
        if (st.max_depth < 0) { /* odd limits: the Python decoder says what is wrong */
            PyErr_Clear();
            return PyObject_Vectorcall(py_decode, args, nargsf, kwnames);
        }
    }
    st.fresh = PyObject_IsTrue(st.fresh_arg);
    if (st.fresh < 0) {
        return NULL;
    }
    PyObject *r = dec_value(&st, a[0], 0);
    Py_XDECREF(st.decoder);
    if (r == NULL && PyErr_ExceptionMatches(PyExc_RecursionError)) {
        /* as decode() in Python: the depth limit that the recursion limit stood for */
        PyErr_Clear();
        PyObject *exc = PyObject_CallOneArg(too_deep, st.limits);
        if (exc != NULL) {
            PyException_SetCause(exc, NULL); /* raise ... from None */
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
    }
    return r;
}

/* _Decoder.value(self, e, depth), installed on the class by _codec */
static PyObject *
sp_decoder_value(PyObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t depth = -1, max_depth = -1;
    int fresh = -1;
    if (nargs == 2 && kwnames == NULL && PyLong_CheckExact(args[1])) {
        depth = PyLong_AsSsize_t(args[1]);
        PyObject *m = PyObject_GetAttr(self, str_max_depth);
        max_depth = limit_value(m);
        Py_XDECREF(m);
        PyObject *f = PyObject_GetAttr(self, str_fresh);
        fresh = f == NULL ? -1 : PyObject_IsTrue(f);
        Py_XDECREF(f);
        if (PyErr_Occurred()) {
            PyErr_Clear();
        }
    }
    if (depth < 0 || max_depth < 0 || fresh < 0) { /* odd arguments: the Python method */
        return call_method_py(dec_value_py, self, args, nargs, kwnames);
    }
    Dec st = {Py_NewRef(self), Py_None, Py_None, Py_None, max_depth, fresh};
    PyObject *r = dec_value(&st, args[0], depth);
    Py_XDECREF(st.decoder);
    return r;
}

/* ------------------------------------------------------------------------------------------
 * JSON text
 */

/* dumps(message): orjson's UTF-8 as str; what orjson refuses goes to the Python fallback. */
static PyObject *
sp_dumps(PyObject *module, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *a[1];
    PyObject *names[1] = {str_message};
    if (!enabled || orjson_dumps == NULL || parse_args(args, nargs, kwnames, names, 1, 1, 1, a) < 0) {
        return PyObject_Vectorcall(py_dumps, args, nargsf, kwnames);
    }
    PyObject *data = PyObject_CallOneArg(orjson_dumps, a[0]);
    if (data == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
            return NULL;
        }
        PyErr_Clear();
        return PyObject_CallOneArg(dumps_fallback, a[0]);
    }
    if (!PyBytes_CheckExact(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_TypeError, "orjson.dumps did not return bytes");
        return NULL;
    }
    PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), NULL);
    Py_DECREF(data);
    return text;
}

/* loads(text, limits=DEFAULT_LIMITS): orjson on a str or bytes clearly within the size limit;
 * everything else (and whatever orjson refuses) goes to the Python loads. */
static PyObject *
sp_loads(PyObject *module, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *a[2];
    PyObject *names[2] = {str_text, str_limits};
    if (!enabled || orjson_loads == NULL || parse_args(args, nargs, kwnames, names, 2, 2, 1, a) < 0) {
        return PyObject_Vectorcall(py_loads, args, nargsf, kwnames);
    }
    PyObject *text = a[0], *limits = a[1] != NULL ? a[1] : default_limits;
    Py_ssize_t units; /* an upper bound of the UTF-16 length */
    if (PyUnicode_CheckExact(text)) {
        units = PyUnicode_GET_LENGTH(text) * 2;
    }
    else if (PyBytes_CheckExact(text)) {
        units = PyBytes_GET_SIZE(text); /* UTF-8 never has fewer bytes than UTF-16 units */
    }
    else {
        return PyObject_Vectorcall(py_loads, args, nargsf, kwnames);
    }
    Py_ssize_t limit = default_max_size;
    if (limits != default_limits) {
        PyObject *m = PyObject_GetAttr(limits, str_max_message_size);
        limit = limit_value(m);
        Py_XDECREF(m);
        PyErr_Clear();
    }
    if (units > limit) {
        return PyObject_Vectorcall(py_loads, args, nargsf, kwnames);
    }
    PyObject *r = PyObject_CallOneArg(orjson_loads, text);
    if (r == NULL && PyErr_ExceptionMatches(orjson_decode_error)) {
        PyErr_Clear(); /* lone surrogates, huge integers, invalid text: Python's loads decides */
        return PyObject_Vectorcall(py_loads, args, nargsf, kwnames);
    }
    return r;
}

/* ------------------------------------------------------------------------------------------
 * encode_text: the text of encode(value) written as the value is walked, without the tree.
 *
 * The text is orjson's for the same tree (its string escapes, number spellings and separators);
 * where orjson refuses a tree (lone surrogates, deep nesting) it is still written this way, so
 * some numbers are spelled otherwise than by the stdlib encoder dumps() then uses (0.00001 for
 * 1e-05). Lone surrogates are escaped on their own, as JSON.stringify and dumps() do.
 */

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    int ascii; /* nothing but ASCII written so far */
    Enc enc;
} Writer;

/* The buffer of the last call, kept for the next one (up to SCRATCH_KEPT bytes). */
#define SCRATCH_KEPT (4 << 20)
static char *scratch = NULL;
static Py_ssize_t scratch_cap = 0;
static int scratch_busy = 0;

static int
w_reserve(Writer *w, Py_ssize_t extra)
{
    if (w->cap - w->len >= extra) {
        return 0;
    }
    Py_ssize_t cap = w->cap;
    while (cap - w->len < extra) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *buf = PyMem_Realloc(w->buf, cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    w->buf = buf;
    w->cap = cap;
    return 0;
}

static inline int
w_put(Writer *w, const char *text, Py_ssize_t n)
{
    if (w_reserve(w, n) < 0) {
        return -1;
    }
    memcpy(w->buf + w->len, text, n);
    w->len += n;
    return 0;
}

static inline int
w_char(Writer *w, char c)
{
    if (w->len == w->cap && w_reserve(w, 1) < 0) {
        return -1;
    }
    w->buf[w->len++] = c;
    return 0;
}

static const char hex_digits[] = "0123456789abcdef";

/* Whether an ASCII character is written escaped. */
static const unsigned char escaped[128] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
};
#define needs_escape(c) (escaped[(c)])

static char *
put_escape(char *p, Py_UCS4 c)
{
    *p++ = '\\';
    switch (c) {
    case '"': *p++ = '"'; return p;
    case '\\': *p++ = '\\'; return p;
    case '\b': *p++ = 'b'; return p;
    case '\t': *p++ = 't'; return p;
    case '\n': *p++ = 'n'; return p;
    case '\f': *p++ = 'f'; return p;
    case '\r': *p++ = 'r'; return p;
    }
    *p++ = 'u';
    *p++ = hex_digits[(c >> 12) & 0xF];
    *p++ = hex_digits[(c >> 8) & 0xF];
    *p++ = hex_digits[(c >> 4) & 0xF];
    *p++ = hex_digits[c & 0xF];
    return p;
}

/* A JSON string for a str (or a subclass's text): UTF-8, escapes as orjson and JSON.stringify. */
static int
w_str(Writer *w, PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (PyUnicode_IS_ASCII(s)) { /* the usual case: copied as it is checked */
        const Py_UCS1 *c = data;
        if (w_reserve(w, n + 2) < 0) {
            return -1;
        }
        char *p = w->buf + w->len;
        *p++ = '"';
        Py_ssize_t i = 0;
        for (; i < n && !needs_escape(c[i]); i++) {
            p[i] = (char)c[i];
        }
        if (i == n) {
            p[n] = '"';
            w->len += n + 2;
            return 0;
        }
    }
    if (w_char(w, '"') < 0) {
        return -1;
    }
    const Py_ssize_t chunk = 1024;
    for (Py_ssize_t start = 0; start < n; start += chunk) {
        Py_ssize_t end = start + chunk < n ? start + chunk : n;
        if (w_reserve(w, (end - start) * 6) < 0) {
            return -1;
        }
        char *p = w->buf + w->len;
        for (Py_ssize_t i = start; i < end; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c < 0x80) {
                if (needs_escape(c)) {
                    p = put_escape(p, c);
                }
                else {
                    *p++ = (char)c;
                }
                continue;
            }
            w->ascii = 0;
            if (c < 0x800) {
                *p++ = (char)(0xC0 | (c >> 6));
                *p++ = (char)(0x80 | (c & 0x3F));
            }
            else if (c >= 0xD800 && c <= 0xDFFF) {
                p = put_escape(p, c); /* a lone surrogate: UTF-8 cannot carry it */
            }
            else if (c < 0x10000) {
                *p++ = (char)(0xE0 | (c >> 12));
                *p++ = (char)(0x80 | ((c >> 6) & 0x3F));
                *p++ = (char)(0x80 | (c & 0x3F));
            }
            else {
                *p++ = (char)(0xF0 | (c >> 18));
                *p++ = (char)(0x80 | ((c >> 12) & 0x3F));
                *p++ = (char)(0x80 | ((c >> 6) & 0x3F));
                *p++ = (char)(0x80 | (c & 0x3F));
            }
        }
        w->len = p - w->buf;
    }
    return w_char(w, '"');
}

static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static int
w_long(Writer *w, long long x)
{
    if (w_reserve(w, 21) < 0) {
        return -1;
    }
    char *p = w->buf + w->len;
    unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
    if (x < 0) {
        *p++ = '-';
    }
    int n = 1;
    for (unsigned long long t = u; t >= 10; t /= 10) {
        n++;
    }
    char *end = p + n;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--end = digit_pairs[d + 1];
        *--end = digit_pairs[d];
    }
    if (u >= 10) {
        *--end = digit_pairs[u * 2 + 1];
        *--end = digit_pairs[u * 2];
    }
    else {
        *--end = (char)('0' + u);
    }
    w->len = (p + n) - w->buf;
    return 0;
}

/* An exact int written if it is within +/-(2**53 - 1): 1 written, 0 not, -1 error. */
static inline int
w_safe_int(Writer *w, PyObject *v)
{
    long long x;
#if PY_VERSION_HEX >= 0x030C0000
    if (PyUnstable_Long_IsCompact((PyLongObject *)v)) {
        x = PyUnstable_Long_CompactValue((PyLongObject *)v);
    }
#else
    Py_ssize_t size = Py_SIZE(v);
    if (size >= -1 && size <= 1) {
        x = size * (long long)((PyLongObject *)v)->ob_digit[0];
    }
#endif
    else {
        int overflow;
        x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || x < -MAX_SAFE || x > MAX_SAFE) {
            return 0;
        }
    }
    return w_long(w, x) < 0 ? -1 : 1;
}

/* Any int, as its decimal digits. */
static int
w_int(Writer *w, PyObject *v)
{
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (!overflow) {
        if (x == -1 && PyErr_Occurred()) {
            return -1;
        }
        return w_long(w, x);
    }
    PyObject *digits = PyLong_Type.tp_repr(v);
    if (digits == NULL) {
        return -1;
    }
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(digits, &n);
    int r = text == NULL ? -1 : w_put(w, text, n);
    Py_DECREF(digits);
    return r;
}

/* A finite double as orjson writes it: the shortest digits that read back the same, in fixed
 * notation from 1e-5 up to 1e16 and with an exponent without leading zeros elsewhere. */
static int
w_double(Writer *w, double x)
{
    if (!isfinite(x)) {
        return w_put(w, "null", 4); /* as orjson (only trees from the fallbacks get here) */
    }
    /* A number with a few decimals (1.5, 42.0, -0.25): N / 10**d for the fewest decimals d
     * that read back as x. Within this range only one N can (10**-d is more than twice the
     * spacing of doubles), so these are the shortest digits, as orjson writes them. */
    double ax = fabs(x);
    if (ax >= 1e-5 && ax < 1e9) {
        static const double tens[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
        for (int d = 0; d <= 6; d++) {
            double scaled = x * tens[d];
            double n = nearbyint(scaled);
            if (n / tens[d] == x) {
                long long digits = (long long)n;
                char tmp[40];
                int len = 0;
                if (digits < 0) {
                    tmp[len++] = '-';
                    digits = -digits;
                }
                char rev[24];
                int m = 0;
                do {
                    rev[m++] = (char)('0' + digits % 10);
                    digits /= 10;
                } while (digits);
                while (m <= d) { /* leading zeros for 0.0dd */
                    rev[m++] = '0';
                }
                for (int j = m - 1; j >= 0; j--) {
                    tmp[len++] = rev[j];
                    if (j == d && d > 0) {
                        tmp[len++] = '.';
                    }
                }
                if (d == 0) {
                    tmp[len++] = '.';
                    tmp[len++] = '0';
                }
                return w_put(w, tmp, len);
            }
        }
    }
    char *r = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (r == NULL) {
        return -1;
    }
    int ret;
    char *e = strchr(r, 'e');
    if (e == NULL) {
        ret = w_put(w, r, strlen(r));
    }
    else {
        int exp = atoi(e + 1);
        char out[64];
        int n = 0;
        const char *m = r;
        if (*m == '-') {
            out[n++] = *m++;
        }
        if (exp == -5) { /* d.ddd e-05 -> 0.0000dddd */
            memcpy(out + n, "0.0000", 6);
            n += 6;
            for (; m < e; m++) {
                if (*m != '.') {
                    out[n++] = *m;
                }
            }
        }
        else {
            memcpy(out + n, m, e - m);
            n += (int)(e - m);
            n += snprintf(out + n, sizeof(out) - n, "e%c%d", exp > 0 ? '+' : '-', abs(exp));
        }
        ret = w_put(w, out, n);
    }
    PyMem_Free(r);
    return ret;
}

static int w_tree(Writer *w, PyObject *t);

/* What dumps() writes for a value the writer does not know: orjson's text, else the stdlib's. */
static int
w_other(Writer *w, PyObject *t)
{
    PyObject *text = NULL, *data = PyObject_CallOneArg(orjson_dumps, t);
    if (data == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
            return -1;
        }
        PyErr_Clear();
        text = PyObject_CallOneArg(dumps_fallback, t);
        if (text == NULL) {
            return -1;
        }
        Py_ssize_t n;
        const char *utf8 = PyUnicode_AsUTF8AndSize(text, &n);
        int r = utf8 == NULL ? -1 : w_put(w, utf8, n);
        if (!PyUnicode_IS_ASCII(text)) {
            w->ascii = 0;
        }
        Py_DECREF(text);
        return r;
    }
    int r = -1;
    if (PyBytes_Check(data)) {
        const char *bytes = PyBytes_AS_STRING(data);
        Py_ssize_t n = PyBytes_GET_SIZE(data);
        for (Py_ssize_t i = 0; i < n && w->ascii; i++) {
            if ((unsigned char)bytes[i] >= 0x80) {
                w->ascii = 0;
            }
        }
        r = w_put(w, bytes, n);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "orjson.dumps did not return bytes");
    }
    Py_DECREF(data);
    return r;
}

/* A JSON tree (what the Python encoder returns), as dumps() writes it. */
static int
w_tree(Writer *w, PyObject *t)
{
    if (t == Py_None) {
        return w_put(w, "null", 4);
    }
    if (t == Py_True) {
        return w_put(w, "true", 4);
    }
    if (t == Py_False) {
        return w_put(w, "false", 5);
    }
    if (PyUnicode_Check(t)) {
        return w_str(w, t);
    }
    if (PyLong_Check(t)) {
        return w_int(w, t);
    }
    if (PyFloat_CheckExact(t)) {
        return w_double(w, PyFloat_AS_DOUBLE(t));
    }
    int r = 0;
    if (PyList_Check(t) || PyTuple_CheckExact(t)) {
        if (Py_EnterRecursiveCall(" while writing JSON")) {
            return -1;
        }
        r = w_char(w, '[');
        for (Py_ssize_t i = 0; r == 0 && i < Py_SIZE(t); i++) {
            PyObject *x = PySequence_Fast_GET_ITEM(t, i);
            Py_INCREF(x);
            r = (i > 0 ? w_char(w, ',') : 0) || w_tree(w, x);
            Py_DECREF(x);
        }
        r = r || w_char(w, ']');
        Py_LeaveRecursiveCall();
        return r ? -1 : 0;
    }
    if (PyDict_Check(t)) {
        Py_ssize_t pos = 0;
        PyObject *k, *x;
        while (PyDict_Next(t, &pos, &k, &x)) {
            if (!PyUnicode_Check(k)) {
                return w_other(w, t); /* non-string keys: orjson refuses, the stdlib writes */
            }
        }
        if (Py_EnterRecursiveCall(" while writing JSON")) {
            return -1;
        }
        r = w_char(w, '{');
        pos = 0;
        Py_ssize_t i = 0;
        while (r == 0 && PyDict_Next(t, &pos, &k, &x)) {
            Py_INCREF(k);
            Py_INCREF(x);
            r = (i++ > 0 ? w_char(w, ',') : 0) || w_str(w, k) || w_char(w, ':') || w_tree(w, x);
            Py_DECREF(k);
            Py_DECREF(x);
        }
        r = r || w_char(w, '}');
        Py_LeaveRecursiveCall();
        return r ? -1 : 0;
    }
    return w_other(w, t);
}

/* The tree a Python method of the encoder returns for v, written. */
static int
w_fallback(Writer *w, PyObject *func, PyObject *v, Py_ssize_t depth)
{
    PyObject *t = enc_fallback(&w->enc, func, v, depth);
    if (t == NULL) {
        return -1;
    }
    int r = w_tree(w, t);
    Py_DECREF(t);
    return r;
}

/* What the Python fast paths leave as it is, written: 1 if v was one, 0 if not, -1 error. */
static inline int
w_plain(Writer *w, PyObject *v)
{
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyUnicode_Type) {
        return w_str(w, v) < 0 ? -1 : 1;
    }
    if (t == &PyLong_Type) {
        return w_safe_int(w, v);
    }
    if (v == Py_None) {
        return w_put(w, "null", 4) < 0 ? -1 : 1;
    }
    if (t == &PyBool_Type) {
        return (v == Py_True ? w_put(w, "true", 4) : w_put(w, "false", 5)) < 0 ? -1 : 1;
    }
    if (t == &PyFloat_Type && isfinite(PyFloat_AS_DOUBLE(v))) {
        return w_double(w, PyFloat_AS_DOUBLE(v)) < 0 ? -1 : 1;
    }
    return 0;
}

static int w_value(Writer *w, PyObject *v, Py_ssize_t depth);

/* The items of an exact list or tuple, as _Encoder.seq encodes them. */
static int
w_seq(Writer *w, PyObject *v, Py_ssize_t d)
{
    if (d >= send_depth) {
        return w_fallback(w, enc_seq_py, v, d);
    }
    if (w_char(w, '[') < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < Py_SIZE(v); i++) { /* a callback may change a list, as in Python */
        PyObject *x = PySequence_Fast_GET_ITEM(v, i);
        if (i > 0 && w_char(w, ',') < 0) {
            return -1;
        }
        int r = w_plain(w, x);
        if (r == 0) {
            Py_INCREF(x);
            r = w_value(w, x, d) < 0 ? -1 : 1;
            Py_DECREF(x);
        }
        if (r < 0) {
            return -1;
        }
    }
    return w_char(w, ']');
}

/* An exact dict, as _Encoder.obj encodes it. */
static int
w_obj(Writer *w, PyObject *v, Py_ssize_t depth)
{
    Py_ssize_t pos = 0, i = 0, n = PyDict_GET_SIZE(v);
    PyObject *k, *x;
    int shallow = depth + 1 < send_depth;
    if (w_char(w, '{') < 0) {
        return -1;
    }
    while (PyDict_Next(v, &pos, &k, &x)) {
        if (i++ > 0 && w_char(w, ',') < 0) {
            return -1;
        }
        int failed;
        if (PyUnicode_CheckExact(k)) {
            if (w_str(w, k) < 0 || w_char(w, ':') < 0) {
                return -1;
            }
            int r = shallow ? w_plain(w, x) : 0;
            if (r < 0) {
                return -1;
            }
            if (r > 0) {
                continue; /* no callback ran: the dict cannot have changed */
            }
            Py_INCREF(x);
            failed = w_value(w, x, depth + 1) < 0;
            Py_DECREF(x);
        }
        else {
            /* Keys that convert to the same text are all written: a reader keeps the last
               value at the first one's place, as the dict Python builds does. */
            Py_INCREF(x);
            PyObject *key = PyObject_CallOneArg(wire_key, k);
            failed = key == NULL || w_str(w, key) < 0 || w_char(w, ':') < 0 ||
                     w_value(w, x, depth + 1) < 0;
            Py_XDECREF(key);
            Py_DECREF(x);
        }
        if (failed) {
            return -1;
        }
        if (PyDict_GET_SIZE(v) != n) {
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            return -1;
        }
    }
    return w_char(w, '}');
}

/* _Encoder.value, written */
static int
w_value(Writer *w, PyObject *v, Py_ssize_t depth)
{
    if (depth >= send_depth) {
        return w_fallback(w, enc_value_py, v, depth); /* raises */
    }
    int r = w_plain(w, v);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    /* (no recursion guard: the depth limit bounds the nesting, as in enc_value) */
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyList_Type || t == &PyTuple_Type) {
        return w_char(w, '[') || w_seq(w, v, depth + 1) || w_char(w, ']') ? -1 : 0;
    }
    if (t == &PyDict_Type) {
        return w_obj(w, v, depth);
    }
    return w_fallback(w, enc_value_py, v, depth);
}

/* encode_text(value, exporter=None) */
static PyObject *
sp_encode_text(PyObject *module, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *a[2];
    PyObject *names[2] = {str_value, str_exporter};
    if (!enabled || orjson_dumps == NULL ||
        parse_args(args, nargs, kwnames, names, 2, 2, 1, a) < 0) {
        return PyObject_Vectorcall(py_encode_text, args, nargsf, kwnames);
    }
    Writer w = {NULL, 0, 0, 1, {NULL, a[1] != NULL ? a[1] : Py_None}};
    int own_scratch = !scratch_busy && scratch != NULL; /* not when called back into */
    if (own_scratch) {
        scratch_busy = 1;
        w.buf = scratch;
        w.cap = scratch_cap;
    }
    else if ((w.buf = PyMem_Malloc(256)) == NULL) {
        return PyErr_NoMemory();
    }
    else {
        w.cap = 256;
    }
    PyObject *text = NULL;
    if (w_value(&w, a[0], 0) == 0) {
        if (w.ascii) {
            text = PyUnicode_New(w.len, 127);
            if (text != NULL) {
                memcpy(PyUnicode_1BYTE_DATA(text), w.buf, w.len);
            }
        }
        else {
            text = PyUnicode_DecodeUTF8(w.buf, w.len, NULL);
        }
    }
    if (own_scratch || (scratch == NULL && !scratch_busy)) {
        /* keep the buffer for the next call, unless it grew large */
        scratch = w.cap <= SCRATCH_KEPT ? w.buf : NULL;
        scratch_cap = scratch != NULL ? w.cap : 0;
        scratch_busy = 0;
        if (scratch == NULL) {
            PyMem_Free(w.buf);
        }
    }
    else {
        PyMem_Free(w.buf);
    }
    Py_XDECREF(w.enc.encoder);
    return text;
}

/* ------------------------------------------------------------------------------------------
 * Setup
 */

static PyMethodDef encoder_value_def = {
    "value", (PyCFunction)(void (*)(void))sp_encoder_value, METH_FASTCALL | METH_KEYWORDS,
    "Encode ``v`` at ``depth`` (compiled; the pure-Python walk is its fallback)."};
static PyMethodDef decoder_value_def = {
    "value", (PyCFunction)(void (*)(void))sp_decoder_value, METH_FASTCALL | METH_KEYWORDS,
    "Decode ``e`` at ``depth`` (compiled; the pure-Python walk is its fallback)."};

static int
take(PyObject *ns, const char *name, PyObject **slot, int optional)
{
    PyObject *v = PyDict_GetItemString(ns, name); /* borrowed */
    if (v == NULL || (optional && v == Py_None)) {
        if (optional) {
            Py_CLEAR(*slot);
            return 0;
        }
        PyErr_Format(PyExc_KeyError, "setup() needs %s", name);
        return -1;
    }
    Py_INCREF(v);
    Py_XSETREF(*slot, v);
    return 0;
}

/* setup(ns): take the Python side; returns the (encoder, decoder) value methods. */
static PyObject *
sp_setup(PyObject *module, PyObject *ns)
{
    if (!PyDict_Check(ns)) {
        PyErr_SetString(PyExc_TypeError, "setup() takes a dict");
        return NULL;
    }
    PyObject *depth = NULL;
    if (take(ns, "encode", &py_encode, 0) || take(ns, "decode", &py_decode, 0) ||
        take(ns, "dumps", &py_dumps, 0) || take(ns, "loads", &py_loads, 0) ||
        take(ns, "encode_text", &py_encode_text, 0) ||
        take(ns, "dumps_fallback", &dumps_fallback, 0) ||
        take(ns, "orjson_dumps", &orjson_dumps, 1) || take(ns, "orjson_loads", &orjson_loads, 1) ||
        take(ns, "orjson_decode_error", &orjson_decode_error, 1) ||
        take(ns, "encoder", &encoder_cls, 0) || take(ns, "encoder_value", &enc_value_py, 0) ||
        take(ns, "encoder_seq", &enc_seq_py, 0) || take(ns, "wire_key", &wire_key, 0) ||
        take(ns, "make_decoder", &make_decoder, 0) ||
        take(ns, "decoder_value", &dec_value_py, 0) ||
        take(ns, "decoder_special", &dec_special_py, 0) ||
        take(ns, "decoder_seq", &dec_seq_py, 0) || take(ns, "too_deep", &too_deep, 0) ||
        take(ns, "default_limits", &default_limits, 0) ||
        take(ns, "proto_keys", &proto_keys, 0) || take(ns, "send_depth", &depth, 0)) {
        Py_XDECREF(depth);
        return NULL;
    }
    send_depth = limit_value(depth);
    Py_DECREF(depth);
    PyObject *decoder_cls = PyDict_GetItemString(ns, "decoder");
    if (send_depth < 0 || !PyType_Check(encoder_cls) || decoder_cls == NULL ||
        !PyType_Check(decoder_cls) || !PyAnySet_Check(proto_keys) ||
        (orjson_loads != NULL && orjson_decode_error == NULL)) {
        PyErr_SetString(PyExc_TypeError, "setup(): unexpected values");
        return NULL;
    }
    PyObject *m = PyObject_GetAttr(default_limits, str_max_depth);
    default_max_depth = limit_value(m);
    Py_XDECREF(m);
    m = PyObject_GetAttr(default_limits, str_max_message_size);
    default_max_size = limit_value(m);
    Py_XDECREF(m);
    if (default_max_depth < 0 || default_max_size < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "setup(): unexpected default limits");
        return NULL;
    }
    PyObject *enc = PyDescr_NewMethod((PyTypeObject *)encoder_cls, &encoder_value_def);
    PyObject *dec = enc == NULL ? NULL : PyDescr_NewMethod((PyTypeObject *)decoder_cls,
                                                            &decoder_value_def);
    if (dec == NULL) {
        Py_XDECREF(enc);
        return NULL;
    }
    enabled = 1;
    PyObject *r = PyTuple_Pack(2, enc, dec);
    Py_DECREF(enc);
    Py_DECREF(dec);
    return r;
}

/* enable(on): use the compiled walks (after setup) or the pure-Python entry points. */
static PyObject *
sp_enable(PyObject *module, PyObject *on)
{
    int flag = PyObject_IsTrue(on);
    if (flag < 0) {
        return NULL;
    }
    if (flag && py_encode == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup() has not been called");
        return NULL;
    }
    enabled = flag;
    Py_RETURN_NONE;
}

/* -- WebSocket framing (RFC 6455 section 5.2) */

/* dst = src XOR the repeated 4-byte key, n bytes (dst and src may not overlap) */
static void
mask_copy(unsigned char *dst, const unsigned char *src, Py_ssize_t n, const unsigned char key[4])
{
    uint64_t k8;
    unsigned char pattern[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    memcpy(&k8, pattern, 8);
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k8;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ key[i & 3];
    }
}

static int
check_nargs(Py_ssize_t nargs, Py_ssize_t want, const char *usage)
{
    if (nargs == want) {
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "%s takes %zd arguments, not %zd", usage, want, nargs);
    return -1;
}

/* ws_frame(opcode, data, key): one final frame carrying data; key is the 32-bit masking key
   of a client's frame, or -1 for a server's unmasked frame. */
static PyObject *
sp_ws_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs(nargs, 3, "ws_frame(opcode, data, key)") < 0) {
        return NULL;
    }
    long opcode = PyLong_AsLong(args[0]);
    long long key = PyLong_AsLongLong(args[2]);
    if ((opcode == -1 || key == -1) && PyErr_Occurred()) {
        return NULL;
    }
    if (opcode < 0 || opcode > 15 || key < -1 || key > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_ValueError, "ws_frame(): opcode or key out of range");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t n = view.len;
    int masked = key >= 0;
    Py_ssize_t head = n < 126 ? 2 : (n < 65536 ? 4 : 10);
    PyObject *out = PyBytes_FromStringAndSize(NULL, head + (masked ? 4 : 0) + n);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
    unsigned char mask_bit = masked ? 0x80 : 0;
    p[0] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        p[1] = (unsigned char)(mask_bit | n);
    }
    else if (n < 65536) {
        p[1] = mask_bit | 126;
        p[2] = (unsigned char)(n >> 8);
        p[3] = (unsigned char)n;
    }
    else {
        p[1] = mask_bit | 127;
        for (int i = 0; i < 8; i++) {
            p[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        }
    }
    p += head;
    if (masked) {
        unsigned char k[4] = {(unsigned char)(key >> 24), (unsigned char)(key >> 16),
                              (unsigned char)(key >> 8), (unsigned char)key};
        memcpy(p, k, 4);
        mask_copy(p + 4, (const unsigned char *)view.buf, n, k);
    }
    else {
        memcpy(p, view.buf, n);
    }
    PyBuffer_Release(&view);
    return out;
}

/* ws_frames(buf, masked, max_size): the complete ordinary frames at the start of buf, as
   ([(opcode, payload), ...], the position after them). Ordinary: final text, binary, close,
   ping or pong frames, no reserved bits, masked exactly when ``masked``, control frames of at
   most 125 bytes, at most max_size bytes. The first other frame (unfinished, fragmented, or
   one to refuse) ends the scan; the Python parser takes it from there. */
static PyObject *
sp_ws_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs(nargs, 3, "ws_frames(buf, masked, max_size)") < 0) {
        return NULL;
    }
    int masked = PyObject_IsTrue(args[1]);
    int overflow = 0;
    long long max_size = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    if (masked < 0 || (max_size == -1 && PyErr_Occurred())) {
        return NULL;
    }
    if (overflow > 0) {
        max_size = LLONG_MAX;
    }
    else if (overflow < 0 || max_size < 0) {
        max_size = 0; /* every frame with a payload goes to the Python parser, which refuses it */
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)view.buf;
    Py_ssize_t end = view.len, pos = 0;
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        goto fail;
    }
    while (end - pos >= 2) {
        unsigned char b0 = buf[pos], b1 = buf[pos + 1];
        int opcode = b0 & 0x0F;
        int control = opcode >= 8;
        if ((b0 & 0xF0) != 0x80 || ((b1 & 0x80) != 0) != masked) {
            break; /* fragmented, reserved bits, or masking the Python parser refuses */
        }
        if (!(opcode == 1 || opcode == 2 || opcode == 8 || opcode == 9 || opcode == 10)) {
            break;
        }
        uint64_t length = b1 & 0x7F;
        Py_ssize_t head = 2;
        if (length == 126) {
            if (end - pos < 4) {
                break;
            }
            length = ((uint64_t)buf[pos + 2] << 8) | buf[pos + 3];
            head = 4;
        }
        else if (length == 127) {
            if (end - pos < 10) {
                break;
            }
            length = 0;
            for (int i = 0; i < 8; i++) {
                length = (length << 8) | buf[pos + 2 + i];
            }
            head = 10;
        }
        if ((control && length > 125) || length > (uint64_t)max_size ||
            length > (uint64_t)(end - pos)) {
            break;
        }
        Py_ssize_t start = pos + head + (masked ? 4 : 0);
        if (start + (Py_ssize_t)length > end) {
            break;
        }
        PyObject *payload = PyBytes_FromStringAndSize(masked ? NULL : (const char *)buf + start,
                                                      (Py_ssize_t)length);
        if (payload == NULL) {
            goto fail;
        }
        if (masked) {
            mask_copy((unsigned char *)PyBytes_AS_STRING(payload), buf + start,
                      (Py_ssize_t)length, buf + start - 4);
        }
        PyObject *item = Py_BuildValue("(iN)", opcode, payload);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
        pos = start + (Py_ssize_t)length;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nn)", out, pos);
fail:
    Py_XDECREF(out);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"encode", (PyCFunction)(void (*)(void))sp_encode, METH_FASTCALL | METH_KEYWORDS,
     "encode(value, exporter=None): see capnweb._codec.encode."},
    {"decode", (PyCFunction)(void (*)(void))sp_decode, METH_FASTCALL | METH_KEYWORDS,
     "decode(expr, importer=None, limits=DEFAULT_LIMITS, *, fresh=False): see "
     "capnweb._codec.decode."},
    {"encode_text", (PyCFunction)(void (*)(void))sp_encode_text, METH_FASTCALL | METH_KEYWORDS,
     "encode_text(value, exporter=None): see capnweb._codec.encode_text."},
    {"dumps", (PyCFunction)(void (*)(void))sp_dumps, METH_FASTCALL | METH_KEYWORDS,
     "dumps(message): see capnweb._codec.dumps."},
    {"loads", (PyCFunction)(void (*)(void))sp_loads, METH_FASTCALL | METH_KEYWORDS,
     "loads(text, limits=DEFAULT_LIMITS): see capnweb._codec.loads."},
    {"setup", sp_setup, METH_O, "setup(ns): take the Python side of the codec."},
    {"enable", sp_enable, METH_O, "enable(on): use the compiled walks, or not."},
    {"ws_frame", (PyCFunction)(void (*)(void))sp_ws_frame, METH_FASTCALL,
     "ws_frame(opcode, data, key): one final WebSocket frame (key -1: unmasked)."},
    {"ws_frames", (PyCFunction)(void (*)(void))sp_ws_frames, METH_FASTCALL,
     "ws_frames(buf, masked, max_size): the ordinary complete frames at the start of buf."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "capnweb._speedups",
    "The codec's tree walks in C (optional; capnweb._codec falls back to pure Python).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } strings[] = {
        {&str_max_depth, "max_depth"}, {&str_max_message_size, "max_message_size"},
        {&str_fresh, "fresh"},         {&str_value, "value"},
        {&str_exporter, "exporter"},   {&str_expr, "expr"},
        {&str_importer, "importer"},   {&str_limits, "limits"},
        {&str_text, "text"},           {&str_message, "message"},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (*strings[i].slot == NULL &&
            (*strings[i].slot = PyUnicode_InternFromString(strings[i].text)) == NULL) {
            return NULL;
        }
    }
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddStringConstant(m, "SOURCE_HASH", CAPNWEB_SOURCE_HASH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
