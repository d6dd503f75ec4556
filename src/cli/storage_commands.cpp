// SPDX-License-Identifier: Apache-2.0
#include "cli/storage_commands.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/instance.hpp"
#include "stowage/io/file.hpp"
#include "stowage/service/fsck.hpp"
#include "stowage/service/gc.hpp"
#include "stowage/service/link_sync.hpp"
#include "stowage/service/team_files.hpp"

namespace stowage::cli {
namespace {

/// How often a progress line is printed when stderr is not a terminal.
constexpr std::chrono::seconds kPlainProgressEvery{5};

std::string json_text(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string utc_time(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

/// A byte-progress bar on a terminal, a plain line every few seconds otherwise.
class ByteProgress {
 public:
  ByteProgress(std::ostream& err, std::string label, std::optional<std::uint64_t> total)
      : err_(err), label_(std::move(label)), total_(total),
        tty_(::isatty(STDERR_FILENO) == 1 && &err == &std::cerr) {}

  void update(std::uint64_t done) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < (tty_ ? std::chrono::milliseconds(200) : kPlainProgressEvery)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    std::string line = label_ + "  " + human_bytes(done);
    if (total_) line += "/" + human_bytes(*total_);
    if (secs > 0) line += "  " + human_bytes(static_cast<std::uint64_t>(done / secs)) + "/s";
    if (tty_) {
      constexpr std::size_t kWidth = 24;
      std::string bar;
      if (total_ && *total_ > 0) {
        const auto filled = static_cast<std::size_t>(
            std::min<std::uint64_t>(kWidth, done * kWidth / *total_));
        bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
      }
      err_ << "\r\033[K" << bar << line << std::flush;
      drawn_ = true;
    } else {
      err_ << "progress: " << line << '\n' << std::flush;
    }
  }
  void finish() {
    if (drawn_) err_ << '\n';
  }

 private:
  std::ostream& err_;
  std::string label_;
  std::optional<std::uint64_t> total_;
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = start_;
};

/// The instance opened as its administrator (commands act as user admin, like `serve`'s first
/// start), with the team they act in: `team` or admin's first team.
struct AdminSession {
  Instance instance;
  catalog::Principal who;
  catalog::Id team_id = 0;
};

Result<AdminSession> open_admin(config::Config& config, std::optional<catalog::Id> team) {
  STOWAGE_TRY(config::resolve_bucket_prefix(config));
  AdminSession s;
  STOWAGE_ASSIGN_OR_RETURN(s.instance, open_instance(config));
  auto admin = s.instance.catalog->find_user("admin");
  if (!admin) {
    return make_error(ErrorCode::InvalidArgument,
                      "no user 'admin' in the catalog: run `stowage serve` once first");
  }
  STOWAGE_ASSIGN_OR_RETURN(auto memberships, s.instance.catalog->memberships(admin->id));
  s.who.user = *admin;
  for (const auto& m : memberships) s.who.team_ids.push_back(m.team.id);
  if (team) {
    s.team_id = *team;
  } else if (!s.who.team_ids.empty()) {
    s.team_id = s.who.team_ids.front();
  } else {
    return make_error(ErrorCode::InvalidArgument, "user 'admin' is in no team: pass --team ID");
  }
  return s;
}

int error_exit(std::ostream& err, const Error& e) {
  // A path refused, a team that is not admin's, nothing at a path: the user's input (2 / 1).
  const int code = e.code == ErrorCode::PermissionDenied ? kExitUsage : exit_code_for(e);
  return fail(err, e.message, code);
}

struct FilesOptions {
  std::optional<catalog::Id> team;
  std::string path = "/";
  std::string local;
  bool recursive = false;
  bool json = false;
};

int files_ls(config::Config& config, const FilesOptions& o, std::ostream& out, std::ostream& err) {
  auto s = open_admin(config, o.team);
  if (!s) return error_exit(err, s.error());
  service::TeamFiles files(*s->instance.service);
  std::vector<std::vector<std::string>> rows;
  std::string token;
  std::uint64_t count = 0, bytes = 0;
  do {
    auto page = files.list(s->who, s->team_id, o.path, o.recursive, token);
    if (!page) return error_exit(err, page.error());
    for (const auto& f : page->entries) {
      ++count;
      bytes += f.size;
      if (o.json) {
        out << "{\"path\":" << json_text(f.path) << ",\"type\":\""
            << (f.is_folder ? "folder" : "file") << "\",\"size\":" << f.size << "}\n";
      } else {
        rows.push_back({f.is_folder ? "folder" : "file", f.is_folder ? "" : std::to_string(f.size),
                        f.is_folder ? "" : utc_time(f.modified), f.path});
      }
    }
    token = std::move(page->next_token);
  } while (!token.empty());
  if (!o.json) {
    print_table(out, {"type", "size", "modified (UTC)", "path"}, rows);
    out << count << " entries, " << human_bytes(bytes) << '\n';
  }
  return kExitOk;
}

int files_put(config::Config& config, const FilesOptions& o, std::ostream& out,
              std::ostream& err) {
  auto file = io::File::open_read(o.local);
  if (!file) return fail(err, "cannot read " + o.local + ": " + file.error().message, kExitUsage);
  auto size = file->size();
  if (!size) return fail(err, size.error().message, kExitFailed);
  std::string remote = o.path;
  if (remote.ends_with('/')) remote += std::filesystem::path(o.local).filename().string();
  auto s = open_admin(config, o.team);
  if (!s) return error_exit(err, s.error());
  service::TeamFiles files(*s->instance.service);
  auto upload = files.begin_upload(s->who, s->team_id, remote, *size);
  if (!upload) return error_exit(err, upload.error());
  ByteProgress progress(err, "upload " + remote, *size);
  std::vector<std::byte> chunk(io::kDefaultChunkBytes);
  std::uint64_t offset = 0;
  for (;;) {
    auto n = file->read_at(offset, chunk);
    if (!n) return fail(err, "reading " + o.local + ": " + n.error().message, kExitFailed);
    if (*n == 0) break;
    if (auto ok = (*upload)->write(std::span<const std::byte>(chunk.data(), *n)); !ok) {
      progress.finish();
      return error_exit(err, ok.error());
    }
    offset += *n;
    progress.update(offset);
  }
  auto done = (*upload)->commit();
  progress.finish();
  if (!done) return error_exit(err, done.error());
  out << "uploaded " << done->path << " (" << done->size << " bytes) to team " << s->team_id
      << '\n';
  return kExitOk;
}

int files_get(config::Config& config, const FilesOptions& o, std::ostream& out,
              std::ostream& err) {
  auto s = open_admin(config, o.team);
  if (!s) return error_exit(err, s.error());
  service::TeamFiles files(*s->instance.service);
  auto info = files.info(s->who, s->team_id, o.path);
  if (!info) return error_exit(err, info.error());
  std::filesystem::path target = o.local;
  if (o.local.empty() || std::filesystem::is_directory(target)) target /= info->name;
  auto reader = s->instance.store->open_read(info->object, {});
  if (!reader) return error_exit(err, reader.error());
  // Written beside the target and renamed when complete: never a half file under its name.
  const std::filesystem::path temp = target.string() + ".stowage-part";
  std::error_code stale;
  std::filesystem::remove(temp, stale);  // left by an earlier, interrupted download
  auto sink = io::File::create_exclusive(temp);
  if (!sink) return fail(err, "cannot write " + temp.string() + ": " + sink.error().message,
                         kExitFailed);
  ByteProgress progress(err, "download " + info->path, info->size);
  std::vector<std::byte> chunk(io::kDefaultChunkBytes);
  std::uint64_t done = 0;
  auto cleanup = [&](const Error& e) {
    progress.finish();
    (void)sink->close();
    std::error_code ec;
    std::filesystem::remove(temp, ec);
    return error_exit(err, e);
  };
  for (;;) {
    auto n = (*reader)->read(chunk);
    if (!n) return cleanup(n.error());
    if (*n == 0) break;
    if (auto ok = sink->write_all(std::span<const std::byte>(chunk.data(), *n)); !ok) {
      return cleanup(ok.error());
    }
    done += *n;
    progress.update(done);
  }
  if (done != info->size) {
    return cleanup(make_error(ErrorCode::Corrupt, info->path + " changed while it was read"));
  }
  if (auto ok = sink->sync(); !ok) return cleanup(ok.error());
  (void)sink->close();
  std::error_code ec;
  std::filesystem::rename(temp, target, ec);
  progress.finish();
  if (ec) return fail(err, "cannot rename to " + target.string() + ": " + ec.message(), kExitFailed);
  out << "downloaded " << info->path << " (" << done << " bytes) to " << target.string() << '\n';
  return kExitOk;
}

int files_rm(config::Config& config, const FilesOptions& o, std::ostream& out,
             std::ostream& err) {
  auto s = open_admin(config, o.team);
  if (!s) return error_exit(err, s.error());
  service::TeamFiles files(*s->instance.service);
  auto removed = files.remove(s->who, s->team_id, o.path);
  if (!removed) return error_exit(err, removed.error());
  out << "removed " << *removed << " file" << (*removed == 1 ? "" : "s") << '\n';
  return kExitOk;
}

std::string sync_counts(const service::LinkSyncProgress& c, bool dry_run) {
  return std::to_string(c.listed) + " listed  " + std::to_string(c.matched) + " matched  " +
         std::to_string(c.added) + (dry_run ? " to add  " : " added  ") +
         std::to_string(c.existing) + " already there  " + std::to_string(c.skipped) +
         " skipped  " + std::to_string(c.failed) + " failed";
}

int links_sync(config::Config& config, service::LinkSyncOptions options, bool json,
               std::ostream& out, std::ostream& err) {
  auto s = open_admin(config, std::nullopt);
  if (!s) return error_exit(err, s.error());
  const bool tty = ::isatty(STDERR_FILENO) == 1 && &err == &std::cerr && !json;
  auto last = std::chrono::steady_clock::now();
  bool drawn = false;
  options.on_progress = [&](const service::LinkSyncProgress& c) {
    const auto now = std::chrono::steady_clock::now();
    if (tty) {
      err << "\r\033[K" << sync_counts(c, options.dry_run) << std::flush;
      drawn = true;
    } else if (!json && now - last >= kPlainProgressEvery) {
      last = now;
      err << "progress: " << sync_counts(c, options.dry_run) << '\n' << std::flush;
    }
  };
  auto report = service::sync_links(*s->instance.service, s->who, options);
  if (drawn) err << '\n';
  if (!report) return error_exit(err, report.error());
  using Status = service::LinkSyncEntry::Status;
  if (json) {
    const auto& c = report->counts;
    out << "{\"listed\":" << c.listed << ",\"matched\":" << c.matched << ",\"added\":" << c.added
        << ",\"existing\":" << c.existing << ",\"skipped\":" << c.skipped
        << ",\"failed\":" << c.failed << ",\"removed\":" << report->removed
        << ",\"dryRun\":" << (options.dry_run ? "true" : "false") << ",\"entries\":[";
    bool first = true;
    for (const auto& e : report->entries) {
      out << (first ? "" : ",") << "{\"status\":" << json_text(service::to_string(e.status))
          << ",\"link\":" << json_text(e.link) << ",\"name\":" << json_text(e.name)
          << ",\"itemId\":" << e.item_id << ",\"reason\":" << json_text(e.reason) << "}";
      first = false;
    }
    out << "]}\n";
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : report->entries) {
      if (e.status == Status::Exists) continue;  // the summary counts them
      rows.push_back({std::string(service::to_string(e.status)),
                      e.item_id ? std::to_string(e.item_id) : "", e.link, e.reason});
    }
    if (!rows.empty()) print_table(out, {"status", "item", "link", "why"}, rows);
    out << sync_counts(report->counts, options.dry_run) << ", " << report->removed
        << " removed at the source (items kept)\n";
  }
  return report->counts.failed == 0 ? kExitOk : kExitFailed;
}

/// "24h", "90m", "7d", "30s", "0": a duration for --grace.
std::optional<std::chrono::seconds> parse_duration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (...) {
    return std::nullopt;
  }
  if (n < 0) return std::nullopt;
  const std::string unit = text.substr(used);
  if (unit.empty() || unit == "s") return std::chrono::seconds(n);
  if (unit == "m") return std::chrono::seconds(n * 60);
  if (unit == "h") return std::chrono::seconds(n * 3600);
  if (unit == "d") return std::chrono::seconds(n * 86400);
  return std::nullopt;
}

int run_fsck(config::Config& config, service::FsckOptions options, bool json, std::ostream& out,
             std::ostream& err) {
  auto s = open_admin(config, std::nullopt);
  if (!s) return error_exit(err, s.error());
  const bool tty = ::isatty(STDERR_FILENO) == 1 && &err == &std::cerr && !json;
  bool drawn = false;
  auto last = std::chrono::steady_clock::now();
  options.on_progress = [&](std::uint64_t items, std::uint64_t blobs) {
    const auto now = std::chrono::steady_clock::now();
    const std::string line = std::to_string(items) + " items  " + std::to_string(blobs) + " blobs";
    if (tty) {
      err << "\r\033[K" << line << std::flush;
      drawn = true;
    } else if (!json && now - last >= kPlainProgressEvery) {
      last = now;
      err << "progress: " << line << '\n' << std::flush;
    }
  };
  auto report = service::check_storage(*s->instance.service, options);
  if (drawn) err << '\n';
  if (!report) return error_exit(err, report.error());
  std::uint64_t orphans = 0, orphan_bytes = 0;
  for (const auto& f : report->findings) {
    if (f.kind == service::FsckFinding::Kind::OrphanObject) ++orphans, orphan_bytes += f.size;
  }
  if (json) {
    out << "{\"items\":" << report->items << ",\"links\":" << report->links
        << ",\"blobs\":" << report->blobs << ",\"objects\":" << report->objects
        << ",\"problems\":" << report->problems << ",\"repaired\":" << report->repaired
        << ",\"orphans\":" << orphans << ",\"orphanBytes\":" << orphan_bytes
        << ",\"findings\":[";
    bool first = true;
    for (const auto& f : report->findings) {
      out << (first ? "" : ",") << "{\"kind\":" << json_text(service::to_string(f.kind))
          << ",\"problem\":" << (service::is_problem(f.kind) ? "true" : "false")
          << ",\"itemId\":" << (f.item_id ? std::to_string(*f.item_id) : "null")
          << ",\"sha256\":" << json_text(f.sha256_hex) << ",\"where\":" << json_text(f.where)
          << ",\"detail\":" << json_text(f.detail)
          << ",\"repaired\":" << (f.repaired ? "true" : "false") << "}";
      first = false;
    }
    out << "]}\n";
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& f : report->findings) {
      rows.push_back({std::string(service::to_string(f.kind)),
                      f.item_id ? std::to_string(*f.item_id) : "", f.where,
                      f.detail + (f.repaired ? " (repaired)" : "")});
    }
    if (!rows.empty()) print_table(out, {"finding", "item", "where", "detail"}, rows);
    out << report->items << " items (" << report->links << " linked), " << report->blobs
        << " blobs, " << report->objects << " objects checked: " << report->problems
        << " problems, " << report->repaired << " repaired, " << orphans << " orphan objects ("
        << human_bytes(orphan_bytes) << ")\n";
  }
  return report->problems > report->repaired ? kExitFailed : kExitOk;
}

