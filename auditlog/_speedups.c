/*
 * auditlog._speedups: the per-record SHA-256 loops of the write and verify paths, in C.
 *
 * Every function here is the exact equivalent of a pure-Python definition in
 * auditlog/_fast.py, which is used when this module is not built; tests/test_fast_paths.py
 * holds the two together on random inputs. Nothing here parses the file format: the callers
 * pass plain buffers, lengths and lists, and every length is checked against its buffer before
 * a byte is read, so hostile segment bytes can at worst raise ValueError.
 *
 * Hashing uses OpenSSL's low-level SHA-256 functions on a context on the stack: the cost per
 * message is then the hashing itself, not the context set-up that each hashlib call pays.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>

#define HASH_BYTES 32
#define SALT_BYTES 16

/* SHA-256 of a || b into out (HASH_BYTES); 0 on success.
 *
 * The low-level SHA-256 interface is deprecated in OpenSSL 3 in favour of EVP, but it is the
 * same implementation (with the same CPU acceleration) without EVP's per-message context
 * set-up, which costs more than hashing a 65-byte tree node (measured: 0.16 against 0.26 µs a
 * node). It allocates nothing and does not fail on valid arguments. */
static int hash2(const unsigned char *a, size_t na, const unsigned char *b, size_t nb,
                 unsigned char *out)
{
    SHA256_CTX ctx;
    if (SHA256_Init(&ctx) != 1)
        return -1;
    if (na && SHA256_Update(&ctx, a, na) != 1)
        return -1;
    if (nb && SHA256_Update(&ctx, b, nb) != 1)
        return -1;
    if (SHA256_Final(out, &ctx) != 1)
        return -1;
    return 0;
}

static PyObject *hash_failed(void)
{
    PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
    return NULL;
}

PyDoc_STRVAR(frame_digests_doc,
             "frame_digests(data, start, lengths, /)\n--\n\n"
             "The SHA-256 digests, joined, of the consecutive slices of data that begin at\n"
             "start and have the given lengths. Raises ValueError if a slice leaves data.");

static PyObject *frame_digests(PyObject *module, PyObject *args)
{
    Py_buffer data;
    Py_ssize_t start;
    PyObject *lengths_arg;
    if (!PyArg_ParseTuple(args, "y*nO:frame_digests", &data, &start, &lengths_arg))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t *lengths = NULL;
    PyObject *lengths_seq = PySequence_Fast(lengths_arg, "lengths must be a sequence of ints");
    if (lengths_seq == NULL)
        goto done;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(lengths_seq);
    if (start < 0 || start > data.len) {
        PyErr_SetString(PyExc_ValueError, "start lies outside the data");
        goto done;
    }
    lengths = PyMem_New(Py_ssize_t, count > 0 ? count : 1);
    if (lengths == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t position = start;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t length = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(lengths_seq, i));
        if (length == -1 && PyErr_Occurred())
            goto done;
        if (length < 0 || length > data.len - position) {
            PyErr_Format(PyExc_ValueError, "frame %zd runs past the end of the data", i);
            goto done;
        }
        lengths[i] = length;
        position += length;
    }
    if (count > PY_SSIZE_T_MAX / HASH_BYTES) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, count * HASH_BYTES);
    if (result == NULL)
        goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *bytes = (const unsigned char *)data.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    position = start;
    for (Py_ssize_t i = 0; i < count && !failed; i++) {
        failed = hash2(bytes + position, (size_t)lengths[i], NULL, 0, out + i * HASH_BYTES);
        position += lengths[i];
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_CLEAR(result);
        hash_failed();
    }
done:
    PyMem_Free(lengths);
    Py_XDECREF(lengths_seq);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(digests_doc,
             "digests(items, /)\n--\n\n"
             "The SHA-256 digests, joined, of each bytes-like item of a sequence.");

