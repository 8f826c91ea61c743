/* otpy.dist._etf_c: a C decoder for the common external term shapes.
 *
 * An optional accelerator for otpy/dist/_etf.py (which stays the reference and the
 * fallback). It decodes small and 32-bit integers, new floats, UTF-8 atoms that
 * are already known, tuples, lists (proper and improper), strings, binaries,
 * maps, pids already seen and newer references itself, and hands every other
 * tag -- and every case it does not take the short way -- to the Python
 * handler for that tag (`_etf._DECODERS`), so both produce the same terms and
 * the same errors.  `tests/test_etf_c.py` checks that, differentially, with
 * hypothesis.
 *
 * `setup()` receives the Python objects this module works with (caches,
 * types, the error class, the handlers) once, when otpy.dist._etf is imported.
 *
 * Hostile input: decoding is linear in the input (a list's tail that is a list
 * continues it in the same loop), and nothing is allocated ahead of the bytes
 * that fill it beyond PREALLOC slots per level: a tuple or list that announces
 * more elements grows as they are decoded.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

static struct {
    PyObject *atom_values;  /* dict: UTF-8 atom name -> decoded value */
    PyObject *raw_atoms;    /* dict: UTF-8 atom name -> Atom */
    PyObject *pids;         /* dict: NEW_PID_EXT bytes -> Pid */
    PyTypeObject *ref_type;
    PyObject *improper_type;
    PyObject *mapkey_type;
    PyObject *error;        /* ETFDecodeError */
    PyObject *struct_error;
    PyObject *decoders;     /* list of 256 Python handlers (data, pos, depth, ctx) */
    PyObject *ctx;          /* the default decoding context */
    PyObject *exact_keys;   /* _exact_keys(map) -> the map with MapKey keys */
    PyObject *put_exact;    /* _put_exact(map, key, value): add, or raise on a duplicate */
    long default_depth;
    PyObject *s_node, *s_ids, *s_creation, *s_ext, *s_hash, *s_items, *s_tail;
    PyObject *struct_key;   /* Atom('__struct__'), once set_struct_hook() was called */
    PyObject *struct_hook;  /* map -> value (otpy.dist._structs.from_struct) */
} S;

static int ready = 0;

/* Slots allocated ahead of the elements that fill them (a tuple or list that
 * announces more grows while it is decoded). */
#define PREALLOC 64

static PyObject *
truncated(void)
{
    PyErr_SetString(S.error, "truncated external term");
    return NULL;
}

static PyObject *
too_deep(Py_ssize_t pos)
{
    PyErr_Format(S.error, "term nested deeper than max_depth (at offset %zd)", pos);
    return NULL;
}

static inline uint32_t
u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The Python handler for the tag at `pos`; its result's end offset goes to *end. */
static PyObject *
fallback(PyObject *data, const unsigned char *buf, Py_ssize_t pos, int depth, Py_ssize_t *end)
{
    PyObject *handler = PyList_GET_ITEM(S.decoders, buf[pos]);
    PyObject *args[4];
    PyObject *res, *term;
    args[0] = data;
    args[1] = PyLong_FromSsize_t(pos + 1);
    if (args[1] == NULL)
        return NULL;
    args[2] = PyLong_FromLong(depth);
    if (args[2] == NULL) {
        Py_DECREF(args[1]);
        return NULL;
    }
    args[3] = S.ctx;
    res = PyObject_Vectorcall(handler, args, 4, NULL);
    Py_DECREF(args[1]);
    Py_DECREF(args[2]);
    if (res == NULL)
        return NULL;
    if (!PyTuple_CheckExact(res) || PyTuple_GET_SIZE(res) != 2) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_SystemError, "an ETF handler returned no (term, end) pair");
        return NULL;
    }
    *end = PyLong_AsSsize_t(PyTuple_GET_ITEM(res, 1));
    if (*end == -1 && PyErr_Occurred()) {
        Py_DECREF(res);
        return NULL;
    }
    term = PyTuple_GET_ITEM(res, 0);
    Py_INCREF(term);
    Py_DECREF(res);
    return term;
}

/* What `cache` holds under the bytes buf[start:stop], as a new reference;
 * NULL without an error when it holds nothing there. */
