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
 *
 * Where OpenSSL 3's SHA-256 comes from its "default" provider (no FIPS module or other provider
 * configured for it), the loops call OpenSSL's own SHA-256 functions (SHA256_Init/Update/Final)
 * directly: they are the code that provider runs for EVP (providers/implementations/digests),
 * the same vetted implementation with its SHA-NI/AVX2 assembly, minus EVP's per-message set-up,
 * which costs more than hashing a short message (110 ns against 80 ns for a 65-byte tree node
 * with SHA-NI: benchmarks/bench_read.py). A configuration that selects another provider for
 * SHA-256 keeps EVP, so it is still honoured; at load the two are checked to agree on a test
 * message. `hash_backend()` says which is in use.
 *
 * `block_frames` and `extend_tree` are keyless verification's work on one block in two calls:
 * the frame digests and the block hash in one pass over the block, and the Merkle tree extended
 * by the block's leaves (stride nodes for the tiles included).
 */
#define PY_SSIZE_T_CLEAN
/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, not removed; they are
 * used only when the default provider is the one EVP would use (see above). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/provider.h>
#endif

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
    int direct;           /* SHA256_* give what EVP would (its provider is "default") */
    int force_evp;        /* tests: use EVP even so */
} speedups_state;

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

/* One call's SHA-256: OpenSSL's SHA-256 functions where the default provider serves it (see
 * the top of the file), else an EVP context re-initialised for every message. Needs no Python
 * between hasher_new and hasher_free: the hashing runs without the GIL. */
typedef struct {
    const EVP_MD *md;
    EVP_MD_CTX *evp; /* NULL when direct */
    SHA256_CTX sha;
} hasher;

/* Sets h up for a call; 0, or -1 with RuntimeError set. */
static int hasher_new(hasher *h, PyObject *module)
{
    speedups_state *state = PyModule_GetState(module);
    h->md = state->sha256;
    h->evp = NULL;
    if (state->direct && !state->force_evp)
        return 0;
    h->evp = EVP_MD_CTX_new();
    if (h->evp == NULL) {
        openssl_failed();
        return -1;
    }
    return 0;
}

static void hasher_free(hasher *h)
{
    EVP_MD_CTX_free(h->evp);
    h->evp = NULL;
}

static int h_init(hasher *h)
{
    if (h->evp == NULL)
        return SHA256_Init(&h->sha) == 1 ? 0 : -1;
    return DIGEST_INIT(h->evp, h->md) == 1 ? 0 : -1;
}

static int h_update(hasher *h, const unsigned char *data, size_t size)
{
    if (size == 0)
        return 0;
    if (h->evp == NULL)
        return SHA256_Update(&h->sha, data, size) == 1 ? 0 : -1;
    return EVP_DigestUpdate(h->evp, data, size) == 1 ? 0 : -1;
}

static int h_final(hasher *h, unsigned char *out)
{
    if (h->evp == NULL)
        return SHA256_Final(out, &h->sha) == 1 ? 0 : -1;
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(h->evp, out, &size) != 1 || size != HASH_BYTES)
        return -1;
    return 0;
}

/* SHA-256 of a || b into out (HASH_BYTES); 0 on success, -1 if any step fails (out then holds
 * no digest). */
static int hash2(hasher *h, const unsigned char *a, size_t na, const unsigned char *b,
                 size_t nb, unsigned char *out)
{
    if (h_init(h) || h_update(h, a, na) || h_update(h, b, nb) || h_final(h, out))
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
    hasher h = {0};
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
    if (hasher_new(&h, module) < 0) {
        Py_CLEAR(result);
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *bytes = (const unsigned char *)data.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    position = start;
    for (Py_ssize_t i = 0; i < count && !failed; i++) {
        failed = hash2(&h, bytes + position, (size_t)lengths[i], NULL, 0, out + i * HASH_BYTES);
        position += lengths[i];
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_CLEAR(result);
        openssl_failed();
    }
done:
    hasher_free(&h);
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
    hasher h = {0};
    if (count > PY_SSIZE_T_MAX / HASH_BYTES) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, count * HASH_BYTES);
    if (result == NULL || count == 0)
        goto done;
    if (hasher_new(&h, module) < 0) {
        Py_CLEAR(result);
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_buffer item;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(items, i), &item, PyBUF_SIMPLE) < 0) {
            Py_CLEAR(result);
            break;
        }
        int failed = hash2(&h, item.buf, (size_t)item.len, NULL, 0, out + i * HASH_BYTES);
        PyBuffer_Release(&item);
        if (failed) {
            Py_CLEAR(result);
            openssl_failed();
            break;
        }
    }
