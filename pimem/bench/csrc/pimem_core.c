/*
 * pimem's timing core: the repetition loops of fill, copy, read, strided
 * read and pointer chasing, each timed in C with CLOCK_MONOTONIC.
 *
 * One call times a whole region of `reps` operations on the same buffer and
 * returns its elapsed nanoseconds, so the cost of calling from Python is paid
 * once per region (milliseconds), not once per operation. pimem builds this
 * file into a shared library (pimem/bench/core.py) and benchmarks/membench.c
 * includes it: C and pimem time the very same loops.
 *
 * fill = memset and copy = memcpy (what C programs call), except where the
 * caller says the memory is Device/strongly-ordered (`device` != 0; a GPU
 * buffer mapped through /dev/mem) and the call is one glibc may do with an
 * unaligned or DC ZVA store, which faults there (value 0, or an address or
 * size that is not a multiple of 16): then naturally aligned volatile
 * stores. Every load here is naturally aligned too, and loops that must not
 * become vector code or a memset call use volatile accesses.
 *
 * Only C99 and GCC/Clang's inline asm barrier and vector extension are used.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PIMEM_CORE_VERSION 2

/* Tells the compiler that memory behind p may be read or written here, so it
 * can neither drop a memset/memcpy whose result is never read in C nor hoist
 * a read of unchanged memory out of the repetition loop. Emits no code. */
#define PIMEM_BARRIER(p) __asm__ __volatile__("" : : "r"(p) : "memory")

static volatile uint64_t pimem_sink; /* results go somewhere observable */

static uint64_t pimem_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int pimem_core_version(void) { return PIMEM_CORE_VERSION; }

static uint64_t rotl64(uint64_t x, unsigned r)
{
    return r ? (x << r) | (x >> (64 - r)) : x;
}

/* Sum mod 2^64 of the buffer's little-endian 64-bit words counted from its
 * first byte, the last zero-padded (pimem.bench.kernels' read contract).
 * 16-byte aligned: vector types with four accumulators (-O2 before GCC 12
 * leaves a plain loop scalar). Otherwise naturally aligned volatile loads: a
 * word that starts k bytes before a logical word boundary is that word's
 * bytes rotated, so each aligned word is rotated, then added. */
typedef uint64_t pimem_u64x2 __attribute__((vector_size(16)));

uint64_t pimem_sum(const void *src, size_t n)
{
    const unsigned char *p = src;
    uint64_t s = 0;
    size_t i = 0;
    if ((uintptr_t)p % 16 == 0) {
        const pimem_u64x2 *v = (const pimem_u64x2 *)src;
        size_t nv = n / 64 * 4;
        pimem_u64x2 a0 = {0, 0}, a1 = a0, a2 = a0, a3 = a0;
        for (size_t k = 0; k < nv; k += 4) {
            a0 += v[k];
            a1 += v[k + 1];
            a2 += v[k + 2];
            a3 += v[k + 3];
        }
        a0 += a1 + a2 + a3;
        s = a0[0] + a0[1];
        i = nv * 16;
    }
    size_t head = (8 - ((uintptr_t)(p + i) % 8)) % 8; /* bytes before an 8-byte boundary */
    if (head > n - i)
        head = n - i;
    for (size_t k = 0; k < head; k++, i++)
        s += (uint64_t)((const volatile unsigned char *)p)[i] << (8 * (i % 8));
    unsigned rot = (unsigned)(8 * (i % 8));
    const volatile uint64_t *w = (const volatile uint64_t *)(p + i);
    size_t nw = (n - i) / 8;
    uint64_t b0 = 0, b1 = 0;
    size_t k = 0;
    for (; k + 2 <= nw; k += 2) {
        b0 += rotl64(w[k], rot);
        b1 += rotl64(w[k + 1], rot);
    }
    for (; k < nw; k++)
        b0 += rotl64(w[k], rot);
    s += b0 + b1;
    for (i += nw * 8; i < n; i++)
        s += (uint64_t)((const volatile unsigned char *)p)[i] << (8 * (i % 8));
    return s;
}

/* Naturally aligned stores only: bytes up to an 8-byte boundary, words, bytes. */
static void aligned_fill(void *dst, int value, size_t n)
{
    volatile unsigned char *b = dst;
    size_t i = 0;
    while (i < n && (uintptr_t)(b + i) % 8)
        b[i++] = (unsigned char)value;
    uint64_t word = (uint64_t)(unsigned char)value * 0x0101010101010101u;
    volatile uint64_t *w = (volatile uint64_t *)(b + i);
    size_t nw = (n - i) / 8;
    for (size_t k = 0; k < nw; k++)
        w[k] = word;
    for (i += nw * 8; i < n; i++)
        b[i] = (unsigned char)value;
}

