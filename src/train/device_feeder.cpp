#include "train/device_feeder.h"

#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/types.h>

namespace lth::train {

struct DeviceFeeder::Staged {
  explicit Staged(torch::Device device)
      : guard(device.type()), copy_stream(guard.getStreamFromGlobalPool(device)), copied(device.type()) {}
  c10::impl::VirtualGuardImpl guard;
  c10::Stream copy_stream;
  c10::Event copied;                   // recorded on copy_stream after the batch's copy
  std::optional<data::Batch> batch;    // on the device once `copied` has happened
  data::LoaderPosition position;       // the loader's position after this batch
  bool in_flight = false;
};

DeviceFeeder::DeviceFeeder(data::Loader& loader, torch::Device device)
    : loader_(loader), device_(device), position_(loader.position()) {
  if (device_.is_cuda()) staged_ = std::make_unique<Staged>(device_);
}

DeviceFeeder::~DeviceFeeder() = default;

void DeviceFeeder::stage() {
  auto& s = *staged_;
  s.batch = loader_.next();
  s.position = loader_.position();
  s.in_flight = true;
  if (!s.batch) return;
  const c10::StreamGuard on_copy_stream(s.copy_stream);
  // Pinned host memory makes the copy truly asynchronous (pageable memory is staged by the
  // driver, synchronously).
  s.batch->images = s.batch->images.pin_memory().to(device_, /*non_blocking=*/true);
  s.batch->labels = s.batch->labels.pin_memory().to(device_, /*non_blocking=*/true);
  s.copied.record(s.copy_stream);
}

std::optional<data::Batch> DeviceFeeder::next() {
  if (!staged_) {
    auto batch = loader_.next();
    position_ = loader_.position();
    return batch;
  }
  auto& s = *staged_;
  if (!s.in_flight) stage();
  auto batch = std::move(s.batch);
  position_ = s.position;
  s.in_flight = false;
  if (!batch) return batch;
  const auto compute_stream = s.guard.getStream(device_);
  s.copied.block(compute_stream);  // the device waits for the copy; the host does not
  for (const auto& t : {batch->images, batch->labels}) {
    s.guard.recordDataPtrOnStream(t.storage().data_ptr(), compute_stream);
  }
  stage();  // the next batch travels while this one is computed on
  return batch;
}

}  // namespace lth::train
