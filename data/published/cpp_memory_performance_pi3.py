"""A Raspberry Pi 3 Model B Rev 1.2 sweep of sequential-read time by array size, from anetczuk/cpp-memory-performance.

Literal data only (no imports, no network access).
Source repository: https://github.com/anetczuk/cpp-memory-performance, every file read at commit
cba041b93a626e467d60ea79c6da2bdc31feacf0 ("Add measurements", 2019-12-16), the commit that added doc/measurements/rpi3/;
the files are byte-identical at the repository's last commit read, 74e6d0c54b58e2f52b4433131ca062f998e46bed (2020-01-17).

What the program times (src/, read at the same commit): benchmark_array_st allocates one array of uint64_t
(`new value_type[n]`, every element set to 0) as large as its --maxmem argument allows, and for each size times
`for i in 0..iters-1: for x in 0..items-1: sum += container[x]` over the first `items` elements with
std::chrono::high_resolution_clock; it repeats that timed region 4 to 25 times and keeps the fastest. Its raw
file prints, per size: the container's bytes (items x 8 + sizeof(Array), 8 on this 32-bit build: a pointer and a
size_t), that size in KiB ("KB"), time/iter (the fastest region / iters: one pass over the items), time/item
(time/iter / items: ns per 8-byte element), iters (passes per timed region) and items. The plot file holds the
container bytes, the same time/item and the KiB label (column 3, no space before KB).

Fields:
  RAW          the two raw files (gcc, clang builds), verbatim: the quotes.
  PLOT_QUOTES  the first and last lines of the two plot files, verbatim.
  SWEEP        the transcription: per build, (container bytes, items, ns per item) as printed.
  README       lines of doc/README.md describing the board and the method, verbatim.
  CODE         lines of the source that the sidecar's notes rely on, verbatim (leading tabs/spaces stripped).
The unrolled builds (gcc_unroll, clang_unroll) are not transcribed: their loop (iterate_16) adds container[x+0..7]
and container[x+9..15] but never container[x+8] (CODE's "x+7", then "x+ 9"), so it reads 15 of every 16 elements while
the time is still divided by all of them.
No value was interpolated; nothing here was computed.
"""

REPO = "anetczuk/cpp-memory-performance"
COMMIT = "cba041b93a626e467d60ea79c6da2bdc31feacf0"
FILES = {
    "gcc": ("doc/measurements/rpi3/gcc/array_st_data_raw.txt", "doc/measurements/rpi3/gcc/array_st_data_plot.txt"),
    "clang": ("doc/measurements/rpi3/clang/array_st_data_raw.txt", "doc/measurements/rpi3/clang/array_st_data_plot.txt"),
}
URL = "https://github.com/anetczuk/cpp-memory-performance/tree/cba041b93a626e467d60ea79c6da2bdc31feacf0/doc/measurements/rpi3"

