// Fused pairwise reductions for otgen's "native" backend (CPU).
//
// Each function reduces over all pairs (i, j) of two point clouds without
// storing anything of size n x m: the cost or kernel of a pair is computed,
// transformed and accumulated in registers, over tiles of TILE columns that
// stay in cache while a block of rows uses them. Blocks of ROWS rows
// are handed out dynamically to `nthreads` OpenMP threads (torch's pool, see
// parallel_units), so triangular loops stay balanced. The inner loops over j
// are written for the compiler's auto-vectoriser (`#pragma omp simd`): y is
// passed transposed, (d, m), so that coordinate k of consecutive points is
// contiguous. exp is a branch-free Cody-Waite range reduction with a Taylor
// polynomial (no libm call), accurate to about 1 ulp on [-87, 0] (float) /
// [-708, 0] (double).
//
// Squared distances are sums of squared coordinate differences, never
// |x|^2 + |y|^2 - 2 <x, y>: no cancellation in float32.
//
// Built on first use by otgen/ot/_native/__init__.py (g++ -O3 -march=native
// -fassociative-math: the plain sum loops below are vectorised by the
// compiler; `omp simd reduction(+)` kept the accumulator in memory).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {

constexpr int64_t ROWS = 64;   // rows per work unit
constexpr int64_t TILE = 512;  // columns per tile (stays in L1)

inline float exp_neg(float t) {  // exp(t), t in [-87, 0] (caller clamps)
  // t = k ln 2 + r, |r| <= ln(2) / 2; exp(t) = 2^k exp(r). Rounding by
  // nearbyint (not the 1.5 * 2^23 shifter, which -fassociative-math folds).
  float kf = std::nearbyint(t * 1.44269504088896341f);
  int32_t k = (int32_t)kf;
  float r = t - kf * 0.693145751953125f;
  r -= kf * 1.428606765330187045e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  uint32_t e = (uint32_t)(k + 127) << 23;
  float s;
  std::memcpy(&s, &e, 4);
  return p * s;
}

inline double exp_neg(double t) {  // exp(t), t in [-708, 0]
  double kd = std::nearbyint(t * 1.4426950408889634074);
  int32_t k = (int32_t)kd;
  double r = t - kd * 6.93147180369123816490e-01;
  r -= kd * 1.90821492927058770002e-10;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  uint64_t e = (uint64_t)(int64_t)(k + 1023) << 52;
  double s;
  std::memcpy(&s, &e, 8);
  return p * s;
}

template <class T>
constexpr T exp_floor() {
  return sizeof(T) == 4 ? T(-87) : T(-708);
}

template <class T>
inline T sqrt_(T v) {
  return std::sqrt(v);
}

