/*
 * auditlog._speedups: the per-record SHA-256 loops of the write and verify paths, in C.
 *
 * Every function here is the exact equivalent of a pure-Python definition in
 * auditlog/_fast.py, which is used when this module is not built; tests/test_fast_paths.py
 * holds the two together on random inputs. Nothing here parses the file format: the callers
 * pass plain buffers, lengths and sequences, and every length is checked against its buffer
 * before a byte is read, so hostile segment bytes can at worst raise ValueError. A sequence
 * argument is first copied into a tuple that the call owns (PySequence_Tuple), so a list that
 * another thread or a finaliser changes during the call cannot free or move the items the call
 * is reading.
 *
 * Hashing goes through OpenSSL's EVP interface. The low-level SHA256_Init/Update/Final
 * functions used before are deprecated in OpenSSL 3 and bypass its providers: they ignore a
 * configuration that selects a provider (a FIPS module, say) or offers no SHA-256, which EVP
 * honours. The set-up that makes a naive EVP call per message slow is paid once where it
 * can be: SHA-256 is fetched once, when the module is loaded, and kept in the module's state
 * (with EVP_sha256() it would be looked up again at every initialisation, which nearly triples
 * the cost of a message), and each call allocates one EVP_MD_CTX and re-initialises it for
 * every message. That still does not make EVP as cheap as the low-level functions on OpenSSL
 * 3.0, whose EVP_DigestInit_ex2 frees and reallocates the provider's context at every
 * initialisation, even of the same digest, and looks for an ENGINE (3.1 and later keep the
 * context). Measured on OpenSSL 3.0.19 against the old low-level loops, EVP costs 0.025 to
 * 0.055 µs more a message (15 to 30% more for a 65-byte tree node or a salted leaf, 35 to 60%
 * more for a 110-byte frame) and 0.1 µs more a call: benchmarks/results/speedups_evp.txt. Every
 * EVP call's result is checked: a failure raises RuntimeError and never returns a digest.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#define HASH_BYTES 32
#define SALT_BYTES 16

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#define DIGEST_INIT(ctx, md) EVP_DigestInit_ex2((ctx), (md), NULL)
#else
#define DIGEST_INIT(ctx, md) EVP_DigestInit_ex((ctx), (md), NULL)
#endif

typedef struct {
    const EVP_MD *sha256; /* the digest every call uses */
    EVP_MD *fetched;      /* the same, when fetched here (OpenSSL 3) and to be freed with us */
} speedups_state;

static const EVP_MD *sha256_of(PyObject *module)
{
    return ((speedups_state *)PyModule_GetState(module))->sha256;
}

/* RuntimeError for a failed OpenSSL call, with OpenSSL's reason if it left one; clears this
 * thread's OpenSSL error queue so that no stale error reaches another user of OpenSSL. */
static PyObject *openssl_failed(void)
{
    unsigned long code = ERR_get_error();
    if (code != 0) {
        char reason[256];
        ERR_error_string_n(code, reason, sizeof reason);
        PyErr_Format(PyExc_RuntimeError, "OpenSSL's SHA-256 failed: %s", reason);
    } else {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
    }
    ERR_clear_error();
    return NULL;
}

/* A new digest context for one call, or NULL with RuntimeError set. */
static EVP_MD_CTX *new_context(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        openssl_failed();
    return ctx;
}

/* SHA-256 of a || b into out (HASH_BYTES) on ctx, which is re-initialised for it; 0 on
 * success, -1 if any step fails (out then holds no digest). Needs no Python: runs without the
 * GIL. */
static int hash2(EVP_MD_CTX *ctx, const EVP_MD *md, const unsigned char *a, size_t na,
                 const unsigned char *b, size_t nb, unsigned char *out)
{
    unsigned int size = 0;
    if (DIGEST_INIT(ctx, md) != 1)
        return -1;
    if (na && EVP_DigestUpdate(ctx, a, na) != 1)
        return -1;
    if (nb && EVP_DigestUpdate(ctx, b, nb) != 1)
        return -1;
    if (EVP_DigestFinal_ex(ctx, out, &size) != 1 || size != HASH_BYTES)
        return -1;
    return 0;
}

/* The items of seq in a tuple owned by the caller (a new reference), so that nothing done to
 * seq during the call can free or move them; NULL with TypeError(message) if seq cannot be
 * iterated, as PySequence_Fast would. */
static PyObject *private_tuple(PyObject *seq, const char *message)
{
    if (Py_TYPE(seq)->tp_iter == NULL && !PySequence_Check(seq)) {
        PyErr_SetString(PyExc_TypeError, message);
        return NULL;
    }
    return PySequence_Tuple(seq);
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
    EVP_MD_CTX *ctx = NULL;
    PyObject *lengths_seq = private_tuple(lengths_arg, "lengths must be a sequence of ints");
    if (lengths_seq == NULL)
        goto done;
    Py_ssize_t count = PyTuple_GET_SIZE(lengths_seq);
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
        Py_ssize_t length = PyLong_AsSsize_t(PyTuple_GET_ITEM(lengths_seq, i));
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
    if (result == NULL || count == 0)
        goto done;
    ctx = new_context();
    if (ctx == NULL) {
        Py_CLEAR(result);
        goto done;
    }
    const EVP_MD *md = sha256_of(module);
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *bytes = (const unsigned char *)data.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    position = start;
    for (Py_ssize_t i = 0; i < count && !failed; i++) {
        failed = hash2(ctx, md, bytes + position, (size_t)lengths[i], NULL, 0,
                       out + i * HASH_BYTES);
        position += lengths[i];
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_CLEAR(result);
        openssl_failed();
    }
done:
    EVP_MD_CTX_free(ctx);
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
    PyObject *items = private_tuple(items_arg, "items must be a sequence of bytes");
    if (items == NULL)
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(items);
    PyObject *result = NULL;
    EVP_MD_CTX *ctx = NULL;
    if (count > PY_SSIZE_T_MAX / HASH_BYTES) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, count * HASH_BYTES);
    if (result == NULL || count == 0)
        goto done;
    ctx = new_context();
    if (ctx == NULL) {
        Py_CLEAR(result);
        goto done;
    }
    const EVP_MD *md = sha256_of(module);
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_buffer item;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(items, i), &item, PyBUF_SIMPLE) < 0) {
            Py_CLEAR(result);
            break;
        }
        int failed = hash2(ctx, md, item.buf, (size_t)item.len, NULL, 0, out + i * HASH_BYTES);
        PyBuffer_Release(&item);
        if (failed) {
            Py_CLEAR(result);
            openssl_failed();
            break;
        }
    }
