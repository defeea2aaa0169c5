#pragma once
// Batches on the training device, one batch ahead of the step that uses them.
//
// On a CPU device this is the loader itself. On a CUDA device each batch is copied into
// pinned host memory and sent on a side stream while the previous step's kernels run; the
// compute stream waits for that copy on the device (an event), not the host, and the batch's
// device memory is recorded as used by the compute stream so the caching allocator does not
// reuse it early. This is what PyTorch's DataLoader(pin_memory=True) plus a prefetching
// `non_blocking` copy on a side stream does (NVIDIA's ResNet-50 recipe). Device-agnostic
// c10 stream/event interfaces are used, so the file builds against CPU-only LibTorch.
#include <optional>

#include <torch/types.h>

#include "data/loader.h"

namespace lth::train {

class DeviceFeeder {
 public:
  DeviceFeeder(data::Loader& loader, torch::Device device);
  ~DeviceFeeder();
  DeviceFeeder(const DeviceFeeder&) = delete;
  DeviceFeeder& operator=(const DeviceFeeder&) = delete;

  // The next batch with images and labels on the device, or nullopt at the loader's end.
  std::optional<data::Batch> next();
  // The loader position just after the batch next() last returned (what a checkpoint saves).
  data::LoaderPosition position() const { return position_; }

 private:
  struct Staged;
  void stage();  // fetches the next batch from the loader and starts its copy

  data::Loader& loader_;
  torch::Device device_;
  std::unique_ptr<Staged> staged_;  // the batch in flight (CUDA only)
  data::LoaderPosition position_;
};

}  // namespace lth::train