// Run f(u) for the work units u in [0, count), handed out one at a time
// (dynamic schedule) to `nthreads` threads: balanced for uneven units. The
// threads are OpenMP's: the library links the libgomp that torch has already
// loaded, so these loops run on torch's own thread pool. With a separate
// pool, torch's threads, which spin for a while after each parallel torch
// op, took the cores from ours (measured: benchmarks/README.md, "Native
// loops: design measurements").
template <class F>
void parallel_units(int64_t count, int nthreads, F f) {
  if (nthreads > count) nthreads = (int)std::max<int64_t>(count, 1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
  for (int64_t u = 0; u < count; ++u) f(u);
}

// Run f(i0, i1) over blocks of ROWS rows.
template <class F>
void parallel_rows(int64_t n, int nthreads, F f) {
  parallel_units((n + ROWS - 1) / ROWS, nthreads, [&](int64_t b) {
    f(b * ROWS, std::min(n, (b + 1) * ROWS));
  });
}

// The work units of the soft-min loops: rows [r0, r1) against the columns of
// `nr` ranges [rg[2k], rg[2k + 1]). Dense (rptr == nullptr): blocks of ROWS
// rows against [0, m). Block-sparse (multiscale): unit u is the row cluster
// [rptr[u], rptr[u + 1]) against the ranges rg[2 cptr[u] .. 2 cptr[u + 1]).
struct Units {
  int64_t n, m, count;
  const int64_t* rptr;
  const int64_t* cptr;
  const int64_t* rg;
  int64_t all[2];

  Units(int64_t n_, int64_t m_, int64_t nunits, const int64_t* rptr_,
        const int64_t* cptr_, const int64_t* rg_)
      : n(n_), m(m_), rptr(rptr_), cptr(cptr_), rg(rg_) {
    all[0] = 0;
    all[1] = m_;
    count = rptr ? nunits : (n + ROWS - 1) / ROWS;
  }
  void get(int64_t u, int64_t& r0, int64_t& r1, const int64_t*& cols,
           int64_t& nr) const {
    if (!rptr) {
      r0 = u * ROWS;
      r1 = std::min(n, r0 + ROWS);
      cols = all;
      nr = 1;
    } else {
      r0 = rptr[u];
      r1 = rptr[u + 1];
      cols = rg + 2 * cptr[u];
      nr = cptr[u + 1] - cptr[u];
    }
  }
};

constexpr int STORED = -1;  // D: the tile's values are read from a matrix row

// Squared distances |x_i - y_j|^2 for the columns of one tile; y is passed
// transposed, (d, m). D > 0: the coordinates are unrolled and each distance
// is computed where it is used; D = 0 (any d): the tile's distances are
// computed first, coordinate by coordinate, into a buffer. D = STORED: xi is
// row i of a stored matrix whose values are used as they are (the Sinkhorn
// cost matrix of the "dense" backend).
template <class T, int D>
struct Tile {
  const T* __restrict yk[D > 0 ? D : 1];
  T xk[D > 0 ? D : 1];
  const T* __restrict buf;

  Tile(const T* xi, const T* yt, int64_t m, int d, int64_t j0, int64_t len,
       T* scratch) {
    if (D == STORED) {
      buf = xi + j0;
      return;
    }
    if (D > 0) {
      for (int k = 0; k < D; ++k) {
        yk[k] = yt + (int64_t)k * m + j0;
        xk[k] = xi[k];
      }
      buf = nullptr;
      return;
    }
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) scratch[j] = T(0);
    int k = 0;
    for (; k + 4 <= d; k += 4) {  // four coordinates per pass over the tile
      const T x0 = xi[k], x1 = xi[k + 1], x2 = xi[k + 2], x3 = xi[k + 3];
      const T* __restrict y0 = yt + (int64_t)k * m + j0;
      const T* __restrict y1 = y0 + m;
      const T* __restrict y2 = y1 + m;
      const T* __restrict y3 = y2 + m;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        T a = x0 - y0[j], b = x1 - y1[j], c = x2 - y2[j], e = x3 - y3[j];
        scratch[j] += (a * a + b * b) + (c * c + e * e);
      }
    }
    for (; k < d; ++k) {
      const T xv = xi[k];
      const T* __restrict yv = yt + (int64_t)k * m + j0;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        T diff = xv - yv[j];
        scratch[j] += diff * diff;
      }
    }
    buf = scratch;
  }

  inline T operator()(int64_t j) const {
    if (D <= 0) return buf[j];
    T acc = T(0);
#pragma GCC unroll 8
    for (int k = 0; k < (D > 0 ? D : 1); ++k) {
      T diff = xk[k] - yk[k][j];
      acc += diff * diff;
    }
    return acc;
  }
};

// gacc[k] += sum_j e[j] (x_ik - y_jk) over the columns of one tile: the
// gradient sums of the soft-min and kernel backward passes.
template <class T>
inline void add_weighted_diffs(const T* xi, const T* yt, int64_t m, int dd,
                               int64_t j0, int64_t len, const T* e,
                               double* gacc) {
  for (int k = 0; k < dd; ++k) {
    const T xk = xi[k];
    const T* yk = yt + (int64_t)k * m + j0;
    T gk = T(0);
    for (int64_t j = 0; j < len; ++j) gk += e[j] * (xk - yk[j]);
    gacc[k] += double(gk);
  }
}

// The same for R rows at once (e: R rows of TILE), each y coordinate loaded
// serving the R rows; rows >= nrows must have e = 0.
template <class T, int R>
inline void add_weighted_diffs_rows(const T* const* xr, int nrows,
                                    const T* yt, int64_t m, int dd, int64_t j0,
                                    int64_t len, const T* e,
                                    double (*gacc)[64]) {
  for (int k = 0; k < dd; ++k) {
    T xv[R];
    for (int r = 0; r < R; ++r) xv[r] = xr[r][k];
    const T* __restrict yk = yt + (int64_t)k * m + j0;
    T g[R] = {};
    for (int64_t j = 0; j < len; ++j) {
      const T yv = yk[j];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) g[r] += e[r * TILE + j] * (xv[r] - yv);
    }
    for (int r = 0; r < nrows; ++r) gacc[r][k] += double(g[r]);
  }
}

template <class T>
struct Row {  // a distance buffer as a tile accessor (may alias s below)
  const T* p;
  inline T operator()(int64_t j) const { return p[j]; }
};

