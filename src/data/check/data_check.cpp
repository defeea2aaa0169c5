#include "data/check/data_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <numeric>
#include <set>

#include "common/error.h"
#include "common/rng.h"
#include "data/ilsvrc/devkit.h"
#include "data/ilsvrc/layouts.h"
#include "data/ilsvrc/official.h"
#include "data/imagenet/class_index.h"
#include "data/imagenet/folder_dataset.h"
#include "data/registry.h"
#include "data/shards/imagenet_shards.h"
#include "data/shards/shard_dataset.h"
#include "data/shards/webdataset.h"
#include "eval/suite.h"

namespace lth::data::check {
namespace fs = std::filesystem;
namespace img = data::imagenet;
namespace {

constexpr int64_t kSmallestTrainClass = 732;  // the real train set's smallest class

struct Official {
  const char* set;
  int64_t images, classes;
};
const std::map<std::string, Official>& officials() {
  static const std::map<std::string, Official> m = {
      {"imagenet/train", {"imagenet/train", 1'281'167, 1000}}, {"imagenet", {"imagenet", 50'000, 1000}},
      {"imagenet-v2", {"imagenet-v2", 10'000, 1000}},          {"imagenet-r", {"imagenet-r", 30'000, 200}},
      {"imagenet-a", {"imagenet-a", 7'500, 200}},              {"imagenet-sketch", {"imagenet-sketch", 50'889, 1000}}};
  return m;
}

std::string first_few(const std::vector<std::string>& v, size_t n = 5) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < n; ++i) s += (i ? " " : "") + v[i];
  if (v.size() > n) s += " ...";
  return s;
}

std::string sample_name(const Dataset& ds, int64_t i) {
  if (const auto* f = dynamic_cast<const img::ImageFolderDataset*>(&ds))
    return f->samples().at(static_cast<size_t>(i)).path.string();
  if (const auto* s = dynamic_cast<const shards::ShardDataset*>(&ds)) {
    const auto& smp = s->index().samples.at(static_cast<size_t>(i));
    return s->index().files.at(static_cast<size_t>(smp.file)).string() + " at byte " + std::to_string(smp.offset);
  }
  return ds.describe() + " #" + std::to_string(i);
}

// Labels of every sample when the dataset knows them without decoding (folders, or shards'
// raw records in --full); else only the decoded ones count.
std::vector<int64_t> all_labels(const Dataset& ds, bool full) {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(ds.size()));
  for (int64_t i = 0; i < ds.size(); ++i) {
    auto l = ds.label(i);
    if (!l) {
      const auto* s = dynamic_cast<const shards::ShardDataset*>(&ds);
      if (!s || !full) return {};
      try {
        l = s->raw(i).second;
      } catch (const std::exception&) {
        continue;  // damaged record: the decode pass names it
      }
    }
    out.push_back(*l);
  }
  return out;
}

class Checker {
 public:
  Checker(const CheckOptions& o, CheckReport& r) : o_(o), r_(r) {}

  void problem(const std::string& set, const std::string& what) { r_.problems.push_back(set + ": " + what); }

