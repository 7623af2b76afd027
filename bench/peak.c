/* peak.c: this machine's f32 FMA peak and memcpy bandwidth on T threads, for bench/compare.py.
 *
 *   cc -O2 -march=native -fopenmp bench/peak.c -o peak && ./peak [THREADS]
 *
 * FMA: every thread runs 16 independent accumulator chains of vector FMAs (AVX-512 when the
 * compiler targets it, else AVX2+FMA, else scalar fallback) for a fixed count, best of 5;
 * GFLOP/s = 2 * lanes * FMAs / seconds. 16 chains hide the FMA latency on two FMA pipes.
 * memcpy: every thread copies its own 64 MiB block (far larger than the caches), best of 5;
 * GB/s counts the bytes copied (the memory traffic is twice that: one read, one write).
 * Prints one JSON line: {"isa", "threads", "fma_gflops", "memcpy_gbs"}.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#define CHAINS 16
#define REPS 20000000L

#if defined(__AVX512F__)
#define ISA "avx512f"
#define LANES 16
typedef __m512 vec;
#define VSET(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
static float vsum(vec v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
#define ISA "avx2+fma"
#define LANES 8
typedef __m256 vec;
#define VSET(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
static float vsum(vec v) { float f[8]; _mm256_storeu_ps(f, v); return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7]; }
#else
#define ISA "scalar"
#define LANES 1
typedef float vec;
#define VSET(x) (x)
#define VFMA(a, b, c) ((a) * (b) + (c))
static float vsum(vec v) { return v; }
#endif

static float fma_chains(long reps) {
  vec acc[CHAINS];
  for (int i = 0; i < CHAINS; ++i) acc[i] = VSET(1.0f + i * 1e-3f);
  const vec a = VSET(0.999999f), b = VSET(1e-7f);
  for (long r = 0; r < reps; ++r) {
#pragma GCC unroll 16
    for (int i = 0; i < CHAINS; ++i) acc[i] = VFMA(acc[i], a, b);
  }
  float s = 0;
  for (int i = 0; i < CHAINS; ++i) s += vsum(acc[i]);
  return s;
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
  if (threads < 1) { fprintf(stderr, "usage: peak [THREADS]\n"); return 2; }
  omp_set_num_threads(threads);
  volatile float sink = 0;

  double best_fma = 1e30;
  for (int trial = 0; trial < 6; ++trial) {  /* the first trial warms up (clocks, thread start) */
    const long reps = trial == 0 ? REPS / 10 : REPS;
    double t0 = 0, t1 = 0;
    float s = 0;
#pragma omp parallel reduction(+ : s)
    {
#pragma omp barrier
#pragma omp master
      t0 = omp_get_wtime();
      s += fma_chains(reps);
#pragma omp barrier
#pragma omp master
      t1 = omp_get_wtime();
    }
    sink += s;
    if (trial > 0 && t1 - t0 < best_fma) best_fma = t1 - t0;
  }
  const double fma_gflops = 2.0 * LANES * CHAINS * (double)REPS * threads / best_fma / 1e9;

  const size_t block = (size_t)64 << 20;
  char** src = calloc(threads, sizeof(char*));
  char** dst = calloc(threads, sizeof(char*));
  double best_copy = 1e30;
#pragma omp parallel
  {
    const int t = omp_get_thread_num();  /* first touch by the thread that copies it */
    src[t] = malloc(block);
    dst[t] = malloc(block);
    memset(src[t], t + 1, block);
    memset(dst[t], 0, block);
  }
  for (int trial = 0; trial < 6; ++trial) {
    double t0 = 0, t1 = 0;
#pragma omp parallel
    {
#pragma omp barrier
#pragma omp master
      t0 = omp_get_wtime();
#pragma omp barrier
      const int t = omp_get_thread_num();
      memcpy(dst[t], src[t], block);
#pragma omp barrier
#pragma omp master
      t1 = omp_get_wtime();
    }
    sink += dst[trial % threads][trial];
    if (trial > 0 && t1 - t0 < best_copy) best_copy = t1 - t0;
  }
  const double memcpy_gbs = (double)block * threads / best_copy / 1e9;
  for (int t = 0; t < threads; ++t) { free(src[t]); free(dst[t]); }
  free(src);
  free(dst);
  printf("{\"isa\": \"%s\", \"threads\": %d, \"fma_gflops\": %.1f, \"memcpy_gbs\": %.2f, \"sink\": %g}\n",
         ISA, threads, fma_gflops, memcpy_gbs, (double)sink);
  return 0;
}