// Squared distances of R rows xr[0..R-1] to the columns [j0, j0 + len) into
// s[r * TILE + j] (any d): each y coordinate loaded serves R rows, which
// speeds up the any-d loop at d = 64 (benchmarks/README.md, "Native loops:
// design measurements").
template <class T, int R>
void dist_rows(const T* const* xr, int d, const T* yt, int64_t m, int64_t j0,
               int64_t len, T* s) {
  for (int r = 0; r < R; ++r)
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) s[r * TILE + j] = T(0);
  int k = 0;
  for (; k + 4 <= d; k += 4) {
    T xv[R][4];
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < 4; ++q) xv[r][q] = xr[r][k + q];
    const T* __restrict y0 = yt + (int64_t)k * m + j0;
    const T* __restrict y1 = y0 + m;
    const T* __restrict y2 = y1 + m;
    const T* __restrict y3 = y2 + m;
    T* __restrict out = s;
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      const T v0 = y0[j], v1 = y1[j], v2 = y2[j], v3 = y3[j];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const T a = xv[r][0] - v0, b = xv[r][1] - v1;
        const T c = xv[r][2] - v2, e = xv[r][3] - v3;
        out[r * TILE + j] += (a * a + b * b) + (c * c + e * e);
      }
    }
  }
  for (; k < d; ++k) {
    const T* __restrict yv = yt + (int64_t)k * m + j0;
    for (int r = 0; r < R; ++r) {
      const T xk = xr[r][k];
      T* __restrict out = s + r * TILE;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        const T diff = xk - yv[j];
        out[j] += diff * diff;
      }
    }
  }
}

// From KROWS_MIN_DIM coordinates on (D = 0), the kernel sums and the
// soft-min take rows by groups of KROWS sharing their distance passes
// (faster for kernel sums at d = 64, even at d = 16, slower at d <= 8:
// benchmarks/README.md, "Native loops: design measurements").
constexpr int KROWS = 4;
constexpr int KROWS_MIN_DIM = 16;
// The soft-min (and its gradient pass, which uses the same threshold) gains
// from 9 coordinates on; even at d = 8, slower at d <= 6 (same section).
constexpr int LSE_ROWS_MIN_DIM = 9;

// The group of rows g, g + 1, ... (at most KROWS, up to row `end`): their
// pointers into x in xr (a ragged group repeats its last row) and their
// squared distances to the tile's columns in s[r * TILE + j]. Returns the
// number of rows in the group.
template <class T>
inline int group_distances(const T* x, int d, int64_t g, int64_t end,
                           const T* yt, int64_t m, int64_t j0, int64_t len,
                           T* s, const T** xr) {
  const int rows = (int)std::min<int64_t>(KROWS, end - g);
  for (int r = 0; r < KROWS; ++r) xr[r] = x + (g + std::min(r, rows - 1)) * d;
  dist_rows<T, KROWS>(xr, d, yt, m, j0, len, s);
  return rows;
}

// ---------------------------------------------------------------------------
// Soft-min: lse_i = log sum_j exp(h_j - C(x_i, y_j) * inv_eps), with
// C = |x - y|^2 (P = 2) or |x - y| (P = 1).
// ---------------------------------------------------------------------------
// One tile of one row's soft-min: s[j] = h_j - C_j * inv_eps, with C_j read
// from d2 (which may alias s), folded into the running (mx, acc):
// lse = mx + log(acc).
template <class T, int P, class Acc>
inline void lse_tile(const Acc& d2, const T* __restrict hj, int64_t len,
                     T inv_eps, T* s, T& mx, double& acc) {
  T tmx = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : tmx)
  for (int64_t j = 0; j < len; ++j) {
    T c = P == 1 ? sqrt_(d2(j)) : d2(j);
    T v = hj[j] - c * inv_eps;
    s[j] = v;
    tmx = std::max(tmx, v);
  }
  if (tmx > mx) {
    if (acc > 0.0) acc *= std::exp(double(mx - tmx));
    mx = tmx;
  }
  if (mx == -std::numeric_limits<T>::infinity()) return;
  const T lo = exp_floor<T>();
  T part = T(0);
  for (int64_t j = 0; j < len; ++j) part += exp_neg(std::max(s[j] - mx, lo));
  acc += double(part);
}

template <class T>
inline T lse_value(T mx, double acc) {
  return acc > 0.0 ? T(double(mx) + std::log(acc))
                   : -std::numeric_limits<T>::infinity();
}

// Rows are taken by blocks of up to RBLOCK, columns by tiles in the outer
// loop: a tile of y (TILE points, d coordinates: 128 KB at d = 64 in float32)
// is read from memory once per block and then served from cache to all of
// the block's rows. Row by row, the whole of y streamed from memory for each
// row (group), which made large m slower per pair (same section).
constexpr int64_t RBLOCK = 64;

