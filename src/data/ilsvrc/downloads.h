#pragma once
// Miniature copies of ImageNet as people download it, written from a folder-layout data root
// (what `lth make-imagenet` writes), for tests and demos (`lth make-imagenet --format ...`):
//   official: ILSVRC2012_img_train.tar (tar of per-class tars), ILSVRC2012_img_val.tar (flat,
//             files renumbered in a shuffled order) and ILSVRC2012_devkit_t12.tar.gz whose
//             ILSVRC2012 ids follow a seeded permutation of the 1000 wnids (never the sorted
//             order, so a devkit-order mistake shows);
//   kaggle:   ILSVRC/Data/CLS-LOC/train/<wnid>/, a flat ILSVRC/Data/CLS-LOC/val/,
//             LOC_val_solution.csv and LOC_synset_mapping.txt;
//   flat:     imagenet/train/<wnid>/, a flat imagenet/val/ (make-imagenet numbers it 1..N), val_labels.txt (one wnid per line
//             in file-name order), val_ids.txt (the same as ILSVRC2012 ids) and the devkit
//             that maps them;
// and in each, the test sets under their release folder names (imagenetv2-matched-frequency-
// format-val, imagenet-r, imagenet-a, sketch). `out` must not exist or be empty.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lth::data::ilsvrc {

enum class DownloadLayout { Official, Kaggle, Flat };
DownloadLayout parse_download_layout(const std::string& name);  // "official", "kaggle", "flat"

// A permutation of the 1000 canonical wnids as ILSVRC2012 ids: result[id] (1..1000); [0] = "".
std::vector<std::string> permuted_ids(uint64_t seed);

void write_download_layout(const std::filesystem::path& folders_root, const std::filesystem::path& out,
                           DownloadLayout layout, uint64_t seed);

}  // namespace lth::data::ilsvrc