RAW = {
    "gcc": """\
136 B 0.132812 KB time/iter: 79.904276 ns time/item: 4.994017 ns iters: 57154 items: 16
200 B 0.195312 KB time/iter: 113.468644 ns time/item: 4.727860 ns iters: 76205 items: 24
264 B 0.257812 KB time/iter: 147.155195 ns time/item: 4.598600 ns iters: 85731 items: 32
392 B 0.382812 KB time/iter: 214.273460 ns time/item: 4.464030 ns iters: 76205 items: 48
520 B 0.507812 KB time/iter: 281.611615 ns time/item: 4.400181 ns iters: 71442 items: 64
776 B 0.757812 KB time/iter: 413.092102 ns time/item: 4.303043 ns iters: 57154 items: 96
1032 B 1.007812 KB time/iter: 546.534473 ns time/item: 4.269801 ns iters: 50010 items: 128
1544 B 1.507812 KB time/iter: 813.453875 ns time/item: 4.236739 ns iters: 38103 items: 192
2056 B 2.007812 KB time/iter: 1080.313540 ns time/item: 4.219975 ns iters: 32149 items: 256
3080 B 3.007812 KB time/iter: 1614.523894 ns time/item: 4.204489 ns iters: 23814 items: 384
4104 B 4.007812 KB time/iter: 2148.107854 ns time/item: 4.195523 ns iters: 19647 items: 512
6152 B 6.007812 KB time/iter: 3215.607250 ns time/item: 4.186989 ns iters: 14289 items: 768
8200 B 8.007812 KB time/iter: 4286.371146 ns time/item: 4.185909 ns iters: 11610 items: 1024
12296 B 12.007812 KB time/iter: 6419.142292 ns time/item: 4.179129 ns iters: 8335 items: 1536
16392 B 16.007812 KB time/iter: 8551.983428 ns time/item: 4.175773 ns iters: 6698 items: 2048
24584 B 24.007812 KB time/iter: 12825.768003 ns time/item: 4.175055 ns iters: 4763 items: 3072
32776 B 32.007812 KB time/iter: 17129.954689 ns time/item: 4.182118 ns iters: 3796 items: 4096
49160 B 48.007812 KB time/iter: 26573.368284 ns time/item: 4.325092 ns iters: 2680 items: 6144
65544 B 64.007812 KB time/iter: 35255.403112 ns time/item: 4.303638 ns iters: 2121 items: 8192
98312 B 96.007812 KB time/iter: 52540.102754 ns time/item: 4.275725 ns iters: 1489 items: 12288
131080 B 128.007812 KB time/iter: 69892.772379 ns time/item: 4.265916 ns iters: 1173 items: 16384
196616 B 192.007812 KB time/iter: 104552.151404 ns time/item: 4.254238 ns iters: 819 items: 24576
262152 B 256.007812 KB time/iter: 139050.352025 ns time/item: 4.243480 ns iters: 642 items: 32768
393224 B 384.007812 KB time/iter: 211007.959732 ns time/item: 4.292968 ns iters: 447 items: 49152
524296 B 512.007812 KB time/iter: 296073.713467 ns time/item: 4.517726 ns iters: 349 items: 65536
786440 B 768.007812 KB time/iter: 487297.293388 ns time/item: 4.957044 ns iters: 242 items: 98304
1048584 B 1.000008 MB time/iter: 682701.428571 ns time/item: 5.208599 ns iters: 189 items: 131072
1572872 B 1.500008 MB time/iter: 1030082.816794 ns time/item: 5.239272 ns iters: 131 items: 196608
2097160 B 2.000008 MB time/iter: 1367084.254902 ns time/item: 5.215013 ns iters: 102 items: 262144
3145736 B 3.000008 MB time/iter: 2051661.728571 ns time/item: 5.217646 ns iters: 70 items: 393216
4194312 B 4.000008 MB time/iter: 2716553.709091 ns time/item: 5.181415 ns iters: 55 items: 524288
6291464 B 6.000008 MB time/iter: 4080934.894737 ns time/item: 5.189177 ns iters: 38 items: 786432
8388616 B 8.000008 MB time/iter: 5505098.068966 ns time/item: 5.250071 ns iters: 29 items: 1048576
12582920 B 12.000008 MB time/iter: 7984204.700000 ns time/item: 5.076221 ns iters: 20 items: 1572864
16777224 B 16.000008 MB time/iter: 10921884.625000 ns time/item: 5.207960 ns iters: 16 items: 2097152
25165832 B 24.000008 MB time/iter: 16192152.454545 ns time/item: 5.147347 ns iters: 11 items: 3145728
33554440 B 32.000008 MB time/iter: 21247796.000000 ns time/item: 5.065869 ns iters: 9 items: 4194304
50331656 B 48.000008 MB time/iter: 31883395.333333 ns time/item: 5.067729 ns iters: 6 items: 6291456
67108872 B 64.000008 MB time/iter: 43194192.400000 ns time/item: 5.149149 ns iters: 5 items: 8388608
100663304 B 96.000008 MB time/iter: 63778405.333333 ns time/item: 5.068652 ns iters: 3 items: 12582912
134217736 B 128.000008 MB time/iter: 85979078.000000 ns time/item: 5.124752 ns iters: 3 items: 16777216
201326600 B 192.000008 MB time/iter: 128426042.000000 ns time/item: 5.103192 ns iters: 2 items: 25165824
268435464 B 256.000008 MB time/iter: 170732781.000000 ns time/item: 5.088233 ns iters: 2 items: 33554432
314572800 B 300.000000 MB time/iter: 199492044.500000 ns time/item: 5.073345 ns iters: 2 items: 39321599
""",
    "clang": """\
136 B 0.132812 KB time/iter: 78.568377 ns time/item: 4.910524 ns iters: 57154 items: 16
200 B 0.195312 KB time/iter: 111.899469 ns time/item: 4.662478 ns iters: 76205 items: 24
264 B 0.257812 KB time/iter: 145.328458 ns time/item: 4.541514 ns iters: 85731 items: 32
392 B 0.382812 KB time/iter: 212.017466 ns time/item: 4.417031 ns iters: 76205 items: 48
520 B 0.507812 KB time/iter: 278.809342 ns time/item: 4.356396 ns iters: 71442 items: 64
776 B 0.757812 KB time/iter: 412.207422 ns time/item: 4.293827 ns iters: 57154 items: 96
1032 B 1.007812 KB time/iter: 545.631754 ns time/item: 4.262748 ns iters: 50010 items: 128
1544 B 1.507812 KB time/iter: 812.662782 ns time/item: 4.232619 ns iters: 38103 items: 192
2056 B 2.007812 KB time/iter: 1079.345236 ns time/item: 4.216192 ns iters: 32149 items: 256
3080 B 3.007812 KB time/iter: 1613.240741 ns time/item: 4.201148 ns iters: 23814 items: 384
4104 B 4.007812 KB time/iter: 2146.971497 ns time/item: 4.193304 ns iters: 19647 items: 512
6152 B 6.007812 KB time/iter: 3214.496886 ns time/item: 4.185543 ns iters: 14289 items: 768
8200 B 8.007812 KB time/iter: 4281.922911 ns time/item: 4.181565 ns iters: 11610 items: 1024
12296 B 12.007812 KB time/iter: 6417.057948 ns time/item: 4.177772 ns iters: 8335 items: 1536
16392 B 16.007812 KB time/iter: 8553.309047 ns time/item: 4.176420 ns iters: 6698 items: 2048
24584 B 24.007812 KB time/iter: 12825.347050 ns time/item: 4.174918 ns iters: 4763 items: 3072
32776 B 32.007812 KB time/iter: 17121.249473 ns time/item: 4.179993 ns iters: 3796 items: 4096
49160 B 48.007812 KB time/iter: 26354.417164 ns time/item: 4.289456 ns iters: 2680 items: 6144
65544 B 64.007812 KB time/iter: 34868.958039 ns time/item: 4.256465 ns iters: 2121 items: 8192
98312 B 96.007812 KB time/iter: 52211.291471 ns time/item: 4.248966 ns iters: 1489 items: 12288
131080 B 128.007812 KB time/iter: 69616.935209 ns time/item: 4.249081 ns iters: 1173 items: 16384
196616 B 192.007812 KB time/iter: 104379.730159 ns time/item: 4.247222 ns iters: 819 items: 24576
262152 B 256.007812 KB time/iter: 139720.272586 ns time/item: 4.263924 ns iters: 642 items: 32768
393224 B 384.007812 KB time/iter: 212256.297539 ns time/item: 4.318365 ns iters: 447 items: 49152
524296 B 512.007812 KB time/iter: 308660.627507 ns time/item: 4.709787 ns iters: 349 items: 65536
786440 B 768.007812 KB time/iter: 492425.103306 ns time/item: 5.009207 ns iters: 242 items: 98304
1048584 B 1.000008 MB time/iter: 690567.365079 ns time/item: 5.268611 ns iters: 189 items: 131072
1572872 B 1.500008 MB time/iter: 1036368.206107 ns time/item: 5.271241 ns iters: 131 items: 196608
2097160 B 2.000008 MB time/iter: 1341192.411765 ns time/item: 5.116243 ns iters: 102 items: 262144
3145736 B 3.000008 MB time/iter: 1998925.514286 ns time/item: 5.083530 ns iters: 70 items: 393216
4194312 B 4.000008 MB time/iter: 2696647.781818 ns time/item: 5.143447 ns iters: 55 items: 524288
6291464 B 6.000008 MB time/iter: 4067819.921053 ns time/item: 5.172501 ns iters: 38 items: 786432
8388616 B 8.000008 MB time/iter: 5567855.103448 ns time/item: 5.309920 ns iters: 29 items: 1048576
12582920 B 12.000008 MB time/iter: 8097921.050000 ns time/item: 5.148520 ns iters: 20 items: 1572864
16777224 B 16.000008 MB time/iter: 10919978.437500 ns time/item: 5.207051 ns iters: 16 items: 2097152
25165832 B 24.000008 MB time/iter: 16166240.909091 ns time/item: 5.139110 ns iters: 11 items: 3145728
33554440 B 32.000008 MB time/iter: 21471669.666667 ns time/item: 5.119245 ns iters: 9 items: 4194304
50331656 B 48.000008 MB time/iter: 32274604.833333 ns time/item: 5.129910 ns iters: 6 items: 6291456
67108872 B 64.000008 MB time/iter: 43068586.400000 ns time/item: 5.134176 ns iters: 5 items: 8388608
100663304 B 96.000008 MB time/iter: 64983773.333333 ns time/item: 5.164446 ns iters: 3 items: 12582912
134217736 B 128.000008 MB time/iter: 85609706.666667 ns time/item: 5.102736 ns iters: 3 items: 16777216
201326600 B 192.000008 MB time/iter: 129792027.000000 ns time/item: 5.157472 ns iters: 2 items: 25165824
268435464 B 256.000008 MB time/iter: 170640250.000000 ns time/item: 5.085476 ns iters: 2 items: 33554432
314572800 B 300.000000 MB time/iter: 202381906.000000 ns time/item: 5.146838 ns iters: 2 items: 39321599
""",
}