template <class T, int D, int P>
void softmin_rows(const Units& U, int d, const T* x, const T* yt, const T* h,
                  T inv_eps, T* out, int nthreads) {
  const int64_t m = U.m;
  const bool grouped = D == 0 && d >= LSE_ROWS_MIN_DIM;
  const int64_t step = grouped ? KROWS : 1;
  parallel_units(U.count, nthreads, [&](int64_t u) {
    alignas(64) T s[(D == 0 ? KROWS : 1) * TILE];
    T mx[RBLOCK];
    double acc[RBLOCK];
    int64_t i0, i1, nr;
    const int64_t* cols;
    U.get(u, i0, i1, cols, nr);
    for (int64_t b0 = i0; b0 < i1; b0 += RBLOCK) {
      const int64_t b1 = std::min(i1, b0 + RBLOCK);
      for (int64_t r = 0; r < b1 - b0; ++r) {
        mx[r] = -std::numeric_limits<T>::infinity();
        acc[r] = 0.0;
      }
      for (int64_t q = 0; q < nr; ++q) {
        for (int64_t j0 = cols[2 * q]; j0 < cols[2 * q + 1]; j0 += TILE) {
          const int64_t len = std::min(TILE, cols[2 * q + 1] - j0);
          for (int64_t g = b0; g < b1; g += step) {
            const int64_t k = g - b0;
            if (grouped) {
              const T* xr[KROWS];
              const int rows =
                  group_distances(x, d, g, b1, yt, m, j0, len, s, xr);
              for (int r = 0; r < rows; ++r) {
                T* sr = s + r * TILE;
                lse_tile<T, P>(Row<T>{sr}, h + j0, len, inv_eps, sr,
                               mx[k + r], acc[k + r]);
              }
            } else {
              const Tile<T, D> d2(x + g * d, yt, m, d, j0, len, s);
              lse_tile<T, P>(d2, h + j0, len, inv_eps, s, mx[k], acc[k]);
            }
          }
        }
      }
      for (int64_t r = 0; r < b1 - b0; ++r)
        out[b0 + r] = lse_value(mx[r], acc[r]);
    }
  });
}

// The weights of one row over one tile: s[j] = e_ij = w_j exp(ai + bj[j] -
// C_j * inv_eps) (C_j read from d2, which may alias s: read, then
// overwritten at the same j) and e[j] = e_ij dC/d(x - y) / (x - y): 2 for
// P = 2, 1 / r for P = 1 (0 at r = 0). Returns sum_j e_ij.
template <class T, int P, class Acc>
inline T exp_weights(const Acc& d2, T ai, const T* __restrict bj,
                     const T* __restrict wj, int64_t len, T inv_eps, T* s,
                     T* e) {
  const T lo = exp_floor<T>();
#pragma omp simd
  for (int64_t j = 0; j < len; ++j) {
    T r = P == 1 ? sqrt_(d2(j)) : d2(j);
    T arg = std::max(ai + bj[j] - r * inv_eps, lo);
    T v = exp_neg(std::min(arg, T(0)));
    s[j] = v;
    e[j] = v * (P == 1 ? (r > T(0) ? T(1) / r : T(0)) : T(2));
  }
  if (wj) {
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) {
      s[j] *= wj[j];
      e[j] *= wj[j];
    }
  }
  T part = T(0);
  for (int64_t j = 0; j < len; ++j) part += s[j];
  return part;
}