done:
    hasher_free(&h);
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
    hasher h = {0};
    if (nodes.len % (2 * HASH_BYTES)) {
        PyErr_SetString(PyExc_ValueError, "nodes must be whole pairs of 32-byte hashes");
        goto done;
    }
    Py_ssize_t pairs = nodes.len / (2 * HASH_BYTES);
    result = PyBytes_FromStringAndSize(NULL, pairs * HASH_BYTES);
    if (result == NULL || pairs == 0)
        goto done;
    if (hasher_new(&h, module) < 0) {
        Py_CLEAR(result);
        goto done;
    }
    static const unsigned char prefix = 0x01;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *in = (const unsigned char *)nodes.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < pairs && !failed; i++)
        failed = hash2(&h, &prefix, 1, in + 2 * i * HASH_BYTES, 2 * HASH_BYTES,
                       out + i * HASH_BYTES);
    Py_END_ALLOW_THREADS
    if (failed) {
        Py_CLEAR(result);
        openssl_failed();
    }
done:
    hasher_free(&h);
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
    hasher h = {0};
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
    if (hasher_new(&h, module) < 0) {
        Py_CLEAR(result);
        goto done;
    }
    static const unsigned char prefix = 0x00;
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
        int failed = hash2(&h, input, sizeof input, record.buf, (size_t)record.len, digest);
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
    hasher_free(&h);
    Py_XDECREF(records);
    PyBuffer_Release(&salts);
    return result;
}

#define BLOCK_HEADER_BYTES 128
#define REDACTED_BIT 0x80000000u

static uint32_t read_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

PyDoc_STRVAR(block_frames_doc,
             "block_frames(body, /)\n--\n\n"
             "The block hash recomputed from a block body (header, leaves, frame lengths, then\n"
             "each frame's SHA-256: docs/format.md, Block) and the frame bounds, as count + 1\n"
             "native 64-bit offsets into body (frame i is body[bounds[i]:bounds[i + 1]]).\n"
             "None if the body is not the common case this handles (too short, a count of 0,\n"
             "a redacted slot, lengths that do not fill it exactly): the caller then takes its\n"
             "general path, which raises or handles redactions. The stored hash is not compared.");

static PyObject *block_frames(PyObject *module, PyObject *arg)
{
    Py_buffer body;
    if (PyObject_GetBuffer(arg, &body, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL, *digest = NULL, *bounds = NULL;
    hasher block = {0}, frame = {0};
    const unsigned char *bytes = (const unsigned char *)body.buf;
    long long size = (long long)body.len;
    if (size < BLOCK_HEADER_BYTES + HASH_BYTES)
        goto none;
    long long count = read_u32(bytes + 4);
    long long lengths_start = BLOCK_HEADER_BYTES + count * HASH_BYTES;
    long long frames_start = lengths_start + count * 4;
    long long end = size - HASH_BYTES;
    if (count < 1 || frames_start > end)
        goto none;
    bounds = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)((count + 1) * sizeof(long long)));
    if (bounds == NULL)
        goto done;
    long long *offsets = (long long *)PyBytes_AS_STRING(bounds);
    long long position = frames_start;
    offsets[0] = position;
    for (long long i = 0; i < count; i++) {
        uint32_t length = read_u32(bytes + lengths_start + 4 * i);
        if (length & REDACTED_BIT || length > end - position)
            goto none;
        position += length;
        offsets[i + 1] = position;
    }
    if (position != end)
        goto none;
    digest = PyBytes_FromStringAndSize(NULL, HASH_BYTES);
    if (digest == NULL)
        goto done;
    if (hasher_new(&block, module) < 0 || hasher_new(&frame, module) < 0)
        goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(digest);
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    failed = h_init(&block) || h_update(&block, bytes, (size_t)frames_start);
    for (long long i = 0; i < count && !failed; i++) {
        unsigned char d[HASH_BYTES];
        failed = hash2(&frame, bytes + offsets[i], (size_t)(offsets[i + 1] - offsets[i]), NULL,
                       0, d) ||
                 h_update(&block, d, HASH_BYTES);
    }
    failed = failed || h_final(&block, out);
    Py_END_ALLOW_THREADS
    if (failed) {
        openssl_failed();
        goto done;
    }
    result = PyTuple_Pack(2, digest, bounds);
    goto done;
none:
    result = Py_NewRef(Py_None);
done:
    hasher_free(&block);
    hasher_free(&frame);
    Py_XDECREF(digest);
    Py_XDECREF(bounds);
    PyBuffer_Release(&body);
    return result;
}