PLOT_QUOTES = {
    "gcc": ('136 4.994017 0.132812KB', '314572800 5.073345 300.000000MB'),
    "clang": ('136 4.910524 0.132812KB', '314572800 5.146838 300.000000MB'),
}

SWEEP = {
    "gcc": [
        (136, 16, 4.994017),
        (200, 24, 4.727860),
        (264, 32, 4.598600),
        (392, 48, 4.464030),
        (520, 64, 4.400181),
        (776, 96, 4.303043),
        (1032, 128, 4.269801),
        (1544, 192, 4.236739),
        (2056, 256, 4.219975),
        (3080, 384, 4.204489),
        (4104, 512, 4.195523),
        (6152, 768, 4.186989),
        (8200, 1024, 4.185909),
        (12296, 1536, 4.179129),
        (16392, 2048, 4.175773),
        (24584, 3072, 4.175055),
        (32776, 4096, 4.182118),
        (49160, 6144, 4.325092),
        (65544, 8192, 4.303638),
        (98312, 12288, 4.275725),
        (131080, 16384, 4.265916),
        (196616, 24576, 4.254238),
        (262152, 32768, 4.243480),
        (393224, 49152, 4.292968),
        (524296, 65536, 4.517726),
        (786440, 98304, 4.957044),
        (1048584, 131072, 5.208599),
        (1572872, 196608, 5.239272),
        (2097160, 262144, 5.215013),
        (3145736, 393216, 5.217646),
        (4194312, 524288, 5.181415),
        (6291464, 786432, 5.189177),
        (8388616, 1048576, 5.250071),
        (12582920, 1572864, 5.076221),
        (16777224, 2097152, 5.207960),
        (25165832, 3145728, 5.147347),
        (33554440, 4194304, 5.065869),
        (50331656, 6291456, 5.067729),
        (67108872, 8388608, 5.149149),
        (100663304, 12582912, 5.068652),
        (134217736, 16777216, 5.124752),
        (201326600, 25165824, 5.103192),
        (268435464, 33554432, 5.088233),
        (314572800, 39321599, 5.073345),
    ],
    "clang": [
        (136, 16, 4.910524),
        (200, 24, 4.662478),
        (264, 32, 4.541514),
        (392, 48, 4.417031),
        (520, 64, 4.356396),
        (776, 96, 4.293827),
        (1032, 128, 4.262748),
        (1544, 192, 4.232619),
        (2056, 256, 4.216192),
        (3080, 384, 4.201148),
        (4104, 512, 4.193304),
        (6152, 768, 4.185543),
        (8200, 1024, 4.181565),
        (12296, 1536, 4.177772),
        (16392, 2048, 4.176420),
        (24584, 3072, 4.174918),
        (32776, 4096, 4.179993),
        (49160, 6144, 4.289456),
        (65544, 8192, 4.256465),
        (98312, 12288, 4.248966),
        (131080, 16384, 4.249081),
        (196616, 24576, 4.247222),
        (262152, 32768, 4.263924),
        (393224, 49152, 4.318365),
        (524296, 65536, 4.709787),
        (786440, 98304, 5.009207),
        (1048584, 131072, 5.268611),
        (1572872, 196608, 5.271241),
        (2097160, 262144, 5.116243),
        (3145736, 393216, 5.083530),
        (4194312, 524288, 5.143447),
        (6291464, 786432, 5.172501),
        (8388616, 1048576, 5.309920),
        (12582920, 1572864, 5.148520),
        (16777224, 2097152, 5.207051),
        (25165832, 3145728, 5.139110),
        (33554440, 4194304, 5.119245),
        (50331656, 6291456, 5.129910),
        (67108872, 8388608, 5.134176),
        (100663304, 12582912, 5.164446),
        (134217736, 16777216, 5.102736),
        (201326600, 25165824, 5.157472),
        (268435464, 33554432, 5.085476),
        (314572800, 39321599, 5.146838),
    ],
}