// Envelope gradient of the soft-min. Weights e_ij = w_j exp(al_i + be_j -
// C_ij * inv_eps) (w = nullptr: w_j = 1); returns
// G_i = sum_j e_ij grad_{x_i} C(x_i, y_j) (n x d) and S_i = sum_j e_ij.
// Blocks of rows, tiles of y in the outer loop, and from LSE_ROWS_MIN_DIM
// on groups of KROWS rows, as in softmin_rows.
template <class T, int D, int P>
void expgrad_rows(const Units& U, int d, const T* x, const T* yt, const T* al,
                  const T* be, const T* w, T inv_eps, T* G, T* S,
                  int nthreads) {
  const int64_t m = U.m;
  const bool grouped = D == 0 && d >= LSE_ROWS_MIN_DIM;
  parallel_units(U.count, nthreads, [&](int64_t u) {
    alignas(64) T s[(D == 0 ? KROWS : 1) * TILE];
    alignas(64) T e[(D == 0 ? KROWS : 1) * TILE];
    const int dd = D > 0 ? D : d;
    int64_t i0, i1, nr;
    const int64_t* cols;
    U.get(u, i0, i1, cols, nr);
    double gacc[RBLOCK][64];
    double sacc[RBLOCK];
    for (int64_t b0 = i0; b0 < i1; b0 += RBLOCK) {
      const int64_t b1 = std::min(i1, b0 + RBLOCK);
      for (int64_t r = 0; r < b1 - b0; ++r) {
        for (int k = 0; k < dd; ++k) gacc[r][k] = 0.0;
        sacc[r] = 0.0;
      }
      for (int64_t q = 0; q < nr; ++q) {
        for (int64_t j0 = cols[2 * q]; j0 < cols[2 * q + 1]; j0 += TILE) {
          const int64_t len = std::min(TILE, cols[2 * q + 1] - j0);
          const T* __restrict bj = be + j0;
          const T* __restrict wj = w ? w + j0 : nullptr;
          if (!grouped) {
            for (int64_t i = b0; i < b1; ++i) {
              const T* xi = x + i * d;
              const Tile<T, D> d2(xi, yt, m, d, j0, len, s);
              sacc[i - b0] += double(
                  exp_weights<T, P>(d2, al[i], bj, wj, len, inv_eps, s, e));
              add_weighted_diffs(xi, yt, m, dd, j0, len, e, gacc[i - b0]);
            }
            continue;
          }
          for (int64_t g = b0; g < b1; g += KROWS) {
            const T* xr[KROWS];
            const int rows =
                group_distances(x, d, g, b1, yt, m, j0, len, s, xr);
            for (int r = 0; r < rows; ++r) {
              T* sr = s + r * TILE;
              sacc[g - b0 + r] += double(exp_weights<T, P>(
                  Row<T>{sr}, al[g + r], bj, wj, len, inv_eps, sr,
                  e + r * TILE));
            }
            for (int r = rows; r < KROWS; ++r)
              std::fill(e + r * TILE, e + r * TILE + len, T(0));
            add_weighted_diffs_rows<T, KROWS>(xr, rows, yt, m, dd, j0, len, e,
                                              gacc + (g - b0));
          }
        }
      }
      for (int64_t i = b0; i < b1; ++i) {
        for (int k = 0; k < dd; ++k) G[i * d + k] = T(gacc[i - b0][k]);
        S[i] = T(sacc[i - b0]);
      }
    }
  });
}

// ---------------------------------------------------------------------------
// Kernel sums: out_i = sum_j k(x_i, y_j) V_j (V: m x p, p <= 8), radial
// kernels of r^2 summed over scales. tri = 1: y = x and only j > i (the
// strict upper triangle). Accumulated per tile in T, across tiles in double.
// ---------------------------------------------------------------------------
enum Kind { GAUSSIAN = 0, LAPLACIAN = 1, IMQ = 2, ENERGY1 = 3, ENERGY2 = 4 };

template <class T>
inline T kval(int kind, T d2, T c) {  // c: the per-scale constant
  switch (kind) {
    case GAUSSIAN:
      return exp_neg(std::max(d2 * c, exp_floor<T>()));  // c = -1 / (2 s^2)
    case LAPLACIAN:
      return exp_neg(std::max(sqrt_(d2) * c, exp_floor<T>()));  // c = -1 / s
    case IMQ:
      return c / (c + d2);  // c = s
    case ENERGY1:
      return sqrt_(d2) * c;  // c = -1 / s
    default:
      return d2 * c;  // ENERGY2, c = -1 / s^2
  }
}

// d k / d(r^2)
template <class T>
inline T kder(int kind, T d2, T c) {
  switch (kind) {
    case GAUSSIAN:
      return c * exp_neg(std::max(d2 * c, exp_floor<T>()));
    case LAPLACIAN: {
      T r = sqrt_(d2);
      return r > T(0) ? T(0.5) * c / r * exp_neg(std::max(r * c, exp_floor<T>()))
                      : T(0);
    }
    case IMQ: {
      T q = T(1) / (c + d2);
      return -c * q * q;
    }
    case ENERGY1: {
      T r = sqrt_(d2);
      return r > T(0) ? T(0.5) * c / r : T(0);
    }
    default:
      return c;
  }
}

// out[j] = sum_q f(s[j], consts[q]) over the nsc scales of a kernel.
template <class T, class F>
inline void sum_scales(T* out, const T* s, int64_t len, int nsc,
                       const T* consts, F f) {
#pragma omp simd
  for (int64_t j = 0; j < len; ++j) out[j] = f(s[j], consts[0]);
  for (int q = 1; q < nsc; ++q) {
    const T c = consts[q];
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) out[j] += f(s[j], c);
  }
}

