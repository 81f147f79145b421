/* The lock-step block pump: the one part of the TFTP service written in C.
 *
 * Why: a lock-step transfer (no windowsize, what every phone asks for) is one
 * ACK in, one block out, 16,000 times for an 8 MiB load at 512 bytes.  In
 * Python that exchange costs ~6 us of interpreter time per block on top of
 * the kernel's ~17 us, and the C servers (dnsmasq, tftpd-hpa) spend ~1 us;
 * the file-service issue asks for at least their speed.  So the exchange that
 * needs no decision is done here, and everything else stays in Python:
 *
 *   Pump.poll(timeout) waits on the server's epoll set.  For a socket attached
 *   with attach() it reads the datagram; if it is the ACK of the block last
 *   sent and that was not the last block, it sends the next block (from a
 *   16 KiB read-ahead of the file: one pread per 32 blocks of 512) and moves
 *   (acked, sent, deadline) on.  Any other datagram, a socket error, a short
 *   read, the ACK of the final block, and every event of a socket not
 *   attached (the request socket, sessions in Python) is returned to Python
 *   as (fd, bytes | errno int | None), state untouched.  It returns once
 *   there is such an event or the timeout is up, so a transfer under way
 *   never leaves C between blocks.
 *
 * The protocol authority stays session.ReadSession: server.py copies
 * (acked, sent, deadline) out with state() before it hands the session a
 * packet or a timeout, and back with set() after.  Nothing here negotiates,
 * retransmits or decides that a transfer ended.  A file truncated while it is
 * served: the read-ahead already taken goes out as it was read, then the short
 * read is Python's, which ends the transfer (files.Truncated).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RECV_MAX 2048
#define CHUNK_BYTES 16384         /* read ahead per transfer: one pread per 32 blocks of 512 */
#define DATA_OPCODE 3
#define ACK_OPCODE 4

typedef struct {
    int attached;
    int file;                 /* file descriptor the blocks are read from */
    uint64_t size, blksize, last_block;
    uint64_t acked, sent;     /* highest block confirmed / sent, as ReadSession counts them */
    double timeout, deadline; /* CLOCK_MONOTONIC seconds, time.monotonic()'s clock */
    unsigned char *chunk;     /* whole blocks of the file read ahead, from chunk_off */
    size_t chunk_cap, chunk_len;
    uint64_t chunk_off;
} Slot;

typedef struct {
    PyObject_HEAD
    int epfd;
    int maxevents;
    struct epoll_event *events;
    Slot *slots;              /* indexed by socket fd */
    Py_ssize_t nslots;
    unsigned char *block;     /* 4-byte DATA header + the largest block */
    Py_ssize_t max_blksize;
    unsigned long long blocks;
} Pump;

static double monotonic_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static Slot *slot_of(Pump *self, int fd) {
    if (fd < 0 || fd >= self->nslots || !self->slots[fd].attached)
        return NULL;
    return &self->slots[fd];
}

static int fd_of(PyObject *arg, int *fd) {
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value < 0 || value > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "not a file descriptor");
        return -1;
    }
    *fd = (int)value;
    return 0;
}