/* SHA-256(0x01 || left || right) into out (which may be left or right). */
static int node2(hasher *h, const unsigned char *left, const unsigned char *right,
                 unsigned char *out)
{
    unsigned char message[1 + 2 * HASH_BYTES];
    message[0] = 0x01;
    memcpy(message + 1, left, HASH_BYTES);
    memcpy(message + 1 + HASH_BYTES, right, HASH_BYTES);
    return hash2(h, message, sizeof message, NULL, 0, out);
}

/* Appends (level, index, hash) to nodes; -1 with an exception set on failure. */
static int collect_node(PyObject *nodes, int level, unsigned long long index,
                        const unsigned char *hash)
{
    PyObject *item = Py_BuildValue("(iKy#)", level, index, (const char *)hash,
                                   (Py_ssize_t)HASH_BYTES);
    if (item == NULL)
        return -1;
    int failed = PyList_Append(nodes, item);
    Py_DECREF(item);
    return failed;
}

static int bit_length(unsigned long long value)
{
    int bits = 0;
    while (value) {
        bits++;
        value >>= 1;
    }
    return bits;
}

PyDoc_STRVAR(extend_tree_doc,
             "extend_tree(end, frontier, leaves, want_nodes, /)\n--\n\n"
             "The compact range of leaves [0, end), its subtree hashes joined in frontier,\n"
             "extended by the 32-byte leaf hashes joined in leaves: returns (the new frontier\n"
             "joined, the tree root of the new size, the stride nodes) where the stride nodes\n"
             "are the (level, index, hash) of every node at a level that is a positive multiple\n"
             "of 8 that the extension completed (an empty list unless want_nodes), in no set\n"
             "order. Equal to CompactRange.extend_joined then root(). ValueError if frontier\n"
             "does not have one hash per one bit of end, or leaves is not whole hashes.");