// acc[c] += sum_j k(d2(j)) V_c,j0+j over one tile of len columns; d2 is the
// tile's squared-distance accessor and s a TILE buffer it may alias.
template <class T, int KIND, class Dist>
inline void kernel_tile(const Dist& d2, int64_t len, int nsc, const T* consts,
                        const T* V, int64_t m, int64_t j0, int p, T* s, T* kv,
                        double* acc) {
  if (nsc == 1) {
    const T c0 = consts[0];
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) kv[j] = kval<T>(KIND, d2(j), c0);
  } else {
#pragma omp simd
    for (int64_t j = 0; j < len; ++j) s[j] = d2(j);
    sum_scales(kv, s, len, nsc, consts,
               [](T r2, T c) { return kval<T>(KIND, r2, c); });
  }
  for (int c = 0; c < p; ++c) {
    T part = T(0);
    const T* vc = V + (int64_t)c * m + j0;  // V passed transposed (p, m)
    for (int64_t j = 0; j < len; ++j) part += kv[j] * vc[j];
    acc[c] += double(part);
  }
}

template <class T, int D, int KIND>
void kernel_rows(int64_t n, int64_t m, int d, const T* x, const T* yt,
                 const T* V, int p, int nsc, const T* consts, int tri,
                 double* out, int nthreads) {
  parallel_rows(n, nthreads, [&](int64_t i0, int64_t i1) {
    alignas(64) T s[(D > 0 ? 1 : KROWS) * TILE];
    alignas(64) T kv[TILE];
    if (D > 0 || d < KROWS_MIN_DIM) {  // row by row (y stays in cache)
      for (int64_t i = i0; i < i1; ++i) {
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t j0 = tri ? i + 1 : 0; j0 < m; j0 += TILE) {
          const int64_t len = std::min(TILE, m - j0);
          const Tile<T, D> d2(x + i * d, yt, m, d, j0, len, s);
          kernel_tile<T, KIND>(d2, len, nsc, consts, V, m, j0, p, s, kv, acc);
        }
        for (int c = 0; c < p; ++c) out[i * p + c] = acc[c];
      }
      return;
    }
    // Groups of KROWS rows; tiles of y in the outer loop, as in softmin_rows
    // (faster at large N and d = 64; at d = 3, where y stays in cache, row by
    // row is faster: same section).
    double acc[ROWS][8] = {};
    // tri: row i sums over j > i; the block's tiles start at i0 + 1.
    for (int64_t j0 = tri ? i0 + 1 : 0; j0 < m; j0 += TILE) {
      const int64_t len = std::min(TILE, m - j0);
      for (int64_t g = i0; g < i1; g += KROWS) {
        if (tri && g + 1 >= j0 + len) break;  // this row on: nothing here
        const T* xr[KROWS];
        const int rows = group_distances(x, d, g, i1, yt, m, j0, len, s, xr);
        for (int r = 0; r < rows; ++r) {
          const int64_t off = tri ? std::max<int64_t>(0, g + r + 1 - j0) : 0;
          if (off >= len) continue;
          T* sr = s + r * TILE + off;
          kernel_tile<T, KIND>(Row<T>{sr}, len - off, nsc, consts, V, m,
                               j0 + off, p, sr, kv, acc[g - i0 + r]);
        }
      }
    }
    for (int64_t i = i0; i < i1; ++i)
      for (int c = 0; c < p; ++c) out[i * p + c] = acc[i - i0][c];
  });
}

// G_i = sum_j 2 k'(r_ij^2) (U_i . V_j) (x_i - y_j): the gradient in x of
// sum_ij k(x_i, y_j) U_i . V_j. U: n x p, V passed transposed (p, m).
template <class T, int D, int KIND>
void kernel_grad_rows(int64_t n, int64_t m, int d, const T* x, const T* yt,
                      const T* U, const T* V, int p, int nsc, const T* consts,
                      T* G, int nthreads) {
  parallel_rows(n, nthreads, [&](int64_t i0, int64_t i1) {
    alignas(64) T s[TILE];
    alignas(64) T e[TILE];
    alignas(64) T uv[TILE];
    const int dd = D > 0 ? D : d;
    for (int64_t i = i0; i < i1; ++i) {
      const T* xi = x + i * d;
      double gacc[64];
      for (int k = 0; k < dd; ++k) gacc[k] = 0.0;
      for (int64_t j0 = 0; j0 < m; j0 += TILE) {
        const int64_t len = std::min(TILE, m - j0);
        const Tile<T, D> d2(xi, yt, m, d, j0, len, s);
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) s[j] = d2(j);
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) uv[j] = T(0);
        for (int c = 0; c < p; ++c) {
          const T uc = U[i * p + c];
          const T* vc = V + (int64_t)c * m + j0;
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) uv[j] += uc * vc[j];
        }
        sum_scales(e, s, len, nsc, consts,
                   [](T r2, T c) { return kder<T>(KIND, r2, c); });
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) e[j] *= T(2) * uv[j];
        add_weighted_diffs(xi, yt, m, dd, j0, len, e, gacc);
      }
      for (int k = 0; k < dd; ++k) G[i * d + k] = T(gacc[k]);
    }
  });
}