static void aligned_copy(void *dst, const void *src, size_t n)
{
    volatile unsigned char *d = dst;
    const volatile unsigned char *s = src;
    size_t i = 0;
    if (((uintptr_t)d - (uintptr_t)s) % 8 == 0) {
        while (i < n && (uintptr_t)(d + i) % 8) {
            d[i] = s[i];
            i++;
        }
        volatile uint64_t *dw = (volatile uint64_t *)(d + i);
        const volatile uint64_t *sw = (const volatile uint64_t *)(s + i);
        size_t nw = (n - i) / 8;
        for (size_t k = 0; k < nw; k++)
            dw[k] = sw[k];
        i += nw * 8;
    }
    for (; i < n; i++)
        d[i] = s[i];
}

static int library_safe(const void *a, const void *b, size_t n, int device)
{
    return !device || ((uintptr_t)a % 16 == 0 && (uintptr_t)b % 16 == 0 && n % 16 == 0);
}

uint64_t pimem_time_fill(void *dst, int value, size_t n, uint64_t reps, int device)
{
    int use_memset = library_safe(dst, dst, n, device) && !(device && value == 0);
    uint64_t t0 = pimem_now_ns();
    if (use_memset) {
        for (uint64_t r = 0; r < reps; r++) {
            memset(dst, value, n);
            PIMEM_BARRIER(dst);
        }
    } else {
        for (uint64_t r = 0; r < reps; r++)
            aligned_fill(dst, value, n);
    }
    return pimem_now_ns() - t0;
}

uint64_t pimem_time_copy(void *dst, const void *src, size_t n, uint64_t reps, int device)
{
    int use_memcpy = library_safe(dst, src, n, device);
    uint64_t t0 = pimem_now_ns();
    if (use_memcpy) {
        for (uint64_t r = 0; r < reps; r++) {
            memcpy(dst, src, n);
            PIMEM_BARRIER(dst);
        }
    } else {
        for (uint64_t r = 0; r < reps; r++)
            aligned_copy(dst, src, n);
    }
    return pimem_now_ns() - t0;
}

uint64_t pimem_time_read(const void *src, size_t n, uint64_t reps)
{
    uint64_t acc = 0;
    uint64_t t0 = pimem_now_ns();
    for (uint64_t r = 0; r < reps; r++) {
        PIMEM_BARRIER(src);
        acc += pimem_sum(src, n);
    }
    uint64_t t1 = pimem_now_ns();
    pimem_sink = acc;
    return t1 - t0;
}

/* The memory mountain's read (CS:APP 6.6): one 8-byte word every `stride`
 * words, four accumulators, the same scalar loop at every stride (stride 1
 * too: a vector loop there would make a step that is the code's, not the
 * memory's). The buffer must be 8-byte aligned. */
uint64_t pimem_sum_stride(const void *src, size_t n, size_t stride)
{
    if (stride == 0)
        stride = 1;
    const volatile uint64_t *w = src;
    size_t nw = n / 8, i = 0;
    if (stride > nw) /* one word is read either way; and 4 * stride cannot wrap */
        stride = nw ? nw : 1;
    size_t step4 = 4 * stride;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (; i + 3 * stride < nw; i += step4) {
        a0 += w[i];
        a1 += w[i + stride];
        a2 += w[i + 2 * stride];
        a3 += w[i + 3 * stride];
    }
    for (; i < nw; i += stride)
        a0 += w[i];
    return a0 + a1 + a2 + a3;
}

uint64_t pimem_time_read_stride(const void *src, size_t n, size_t stride, uint64_t reps)
{
    uint64_t acc = 0;
    uint64_t t0 = pimem_now_ns();
    for (uint64_t r = 0; r < reps; r++) {
        PIMEM_BARRIER(src);
        acc += pimem_sum_stride(src, n, stride);
    }
    uint64_t t1 = pimem_now_ns();
    pimem_sink = acc;
    return t1 - t0;
}

/* Pointer chasing (like lmbench's lat_mem_rd and tinymembench): the buffer
 * is cut into `slot`-byte slots (slot a multiple of the pointer size, the
 * buffer aligned to it), and each slot's first word points at the next slot
 * of one random cycle through all of them (Sattolo's algorithm), so every
 * load depends on the one before and no prefetcher can guess the next.
 * Returns the number of slots, 0 if the arguments do not fit or memory for
 * the shuffle cannot be had. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

size_t pimem_chase_setup(void *buf, size_t n, size_t slot, uint64_t seed)
{
    if (slot < sizeof(void *) || slot % sizeof(void *) || (uintptr_t)buf % sizeof(void *))
        return 0;
    size_t count = n / slot;
    if (count < 2)
        return 0;
    size_t *order = malloc(count * sizeof *order);
    if (!order)
        return 0;
    for (size_t i = 0; i < count; i++)
        order[i] = i;
    uint64_t state = seed;
    for (size_t i = count - 1; i > 0; i--) { /* Sattolo: one cycle through all slots */
        size_t j = (size_t)(splitmix64(&state) % i);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    unsigned char *base = buf;
    for (size_t i = 0; i < count; i++) /* slot order[i] points at slot order[i+1] */
        *(void *volatile *)(base + order[i] * slot) = base + order[(i + 1) % count] * slot;
    free(order);
    return count;
}

