/*
 * membench: the C reference for pimem's kernels.
 *
 * fill = memset, copy = memcpy, read = sum of the buffer's 64-bit words,
 * latency = one dependent load at a time along a random cycle of 64-byte
 * slots (seconds per access), on page-aligned, page-touched buffers; the
 * loops are pimem's own (pimem/bench/csrc/pimem_core.c, included below), timed
 * with CLOCK_MONOTONIC using
 * pimem.bench.timing's scheme: reps per timed region calibrated 1, 2, 5, 10, ...
 * until a region lasts min_sample_s (calibration counts as warm-up), the
 * rest of the warm-up, then N timed regions. Prints one JSON object per
 * size and operation. Seconds are per one operation.
 *
 * usage: membench [-n iterations] [-w warmup] [-v fill_value] [-t min_sample_s] [-o ops] size...
 * ops: a comma-free string of f (fill), c (copy), r (read), l (latency); default fcrl.
 * sizes in bytes, or with a K, M or G suffix (KiB, MiB, GiB).
 *
 * build: cc -O2 -Wall -Wextra -o membench membench.c   (from benchmarks/)
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The loops themselves: pimem's timing core, the very file pimem builds and
 * loads (one copy of the loops). Build from this folder, or pass -I. */
#include "../pimem/bench/csrc/pimem_core.c"

enum op { OP_FILL, OP_COPY, OP_READ, OP_LATENCY, N_OPS };
static const char *const op_names[N_OPS] = {"fill", "copy", "read", "latency"};

/* Pointer chasing: 64-byte slots (a cache line), 1024 dependent loads per
 * operation, as pimem.bench.benchmarks does (LATENCY_SLOT, LATENCY_STEPS). */
#define LATENCY_SLOT 64
#define LATENCY_STEPS 1024
static void *chase_cursor;

static uint64_t region_ns(enum op op, size_t reps, uint64_t *dst, uint64_t *src,
                          size_t n, int value)
{
    switch (op) {
    case OP_FILL:
        return pimem_time_fill(dst, value, n, reps, 0);
    case OP_COPY:
        return pimem_time_copy(dst, src, n, reps, 0);
    case OP_READ:
        return pimem_time_read(src, n, reps);
    case OP_LATENCY:
        return pimem_time_chase(&chase_cursor, (uint64_t)reps * LATENCY_STEPS);
    default:
        return 0;
    }
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
                    "[-t min_sample_s] [-o fcrl] size...\n"
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

static int bench(size_t n, long iterations, long warmup, int value, double min_sample_s, const char *ops)
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
        if (!strchr(ops, "fcrl"[op]))
            continue;
        size_t per_op = 1;
        if (op == OP_LATENCY) {
            if (!pimem_chase_setup(dst, n, LATENCY_SLOT, 1))
                continue; /* fewer than two slots */
            chase_cursor = dst;
            per_op = LATENCY_STEPS;
        }
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
            samples[i] = (double)region_ns((enum op)op, reps, dst, src, n, value) / 1e9 / (double)reps
                         / (double)per_op;

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
    const char *ops = "fcrl";
    int opt;
    while ((opt = getopt(argc, argv, "n:w:v:t:o:h")) != -1) {
        switch (opt) {
        case 'o':
            if (!*optarg || strspn(optarg, "fcrl") != strlen(optarg)) {
                fprintf(stderr, "membench: ops must be letters of fcrl, got '%s'\n", optarg);
                return 2;
            }
            ops = optarg;
            break;
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
        if (bench(n, iterations, warmup, (int)value, min_sample_s, ops))
            return 1;
    }
    return 0;
}