// Dispatch on the dimension: 2 and 3 unrolled, any other d <= 64 generic
// (fewer instantiations keep the first-use build short).
template <class F>
void by_dim(int d, F f) {
  switch (d) {
    case 2: f(std::integral_constant<int, 2>()); break;
    case 3: f(std::integral_constant<int, 3>()); break;
    default: f(std::integral_constant<int, 0>()); break;
  }
}

template <class T>
void softmin_any(const Units& U, int d, const T* x, const T* yt, const T* h,
                 double inv_eps, int p, T* out, int nt) {
  by_dim(d, [&](auto D) {
    if (p == 1)
      softmin_rows<T, decltype(D)::value, 1>(U, d, x, yt, h, T(inv_eps), out, nt);
    else
      softmin_rows<T, decltype(D)::value, 2>(U, d, x, yt, h, T(inv_eps), out, nt);
  });
}

template <class T>
void expgrad_any(const Units& U, int d, const T* x, const T* yt, const T* al,
                 const T* be, const T* w, double inv_eps, int p, T* G, T* S,
                 int nt) {
  by_dim(d, [&](auto D) {
    if (p == 1)
      expgrad_rows<T, decltype(D)::value, 1>(U, d, x, yt, al, be, w, T(inv_eps), G, S, nt);
    else
      expgrad_rows<T, decltype(D)::value, 2>(U, d, x, yt, al, be, w, T(inv_eps), G, S, nt);
  });
}

// Dispatch on the kernel kind (a compile-time constant in the loops).
template <class F>
void by_kind(int kind, F f) {
  switch (kind) {
    case GAUSSIAN: f(std::integral_constant<int, GAUSSIAN>()); break;
    case LAPLACIAN: f(std::integral_constant<int, LAPLACIAN>()); break;
    case IMQ: f(std::integral_constant<int, IMQ>()); break;
    case ENERGY1: f(std::integral_constant<int, ENERGY1>()); break;
    default: f(std::integral_constant<int, ENERGY2>()); break;
  }
}

template <class T>
void kernel_any(int kind, int64_t n, int64_t m, int d, const T* x, const T* yt,
                const T* V, int p, int nsc, const T* consts, int tri,
                double* out, int nt) {
  by_kind(kind, [&](auto K) {
    by_dim(d, [&](auto D) {
      kernel_rows<T, decltype(D)::value, decltype(K)::value>(
          n, m, d, x, yt, V, p, nsc, consts, tri, out, nt);
    });
  });
}

template <class T>
void kgrad_any(int kind, int64_t n, int64_t m, int d, const T* x, const T* yt,
               const T* U, const T* V, int p, int nsc, const T* consts, T* G,
               int nt) {
  by_kind(kind, [&](auto K) {
    by_dim(d, [&](auto D) {
      kernel_grad_rows<T, decltype(D)::value, decltype(K)::value>(
          n, m, d, x, yt, U, V, p, nsc, consts, G, nt);
    });
  });
}

// Linear-time MMD (Gretton et al. 2012): sum over l < h of
// k(x_2l, x_2l+1) + k(y_2l, y_2l+1) - k(x_2l, y_2l+1) - k(x_2l+1, y_2l),
// x and y row-major (n, d). One pass over the points; per-block sums in T,
// totals in double.
template <class T, int KIND>
double linear_sum(int64_t h, int d, const T* x, const T* y, int nsc,
                  const T* consts, int nt) {
  const int64_t block = 4096;
  const int64_t nb = (h + block - 1) / block;
  std::vector<double> part(nb, 0.0);
  parallel_units(nb, nt, [&](int64_t b) {
    const int64_t l0 = b * block, l1 = std::min(h, l0 + block);
    T acc = T(0);
    for (int64_t l = l0; l < l1; ++l) {
      const T* x1 = x + 2 * l * d;
      const T* x2 = x1 + d;
      const T* y1 = y + 2 * l * d;
      const T* y2 = y1 + d;
      T dxx = 0, dyy = 0, dxy = 0, dyx = 0;
      for (int k = 0; k < d; ++k) {
        T a = x1[k] - x2[k], c = y1[k] - y2[k];
        T e = x1[k] - y2[k], f = x2[k] - y1[k];
        dxx += a * a;
        dyy += c * c;
        dxy += e * e;
        dyx += f * f;
      }
      for (int q = 0; q < nsc; ++q) {
        const T cq = consts[q];
        acc += kval<T>(KIND, dxx, cq) + kval<T>(KIND, dyy, cq) -
               kval<T>(KIND, dxy, cq) - kval<T>(KIND, dyx, cq);
      }
    }
    part[b] = double(acc);
  });
  double total = 0.0;
  for (double v : part) total += v;
  return total;
}