static PyObject *digests(PyObject *module, PyObject *items_arg)
{
    PyObject *items = PySequence_Fast(items_arg, "items must be a sequence of bytes");
    if (items == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    PyObject *result = NULL;
    if (count > PY_SSIZE_T_MAX / HASH_BYTES) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, count * HASH_BYTES);
    if (result == NULL)
        goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_buffer item;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(items, i), &item, PyBUF_SIMPLE) < 0) {
            Py_CLEAR(result);
            break;
        }
        int failed = hash2(item.buf, (size_t)item.len, NULL, 0, out + i * HASH_BYTES);
        PyBuffer_Release(&item);
        if (failed) {
            Py_CLEAR(result);
            hash_failed();
            break;
        }
    }
done:
    Py_DECREF(items);
    return result;
}

PyDoc_STRVAR(parents_doc,
             "parents(nodes, /)\n--\n\n"
             "Merkle tree parents of 32-byte nodes laid end to end, taken in pairs:\n"
             "SHA-256(0x01 || left || right) of each pair, joined. The length of nodes must be\n"
             "a multiple of 64.");

static PyObject *parents(PyObject *module, PyObject *arg)
{
    Py_buffer nodes;
    if (PyObject_GetBuffer(arg, &nodes, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL;
    if (nodes.len % (2 * HASH_BYTES)) {
        PyErr_SetString(PyExc_ValueError, "nodes must be whole pairs of 32-byte hashes");
        goto done;
    }
    Py_ssize_t pairs = nodes.len / (2 * HASH_BYTES);
    result = PyBytes_FromStringAndSize(NULL, pairs * HASH_BYTES);
    if (result == NULL)
        goto done;
    static const unsigned char prefix = 0x01;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *in = (const unsigned char *)nodes.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < pairs && !failed; i++)
        failed = hash2(&prefix, 1, in + 2 * i * HASH_BYTES, 2 * HASH_BYTES, out + i * HASH_BYTES);
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_CLEAR(result);
        hash_failed();
    }
done:
    PyBuffer_Release(&nodes);
    return result;
}

PyDoc_STRVAR(leaf_hashes_doc,
             "leaf_hashes(salts, records, /)\n--\n\n"
             "SHA-256(0x00 || salt || record) of each record, as a list of 32-byte bytes; salts\n"
             "holds one 16-byte salt per record, laid end to end.");

static PyObject *leaf_hashes(PyObject *module, PyObject *args)
{
    Py_buffer salts;
    PyObject *records_arg;
    if (!PyArg_ParseTuple(args, "y*O:leaf_hashes", &salts, &records_arg))
        return NULL;
    PyObject *result = NULL;
    PyObject *records = PySequence_Fast(records_arg, "records must be a sequence of bytes");
    if (records == NULL)
        goto done;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(records);
    if (count > PY_SSIZE_T_MAX / SALT_BYTES || salts.len != count * SALT_BYTES) {
        PyErr_SetString(PyExc_ValueError, "salts must hold one 16-byte salt per record");
        goto done;
    }
    result = PyList_New(count);
    if (result == NULL)
        goto done;
    static const unsigned char prefix = 0x00;
    const unsigned char *salt = (const unsigned char *)salts.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned char digest[HASH_BYTES];
        unsigned char input[1 + SALT_BYTES];
        Py_buffer record;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(records, i), &record, PyBUF_SIMPLE) < 0) {
            Py_CLEAR(result);
            break;
        }
        input[0] = prefix;
        memcpy(input + 1, salt + i * SALT_BYTES, SALT_BYTES);
        int failed = hash2(input, sizeof input, record.buf, (size_t)record.len, digest);
        PyBuffer_Release(&record);
        if (failed) {
            Py_CLEAR(result);
            hash_failed();
            break;
        }
        PyObject *leaf = PyBytes_FromStringAndSize((const char *)digest, HASH_BYTES);
        if (leaf == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, leaf);
    }
done:
    Py_XDECREF(records);
    PyBuffer_Release(&salts);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"frame_digests", frame_digests, METH_VARARGS, frame_digests_doc},
    {"digests", digests, METH_O, digests_doc},
    {"parents", parents, METH_O, parents_doc},
    {"leaf_hashes", leaf_hashes, METH_VARARGS, leaf_hashes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "auditlog._speedups",
    "The per-record SHA-256 loops of auditlog's write and verify paths, in C.",
    -1,
    speedups_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
