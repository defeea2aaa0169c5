#include "data/ilsvrc/official.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>
#include <tuple>

#include "common/error.h"
#include "data/imagenet/class_index.h"
#include "data/shards/random_access_file.h"
#include "data/shards/tar.h"

namespace lth::data::ilsvrc {
namespace fs = std::filesystem;
namespace {

std::string base_name(const std::string& member) {
  const auto slash = member.rfind('/');
  return slash == std::string::npos ? member : member.substr(slash + 1);
}

bool is_image_name(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".jpeg" || ext == ".jpg" || ext == ".png";
}

// The number in "ILSVRC2012_val_00000042.JPEG" (42), or -1.
int64_t val_number(const std::string& name) {
  static const std::string prefix = "ILSVRC2012_val_";
  if (name.rfind(prefix, 0) != 0) return -1;
  int64_t n = 0;
  size_t i = prefix.size();
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    if (n > 100'000'000) return -1;
    n = n * 10 + (name[i] - '0');
  }
  return i == prefix.size() || i >= name.size() || name[i] != '.' ? -1 : n;
}

void check_count(size_t n, const fs::path& tar) {
  require(n <= kMaxMembers, tar.string() + ": more than " + std::to_string(kMaxMembers) + " members; refused");
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  require(static_cast<bool>(in), p.string() + ": cannot read");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes `bytes` to `path` unless a file of that size is there (kept: `kept` counts it);
// another file there is an error. Temporary name + rename: a torn file never looks done.
void put_file(const fs::path& path, const std::string& bytes, int64_t& kept) {
  std::error_code ec;
  if (fs::exists(path, ec)) {
    require(fs::is_regular_file(path, ec) && fs::file_size(path, ec) == bytes.size(),
            path.string() + ": already exists with other content; refusing to overwrite it");
    ++kept;
    return;
  }
  const fs::path tmp = path.string() + ".lth-tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    require(static_cast<bool>(out), tmp.string() + ": write failed");
  }
  fs::rename(tmp, path, ec);
  require(!ec, path.string() + ": cannot rename into place: " + ec.message());
}

}  // namespace

OfficialFiles find_official(const fs::path& dir) {
  OfficialFiles f;
  std::error_code ec;
  if (fs::is_regular_file(dir / "ILSVRC2012_img_train.tar", ec)) f.train_tar = dir / "ILSVRC2012_img_train.tar";
  if (fs::is_regular_file(dir / "ILSVRC2012_img_val.tar", ec)) f.val_tar = dir / "ILSVRC2012_img_val.tar";
  f.devkit = find_devkit(dir);
  return f;
}

OfficialSplit index_official_train(const fs::path& train_tar) {
  OfficialSplit out;
  const shards::RandomAccessFile file(train_tar);
  const auto outer = shards::scan_tar(file);
  check_count(outer.members.size(), train_tar);
  if (!outer.problem.empty()) out.problems.push_back(outer.problem);
  for (const auto& m : outer.members) {
    const std::string name = base_name(m.name);
    const std::string wnid = name.size() > 4 ? name.substr(0, name.size() - 4) : "";
    if (name.size() != 13 || name.substr(9) != ".tar" || !imagenet::is_wnid(wnid)) {
      out.problems.push_back(train_tar.string() + ": member '" + m.name +
                             "' is not a per-class tar nXXXXXXXX.tar; ignored");
      continue;
    }
    const auto inner = shards::scan_tar(file, m.offset, m.offset + m.size);
    if (!inner.problem.empty())
      out.problems.push_back(inner.problem + " (inside " + m.name + ")");
    out.wnids.push_back(wnid);
    for (const auto& im : inner.members) {
      const std::string file_name = base_name(im.name);
      if (!is_image_name(file_name)) continue;
      out.samples.push_back(TarSample{train_tar, im.offset, im.size, file_name, wnid});
    }
    check_count(out.samples.size(), train_tar);
  }
  std::sort(out.samples.begin(), out.samples.end(), [](const TarSample& a, const TarSample& b) {
    return std::tie(a.wnid, a.file_name) < std::tie(b.wnid, b.file_name);
  });
  std::sort(out.wnids.begin(), out.wnids.end());
  out.wnids.erase(std::unique(out.wnids.begin(), out.wnids.end()), out.wnids.end());
  return out;
}

OfficialSplit index_official_val(const fs::path& val_tar, const Devkit& devkit) {
  OfficialSplit out;
  const shards::RandomAccessFile file(val_tar);
  const auto scan = shards::scan_tar(file);
  check_count(scan.members.size(), val_tar);
  if (!scan.problem.empty()) out.problems.push_back(scan.problem);
  for (const auto& m : scan.members) {
    const std::string name = base_name(m.name);
    if (!is_image_name(name)) continue;
    const int64_t k = val_number(name);
    require(k >= 1, val_tar.string() + ": member '" + m.name +
                        "' is not named ILSVRC2012_val_<number>.JPEG; its label is unknown");
    require(k <= static_cast<int64_t>(devkit.val_ids.size()),
            val_tar.string() + ": " + name + " has no line in the devkit's ground truth (" +
                std::to_string(devkit.val_ids.size()) + " lines, " + devkit.source.string() + ")");
    const auto wnid = devkit.wnid(devkit.val_ids[static_cast<size_t>(k - 1)]);
    out.samples.push_back(TarSample{val_tar, m.offset, m.size, name, *wnid});
  }
  std::sort(out.samples.begin(), out.samples.end(),
            [](const TarSample& a, const TarSample& b) { return a.file_name < b.file_name; });
  return out;
}