  // Counts, classes, per-class spread and the decode pass of one set.
  SetRow analyse(const std::string& set, const std::string& layout, const std::string& path, const Dataset& ds,
                 const img::ClassIndex& index, const std::vector<int64_t>& expected_classes) {
    SetRow row;
    row.set = set;
    row.layout = layout;
    row.path = path;
    row.present = true;
    row.images = ds.size();
    const auto& off = officials().at(set);
    row.official_images = off.images;
    row.official_classes = off.classes;
    const auto labels = all_labels(ds, o_.full);
    std::map<int64_t, int64_t> per_class;
    for (const auto l : labels) ++per_class[l];
    row.classes = labels.empty() && ds.size() > 0 ? -1 : static_cast<int64_t>(per_class.size());
    if (ds.size() == 0) problem(set, "no images");
    if (const auto* sh = dynamic_cast<const shards::ShardDataset*>(&ds); sh && sh->index().damaged_files > 0)
      problem(set, fmt::format("{} shard files are damaged (truncated or corrupt; read up to the break, named in "
                               "the warnings above)",
                               sh->index().damaged_files));
    if (!labels.empty()) {
      std::vector<std::string> missing, extra;
      const std::set<int64_t> want(expected_classes.begin(), expected_classes.end());
      for (const auto c : expected_classes)
        if (!per_class.count(c)) missing.push_back(index.wnid(c));
      for (const auto& [c, n] : per_class)
        if (!want.empty() && !want.count(c)) extra.push_back(c < index.size() ? index.wnid(c) : std::to_string(c));
      if (!missing.empty())
        problem(set, fmt::format("{} of its {} classes have no images: {}", missing.size(), expected_classes.size(),
                                 first_few(missing)));
      if (!extra.empty()) problem(set, fmt::format("{} classes outside its class list: {}", extra.size(), first_few(extra)));
      spread(set, per_class, index, row);
    } else if (ds.size() > 0) {
      row.note = "classes counted in --full only (shards)";
    }
    if (!o_.subset && ds.size() != off.images)
      row.note += (row.note.empty() ? "" : "; ") + fmt::format("official: {} images", off.images);
    decode(set, ds, row);
    return row;
  }

  void spread(const std::string& set, const std::map<int64_t, int64_t>& per_class, const img::ClassIndex& index,
              SetRow& row) {
    std::vector<int64_t> counts;
    for (const auto& [c, n] : per_class) counts.push_back(n);
    std::sort(counts.begin(), counts.end());
    const int64_t median = counts.empty() ? 0 : counts[counts.size() / 2];
    if (set == "imagenet/train") {
      const int64_t floor = o_.subset ? median / 2 : kSmallestTrainClass;
      std::vector<std::string> thin;
      for (const auto& [c, n] : per_class)
        if (n < floor) thin.push_back(fmt::format("{} ({})", index.wnid(c), n));
      if (!thin.empty())
        problem(set, fmt::format("{} classes have fewer than {} images (half-extracted?): {}", thin.size(), floor,
                                 first_few(thin)));
    }
    if (set == "imagenet" && !o_.subset) {
      std::vector<std::string> off50;
      for (const auto& [c, n] : per_class)
        if (n != 50) off50.push_back(fmt::format("{} ({})", index.wnid(c), n));
      if (!off50.empty())
        problem(set, fmt::format("validation labels are not 50 per class ({} classes differ: {}): a wrong "
                                 "label file or order?",
                                 off50.size(), first_few(off50)));
    }
    row.note = fmt::format("{}..{} per class", counts.empty() ? 0 : counts.front(), counts.empty() ? 0 : counts.back());
  }

  void decode(const std::string& set, const Dataset& ds, SetRow& row) {
    std::vector<int64_t> order(static_cast<size_t>(ds.size()));
    std::iota(order.begin(), order.end(), 0);
    if (!o_.full && ds.size() > o_.sample) {
      auto rng = Rng::keyed(o_.seed, "data_check", 0, 0);
      for (int64_t i = 0; i < o_.sample; ++i) {  // partial Fisher-Yates: a uniform sample
        const auto j = i + static_cast<int64_t>(rng.next_u64() % static_cast<uint64_t>(ds.size() - i));
        std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
      }
      order.resize(static_cast<size_t>(o_.sample));
      std::sort(order.begin(), order.end());
    }
    std::vector<std::string> bad;
    auto rng = Rng::keyed(o_.seed, "data_check_decode", 0, 0);
    for (const auto i : order) {
      bool ok = false;
      try {
        ok = ds.get(i, rng).has_value();
      } catch (const std::exception&) {
      }
      if (!ok) bad.push_back(sample_name(ds, i));
    }
    row.decoded = static_cast<int64_t>(order.size());
    row.unreadable = static_cast<int64_t>(bad.size());
    for (size_t k = 0; k < bad.size() && k < 20; ++k) r_.unreadable.push_back(set + ": unreadable: " + bad[k]);
    if (bad.size() > 20) r_.unreadable.push_back(set + fmt::format(": ... and {} more unreadable files", bad.size() - 20));
  }

