#pragma once
// The reference's own checkpoints (its scripts/train.py: `flax.serialization.to_bytes(ckpt)`),
// read into and written from lth checkpoints. docs/FORMATS.md has the byte layout and the
// name mapping.
//
// Supported: ResNets of the reference's layout, width 1 (giung2's FlaxResNet): ImageNet
// depths 18/34/50/101/152 with the 7x7/2 stem and max-pool (224x224) or the 3x3 stem
// (32x32/64x64 inputs), and the CIFAR depths lth builds (20/32/44/56/110). The tree is
//   {params: {ext: {Conv_i: {kernel}, BatchNorm_i: {scale, bias}}, cls},
//    params_mask: <same tree as params> (optional: absent = never pruned = all ones),
//    batch_stats: {BatchNorm_i: {mean, var}}, image_stats: {m, s}}
// with arrays as Flax's ndarray extension (type 1) in float32/float64/float16/bfloat16/
// int8..int64/uint8/bool. The depth and stem are recognised by matching every name and
// shape against each ResNet lth builds; nothing is guessed.
//
// Refused, with one line naming the file and the key: anything that is not such a tree
// (missing or extra keys, shapes no ResNet has), Flax's complex-number and NumPy-scalar
// extensions, arrays chunked above 2^30 bytes (no ResNet array is that large), non-finite
// values, masks other than 0/1, masks with zeros outside conv kernels (lth prunes conv
// kernels only), negative variances, non-positive pixel std, MessagePack that is truncated,
// malformed or nested deeper than this tree.
#include <filesystem>
#include <string>
#include <vector>

#include "io/checkpoint.h"

namespace lth::io {

// The reference checkpoint as an lth checkpoint: torchvision names, OIHW conv kernels,
// fc.weight [classes, features], BN running statistics, num_batches_tracked 0, pixel_mean/
// pixel_std from image_stats; masks for every conv kernel; config {"model": {"name",
// "width": 1, "padding": "same"}, "data": {"image_size"}, "reference": {...}} (iteration 0:
// the file does not say). `notes`, when given, receives what was converted, line by line.
Checkpoint read_flax_checkpoint(const std::filesystem::path& path,
                                std::vector<std::string>* notes = nullptr);

// Writes `ckpt` (an lth ResNet of the reference's layout, width 1) as a reference
// checkpoint, atomically. The conv masks go to params_mask (every other entry of it is
// ones, in the dtype the reference file had if the checkpoint came from one, else
// float32). Not written, and listed in `notes`: momentum, num_batches_tracked, metadata.
void write_flax_checkpoint(const std::filesystem::path& path, const Checkpoint& ckpt,
                           std::vector<std::string>* notes = nullptr);

}  // namespace lth::io