PrepareReport prepare_imagenet(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  require(fs::is_directory(from, ec), "--from " + from.string() + " is not a folder");
  const auto files = find_official(from);
  require(files.train_tar || files.val_tar,
          "--from " + from.string() + " holds neither ILSVRC2012_img_train.tar nor ILSVRC2012_img_val.tar");
  require(!files.val_tar || files.devkit,
          "--from " + from.string() + ": ILSVRC2012_img_val.tar needs ILSVRC2012_devkit_t12.tar.gz beside it "
          "(its ground truth labels the validation images)");
  PrepareReport report;
  const auto write_split = [&](const OfficialSplit& split, const std::string& set, const fs::path& dir) {
    report.problems.insert(report.problems.end(), split.problems.begin(), split.problems.end());
    std::optional<shards::RandomAccessFile> file;
    std::string bytes;
    for (const auto& s : split.samples) {
      if (!file || file->path() != s.tar) file.emplace(s.tar);
      bytes.resize(s.size);
      require(file->read_at(s.offset, bytes.data(), s.size) == s.size,
              s.tar.string() + ": cannot read " + s.file_name + " at byte " + std::to_string(s.offset));
      fs::create_directories(dir / s.wnid);
      put_file(dir / s.wnid / s.file_name, bytes, report.kept);
    }
    report.written.emplace_back(set, static_cast<int64_t>(split.samples.size()));
  };
  if (files.train_tar) write_split(index_official_train(*files.train_tar), "imagenet/train", to / "imagenet" / "train");
  if (files.val_tar) {
    const auto kit = read_devkit(*files.devkit);
    write_split(index_official_val(*files.val_tar, kit), "imagenet", to / "imagenet" / "val");
  }
  return report;
}

void write_official_from_folders(const fs::path& root, const fs::path& dir,
                                 const std::vector<std::string>& wnid_of_id) {
  fs::create_directories(dir);
  const auto sorted = [](const fs::path& d, bool dirs) {
    std::vector<fs::path> v;
    for (const auto& e : fs::directory_iterator(d)) {
      if (dirs ? e.is_directory() : e.is_regular_file()) v.push_back(e.path());
    }
    std::sort(v.begin(), v.end());
    return v;
  };
  std::error_code ec;
  if (fs::is_directory(root / "imagenet" / "train", ec)) {
    shards::TarWriter outer(dir / "ILSVRC2012_img_train.tar.lth-tmp");
    for (const auto& cls : sorted(root / "imagenet" / "train", true)) {
      const fs::path inner_path = dir / (cls.filename().string() + ".tar.lth-tmp");
      {
        shards::TarWriter inner(inner_path);
        for (const auto& f : sorted(cls, false)) inner.add(f.filename().string(), read_all(f));
        inner.close();
      }
      outer.add(cls.filename().string() + ".tar", read_all(inner_path));
      fs::remove(inner_path);
    }
    outer.close();
    fs::rename(dir / "ILSVRC2012_img_train.tar.lth-tmp", dir / "ILSVRC2012_img_train.tar");
  }
  std::vector<int32_t> val_ids;
  if (fs::is_directory(root / "imagenet" / "val", ec)) {
    std::vector<std::pair<fs::path, int32_t>> files;  // (file, ILSVRC2012 id)
    for (const auto& cls : sorted(root / "imagenet" / "val", true)) {
      const auto it = std::find(wnid_of_id.begin(), wnid_of_id.end(), cls.filename().string());
      require(it != wnid_of_id.end(), cls.string() + ": not in the devkit's classes");
      for (const auto& f : sorted(cls, false))
        files.emplace_back(f, static_cast<int32_t>(it - wnid_of_id.begin()));
    }
    // The real val files come in no class order: number them in a fixed shuffled order.
    std::mt19937 rng(2012);
    std::shuffle(files.begin(), files.end(), rng);
    shards::TarWriter val(dir / "ILSVRC2012_img_val.tar.lth-tmp");
    char name[64];
    for (size_t k = 0; k < files.size(); ++k) {
      std::snprintf(name, sizeof name, "ILSVRC2012_val_%08zu.JPEG", k + 1);
      val.add(name, read_all(files[k].first));
      val_ids.push_back(files[k].second);
    }
    val.close();
    fs::rename(dir / "ILSVRC2012_img_val.tar.lth-tmp", dir / "ILSVRC2012_img_val.tar");
  }
  write_devkit(dir / "ILSVRC2012_devkit_t12.tar.gz", wnid_of_id, val_ids);
}

}  // namespace lth::data::ilsvrc
