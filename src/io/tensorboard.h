#pragma once
// TensorBoard scalars without TensorFlow: an events file is a TFRecord file of Event
// protocol buffers (tensorflow/core/util/event.proto):
//   Event   { double wall_time = 1; int64 step = 2; oneof { string file_version = 3;
//             Summary summary = 5; ... } }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// The first event of a file names its version, "brain.Event:2", as TensorFlow's writers do.
//
// One writer per run folder (events.out.tfevents.<seconds>.<host>); a folder that already
// has one is appended to, so `tensorboard --logdir RUN` shows each cycle and branch folder
// as one run with continuous series. Each write opens, appends and closes the file (events
// come at evaluations, seconds apart), so a crash leaves at most one torn last record,
// which readers ignore and truncate_after() removes.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace lth::io {

struct TensorBoardEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;                         // set on the first event only
  std::vector<std::pair<std::string, float>> scalars;  // simple_value summaries
};

class TensorBoardWriter {
 public:
  // Uses the folder's existing events file, else creates one (on the first write).
  explicit TensorBoardWriter(std::filesystem::path dir);
  // One event holding these scalars at `step`.
  void scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step);
  // Rewrites the file without events whose step is greater than `step` (resume); the
  // version event stays.
  void truncate_after(int64_t step);
  const std::filesystem::path& file() const { return file_; }

 private:
  void append(const std::string& serialized_event);
  std::filesystem::path dir_;
  std::filesystem::path file_;
};

std::string serialize_event(const TensorBoardEvent& event);
// The events of a file in order; a torn or damaged tail ends the list (as TensorBoard reads).
std::vector<TensorBoardEvent> read_events(const std::filesystem::path& file);
// The events file of a folder, or an empty path.
std::filesystem::path find_events_file(const std::filesystem::path& dir);

}  // namespace lth::io