README = [   # doc/README.md
    '- measuring access times of raw array (C-styled) on single thread,',
    '    4. access time is calculated by dividing fastest iteration time per number of elements',
    '- *Raspbery Pi 3*',
    '### <a name="rpi"></a> Raspberry Pi 3 Model B Rev 1.2',
    '- Broadcom BCM2837 SoC with ARMv7 Processor rev 4 (v7l) - ARM Cortex-A53 @ 1200 MHz',
    '- 4 cores, 1 thread per core',
    '- L1 cache: 32kB',
    '- L2 cache: 512kB',
    '- type: SDRAM',
    '- speed: 900 MHz',
    '- size: 1 GB (shared by the GPU and CPU)',
    '- g++ 4.9.2',
    '- clang++ 3.5.0',
    'OS: Raspbian 8 (jessie)',
]

CODE = {
    "src/mem_performance/Array.h": [
        'value_type* raw_data;',
        'std::size_t data_size;',
        'raw_data = new value_type[data_size];',
        'raw_data[i] = initVal;',
    ],
    "src/mem_performance/ArrayExperiment.h": [
        'for(std::size_t x=0; x<listSize; ++x) {',
        'sum += container[x];',
        'sum += container[x+7];',
        'sum += container[x+ 9];',
        'ArrayExperiment(): MemoryExperiment( sizeof(InnerType), sizeof(BType) ), container() {',
        'const uint64_t dur = trait<InnerType, UNROLL>::iterate(list, containerSize, itersNum);',
        'if (dur < bestDur)',
        'container = BType( elementsNumber, 0 );',
    ],
    "src/mem_performance/MemoryExperiment.h": [
        'const std::size_t repeats = (1.0 - expFactor) * REPEATS_MAX + expFactor * REPEATS_MIN;',
        'const std::size_t memSizeB = currListSize * DATA_SIZE + CONTAINER_SIZE;',
    ],
    "src/benchmark/ContainerExperiment.h": [
        'static const std::size_t REPEATS_MAX = 25;                          /// number of repeats per experiment',
        'static const std::size_t REPEATS_MIN =  4;                          /// number of repeats per experiment',
        'const double timePerIter = double(duration) / iters;',
        'const double timePerElem = timePerIter / listSize;',
    ],
    "src/benchmark/benchmark_time.h": [
        '#define MEASURE_TIME()          std::chrono::high_resolution_clock::now()',
    ],
    "src/mem_performance/unroll.h": [
        'static const std::size_t UNROLL = 16;',
    ],
}