  // Each ILSVRC2012_val_<k> file's label against the devkit's ground truth.
  void val_against_devkit(const Dataset& ds, const img::ClassIndex& index, const ilsvrc::Devkit& kit) {
    const auto* f = dynamic_cast<const img::ImageFolderDataset*>(&ds);
    if (!f) {
      r_.notes.push_back("imagenet: labels of shards are not compared with the devkit");
      return;
    }
    const auto& sorted = img::canonical_wnids();
    int64_t compared = 0, wrong = 0, devkit_order = 0;
    std::string example;
    for (const auto& s : f->samples()) {
      const std::string name = s.path.filename().string();
      if (name.rfind("ILSVRC2012_val_", 0) != 0) continue;
      const int64_t k = std::atoll(name.c_str() + 15);
      if (k < 1 || k > static_cast<int64_t>(kit.val_ids.size())) continue;
      const int32_t id = kit.val_ids[static_cast<size_t>(k - 1)];
      ++compared;
      const std::string& have = index.wnid(s.label);
      if (have == *kit.wnid(id)) continue;
      ++wrong;
      if (have == sorted[static_cast<size_t>(id - 1)]) ++devkit_order;
      if (example.empty()) example = fmt::format("{} is labelled {}, the devkit says {} (id {})", name, have, *kit.wnid(id), id);
    }
    if (wrong == 0) {
      r_.notes.push_back(fmt::format("imagenet: all {} validation labels agree with the devkit's ground truth ({})",
                                     compared, kit.source.string()));
      return;
    }
    if (devkit_order * 2 > wrong)
      problem("imagenet", fmt::format("{} of {} validation labels are in devkit order: ILSVRC2012 id k was taken as the "
                                      "k-th sorted class; ids must go through meta.mat (lth prepare-imagenet does); "
                                      "e.g. {}",
                                      wrong, compared, example));
    else
      problem("imagenet", fmt::format("{} of {} validation labels disagree with the devkit's ground truth; e.g. {}", wrong,
                                      compared, example));
  }

