#pragma once
// Validation of the "trainer" state a resumable checkpoint (last.safetensors) carries,
// before any of it is used: a hand-edited or hostile file must end as one line naming the
// file and the field, never as a JSON type exception or a negative loader position.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace lth::train {

// Throws UserError("<label>: trainer state '<field>' ...") unless `state` is an object with
//   iteration       integer in [0, total_steps]
//   epoch, batch    integers >= 0
//   best_acc        finite number in [-1, 1]   (-1: no evaluation yet)
//   best_iteration  integer in [0, iteration]
//   window_loss_sum finite number;  window_count integer >= 0
//   loss_scaler     optional object: scale finite > 0, finite_steps integer >= 0
//   complete        optional boolean
void check_trainer_state(const nlohmann::json& state, const std::string& label,
                         int64_t total_steps);

}  // namespace lth::train
