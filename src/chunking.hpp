// Chunk planning shared by the CUDA launchers and the CPU executors: which [begin, end)
// voxel ranges one run is cut into. Pure host code, tested on the CPU (tests/core/test_reliability.cpp, Chunking.*).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <vector>

namespace perfq {
namespace chunking {

/// A half-open range of voxel indices.
struct Range {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t size() const { return end - begin; }
};

/// Voxels per chunk: as many as fit in `available_bytes` once `fixed_bytes` (tables every
/// chunk shares) are taken, at `bytes_per_voxel` each; at most `max_voxels` when it is
/// nonzero, and at most `count`. 0 when not even one voxel fits (or `count` is 0).
inline std::size_t chunk_voxels(std::size_t count, std::size_t bytes_per_voxel,
                                std::size_t available_bytes, std::size_t fixed_bytes,
                                std::size_t max_voxels) {
  if (count == 0) return 0;
  std::size_t chunk = count;
  if (bytes_per_voxel > 0) {
    const std::size_t left = available_bytes > fixed_bytes ? available_bytes - fixed_bytes : 0;
    const std::size_t fit = left / bytes_per_voxel;
    if (fit < chunk) chunk = fit;
  }
  if (max_voxels > 0 && max_voxels < chunk) chunk = max_voxels;
  return chunk;
}

/// [0, count) cut into consecutive ranges of `chunk` voxels (the last one shorter); one
/// range when `chunk` is 0 or at least `count`; none when `count` is 0.
inline std::vector<Range> plan(std::size_t count, std::size_t chunk) {
  std::vector<Range> ranges;
  if (count == 0) return ranges;
  if (chunk == 0 || chunk > count) chunk = count;
  ranges.reserve((count + chunk - 1) / chunk);
  for (std::size_t begin = 0; begin < count; begin += chunk) {
    ranges.push_back({begin, count - begin < chunk ? count : begin + chunk});
  }
  return ranges;
}

/// The forced chunk size: `requested` (Execution::max_chunk_voxels) when nonzero, else the
/// environment variable PERFQ_MAX_CHUNK_VOXELS when it holds a positive integer, else 0
/// (no forced size).
inline std::size_t forced_max_chunk(std::size_t requested) {
  if (requested > 0) return requested;
  const char* text = std::getenv("PERFQ_MAX_CHUNK_VOXELS");
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || text[0] == '-') return 0;
  return static_cast<std::size_t>(value);
}

}  // namespace chunking
}  // namespace perfq
