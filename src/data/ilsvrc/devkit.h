#pragma once
// The ILSVRC2012 development kit (ILSVRC2012_devkit_t12.tar.gz, the same as .tar, or that
// archive unpacked into a folder ILSVRC2012_devkit_t12/): the two files lth needs from it,
//   data/meta.mat  (MATLAB v5: `synsets`, a struct array; the 1000 leaf synsets carry
//                  ILSVRC2012_ID 1..1000 and WNID) -> the id -> WordNet id mapping;
//   data/ILSVRC2012_validation_ground_truth.txt  (one id per line: line k labels
//                  ILSVRC2012_val_<k>.JPEG).
// The ILSVRC2012 ids are NOT in sorted-wnid order: label = the wnid's position in the class
// index, never id - 1 (docs/DATA.md). The mapping is derived from meta.mat only; lth
// compiles in no id order. A devkit whose leaves are not 1000 distinct ImageNet-1k wnids
// with ids 1..1000 each once is a UserError naming the file. Bounded: the archive is read
// only up to kMaxDevkitBytes, decompressed up to 64 MiB, and meta.mat through MatLimits.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lth::data::ilsvrc {

inline constexpr uint64_t kMaxDevkitBytes = 64u << 20;  // the real archive is 2.5 MB

struct Devkit {
  std::filesystem::path source;
  std::vector<std::string> wnid_of_id;  // index = ILSVRC2012 id (1..1000); [0] unused
  std::vector<int32_t> val_ids;         // val_ids[k - 1] = id of ILSVRC2012_val_<k>.JPEG
  // id -> wnid, or nullopt outside 1..1000.
  std::optional<std::string> wnid(int64_t id) const;
};

// The devkit in `path`: the archive (.tar.gz or .tar) or the unpacked folder.
Devkit read_devkit(const std::filesystem::path& path);
// The devkit beside the official tars or in a data root: ILSVRC2012_devkit_t12.tar.gz,
// ILSVRC2012_devkit_t12.tar or ILSVRC2012_devkit_t12/ in `dir`; nullopt when none is there.
std::optional<std::filesystem::path> find_devkit(const std::filesystem::path& dir);

// Parses meta.mat's bytes: the wnid of each id 1..1000. `label` names the file in errors.
std::vector<std::string> parse_meta_mat(const std::string& bytes, const std::string& label);
// Parses the ground-truth text: ids 1..1000, one per line.
std::vector<int32_t> parse_ground_truth(const std::string& text, const std::string& label);

// A devkit archive (.tar.gz) with meta.mat (leaf synsets: `wnid_of_id[i]` has id i, plus a
// few non-leaf synsets as the real file has) and the ground truth, for tests and
// `lth make-imagenet --format official`. The archive is written atomically.
void write_devkit(const std::filesystem::path& path, const std::vector<std::string>& wnid_of_id,
                  const std::vector<int32_t>& val_ids);

}  // namespace lth::data::ilsvrc