static PyObject *
cached(PyObject *cache, const unsigned char *buf, Py_ssize_t start, Py_ssize_t stop)
{
    PyObject *key = PyBytes_FromStringAndSize((const char *)buf + start, stop - start);
    PyObject *value;
    if (key == NULL)
        return NULL;
    value = PyDict_GetItemWithError(cache, key);
    Py_DECREF(key);
    Py_XINCREF(value);
    return value;
}

static PyObject *dec(PyObject *data, const unsigned char *buf, Py_ssize_t len, Py_ssize_t pos,
                     int depth, Py_ssize_t *end);

/* Append `n` terms from `pos` to the list `seq`. Returns 0, or -1 on error. */
static int
append_items(PyObject *data, const unsigned char *buf, Py_ssize_t len, Py_ssize_t pos,
             Py_ssize_t n, int depth, PyObject *seq, Py_ssize_t *end)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        PyObject *item = dec(data, buf, len, pos, depth, &pos);
        int failed;
        if (item == NULL)
            return -1;
        failed = PyList_Append(seq, item);
        Py_DECREF(item);
        if (failed)
            return -1;
    }
    *end = pos;
    return 0;
}

/* `n` terms from `pos` into a new list (tuple when as_tuple). At most
 * PREALLOC slots are allocated before the terms that fill them are decoded. */
static PyObject *
dec_items(PyObject *data, const unsigned char *buf, Py_ssize_t len, Py_ssize_t pos,
          Py_ssize_t n, int depth, int as_tuple, Py_ssize_t *end)
{
    PyObject *seq;
    Py_ssize_t i;
    if (Py_EnterRecursiveCall(" while decoding an external term"))
        return NULL;
    if (n > PREALLOC) {
        seq = PyList_New(0);
        if (seq != NULL && append_items(data, buf, len, pos, n, depth, seq, end) < 0)
            Py_CLEAR(seq);
        Py_LeaveRecursiveCall();
        if (seq != NULL && as_tuple) {
            PyObject *tuple = PyList_AsTuple(seq);
            Py_DECREF(seq);
            return tuple;
        }
        return seq;
    }
    seq = as_tuple ? PyTuple_New(n) : PyList_New(n);
    if (seq == NULL) {
        Py_LeaveRecursiveCall();
        return NULL;
    }
    for (i = 0; i < n; i++) {
        PyObject *item = dec(data, buf, len, pos, depth, &pos);
        if (item == NULL) {
            Py_LeaveRecursiveCall();
            Py_DECREF(seq);
            return NULL;
        }
        if (as_tuple)
            PyTuple_SET_ITEM(seq, i, item);
        else
            PyList_SET_ITEM(seq, i, item);
    }
    Py_LeaveRecursiveCall();
    *end = pos;
    return seq;
}

