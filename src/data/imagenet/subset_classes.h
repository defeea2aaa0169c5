#pragma once
// The fixed 200-class lists of ImageNet-R and ImageNet-A, in the reference's order.
//
// The reference (giung2-dev, giung2/data/imagenet/imagenet_r.py and imagenet_a.py, the
// CLASS_SUBLIST of each) scores these sets by keeping the 200 listed columns of the 1000
// logits, in list order, and compares the result with labels that are *positions in the
// list* (0..199). Its lists are ImageNet-1k class indices in increasing order, so position
// p is the p-th listed class in the standard (sorted WordNet id) order. These lists, not the
// folders that happen to exist on disk, define the 200-way task.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/imagenet/class_index.h"

namespace lth::data::imagenet {

enum class SubsetList { ImageNetR, ImageNetA };

// "ImageNet-R" / "ImageNet-A", for messages.
std::string subset_list_name(SubsetList list);

// The 200 ImageNet-1k class indices (0..999), in the reference's order (increasing).
const std::vector<int64_t>& subset_canonical_classes(SubsetList list);

// The 200 WordNet ids, in the same order.
std::vector<std::string> subset_wnids(SubsetList list);

// The list's classes as labels of `index`, in list order (sorted, since both orders follow
// the WordNet ids). Classes the index lacks (a data root whose imagenet/train holds fewer
// classes) are left out and, if `missing` is given, their wnids appended to it.
std::vector<int64_t> subset_labels(SubsetList list, const ClassIndex& index,
                                   std::vector<std::string>* missing = nullptr);

// Which list a test-set name stands for: "imagenet-r", or an array folder named ImageNetR
// with a size suffix ("ImageNet-R_x224"; case, '-' and '_' ignored) -> ImageNetR; likewise
// for A; else nullopt.
std::optional<SubsetList> subset_list_for(const std::string& set_name);

}  // namespace lth::data::imagenet