static int Pump_init(Pump *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"epfd", "max_blksize", "maxevents", NULL};
    int epfd, maxevents = 256;
    Py_ssize_t max_blksize;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "in|i", names, &epfd, &max_blksize, &maxevents))
        return -1;
    if (max_blksize < 8 || max_blksize > 65464 || maxevents < 1) {
        PyErr_SetString(PyExc_ValueError, "max_blksize must be 8..65464 and maxevents at least 1");
        return -1;
    }
    self->epfd = epfd;
    self->maxevents = maxevents;
    self->max_blksize = max_blksize;
    PyMem_Free(self->events);
    PyMem_Free(self->block);
    self->events = PyMem_Calloc((size_t)maxevents, sizeof(struct epoll_event));
    self->block = PyMem_Malloc((size_t)max_blksize + 4);
    if (self->events == NULL || self->block == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void slot_clear(Slot *s) {
    PyMem_Free(s->chunk);
    memset(s, 0, sizeof *s);
}

static void Pump_dealloc(Pump *self) {
    for (Py_ssize_t i = 0; i < self->nslots; i++)
        slot_clear(&self->slots[i]);
    PyMem_Free(self->events);
    PyMem_Free(self->block);
    PyMem_Free(self->slots);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Pump_attach(Pump *self, PyObject *args) {
    int fd, file;
    unsigned long long size, blksize, acked, sent;
    double deadline, timeout;
    if (!PyArg_ParseTuple(args, "iiKKKKdd", &fd, &file, &size, &blksize, &acked, &sent, &deadline, &timeout))
        return NULL;
    if (fd < 0 || blksize < 8 || blksize > (unsigned long long)self->max_blksize) {
        PyErr_SetString(PyExc_ValueError, "bad socket fd or blksize");
        return NULL;
    }
    if (fd >= self->nslots) {
        Py_ssize_t n = self->nslots ? self->nslots : 64;
        while (n <= fd)
            n *= 2;
        Slot *grown = PyMem_Realloc(self->slots, (size_t)n * sizeof(Slot));
        if (grown == NULL)
            return PyErr_NoMemory();
        memset(grown + self->nslots, 0, (size_t)(n - self->nslots) * sizeof(Slot));
        self->slots = grown;
        self->nslots = n;
    }
    Slot *s = &self->slots[fd];
    size_t cap = (size_t)blksize * (CHUNK_BYTES / blksize ? CHUNK_BYTES / blksize : 1);
    unsigned char *chunk = PyMem_Malloc(cap);
    if (chunk == NULL)
        return PyErr_NoMemory();
    slot_clear(s);
    s->chunk = chunk;
    s->chunk_cap = cap;
    s->attached = 1;
    s->file = file;
    s->size = size;
    s->blksize = blksize;
    s->last_block = size / blksize + 1;
    s->acked = acked;
    s->sent = sent;
    s->deadline = deadline;
    s->timeout = timeout;
    Py_RETURN_NONE;
}

static PyObject *Pump_detach(Pump *self, PyObject *arg) {
    int fd;
    if (fd_of(arg, &fd) < 0)
        return NULL;
    Slot *s = slot_of(self, fd);
    if (s != NULL)
        slot_clear(s);
    Py_RETURN_NONE;
}

static Slot *attached_slot(Pump *self, int fd) {
    Slot *s = slot_of(self, fd);
    if (s == NULL)
        PyErr_Format(PyExc_KeyError, "socket %d is not attached", fd);
    return s;
}

static PyObject *Pump_state(Pump *self, PyObject *arg) {
    int fd;
    if (fd_of(arg, &fd) < 0)
        return NULL;
    Slot *s = attached_slot(self, fd);
    if (s == NULL)
        return NULL;
    return Py_BuildValue("KKd", (unsigned long long)s->acked, (unsigned long long)s->sent, s->deadline);
}

static PyObject *Pump_set(Pump *self, PyObject *args) {
    int fd;
    unsigned long long acked, sent;
    double deadline;
    if (!PyArg_ParseTuple(args, "iKKd", &fd, &acked, &sent, &deadline))
        return NULL;
    Slot *s = attached_slot(self, fd);
    if (s == NULL)
        return NULL;
    s->acked = acked;
    s->sent = sent;
    s->deadline = deadline;
    Py_RETURN_NONE;
}

/* 1: the datagram was the awaited ACK and the next block went out (or the send
 * buffer was full, which the retransmit timer covers, as in Python).
 * 0: Python must see it.  -errno: the socket reported an error. */
static int pump_one(Pump *self, int fd, Slot *s, const unsigned char *ack, ssize_t n, double now) {
    if (n < 4 || ack[0] != 0 || ack[1] != ACK_OPCODE)
        return 0;
    unsigned number = (unsigned)ack[2] << 8 | ack[3];
    uint64_t block = s->sent;
    if (block == 0 || block >= s->last_block || number != (block & 0xFFFF))
        return 0;
    uint64_t next = block + 1, offset = block * s->blksize;
    size_t want = (size_t)(offset < s->size ? (s->size - offset < s->blksize ? s->size - offset : s->blksize) : 0);
    if (want) {
        if (offset < s->chunk_off || offset + want > s->chunk_off + s->chunk_len) {
            ssize_t got = pread(s->file, s->chunk, s->chunk_cap, (off_t)offset);
            s->chunk_off = offset;
            s->chunk_len = got > 0 ? (size_t)got : 0;
            if (s->chunk_len < want)
                return 0;              /* error or a file shrunk under us: Python's read() says which */
        }
        memcpy(self->block + 4, s->chunk + (offset - s->chunk_off), want);
    }
    self->block[0] = 0;
    self->block[1] = DATA_OPCODE;
    self->block[2] = (unsigned char)(next >> 8 & 0xFF);
    self->block[3] = (unsigned char)(next & 0xFF);
    s->acked = block;
    s->sent = next;
    s->deadline = now + s->timeout;
    self->blocks++;
    if (send(fd, self->block, (size_t)want + 4, 0) < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
        return -errno;
    return 1;
}

/* Waits until an event needs Python or `timeout` seconds have passed, answering
 * the awaited ACKs on the way: a lock-step transfer then never leaves C between
 * blocks.  Returns early on a signal so Python's handlers run. */
static PyObject *Pump_poll(Pump *self, PyObject *arg) {
    double timeout = PyFloat_AsDouble(arg);
    if (timeout == -1.0 && PyErr_Occurred())
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    double now = monotonic_now(), until = now + (timeout > 0 ? timeout : 0);
    unsigned char ack[RECV_MAX];
    for (;;) {
        int ms = until > now ? (int)((until - now) * 1000.0 + 0.999) : 0;
        int ready;
        Py_BEGIN_ALLOW_THREADS
        ready = epoll_wait(self->epfd, self->events, self->maxevents, ms);
        Py_END_ALLOW_THREADS
        if (ready < 0) {
            if (errno == EINTR && PyErr_CheckSignals() == 0)
                return out;
            if (errno != EINTR)
                PyErr_SetFromErrno(PyExc_OSError);
            Py_DECREF(out);
            return NULL;
        }
        now = monotonic_now();
        for (int i = 0; i < ready; i++) {
            int fd = self->events[i].data.fd;
            Slot *s = slot_of(self, fd);
            PyObject *item;
            if (s == NULL) {
                item = Py_BuildValue("(iO)", fd, Py_None);
            } else {
                ssize_t n = recv(fd, ack, sizeof ack, 0);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EINTR)
                        continue;
                    item = Py_BuildValue("(ii)", fd, errno);
                } else {
                    int done = pump_one(self, fd, s, ack, n, now);
                    if (done == 1)
                        continue;
                    item = done < 0 ? Py_BuildValue("(ii)", fd, -done)
                                    : Py_BuildValue("(iy#)", fd, (const char *)ack, (Py_ssize_t)n);
                }
            }
            if (item == NULL || PyList_Append(out, item) < 0) {
                Py_XDECREF(item);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(item);
        }
        if (PyList_GET_SIZE(out) > 0 || now >= until)
            return out;
    }
}

static PyObject *Pump_blocks(Pump *self, void *closure) {
    return PyLong_FromUnsignedLongLong(self->blocks);
}

static PyMethodDef Pump_methods[] = {
    {"attach", (PyCFunction)Pump_attach, METH_VARARGS,
     "attach(fd, file_fd, size, blksize, acked, sent, deadline, timeout): pump this socket's ACKs here."},
    {"detach", (PyCFunction)Pump_detach, METH_O, "detach(fd): Python handles this socket again."},
    {"state", (PyCFunction)Pump_state, METH_O, "state(fd) -> (acked, sent, deadline)."},
    {"set", (PyCFunction)Pump_set, METH_VARARGS, "set(fd, acked, sent, deadline): after Python moved the session."},
    {"poll", (PyCFunction)Pump_poll, METH_O,
     "poll(timeout_s) -> [(fd, data)]: the events Python must handle, once there are any or the time is up; "
     "data is None (not attached), bytes (a datagram the pump did not act on) or an int (errno of the socket)."},
    {NULL}};

static PyGetSetDef Pump_getset[] = {
    {"blocks", (getter)Pump_blocks, NULL, "blocks sent by the pump since it was made", NULL},
    {NULL}};

static PyTypeObject PumpType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "appliance.tftp._pump.Pump",
    .tp_basicsize = sizeof(Pump),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Lock-step TFTP block pump over an epoll set (see the module source for why).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Pump_init,
    .tp_dealloc = (destructor)Pump_dealloc,
    .tp_methods = Pump_methods,
    .tp_getset = Pump_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_pump", .m_doc = "Lock-step TFTP block pump.", .m_size = -1};

PyMODINIT_FUNC PyInit__pump(void) {
    if (PyType_Ready(&PumpType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&PumpType);
    if (PyModule_AddObject(m, "Pump", (PyObject *)&PumpType) < 0) {
        Py_DECREF(&PumpType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
