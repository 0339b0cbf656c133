/// @file
/// @brief Forward-mode automatic differentiation: a value with N partial derivatives. Lets
/// the kinetic model be written once and give exact Jacobians on host and device.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/macros.hpp>

#include <cmath>

PERFQ_NAMESPACE_BEGIN
namespace detail {

template <class T, int N>
struct Dual {
  T v;     ///< value
  T d[N];  ///< partial derivatives

  PERFQ_HD Dual() : v(0) {
    for (int i = 0; i < N; ++i) d[i] = 0;
  }
  PERFQ_HD Dual(T value) : v(value) {  // NOLINT: constants convert implicitly
    for (int i = 0; i < N; ++i) d[i] = 0;
  }
  /// The variable number `index` with value `value` (derivative 1 along itself).
  PERFQ_HD static Dual variable(T value, int index) {
    Dual x(value);
    x.d[index] = 1;
    return x;
  }
};

template <class T, int N>
PERFQ_HD inline Dual<T, N> operator+(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r(a.v + b.v);
  for (int i = 0; i < N; ++i) r.d[i] = a.d[i] + b.d[i];
  return r;
}
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator-(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r(a.v - b.v);
  for (int i = 0; i < N; ++i) r.d[i] = a.d[i] - b.d[i];
  return r;
}
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator-(const Dual<T, N>& a) {
  Dual<T, N> r(-a.v);
  for (int i = 0; i < N; ++i) r.d[i] = -a.d[i];
  return r;
}
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator*(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r(a.v * b.v);
  for (int i = 0; i < N; ++i) r.d[i] = a.d[i] * b.v + a.v * b.d[i];
  return r;
}
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator/(const Dual<T, N>& a, const Dual<T, N>& b) {
  const T inv = T(1) / b.v;
  Dual<T, N> r(a.v * inv);
  for (int i = 0; i < N; ++i) r.d[i] = (a.d[i] - r.v * b.d[i]) * inv;
  return r;
}
// Mixed forms with plain numbers.
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator+(const Dual<T, N>& a, T b) { return a + Dual<T, N>(b); }
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator+(T a, const Dual<T, N>& b) { return Dual<T, N>(a) + b; }
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator-(const Dual<T, N>& a, T b) { return a - Dual<T, N>(b); }
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator-(T a, const Dual<T, N>& b) { return Dual<T, N>(a) - b; }
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator*(const Dual<T, N>& a, T b) { return a * Dual<T, N>(b); }
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator*(T a, const Dual<T, N>& b) { return Dual<T, N>(a) * b; }
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator/(const Dual<T, N>& a, T b) { return a / Dual<T, N>(b); }
template <class T, int N>
PERFQ_HD inline Dual<T, N> operator/(T a, const Dual<T, N>& b) { return Dual<T, N>(a) / b; }

// Comparisons look at values only (they choose branches of piecewise models).
template <class T, int N>
PERFQ_HD inline bool operator<(const Dual<T, N>& a, const Dual<T, N>& b) { return a.v < b.v; }
template <class T, int N>
PERFQ_HD inline bool operator<(const Dual<T, N>& a, T b) { return a.v < b; }
template <class T, int N>
PERFQ_HD inline bool operator<(T a, const Dual<T, N>& b) { return a < b.v; }
template <class T, int N>
PERFQ_HD inline bool operator==(const Dual<T, N>& a, const Dual<T, N>& b) { return a.v == b.v; }

template <class T, int N>
PERFQ_HD inline Dual<T, N> exp(const Dual<T, N>& a) {
  using std::exp;
  Dual<T, N> r(exp(a.v));
  for (int i = 0; i < N; ++i) r.d[i] = r.v * a.d[i];
  return r;
}
template <class T, int N>
PERFQ_HD inline Dual<T, N> expm1(const Dual<T, N>& a) {
  using std::exp;
  using std::expm1;
  Dual<T, N> r(expm1(a.v));
  const T slope = exp(a.v);
  for (int i = 0; i < N; ++i) r.d[i] = slope * a.d[i];
  return r;
}

/// The value of a number or of a dual number.
template <class T>
PERFQ_HD inline T value_of(T x) {
  return x;
}
template <class T, int N>
PERFQ_HD inline T value_of(const Dual<T, N>& x) {
  return x.v;
}

}  // namespace detail
PERFQ_NAMESPACE_END
