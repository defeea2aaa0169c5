#pragma once
// glibc malloc tuning for LibTorch training on CPU.
//
// By default glibc serves every block above the (dynamic, at most 32 MiB) mmap threshold
// with its own mmap and unmaps it on free, and trims the top of the heap once 128 KiB+ is
// free there, so ResNet-50's large activation and gradient buffers are page-faulted in
// again (and zeroed by the kernel) on every step. Keeping freed memory mapped removes that.
namespace lth::bench {

// mallopt(M_MMAP_MAX, 0) + mallopt(M_TRIM_THRESHOLD, -1): malloc never uses mmap and never
// gives the heap back, the in-process equivalent of
// GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=<huge>. Call it first
// thing in main(), before large allocations. Returns false if glibc rejected a setting.
bool keep_freed_memory_mapped();

// Variant: mallopt(M_MMAP_THRESHOLD, 1 GiB) + mallopt(M_TRIM_THRESHOLD, -1): only blocks of
// 1 GiB or more are still mmapped. Same effect for the networks lth trains.
bool raise_mmap_threshold();

}  // namespace lth::bench
