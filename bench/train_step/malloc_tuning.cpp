#include "malloc_tuning.h"

#include <malloc.h>

namespace lth::bench {

// mallopt returns 1 on success. M_TRIM_THRESHOLD = -1 disables trimming (mallopt(3)).
bool keep_freed_memory_mapped() {
  const bool no_mmap = mallopt(M_MMAP_MAX, 0) == 1;
  const bool no_trim = mallopt(M_TRIM_THRESHOLD, -1) == 1;
  return no_mmap && no_trim;
}

bool raise_mmap_threshold() {
  const bool threshold = mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1;
  const bool no_trim = mallopt(M_TRIM_THRESHOLD, -1) == 1;
  return threshold && no_trim;
}

}  // namespace lth::bench