static PyObject *extend_tree(PyObject *module, PyObject *args)
{
    unsigned long long end;
    Py_buffer frontier_arg, leaves_arg;
    int want_nodes;
    if (!PyArg_ParseTuple(args, "Ky*y*p:extend_tree", &end, &frontier_arg, &leaves_arg,
                          &want_nodes))
        return NULL;
    PyObject *result = NULL, *nodes = NULL;
    unsigned char *scratch = NULL;
    hasher h = {0};
    unsigned char frontier[64][HASH_BYTES];
    int held = __builtin_popcountll(end);
    unsigned long long count = (unsigned long long)leaves_arg.len / HASH_BYTES;
    if (frontier_arg.len != (Py_ssize_t)held * HASH_BYTES) {
        PyErr_SetString(PyExc_ValueError, "frontier must hold one hash per one bit of end");
        goto done;
    }
    if (leaves_arg.len % HASH_BYTES || end + count < end || (end + count) >> 63) {
        PyErr_SetString(PyExc_ValueError, "leaves must be whole 32-byte hashes within 2**63");
        goto done;
    }
    memcpy(frontier, frontier_arg.buf, (size_t)frontier_arg.len);
    nodes = PyList_New(0);
    if (nodes == NULL || hasher_new(&h, module) < 0)
        goto done;
    if (count > 1) {
        scratch = PyMem_Malloc((size_t)(count / 2) * HASH_BYTES);
        if (scratch == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    const unsigned char *leaves = (const unsigned char *)leaves_arg.buf;
    unsigned long long position = end, done_leaves = 0;
    while (done_leaves < count) {
        /* The widest aligned perfect subtree that starts at `position` and fits what is left. */
        unsigned long long width = 1ULL << (bit_length(count - done_leaves) - 1);
        if (position && (position & (~position + 1)) < width)
            width = position & (~position + 1);
        const unsigned char *level_nodes = leaves + done_leaves * HASH_BYTES;
        unsigned long long level_count = width;
        int level = 0;
        while (level_count > 1) {
            for (unsigned long long i = 0; i < level_count / 2; i++) {
                if (node2(&h, level_nodes + 2 * i * HASH_BYTES,
                          level_nodes + (2 * i + 1) * HASH_BYTES, scratch + i * HASH_BYTES)) {
                    openssl_failed();
                    goto done;
                }
            }
            level_nodes = scratch;
            level_count /= 2;
            level++;
            if (want_nodes && level % 8 == 0) {
                unsigned long long base = position >> level;
                for (unsigned long long i = 0; i < level_count; i++)
                    if (collect_node(nodes, level, base + i, scratch + i * HASH_BYTES) < 0)
                        goto done;
            }
        }
        unsigned char node[HASH_BYTES];
        memcpy(node, level_nodes, HASH_BYTES);
        /* Push the subtree's root: fold it with the held hashes whose right sibling it is. */
        unsigned long long start = position, span = width;
        while (start & span) {
            if (node2(&h, frontier[--held], node, node)) {
                openssl_failed();
                goto done;
            }
            start -= span;
            span <<= 1;
            int parent_level = bit_length(span) - 1;
            if (want_nodes && parent_level % 8 == 0 &&
                collect_node(nodes, parent_level, start >> parent_level, node) < 0)
                goto done;
        }
        memcpy(frontier[held++], node, HASH_BYTES);
        position += width;
        done_leaves += width;
    }
    unsigned char root[HASH_BYTES];
    if (held == 0) {
        if (hash2(&h, NULL, 0, NULL, 0, root)) {
            openssl_failed();
            goto done;
        }
    } else {
        memcpy(root, frontier[held - 1], HASH_BYTES);
        for (int i = held - 2; i >= 0; i--) {
            if (node2(&h, frontier[i], root, root)) {
                openssl_failed();
                goto done;
            }
        }
    }
    result = Py_BuildValue("(y#y#O)", (const char *)frontier, (Py_ssize_t)held * HASH_BYTES,
                           (const char *)root, (Py_ssize_t)HASH_BYTES, nodes);
done:
    hasher_free(&h);
    PyMem_Free(scratch);
    Py_XDECREF(nodes);
    PyBuffer_Release(&frontier_arg);
    PyBuffer_Release(&leaves_arg);
    return result;
}

PyDoc_STRVAR(hash_backend_doc,
             "hash_backend(/)\n--\n\n"
             "\"direct\" when the loops call OpenSSL's SHA-256 functions, \"evp\" when they go\n"
             "through EVP (another provider serves SHA-256, or tests asked for it).");

static PyObject *hash_backend(PyObject *module, PyObject *unused)
{
    speedups_state *state = PyModule_GetState(module);
    return PyUnicode_FromString(state->direct && !state->force_evp ? "direct" : "evp");
}

PyDoc_STRVAR(use_evp_doc,
             "_use_evp(flag, /)\n--\n\n"
             "For tests: hash through EVP (True) even where the direct functions would serve.");

static PyObject *use_evp(PyObject *module, PyObject *flag)
{
    int value = PyObject_IsTrue(flag);
    if (value < 0)
        return NULL;
    ((speedups_state *)PyModule_GetState(module))->force_evp = value;
    Py_RETURN_NONE;
}

/* Whether OpenSSL's SHA-256 functions give what EVP gives, and EVP's SHA-256 is the default
 * provider's: only then are they used. */
static int direct_allowed(const EVP_MD *md)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    const OSSL_PROVIDER *provider = EVP_MD_get0_provider(md);
    const char *name = provider != NULL ? OSSL_PROVIDER_get0_name(provider) : NULL;
    if (name == NULL || strcmp(name, "default") != 0)
        return 0;
    static const unsigned char probe[] = "auditlog: SHA-256 self-check across two blocks, "
                                         "direct against EVP";
    unsigned char a[HASH_BYTES], b[HASH_BYTES];
    unsigned int size = 0;
    if (SHA256(probe, sizeof probe, a) == NULL ||
        EVP_Digest(probe, sizeof probe, b, &size, md, NULL) != 1 || size != HASH_BYTES) {
        ERR_clear_error();
        return 0;
    }
    return memcmp(a, b, HASH_BYTES) == 0;
#else
    return 0;
#endif
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
    state->direct = direct_allowed(state->sha256);
    state->force_evp = 0;
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
    {"block_frames", block_frames, METH_O, block_frames_doc},
    {"extend_tree", extend_tree, METH_VARARGS, extend_tree_doc},
    {"hash_backend", hash_backend, METH_NOARGS, hash_backend_doc},
    {"_use_evp", use_evp, METH_O, use_evp_doc},
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