static PyObject *
dec_list(PyObject *data, const unsigned char *buf, Py_ssize_t len, Py_ssize_t pos, int depth,
         Py_ssize_t *end)
{
    Py_ssize_t n, at;
    PyObject *items, *tail, *res;
    if (len - pos < 5)
        return truncated();
    n = u32(buf + pos + 1);
    at = pos + 5;
    if (n >= len - at) /* n elements and a tail, at least one byte each */
        return truncated();
    if (depth <= 0)
        return too_deep(at);
    depth -= 1;
    items = dec_items(data, buf, len, at, n, depth, 0, &at);
    if (items == NULL)
        return NULL;
    /* [a | [b | T]] is [a, b | T]: a tail that is a list continues this one, in
     * this loop (no nesting, no copying: linear in the input). */
    while (at < len && buf[at] == 108) { /* LIST */
        int failed;
        if (len - at < 5) {
            Py_DECREF(items);
            return truncated();
        }
        n = u32(buf + at + 1);
        at += 5;
        if (n >= len - at) {
            Py_DECREF(items);
            return truncated();
        }
        if (Py_EnterRecursiveCall(" while decoding an external term")) {
            Py_DECREF(items);
            return NULL;
        }
        failed = append_items(data, buf, len, at, n, depth, items, &at);
        Py_LeaveRecursiveCall();
        if (failed) {
            Py_DECREF(items);
            return NULL;
        }
    }
    if (at >= len) {
        Py_DECREF(items);
        return truncated();
    }
    if (buf[at] == 106) { /* NIL */
        *end = at + 1;
        return items;
    }
    if (Py_EnterRecursiveCall(" while decoding an external term")) {
        Py_DECREF(items);
        return NULL;
    }
    tail = dec(data, buf, len, at, depth, end);
    Py_LeaveRecursiveCall();
    if (tail == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    /* A STRING_EXT tail: [a | "bc"] is [a, $b, $c]. */
    if (PyList_CheckExact(tail)) {
        res = PySequence_InPlaceConcat(items, tail);
        Py_DECREF(tail);
        Py_DECREF(items);
        return res;
    }
    if (PyList_GET_SIZE(items) == 0) {
        Py_DECREF(items);
        return tail;
    }
    res = PyObject_CallFunctionObjArgs(S.improper_type, items, tail, NULL);
    Py_DECREF(items);
    Py_DECREF(tail);
    return res;
}

/* Add key => value to a map whose keys are all MapKey (Python's _put_exact). */
static int
put_exact(PyObject *result, PyObject *key, PyObject *value)
{
    PyObject *res = PyObject_CallFunctionObjArgs(S.put_exact, result, key, value, NULL);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

static PyObject *
dec_map(PyObject *data, const unsigned char *buf, Py_ssize_t len, Py_ssize_t pos, int depth,
        Py_ssize_t *end)
{
    Py_ssize_t n, at, i;
    PyObject *result;
    int exact = 0; /* keys equal for Python but not for Erlang seen: all keys wrapped */
    if (len - pos < 5)
        return truncated();
    n = u32(buf + pos + 1);
    at = pos + 5;
    if (n > (len - at) / 2) /* every pair takes at least two bytes */
        return truncated();
    result = PyDict_New();
    if (result == NULL || n == 0) {
        *end = at;
        return result;
    }
    if (depth <= 0) {
        Py_DECREF(result);
        return too_deep(at);
    }
    depth -= 1;
    if (Py_EnterRecursiveCall(" while decoding an external term")) {
        Py_DECREF(result);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        PyObject *key = dec(data, buf, len, at, depth, &at);
        PyObject *value = key ? dec(data, buf, len, at, depth, &at) : NULL;
        int failed = value == NULL;
        if (!failed && exact) {
            failed = put_exact(result, key, value) < 0;
        }
        else if (!failed) {
            Py_ssize_t size = PyDict_GET_SIZE(result);
            PyObject *had = PyDict_SetDefault(result, key, value);
            if (had == NULL && PyErr_ExceptionMatches(PyExc_TypeError)) {
                /* unhashable: a list, a map ... */
                PyObject *wrapped;
                PyErr_Clear();
                wrapped = PyObject_CallOneArg(S.mapkey_type, key);
                had = wrapped ? PyDict_SetDefault(result, wrapped, value) : NULL;
                Py_XDECREF(wrapped);
            }
            if (had == NULL)
                failed = 1;
            else if (PyDict_GET_SIZE(result) == size) {
                /* Keys equal for Python (1, 1.0, true): wrap them all (Python's
                 * _exact_keys), then go on with this pair wrapped too. */
                PyObject *wrapped = PyObject_CallOneArg(S.exact_keys, result);
                Py_DECREF(result);
                result = wrapped;
                exact = 1;
                failed = result == NULL || put_exact(result, key, value) < 0;
            }
        }
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (failed) {
            Py_LeaveRecursiveCall();
            Py_XDECREF(result);
            return NULL;
        }
    }
    Py_LeaveRecursiveCall();
    if (!exact && S.struct_hook != NULL) {
        /* A struct map: the hook rebuilds a registered class (or keeps the map). */
        PyObject *name = PyDict_GetItemWithError(result, S.struct_key); /* borrowed */
        if (name != NULL) {
            PyObject *built = PyObject_CallOneArg(S.struct_hook, result);
            Py_DECREF(result);
            if (built != NULL)
                *end = at;
            return built;
        }
        if (PyErr_Occurred()) {
            Py_DECREF(result);
            return NULL;
        }
    }
    *end = at;
    return result;
}

/* NEWER_REFERENCE_EXT with a known SMALL_ATOM_UTF8 node; NULL without an error
 * when it is not that (the Python handler then decodes it). */
static PyObject *
dec_newer_ref(const unsigned char *buf, Py_ssize_t len, Py_ssize_t pos, Py_ssize_t *end)
{
    Py_ssize_t words, at, stop, i;
    PyObject *node, *ids, *ref, *ext, *creation;
    Py_hash_t hash;
    if (len - pos < 5 || buf[pos + 3] != 119)
        return NULL;
    words = ((Py_ssize_t)buf[pos + 1] << 8) | buf[pos + 2];
    if (words < 1 || words > 5)
        return NULL;
    at = pos + 5 + buf[pos + 4];
    stop = at + 4 + 4 * words;
    if (stop > len)
        return NULL;
    node = cached(S.raw_atoms, buf, pos + 5, at);
    if (node == NULL)
        return NULL;
    ids = PyTuple_New(words);
    if (ids == NULL) {
        Py_DECREF(node);
        return NULL;
    }
    for (i = 0; i < words; i++) {
        PyObject *word = PyLong_FromUnsignedLong(u32(buf + at + 4 + 4 * i));
        if (word == NULL) {
            Py_DECREF(ids);
            Py_DECREF(node);
            return NULL;
        }
        PyTuple_SET_ITEM(ids, i, word);
    }
    hash = PyObject_Hash(ids);
    creation = PyLong_FromUnsignedLong(u32(buf + at));
    ext = PyBytes_FromStringAndSize((const char *)buf + pos, stop - pos);
    /* As Ref.__init__ does, and the encoding kept (often sent back: a call's alias). */
    ref = (hash != -1 && creation && ext) ? S.ref_type->tp_alloc(S.ref_type, 0) : NULL;
    if (ref != NULL) {
        PyObject *h = PyLong_FromSsize_t(hash);
        if (h == NULL || PyObject_SetAttr(ref, S.s_node, node) < 0
            || PyObject_SetAttr(ref, S.s_ids, ids) < 0
            || PyObject_SetAttr(ref, S.s_creation, creation) < 0
            || PyObject_SetAttr(ref, S.s_ext, ext) < 0
            || PyObject_SetAttr(ref, S.s_hash, h) < 0)
            Py_CLEAR(ref);
        Py_XDECREF(h);
    }
    Py_DECREF(node);
    Py_DECREF(ids);
    Py_XDECREF(creation);
    Py_XDECREF(ext);
    if (ref == NULL && !PyErr_Occurred())
        PyErr_NoMemory();
    *end = stop;
    return ref;
}

static PyObject *
dec(PyObject *data, const unsigned char *buf, Py_ssize_t len, Py_ssize_t pos, int depth,
    Py_ssize_t *end)
{
    Py_ssize_t n, stop;
    PyObject *value;
    if (pos >= len)
        return truncated();
    switch (buf[pos]) {
    case 97: /* SMALL_INTEGER */
        if (len - pos < 2)
            return truncated();
        *end = pos + 2;
        return PyLong_FromLong(buf[pos + 1]);
    case 98: /* INTEGER */
        if (len - pos < 5)
            return truncated();
        *end = pos + 5;
        return PyLong_FromLong((long)(int32_t)u32(buf + pos + 1));
    case 119: /* SMALL_ATOM_UTF8: known names straight from the cache */
        if (len - pos < 2 || buf[pos + 1] > len - pos - 2)
            break;
        stop = pos + 2 + buf[pos + 1];
        value = cached(S.atom_values, buf, pos + 2, stop);
        if (value != NULL)
            *end = stop;
        if (value != NULL || PyErr_Occurred())
            return value;
        break;
    case 70: { /* NEW_FLOAT */
        double d;
        uint64_t bits;
        if (len - pos < 9)
            return truncated();
        bits = ((uint64_t)u32(buf + pos + 1) << 32) | u32(buf + pos + 5);
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d)) {
            PyErr_SetString(S.error, "float is not finite");
            return NULL;
        }
        *end = pos + 9;
        return PyFloat_FromDouble(d);
    }
    case 109: /* BINARY: a str when it is UTF-8, else bytes */
        if (len - pos < 5)
            return truncated();
        n = u32(buf + pos + 1);
        if (n > len - pos - 5)
            return truncated();
        *end = pos + 5 + n;
        value = PyUnicode_DecodeUTF8((const char *)buf + pos + 5, n, NULL);
        if (value == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            value = PyBytes_FromStringAndSize((const char *)buf + pos + 5, n);
        }
        return value;
    case 104: /* SMALL_TUPLE */
        if (len - pos < 2)
            return truncated();
        n = buf[pos + 1];
        if (n == 0) {
            *end = pos + 2;
            return PyTuple_New(0);
        }
        if (n > len - pos - 2) /* every element takes at least one byte */
            return truncated();
        if (depth <= 0)
            return too_deep(pos + 2);
        return dec_items(data, buf, len, pos + 2, n, depth - 1, 1, end);
    case 105: /* LARGE_TUPLE */
        if (len - pos < 5)
            return truncated();
        n = u32(buf + pos + 1);
        if (n > len - pos - 5)
            return truncated();
        if (n == 0) {
            *end = pos + 5;
            return PyTuple_New(0);
        }
        if (depth <= 0)
            return too_deep(pos + 5);
        return dec_items(data, buf, len, pos + 5, n, depth - 1, 1, end);
    case 106: /* NIL */
        *end = pos + 1;
        return PyList_New(0);
    case 107: { /* STRING: a list of small integers */
        Py_ssize_t i;
        if (len - pos < 3)
            return truncated();
        n = ((Py_ssize_t)buf[pos + 1] << 8) | buf[pos + 2];
        if (n > len - pos - 3)
            return truncated();
        value = PyList_New(n);
        if (value == NULL)
            return NULL;
        for (i = 0; i < n; i++)
            PyList_SET_ITEM(value, i, PyLong_FromLong(buf[pos + 3 + i])); /* small: cached */
        *end = pos + 3 + n;
        return value;
    }
    case 108: /* LIST */
        return dec_list(data, buf, len, pos, depth, end);
    case 116: /* MAP */
        return dec_map(data, buf, len, pos, depth, end);
    case 88: /* NEW_PID: one already seen, by its bytes */
        if (len - pos < 3 || buf[pos + 1] != 119)
            break;
        stop = pos + 15 + buf[pos + 2];
        if (stop > len)
            break;
        value = cached(S.pids, buf, pos, stop);
        if (value != NULL)
            *end = stop;
        if (value != NULL || PyErr_Occurred())
            return value;
        break;
    case 90: /* NEWER_REFERENCE */
        value = dec_newer_ref(buf, len, pos, end);
        if (value != NULL || PyErr_Occurred())
            return value;
        break;
    default:
        break;
    }
    return fallback(data, buf, pos, depth, end);
}