done:
    EVP_MD_CTX_free(ctx);
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
    EVP_MD_CTX *ctx = NULL;
    if (nodes.len % (2 * HASH_BYTES)) {
        PyErr_SetString(PyExc_ValueError, "nodes must be whole pairs of 32-byte hashes");
        goto done;
    }
    Py_ssize_t pairs = nodes.len / (2 * HASH_BYTES);
    result = PyBytes_FromStringAndSize(NULL, pairs * HASH_BYTES);
    if (result == NULL || pairs == 0)
        goto done;
    ctx = new_context();
    if (ctx == NULL) {
        Py_CLEAR(result);
        goto done;
    }
    static const unsigned char prefix = 0x01;
    const EVP_MD *md = sha256_of(module);
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *in = (const unsigned char *)nodes.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < pairs && !failed; i++)
        failed = hash2(ctx, md, &prefix, 1, in + 2 * i * HASH_BYTES, 2 * HASH_BYTES,
                       out + i * HASH_BYTES);
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_CLEAR(result);
        openssl_failed();
    }
done:
    EVP_MD_CTX_free(ctx);
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
    EVP_MD_CTX *ctx = NULL;
    PyObject *records = private_tuple(records_arg, "records must be a sequence of bytes");
    if (records == NULL)
        goto done;
    Py_ssize_t count = PyTuple_GET_SIZE(records);
    if (count > PY_SSIZE_T_MAX / SALT_BYTES || salts.len != count * SALT_BYTES) {
        PyErr_SetString(PyExc_ValueError, "salts must hold one 16-byte salt per record");
        goto done;
    }
    result = PyList_New(count);
    if (result == NULL || count == 0)
        goto done;
    ctx = new_context();
    if (ctx == NULL) {
        Py_CLEAR(result);
        goto done;
    }
    static const unsigned char prefix = 0x00;
    const EVP_MD *md = sha256_of(module);
    const unsigned char *salt = (const unsigned char *)salts.buf;
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned char digest[HASH_BYTES];
        unsigned char input[1 + SALT_BYTES];
        Py_buffer record;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(records, i), &record, PyBUF_SIMPLE) < 0) {
            Py_CLEAR(result);
            break;
        }
        input[0] = prefix;
        memcpy(input + 1, salt + i * SALT_BYTES, SALT_BYTES);
        int failed = hash2(ctx, md, input, sizeof input, record.buf, (size_t)record.len, digest);
        PyBuffer_Release(&record);
        if (failed) {
            Py_CLEAR(result);
            openssl_failed();
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
    EVP_MD_CTX_free(ctx);
    Py_XDECREF(records);
    PyBuffer_Release(&salts);
    return result;
}

/* Fetches SHA-256 once for the module's life. OpenSSL 3 looks the digest up in its providers;
 * EVP_sha256() would do that again at every initialisation of a context, which is the
 * per-message cost this avoids. If the fetch fails, EVP_sha256() still gives right digests,
 * only slower; if neither gives a 32-byte digest, the import fails (ImportError) and auditlog
 * runs its pure-Python loops. */
static int speedups_exec(PyObject *module)
{
    speedups_state *state = PyModule_GetState(module);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    state->fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (state->fetched == NULL)
        ERR_clear_error();
    state->sha256 = state->fetched != NULL ? state->fetched : EVP_sha256();
#else
    state->sha256 = EVP_sha256();
#endif
    if (state->sha256 == NULL || EVP_MD_size(state->sha256) != HASH_BYTES) {
        ERR_clear_error();
        PyErr_SetString(PyExc_ImportError, "OpenSSL offers no usable SHA-256");
        return -1;
    }
    return 0;
}

static void speedups_free(void *module)
{
    speedups_state *state = PyModule_GetState((PyObject *)module);
    if (state == NULL)
        return;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MD_free(state->fetched);
#endif
    state->fetched = NULL;
    state->sha256 = NULL;
}

static PyMethodDef speedups_methods[] = {
    {"frame_digests", frame_digests, METH_VARARGS, frame_digests_doc},
    {"digests", digests, METH_O, digests_doc},
    {"parents", parents, METH_O, parents_doc},
    {"leaf_hashes", leaf_hashes, METH_VARARGS, leaf_hashes_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, (void *)speedups_exec},
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "auditlog._speedups",
    "The per-record SHA-256 loops of auditlog's write and verify paths, in C.",
    sizeof(speedups_state),
    speedups_methods,
    speedups_slots,
    NULL,
    NULL,
    speedups_free,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