int run_gc(config::Config& config, service::GcOptions options, bool json, std::ostream& out,
           std::ostream& err) {
  auto s = open_admin(config, std::nullopt);
  if (!s) return error_exit(err, s.error());
  const bool tty = ::isatty(STDERR_FILENO) == 1 && &err == &std::cerr && !json;
  bool drawn = false;
  options.on_progress = [&](std::uint64_t blobs, std::uint64_t bytes) {
    if (!tty) return;
    err << "\r\033[K" << blobs << " blobs  " << human_bytes(bytes) << std::flush;
    drawn = true;
  };
  auto report = service::collect_garbage(*s->instance.service, options);
  if (drawn) err << '\n';
  if (!report) return error_exit(err, report.error());
  if (json) {
    out << "{\"dryRun\":" << (options.dry_run ? "true" : "false")
        << ",\"candidates\":" << report->candidates << ",\"removed\":" << report->removed
        << ",\"kept\":" << report->kept << ",\"resumed\":" << report->resumed
        << ",\"bytesReclaimed\":" << report->bytes_reclaimed << ",\"failed\":[";
    bool first = true;
    for (const auto& f : report->failed) {
      out << (first ? "" : ",") << "{\"sha256\":" << json_text(f.sha256_hex)
          << ",\"reason\":" << json_text(f.reason) << "}";
      first = false;
    }
    out << "]}\n";
  } else {
    for (const auto& f : report->failed) out << "failed " << f.sha256_hex << ": " << f.reason << '\n';
    if (options.dry_run) {
      out << report->candidates << " unused blobs older than the grace period; "
          << human_bytes(report->bytes_reclaimed) << " (" << report->bytes_reclaimed
          << " bytes) would be reclaimed\n";
    } else {
      out << report->removed << " blobs removed, " << report->resumed
          << " interrupted collections finished, " << report->kept << " kept (in use again), "
          << report->failed.size() << " failed; " << human_bytes(report->bytes_reclaimed) << " ("
          << report->bytes_reclaimed << " bytes) reclaimed\n";
    }
  }
  return report->failed.empty() ? kExitOk : kExitFailed;
}

}  // namespace