static PyObject *
decode_at(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *data, *term;
    Py_ssize_t pos, end = 0, len;
    long depth;
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "otpy.dist._etf_c.setup() was not called");
        return NULL;
    }
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode_at(data, pos[, depth])");
        return NULL;
    }
    data = args[0];
    if (!PyBytes_CheckExact(data)) {
        PyErr_SetString(PyExc_TypeError, "decode_at needs bytes");
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    depth = nargs == 3 ? PyLong_AsLong(args[2]) : S.default_depth;
    if ((pos == -1 || depth == -1) && PyErr_Occurred())
        return NULL;
    len = PyBytes_GET_SIZE(data);
    if (pos < 0) {
        PyErr_SetString(PyExc_ValueError, "negative offset");
        return NULL;
    }
    if (depth > INT_MAX)
        depth = INT_MAX;
    term = dec(data, (const unsigned char *)PyBytes_AS_STRING(data), len, pos, (int)depth, &end);
    if (term == NULL) {
        /* As the pure-Python decode_at: reads past the end and deep nesting are bad data. */
        if (PyErr_ExceptionMatches(PyExc_IndexError)
            || PyErr_ExceptionMatches(S.struct_error)) {
            PyErr_Clear();
            return truncated();
        }
        if (PyErr_ExceptionMatches(PyExc_RecursionError)) {
            PyErr_Clear();
            PyErr_SetString(S.error, "term nested too deeply for the Python stack");
        }
        return NULL;
    }
    if (end > len) {
        Py_DECREF(term);
        return truncated();
    }
    {
        PyObject *e = PyLong_FromSsize_t(end);
        PyObject *res = e ? PyTuple_Pack(2, term, e) : NULL;
        Py_XDECREF(e);
        Py_DECREF(term);
        return res;
    }
}

