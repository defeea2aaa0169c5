#pragma once
// The official ILSVRC2012 downloads, read in place (never unpacked by hand):
//   ILSVRC2012_img_train.tar   a tar of 1000 per-class tars nXXXXXXXX.tar, each holding
//                              nXXXXXXXX_NNNN.JPEG (1,281,167 in all);
//   ILSVRC2012_img_val.tar     ILSVRC2012_val_00000001.JPEG ... (50,000, flat);
//   ILSVRC2012_devkit_t12.tar.gz  (devkit.h): the validation labels as ILSVRC2012 ids and
//                              meta.mat's id -> wnid mapping.
// Indexing reads only tar headers (the outer tar's, then each inner tar's inside its byte
// range: exactly one level of nesting; an inner member that is itself a tar is not opened).
// Damage -- a truncated or corrupt tar, an inner tar that ends early -- is collected in
// `problems` (one line each, naming file and byte offset); the members before it are kept.
// Refused (UserError): a folder with neither tar, a val tar without a devkit, a val file
// whose number has no ground-truth line, more than kMaxMembers members.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/ilsvrc/devkit.h"

namespace lth::data::ilsvrc {

inline constexpr uint64_t kMaxMembers = 4u << 20;  // 1.33 million real files; far above

struct TarSample {
  std::filesystem::path tar;  // the file holding the bytes
  uint64_t offset = 0;        // of the picture's bytes in `tar`
  uint64_t size = 0;
  std::string file_name;      // "n01440764_10026.JPEG", "ILSVRC2012_val_00000001.JPEG"
  std::string wnid;
};

struct OfficialFiles {
  std::optional<std::filesystem::path> train_tar, val_tar, devkit;
};
// What `dir` holds of the three downloads.
OfficialFiles find_official(const std::filesystem::path& dir);

struct OfficialSplit {
  std::vector<TarSample> samples;  // train: by wnid, then file name; val: by file name
  std::vector<std::string> problems;
  std::vector<std::string> wnids;  // train: the per-class tars found, sorted
};

OfficialSplit index_official_train(const std::filesystem::path& train_tar);
// Labels from the devkit's ground truth through meta.mat's mapping.
OfficialSplit index_official_val(const std::filesystem::path& val_tar, const Devkit& devkit);

// `lth prepare-imagenet`: writes <to>/imagenet/train/<wnid>/<file> and imagenet/val/<wnid>/<file>
// (lth's folder layout) from the official files in `from`. Each file is written under a
// temporary name and renamed; a file already there with the same size is kept (so an
// interrupted run resumes), one of another size is an error naming it (nothing is ever
// overwritten). Returns (set, files written or kept) per set; problems of the source go to
// `problems`.
struct PrepareReport {
  std::vector<std::pair<std::string, int64_t>> written;
  int64_t kept = 0;  // already in place from an earlier run
  std::vector<std::string> problems;
};
PrepareReport prepare_imagenet(const std::filesystem::path& from, const std::filesystem::path& to);

// Writes miniature official downloads into `dir` from a folder-layout data root (what
// `lth make-imagenet` writes): the train tar-of-tars and the flat val tar from
// imagenet/train and imagenet/val, and a devkit whose ids follow `wnid_of_id` (1-based, all
// 1000 ImageNet-1k wnids, in a non-sorted order). Val files are numbered in (class, file)
// order, as lth's folder reader sorts them.
void write_official_from_folders(const std::filesystem::path& root, const std::filesystem::path& dir,
                                 const std::vector<std::string>& wnid_of_id);

}  // namespace lth::data::ilsvrc