template <class T>
double linear_any(int kind, int64_t h, int d, const T* x, const T* y, int nsc,
                  const T* consts, int nt) {
  double total = 0.0;
  by_kind(kind, [&](auto K) {
    total = linear_sum<T, decltype(K)::value>(h, d, x, y, nsc, consts, nt);
  });
  return total;
}

}  // namespace

extern "C" {

#if defined(OTG_F32)
int otg_abi_version() { return 4; }
// Each entry point's argument types, in the order of its C signature, for
// the Python side to compare with its ctypes table before any call
// (L: int64_t, I: int, D: double, P: pointer; "->" the return type, if any).
// Keep in step with the OTG_EXPORT signatures below.
const char* otg_signatures() {
  return "softmin:LLIPPPDILPPPPI;"
         "expgrad:LLIPPPPPDILPPPPPI;"
         "kernel:ILLIPPPIIPIPI;"
         "softmin_stored:LLPLPDPI;"
         "kgrad:ILLIPPPPIIPPI;"
         "linear:ILIPPIPI->D";
}
#endif

#define OTG_EXPORT(T, SUF)                                                     \
  void otg_softmin_##SUF(int64_t n, int64_t m, int d, const T* x,             \
                         const T* yt, const T* h, double inv_eps, int p,       \
                         int64_t nu, const int64_t* rptr, const int64_t* cptr, \
                         const int64_t* rg, T* out, int nt) {                  \
    softmin_any<T>(Units(n, m, nu, rptr, cptr, rg), d, x, yt, h, inv_eps, p,   \
                   out, nt);                                                   \
  }                                                                            \
  void otg_expgrad_##SUF(int64_t n, int64_t m, int d, const T* x,             \
                         const T* yt, const T* al, const T* be, const T* w,    \
                         double inv_eps, int p, int64_t nu,                    \
                         const int64_t* rptr, const int64_t* cptr,             \
                         const int64_t* rg, T* G, T* S, int nt) {              \
    expgrad_any<T>(Units(n, m, nu, rptr, cptr, rg), d, x, yt, al, be, w,       \
                   inv_eps, p, G, S, nt);                                      \
  }                                                                            \
  void otg_kernel_##SUF(int kind, int64_t n, int64_t m, int d, const T* x,    \
                        const T* yt, const T* V, int p, int nsc,               \
                        const T* consts, int tri, double* out, int nt) {       \
    kernel_any<T>(kind, n, m, d, x, yt, V, p, nsc, consts, tri, out, nt);      \
  }                                                                            \
  void otg_softmin_stored_##SUF(int64_t n, int64_t m, const T* C, int64_t ldc, \
                                const T* h, double inv_eps, T* out, int nt) {  \
    /* d = ldc: softmin_rows steps from row to row by d */                   \
    softmin_rows<T, STORED, 2>(Units(n, m, 0, nullptr, nullptr, nullptr),     \
                               (int)ldc, C, nullptr, h, T(inv_eps), out, nt);  \
  }                                                                            \
  double otg_linear_##SUF(int kind, int64_t h, int d, const T* x, const T* y, \
                          int nsc, const T* consts, int nt) {                  \
    return linear_any<T>(kind, h, d, x, y, nsc, consts, nt);                   \
  }                                                                            \
  void otg_kgrad_##SUF(int kind, int64_t n, int64_t m, int d, const T* x,     \
                       const T* yt, const T* U, const T* V, int p, int nsc,    \
                       const T* consts, T* G, int nt) {                        \
    kgrad_any<T>(kind, n, m, d, x, yt, U, V, p, nsc, consts, G, nt);           \
  }

// The build compiles this file twice in parallel, once per dtype.
#if defined(OTG_F32)
OTG_EXPORT(float, f32)
#endif
#if defined(OTG_F64)
OTG_EXPORT(double, f64)
#endif

}  // extern "C"
