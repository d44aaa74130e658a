/*
 * membench: the C reference for pimem's kernels.
 *
 * fill = memset, copy = memcpy, read = sum of the buffer's 64-bit words,
 * on page-aligned, page-touched buffers, timed with CLOCK_MONOTONIC using
 * pimem.timing's scheme: reps per timed region calibrated 1, 2, 5, 10, ...
 * until a region lasts min_sample_s (calibration counts as warm-up), the
 * rest of the warm-up, then N timed regions. Prints one JSON object per
 * size and operation. Seconds are per one operation.
 *
 * usage: membench [-n iterations] [-w warmup] [-v fill_value] [-t min_sample_s] size...
 * sizes in bytes, or with a K, M or G suffix (KiB, MiB, GiB).
 *
 * build: cc -O2 -Wall -Wextra -o membench membench.c
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Tells the compiler that memory behind p may be read or written here, so it
 * can neither drop a memset/memcpy whose result is never read in C nor hoist
 * a read of unchanged memory out of the repetition loop. Emits no code. */
#define BARRIER(p) __asm__ __volatile__("" : : "r"(p) : "memory")

static volatile uint64_t sink; /* the read's result goes somewhere observable */

enum op { OP_FILL, OP_COPY, OP_READ, N_OPS };
static const char *const op_names[N_OPS] = {"fill", "copy", "read"};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sum mod 2^64 of the little-endian 64-bit words, the last zero-padded:
 * the value pimem's read() returns. The buffer is page-aligned. GCC/Clang
 * vector types with four accumulators, because -O2 (before GCC 12's cheap
 * vectoriser) leaves a plain loop scalar with one add in flight: the
 * reference should read as fast as C reasonably can. */
typedef uint64_t u64x2 __attribute__((vector_size(16)));

static uint64_t sum_words(const uint64_t *w, size_t n)
{
    size_t nw = n / 8, i = 0;
    const u64x2 *v = (const u64x2 *)w;
    u64x2 a0 = {0, 0}, a1 = a0, a2 = a0, a3 = a0;
    for (; i + 8 <= nw; i += 8) {
        a0 += v[i / 2];
        a1 += v[i / 2 + 1];
        a2 += v[i / 2 + 2];
        a3 += v[i / 2 + 3];
    }
    a0 += a1 + a2 + a3;
    uint64_t s = a0[0] + a0[1];
    for (; i < nw; i++)
        s += w[i];
    const unsigned char *tail = (const unsigned char *)(w + nw);
    uint64_t t = 0;
    for (size_t k = 0; k < n % 8; k++)
        t |= (uint64_t)tail[k] << (8 * k);
    return s + t;
}

static uint64_t region_ns(enum op op, size_t reps, uint64_t *dst, uint64_t *src,
                          size_t n, int value)
{
    uint64_t acc = 0;
    uint64_t t0 = now_ns();
    switch (op) {
    case OP_FILL:
        for (size_t r = 0; r < reps; r++) {
            memset(dst, value, n);
            BARRIER(dst);
        }
        break;
    case OP_COPY:
        for (size_t r = 0; r < reps; r++) {
            memcpy(dst, src, n);
            BARRIER(dst);
        }
        break;
    case OP_READ:
        for (size_t r = 0; r < reps; r++) {
            BARRIER(src);
            acc += sum_words(src, n);
        }
        break;
    default:
        break;
    }
    uint64_t t1 = now_ns();
    sink = acc;
    return t1 - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return -1;
    }
    if (*end != '\0' || v == 0 || v > (SIZE_MAX >> shift))
        return -1;
    *out = (size_t)(v << shift);
    return 0;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: membench [-n iterations] [-w warmup] [-v fill_value] "
                    "[-t min_sample_s] size...\n"
                    "  sizes in bytes or with a K, M or G suffix (KiB, MiB, GiB)\n");
}

static uint64_t *alloc_touched(size_t n, int byte)
{
    void *p = NULL;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    if (posix_memalign(&p, (size_t)page, n))
        return NULL;
    memset(p, byte, n); /* first-touch page faults happen here, not in a timed region */
    return p;
}

static int bench(size_t n, long iterations, long warmup, int value, double min_sample_s)
{
    uint64_t *dst = alloc_touched(n, 0x11);
    uint64_t *src = alloc_touched(n, 0x5a);
    double *samples = malloc((size_t)iterations * sizeof *samples);
    if (!dst || !src || !samples) {
        fprintf(stderr, "membench: cannot allocate 2 x %zu bytes\n", n);
        free(dst);
        free(src);
        free(samples);
        return -1;
    }
    const uint64_t min_ns = (uint64_t)(min_sample_s * 1e9);

    for (int op = 0; op < N_OPS; op++) {
        size_t reps = 0;
        long runs = 0;
        for (size_t scale = 1; reps == 0; scale *= 10) {
            static const size_t steps[] = {1, 2, 5};
            for (int i = 0; i < 3; i++) {
                size_t r = scale * steps[i];
                runs++;
                if (region_ns((enum op)op, r, dst, src, n, value) >= min_ns || r >= 1000000000u) {
                    reps = r;
                    break;
                }
            }
        }
        for (long w = runs; w < warmup; w++)
            region_ns((enum op)op, reps, dst, src, n, value);
        for (long i = 0; i < iterations; i++)
            samples[i] = (double)region_ns((enum op)op, reps, dst, src, n, value) / 1e9 / (double)reps;

        qsort(samples, (size_t)iterations, sizeof *samples, cmp_double);
        double median = iterations % 2 ? samples[iterations / 2]
                                       : (samples[iterations / 2 - 1] + samples[iterations / 2]) / 2;
        double mean = 0;
        for (long i = 0; i < iterations; i++)
            mean += samples[i];
        mean /= (double)iterations;
        printf("{\"op\": \"%s\", \"size_bytes\": %zu, \"median_s\": %.9e, \"min_s\": %.9e, "
               "\"mean_s\": %.9e, \"reps\": %zu, \"iterations\": %ld, \"warmup\": %ld, "
               "\"fill_value\": %d}\n",
               op_names[op], n, median, samples[0], mean, reps, iterations, warmup, value);
        fflush(stdout);
    }
    free(dst);
    free(src);
    free(samples);
    return 0;
}

int main(int argc, char **argv)
{
    long iterations = 5, warmup = 1, value = 0xA5;
    double min_sample_s = 0.005;
    int opt;
    while ((opt = getopt(argc, argv, "n:w:v:t:h")) != -1) {
        switch (opt) {
        case 'n':
            if (parse_int(optarg, 1, 1000000, &iterations)) {
                fprintf(stderr, "membench: iterations must be 1..1000000, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'w':
            if (parse_int(optarg, 0, 1000000, &warmup)) {
                fprintf(stderr, "membench: warmup must be 0..1000000, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'v':
            if (parse_int(optarg, 0, 255, &value)) {
                fprintf(stderr, "membench: fill value must be 0..255, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 't': {
            char *end;
            errno = 0;
            min_sample_s = strtod(optarg, &end);
            if (errno || end == optarg || *end != '\0' || !(min_sample_s >= 0 && min_sample_s < 60)) {
                fprintf(stderr, "membench: min_sample_s must be 0..60 seconds, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        default:
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc) {
        usage();
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        size_t n;
        if (parse_size(argv[i], &n)) {
            fprintf(stderr, "membench: bad size '%s' (bytes > 0, or with K, M, G)\n", argv[i]);
            return 2;
        }
        if (bench(n, iterations, warmup, (int)value, min_sample_s))
            return 1;
    }
    return 0;
}