/* Steps along the chain from start until it returns there; at most limit steps. */
size_t pimem_chase_cycle(const void *start, size_t limit)
{
    const void *p = start;
    size_t steps = 0;
    do {
        p = *(const void *const volatile *)p;
        steps++;
    } while (p != start && steps < limit);
    return steps;
}

/* Times `steps` dependent loads from *cursor and leaves *cursor where they
 * stopped, so the next region goes on along the cycle instead of walking
 * the same (by then cached) slots again. */
uint64_t pimem_time_chase(void **cursor, uint64_t steps)
{
    void **p = *cursor;
    uint64_t t0 = pimem_now_ns();
    uint64_t k = steps / 8;
    while (k--) {
        p = (void **)*p; p = (void **)*p; p = (void **)*p; p = (void **)*p;
        p = (void **)*p; p = (void **)*p; p = (void **)*p; p = (void **)*p;
    }
    for (k = steps % 8; k; k--)
        p = (void **)*p;
    uint64_t t1 = pimem_now_ns();
    *cursor = p;
    return t1 - t0;
}

/* A SIGBUS that names its cause. On a Pi, GPU memory mapped through /dev/mem
 * is Device/strongly-ordered memory: an unaligned access or DC ZVA there is an
 * alignment fault, which the kernel delivers as SIGBUS, and the process dies
 * with a bare "Bus error" (a Jupyter kernel dies silently). The handler writes
 * `note` and the faulting address to stderr (write(2) only: async-signal-safe),
 * puts the previous action back (faulthandler's traceback, or the default) and
 * returns: the faulting access runs again and takes it. A SIGBUS sent by
 * kill(2) is raised again for the same reason. */
static char pimem_bus_note[600];
static size_t pimem_bus_note_len;
static int pimem_bus_fd = 2;
static volatile sig_atomic_t pimem_bus_seen;
static struct sigaction pimem_bus_previous;

static void pimem_on_sigbus(int sig, siginfo_t *info, void *context)
{
    static const char other[] = "pimem: SIGBUS that is not an alignment fault (e.g. a mapped file that shrank)";
    char line[64] = " (address 0x";
    size_t n = strlen(line);
    uintptr_t addr = (uintptr_t)info->si_addr;
    int shift, ok;
    (void)context;
    if (pimem_bus_seen) {   /* handlers that chain to each other must not loop: end it the default way */
        signal(SIGBUS, SIG_DFL);
        if (info->si_code <= 0)
            raise(sig);
        return;
    }
    pimem_bus_seen = 1;
    for (shift = (int)(sizeof addr * 8) - 4; shift >= 0; shift -= 4)
        line[n++] = "0123456789abcdef"[(addr >> shift) & 0xF];
    line[n++] = ')';
    line[n++] = '\n';
    if (info->si_code == BUS_ADRALN || info->si_code <= 0)   /* sent by kill(2): say what it would mean */
        ok = write(pimem_bus_fd, pimem_bus_note, pimem_bus_note_len) >= 0;
    else
        ok = write(pimem_bus_fd, other, sizeof other - 1) >= 0;
    if (ok && info->si_code > 0)   /* si_addr holds a fault address only for a fault */
        ok = write(pimem_bus_fd, line, n) >= 0;
    else if (ok)
        ok = write(pimem_bus_fd, "\n", 1) >= 0;
    (void)ok;   /* nothing more can be done about a failed write here */
    sigaction(SIGBUS, &pimem_bus_previous, NULL);
    if (info->si_code <= 0)
        raise(sig);
}

/* Installs the handler (again if another has replaced it), writing to `fd`; 0 on success. */
int pimem_explain_sigbus(const char *note, int fd)
{
    struct sigaction action, current;
    size_t n = strlen(note);
    if (sigaction(SIGBUS, NULL, &current) == 0 && (current.sa_flags & SA_SIGINFO)
            && current.sa_sigaction == pimem_on_sigbus)
        return 0;
    if (n > sizeof pimem_bus_note)
        n = sizeof pimem_bus_note;
    memcpy(pimem_bus_note, note, n);
    pimem_bus_fd = fd;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = pimem_on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &pimem_bus_previous) != 0)
        return -1;
    pimem_bus_note_len = n;
    return 0;
}