struct StorageCommands::State {
  CLI::App* files_ls = nullptr;
  CLI::App* files_put = nullptr;
  CLI::App* files_get = nullptr;
  CLI::App* files_rm = nullptr;
  FilesOptions files;
  catalog::Id team = 0;
  CLI::App* links_sync = nullptr;
  service::LinkSyncOptions sync;
  bool sync_json = false;
  CLI::App* fsck = nullptr;
  service::FsckOptions fsck_options;
  catalog::Id fsck_project = 0;
  bool fsck_json = false;
  CLI::App* gc = nullptr;
  service::GcOptions gc_options;
  std::string grace = "24h";
  bool gc_json = false;
};

StorageCommands::StorageCommands(CLI::App& app, CLI::App& links)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.links_sync = links.add_subcommand(
      "sync",
      "Import a bucket prefix as linked items: one item per object under PREFIX that matches "
      "the filters and is an image (a video, for a video project), header-probed, in batches. "
      "A rerun adds only new objects and reports the items whose objects are gone (kept). "
      "Exits 1 if any object failed.");
  s.links_sync->add_option("PREFIX", s.sync.prefix, "<provider>://<bucket>/<prefix>, through "
                           "remote_links.yml")->required();
  s.links_sync->add_option("--dataset", s.sync.dataset_id, "The dataset's id")->required();
  s.links_sync->add_option("--include", s.sync.include,
                           "A glob on the key below the prefix ('*' crosses '/'); repeatable");
  s.links_sync->add_option("--regex", s.sync.regex, "An ECMAScript regex searched in that key");
  s.links_sync->add_flag("--recursive", s.sync.recursive, "Objects of sub-folders too");
  s.links_sync->add_flag("--dry-run", s.sync.dry_run, "List and compare; add nothing");
  s.links_sync->add_option("--batch", s.sync.batch, "Items added per transaction")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  s.links_sync->add_option("--concurrency", s.sync.concurrency, "Objects probed at once")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  s.links_sync->add_flag("--json", s.sync_json, "Print the report as JSON on stdout");

  s.fsck = app.add_subcommand(
      "fsck",
      "Check that the storage holds what the catalog says: every item's bytes (a stored blob's "
      "object and size, --deep its SHA-256; a link's object and size), every blob row's object, "
      "and the objects no row knows (orphans, listed as notices). Exits 1 on problems.");
  s.fsck->add_option("--project", s.fsck_project, "Only this project's items");
  s.fsck->add_flag("--deep", s.fsck_options.deep, "Hash every stored blob's bytes");
  s.fsck->add_flag("--repair", s.fsck_options.repair,
                   "Fix what is safe: probe linked images whose size changed again and record "
                   "it. Never deletes or rewrites bytes");
  s.fsck->add_flag("--json", s.fsck_json, "Print the report as JSON on stdout");

  s.gc = app.add_subcommand(
      "gc",
      "Remove the stored bytes of blobs no item uses any more (after items were removed), once "
      "older than the grace period; safe beside a running server and uploads. Never touches "
      "linked objects, team files or caches.");
  s.gc->add_flag("--dry-run", s.gc_options.dry_run, "Report what would be reclaimed; remove nothing");
  s.gc->add_option("--grace", s.grace, "Keep unused blobs younger than this (30s, 90m, 24h, 7d)")
      ->capture_default_str();
  s.gc->add_flag("--json", s.gc_json, "Print the report as JSON on stdout");
  CLI::App* files = app.add_subcommand(
      "files",
      "Team files (the SDK's api.file): artifacts kept in the private bucket under each team's "
      "own root. Acts as user admin, in admin's first team unless --team.");
  files->require_subcommand(1);
  auto team_option = [&](CLI::App* c) {
    c->add_option("--team", s.team, "The team's id (default: admin's first team)");
  };
  s.files_ls = files->add_subcommand("ls", "List a folder (or a file) of the team's files.");
  s.files_ls->add_option("PATH", s.files.path, "A folder (/models/) or file path")
      ->capture_default_str();
  s.files_ls->add_flag("-r,--recursive", s.files.recursive, "Every file beneath the folder");
  s.files_ls->add_flag("--json", s.files.json, "One JSON object per line");
  team_option(s.files_ls);
  s.files_put = files->add_subcommand(
      "put", "Upload a local file (streamed; any size). REMOTE ending in '/' keeps its name.");
  s.files_put->add_option("LOCAL", s.files.local, "The local file")->required();
  s.files_put->add_option("REMOTE", s.files.path, "Where in the team's files")->required();
  team_option(s.files_put);
  s.files_get = files->add_subcommand("get", "Download a team file to a local file or folder.");
  s.files_get->add_option("REMOTE", s.files.path, "The file's path")->required();
  s.files_get->add_option("LOCAL", s.files.local, "A local file or folder (default: .)");
  team_option(s.files_get);
  s.files_rm = files->add_subcommand("rm", "Remove a file, or a folder (/path/) and all in it.");
  s.files_rm->add_option("PATH", s.files.path, "The file or folder")->required();
  team_option(s.files_rm);
}