  void throughput(const DataConfig& dc) {
    DataConfig train_view = dc;
    train_view.eval_transform = false;
    DatasetPtr ds;
    try {
      ds = make_dataset(train_view, Split::Train);
    } catch (const UserError&) {
      return;
    }
    const int64_t n = std::min<int64_t>(ds->size(), 64);
    if (n == 0) return;
    auto rng = Rng::keyed(o_.seed, "data_check_speed", 0, 0);
    const int64_t step = std::max<int64_t>(1, ds->size() / n);
    std::vector<uint8_t> slot(static_cast<size_t>(o_.image_size * o_.image_size * 3));
    int64_t done = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n; ++i) {
      try {
        if (ds->get_into(i * step, rng, slot.data())) ++done;
      } catch (const std::exception&) {
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (done == 0 || s <= 0) return;
    r_.images_per_second_per_core = static_cast<double>(done) / s;
    r_.cores_needed = static_cast<double>(o_.global_batch) * (o_.step_rate > 0 ? o_.step_rate : 1.0) /
                      r_.images_per_second_per_core;
  }

  void official_tars() {
    const auto files = ilsvrc::find_official(o_.data_root);
    if (!files.train_tar && !files.val_tar) return;
    std::optional<ilsvrc::Devkit> kit;
    if (files.devkit) {
      try {
        kit = ilsvrc::read_devkit(*files.devkit);
      } catch (const UserError& e) {
        problem("devkit", e.what());
      }
    }
    const auto row = [&](const std::string& set, const fs::path& tar, const ilsvrc::OfficialSplit& s, int64_t official) {
      SetRow r;
      r.set = set;
      r.layout = "official tar";
      r.path = tar.string();
      r.present = true;
      r.images = static_cast<int64_t>(s.samples.size());
      std::set<std::string> classes;
      for (const auto& t : s.samples) classes.insert(t.wnid);
      r.classes = static_cast<int64_t>(classes.size());
      r.official_images = official;
      r.official_classes = 1000;
      for (const auto& p : s.problems) problem(set, p);
      r_.rows.push_back(r);
    };
    if (files.train_tar) {
      try {
        row("ILSVRC2012_img_train.tar", *files.train_tar, ilsvrc::index_official_train(*files.train_tar), 1'281'167);
      } catch (const UserError& e) {
        problem("ILSVRC2012_img_train.tar", e.what());
      }
    }
    if (files.val_tar && kit) {
      try {
        row("ILSVRC2012_img_val.tar", *files.val_tar, ilsvrc::index_official_val(*files.val_tar, *kit), 50'000);
      } catch (const UserError& e) {
        problem("ILSVRC2012_img_val.tar", e.what());
      }
    } else if (files.val_tar) {
      problem("ILSVRC2012_img_val.tar", "no devkit (ILSVRC2012_devkit_t12.tar.gz) beside it to label it");
    }
    r_.notes.push_back("official tars: train reads them after `lth prepare-imagenet` or `lth make-shards --from` "
                       "(docs/DATA.md, \"From the download to a run\")");
  }

 private:
  const CheckOptions& o_;
  CheckReport& r_;
};

}  // namespace

CheckReport check_data(const CheckOptions& o) {
  CheckReport r;
  std::error_code ec;
  const std::string root = o.data_root.string();
  require(fs::is_directory(o.data_root, ec) || shards::looks_like_shard_pattern(root),
          "--data_root " + root + " is not a folder");
  require(o.sample > 0, "--sample must be positive");
  Checker c(o, r);
  c.official_tars();
  const bool only_tars = [&] {
    const auto f = ilsvrc::find_official(o.data_root);
    return (f.train_tar || f.val_tar) && ilsvrc::resolve_imagenet_layout(o.data_root, {}).kind.empty() &&
           !shards::find_webdataset_split(root, "train") && !fs::exists(o.data_root / "imagenet2012", ec);
  }();
  if (only_tars) return r;

  DataConfig dc;
  dc.name = "imagenet";
  dc.root = root;
  dc.image_size = o.image_size;
  dc.eval_transform = true;
  dc.val_labels = o.val_labels;
  dc.v2_variant = o.v2_variant;
  dc.shard_order = "global";
  img::ClassIndex index = img::ClassIndex::canonical();
  try {
    index = shards::class_index_for_root(root);
  } catch (const UserError& e) {
    c.problem("class index", e.what());
  }
  const auto layout = ilsvrc::resolve_imagenet_layout(o.data_root, {o.val_labels, o.v2_variant});
  const std::string kind = layout.kind.empty() ? "shards" : layout.kind;
  std::vector<int64_t> all(static_cast<size_t>(index.size()));
  std::iota(all.begin(), all.end(), 0);
  if (!o.subset && !index.is_canonical())
    c.problem("class index", fmt::format("{} classes, not the 1000 ImageNet-1k classes", index.size()));
  DatasetPtr val;
  for (const auto& [set, split] : {std::pair{"imagenet/train", Split::Train}, std::pair{"imagenet", Split::Test}}) {
    SetRow row;
    row.set = set;
    row.needed = true;
    try {
      const auto ds = make_dataset(dc, split);
      row = c.analyse(set, kind, split == Split::Train ? layout.train_dir.string() : layout.val_dir.string(), *ds,
                      index, all);
      row.needed = true;
      if (split == Split::Test) val = ds;
    } catch (const UserError& e) {
      c.problem(set, e.what());
    }
    r.rows.push_back(row);
  }
  // Val class folders the train folder lacks: their images are left out (a half-extracted train?).
  if (!layout.val_dir.empty() && !layout.val_flat) {
    std::vector<std::string> lacking;
    for (const auto& e : fs::directory_iterator(layout.val_dir, ec)) {
      const auto name = e.path().filename().string();
      if (e.is_directory() && img::is_wnid(name) && !index.find(name)) lacking.push_back(name);
    }
    std::sort(lacking.begin(), lacking.end());
    if (!lacking.empty())
      c.problem("imagenet", fmt::format("{} validation classes have no train folder (their images are left out): {}",
                                        lacking.size(), first_few(lacking)));
  }
  if (val) {
    std::optional<fs::path> kit_path = ilsvrc::find_devkit(o.data_root);
    if (kit_path) {
      try {
        c.val_against_devkit(*val, index, ilsvrc::read_devkit(*kit_path));
      } catch (const UserError& e) {
        c.problem("devkit", e.what());
      }
    } else if (layout.kind.rfind("Kaggle", 0) == 0) {
      r.notes.push_back("imagenet: labels from LOC_val_solution.csv (no devkit to cross-check them)");
    } else {
      r.notes.push_back("imagenet: label order not verified: no ILSVRC2012_devkit_t12.tar.gz in the data root to "
                        "compare with (labels are checked for spread over the classes only)");
    }
  }
  if (o.test_sets) {
    eval::SuiteOptions so;
    so.image_size = o.image_size;
    so.include_arrays = false;
    so.val_labels = o.val_labels;
    so.v2_variant = o.v2_variant;
    try {
      const auto suite = eval::discover_test_suite(o.data_root, so);
      for (const auto& t : suite.present) {
        if (t.name == "imagenet") continue;
        std::vector<int64_t> expected = t.class_subset.empty() ? all : t.class_subset;
        r.rows.push_back(c.analyse(t.name, "folders/shards", t.path.string(), *t.dataset, index, expected));
      }
      for (const auto& a : suite.absent) {
        if (a.name == "imagenet") continue;
        SetRow row;
        row.set = a.name;
        row.path = a.path.string();
        row.note = "absent";
        r.rows.push_back(row);
      }
    } catch (const UserError& e) {
      c.problem("test sets", e.what());
    }
  }
  c.throughput(dc);
  return r;
}

std::string format_report(const CheckReport& r, const CheckOptions& o) {
  std::string out = fmt::format("{:<26} {:>9} {:>10} {:>8} {:>9} {:>11}  {}\n", "set", "images", "official", "classes",
                                "decoded", "unreadable", "layout / notes");
  for (const auto& row : r.rows) {
    if (!row.present) {
      out += fmt::format("{:<26} {:>9} {:>10} {:>8} {:>9} {:>11}  {}{}\n", row.set, "-", "-", "-", "-", "-",
                         row.needed ? "MISSING " : "absent ", row.path);
      continue;
    }
    out += fmt::format("{:<26} {:>9} {:>10} {:>8} {:>9} {:>11}  {}{}{}\n", row.set, row.images, row.official_images,
                       row.classes < 0 ? std::string("?") : std::to_string(row.classes), row.decoded, row.unreadable,
                       row.layout, row.note.empty() ? "" : "; ", row.note);
  }
  for (const auto& n : r.notes) out += "note: " + n + "\n";
  if (r.images_per_second_per_core > 0) {
    out += fmt::format("decode + train transform: {:.0f} images/s per core ({} px, measured on up to 64 train images)\n",
                       r.images_per_second_per_core, o.image_size);
    if (o.step_rate > 0)
      out += fmt::format("a global batch of {} at {} steps/s needs {:.1f} cores for input\n", o.global_batch, o.step_rate,
                         r.cores_needed);
    else
      out += fmt::format("a global batch of {} needs {:.1f} cores per step/s for input\n", o.global_batch, r.cores_needed);
  }
  out += r.ok() ? "data check: OK\n"
                : fmt::format("data check: {} problems, {} unreadable files\n", r.problems.size(), r.unreadable.size());
  return out;
}

}  // namespace lth::data::check