static PyObject *
setup(PyObject *module, PyObject *args)
{
    PyObject *ref_type;
    if (ready) { /* otpy.dist._etf reloaded: take the new objects */
        ready = 0;
        Py_CLEAR(S.atom_values);
        Py_CLEAR(S.raw_atoms);
        Py_CLEAR(S.pids);
        Py_CLEAR(S.ref_type);
        Py_CLEAR(S.improper_type);
        Py_CLEAR(S.mapkey_type);
        Py_CLEAR(S.error);
        Py_CLEAR(S.struct_error);
        Py_CLEAR(S.decoders);
        Py_CLEAR(S.ctx);
        Py_CLEAR(S.exact_keys);
        Py_CLEAR(S.put_exact);
    }
    if (!PyArg_ParseTuple(args, "O!O!O!O!OOOOO!OOOl", &PyDict_Type, &S.atom_values, &PyDict_Type,
                          &S.raw_atoms, &PyDict_Type, &S.pids, &PyType_Type, &ref_type,
                          &S.improper_type, &S.mapkey_type, &S.error, &S.struct_error,
                          &PyList_Type, &S.decoders, &S.ctx, &S.exact_keys, &S.put_exact,
                          &S.default_depth))
        return NULL;
    if (PyList_GET_SIZE(S.decoders) != 256) {
        PyErr_SetString(PyExc_ValueError, "decoders must have 256 entries");
        return NULL;
    }
    S.ref_type = (PyTypeObject *)ref_type;
    Py_INCREF(S.atom_values);
    Py_INCREF(S.raw_atoms);
    Py_INCREF(S.pids);
    Py_INCREF(ref_type);
    Py_INCREF(S.improper_type);
    Py_INCREF(S.mapkey_type);
    Py_INCREF(S.error);
    Py_INCREF(S.struct_error);
    Py_INCREF(S.decoders);
    Py_INCREF(S.ctx);
    Py_INCREF(S.exact_keys);
    Py_INCREF(S.put_exact);
    if (S.s_node == NULL
        && (!(S.s_node = PyUnicode_InternFromString("node"))
        || !(S.s_ids = PyUnicode_InternFromString("ids"))
        || !(S.s_creation = PyUnicode_InternFromString("creation"))
        || !(S.s_ext = PyUnicode_InternFromString("_ext"))
        || !(S.s_hash = PyUnicode_InternFromString("_hash"))
        || !(S.s_items = PyUnicode_InternFromString("items"))
        || !(S.s_tail = PyUnicode_InternFromString("tail"))))
        return NULL;
    ready = 1;
    Py_RETURN_NONE;
}

static PyObject *
set_struct_hook(PyObject *module, PyObject *args)
{
    PyObject *key, *hook;
    if (!PyArg_ParseTuple(args, "OO", &key, &hook))
        return NULL;
    if (!PyCallable_Check(hook)) {
        PyErr_SetString(PyExc_TypeError, "the struct hook must be callable");
        return NULL;
    }
    Py_INCREF(key);
    Py_INCREF(hook);
    Py_XSETREF(S.struct_key, key);
    Py_XSETREF(S.struct_hook, hook);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"decode_at", (PyCFunction)(void (*)(void))decode_at, METH_FASTCALL,
     "decode_at(data, pos[, depth]) -> (term, end): the term whose tag is at pos."},
    {"setup", setup, METH_VARARGS, "Hand over the objects of otpy.dist._etf (once)."},
    {"set_struct_hook", set_struct_hook, METH_VARARGS,
     "set_struct_hook(key, hook): maps that have key are handed to hook(map)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "otpy.dist._etf_c",
    "A C decoder for the common external term shapes (see otpy.dist._etf).", -1, methods,
};

PyMODINIT_FUNC
PyInit__etf_c(void)
{
    return PyModule_Create(&module_def);
}