StorageCommands::~StorageCommands() = default;

std::optional<int> StorageCommands::run(config::Config& config) {
  State& s = *state_;
  if (s.team != 0) s.files.team = s.team;
  if (s.files_ls->parsed()) return files_ls(config, s.files, std::cout, std::cerr);
  if (s.files_put->parsed()) return files_put(config, s.files, std::cout, std::cerr);
  if (s.files_get->parsed()) {
    if (s.files.local.empty()) s.files.local = ".";
    return files_get(config, s.files, std::cout, std::cerr);
  }
  if (s.files_rm->parsed()) return files_rm(config, s.files, std::cout, std::cerr);
  if (s.links_sync->parsed()) return links_sync(config, s.sync, s.sync_json, std::cout, std::cerr);
  if (s.fsck->parsed()) {
    if (s.fsck_project != 0) s.fsck_options.project_id = s.fsck_project;
    return run_fsck(config, s.fsck_options, s.fsck_json, std::cout, std::cerr);
  }
  if (s.gc->parsed()) {
    const auto grace = parse_duration(s.grace);
    if (!grace) {
      return fail(std::cerr, "--grace '" + s.grace + "': give a duration such as 30s, 90m, 24h, 7d",
                  kExitUsage);
    }
    s.gc_options.grace = *grace;
    return run_gc(config, s.gc_options, s.gc_json, std::cout, std::cerr);
  }
  return std::nullopt;
}

}  // namespace stowage::cli
