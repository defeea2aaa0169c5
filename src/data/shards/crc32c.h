#pragma once
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord framing uses it, and
// TFRecord's "masked" form: ((crc >> 15) | (crc << 17)) + 0xa282ead8, which keeps a CRC of
// data that itself holds CRCs from looking like one.
#include <cstddef>
#include <cstdint>

namespace lth::data::shards {

// SSE 4.2's crc32 instruction where the CPU has it, else slicing-by-8 tables.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);
// The table implementation alone (tests compare the two).
uint32_t crc32c_portable(const void* data, size_t size, uint32_t crc = 0);
uint32_t mask_crc(uint32_t crc);
inline uint32_t masked_crc32c(const void* data, size_t size) { return mask_crc(crc32c(data, size)); }

}  // namespace lth::data::shards
