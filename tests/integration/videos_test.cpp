// SPDX-License-Identifier: Apache-2.0
// Videos over the API as the SDK drives them (shared/spec/api.md 1.4): hashes, videos.bulk.upload,
// import-storage.internal.meta.list, videos.bulk.add per video stream, list/info/download with
// Range, frame previews, video links, and set_remote (images/videos.update.links). The videos are
// made by the ffmpeg CLI at run time, and what the API says of them is checked against ffprobe.
#include <gtest/gtest.h>
#include <vips/vips.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <random>

#include "stowage/config/config.hpp"
#include "support/cloud_server.hpp"
#include "support/http_client.hpp"
#include "support/link_http_server.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::int64_t id_of(const json::value& v) { return v.at("id").to_number<std::int64_t>(); }

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

/// Runs a shell command; its standard output, or a failed test.
std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  EXPECT_EQ(status, 0) << command;
  return out;
}

/// What ffprobe says of the first video stream: codec, size, frames (counted) and duration.
struct Probe {
  std::string codec;
  int width = 0;
  int height = 0;
  std::int64_t frames = 0;
  double duration = 0;
  int index = 0;
  int streams = 0;
};

Probe ffprobe(const fs::path& file) {
  const auto streams = json::parse(
      run("ffprobe -v error -count_frames -show_streams -show_format -of json '" + file.string() +
          "'"));
  Probe p;
  p.streams = static_cast<int>(streams.at("streams").as_array().size());
  for (const auto& s : streams.at("streams").as_array()) {
    if (s.at("codec_type").as_string() != "video") continue;
    p.codec = std::string(s.at("codec_name").as_string());
    p.width = s.at("width").to_number<int>();
    p.height = s.at("height").to_number<int>();
    p.frames = std::stoll(std::string(s.at("nb_read_frames").as_string()));
    p.index = s.at("index").to_number<int>();
    break;
  }
  p.duration = std::stod(std::string(streams.at("format").at("duration").as_string()));
  return p;
}

/// JPEG dimensions via libvips.
std::pair<int, int> image_size(const std::string& bytes) {
  VipsImage* image = vips_image_new_from_buffer(bytes.data(), bytes.size(), "", nullptr);
  if (image == nullptr) return {0, 0};
  const std::pair<int, int> size{vips_image_get_width(image), vips_image_get_height(image)};
  g_object_unref(image);
  return size;
}

class VideosTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "stowage-videos-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const std::string src = " -f lavfi -i testsrc=size=320x240:rate=25";
    const std::string audio = " -f lavfi -i sine=frequency=440:sample_rate=44100";
    // H.264 + AAC in MP4 with the index in front; VP8 + Vorbis in WebM; MPEG-4 in Matroska.
    run("ffmpeg -y -v error" + src + audio +
        " -t 2 -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest -movflags +faststart '" +
        (dir_ / "clip.mp4").string() + "'");
    run("ffmpeg -y -v error -f lavfi -i testsrc=size=160x120:rate=30" + audio +
        " -t 1.5 -c:v libvpx -b:v 300k -c:a libvorbis -shortest '" + (dir_ / "clip.webm").string() +
        "'");
    run("ffmpeg -y -v error -f lavfi -i testsrc=size=200x100:rate=24 -t 1 -c:v mpeg4 '" +
        (dir_ / "clip.mkv").string() + "'");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void SetUp() override {
    auto ws = api_.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
    auto p = api_.call("projects.add", {{"workspaceId", ws}, {"name", "videos"}, {"type", "videos"}})
                 .json();
    ASSERT_EQ(p.at("type").as_string(), "videos");
    project_ = id_of(p);
    dataset_ = id_of(api_.call("datasets.add", {{"projectId", project_}, {"name", "ds"}}).json());
  }

  /// POST videos.bulk.upload as the SDK does: parts "<i>-file", filename "<i>", video/*.
  HttpResponse upload(const std::vector<std::string>& files) {
    std::vector<FormFile> parts;
    for (std::size_t i = 0; i < files.size(); ++i) {
      parts.push_back({std::to_string(i) + "-file", std::to_string(i), "video/*", files[i]});
    }
    const std::string boundary = "videoboundary1234";
    return api_.post("/public/api/v3/videos.bulk.upload",
                     HttpClient::multipart_body(parts, boundary),
                     "multipart/form-data; boundary=" + boundary);
  }

  /// The SDK's upload_paths for one file: hashes, upload, meta, one item per video stream.
  json::value upload_path(const std::string& name, const std::string& bytes) {
    const std::string hash = sdk_hash(bytes);
    auto known = api_.call("images.internal.hashes.list", json::array{json::value(hash)});
    EXPECT_EQ(known.status, 200) << known.body;
    auto up = upload({bytes});
    EXPECT_EQ(up.status, 200) << up.body;
    EXPECT_EQ(up.json().at(0).at("hash").as_string(), hash) << up.body;
    auto metas = api_.call("import-storage.internal.meta.list", {{"hashes", json::array{json::value(hash)}}});
    EXPECT_EQ(metas.status, 200) << metas.body;
    json::array videos;
    const json::value meta = metas.json();
    for (const auto& s : meta.at(0).at("meta").at("streams").as_array()) {
      if (s.at("codecType").as_string() != "video") continue;
      videos.push_back({{"title", name},
                        {"hash", hash},
                        {"meta", {{"videoStreamIndex", s.at("index")}}}});
    }
    auto added = api_.call("videos.bulk.add", {{"datasetId", dataset_},
                                               {"videos", videos},
                                               {"forceMetadataForLinks", true}});
    EXPECT_EQ(added.status, 200) << added.body;
    return added.json().at(0);
  }

  static fs::path dir_;
  TestServer server_;
  HttpClient api_ = server_.client();
  std::int64_t project_ = 0;
  std::int64_t dataset_ = 0;
};
fs::path VideosTest::dir_;

/// What the API says of a video item matches ffprobe.
void expect_matches(const json::value& video, const Probe& p, std::size_t size,
                    const std::string& mime) {
  const auto& fm = video.at("fileMeta");
  EXPECT_EQ(fm.at("mime").as_string(), mime);
  EXPECT_EQ(std::stoull(std::string(fm.at("size").as_string())), size);
  EXPECT_EQ(fm.at("codecName").as_string(), p.codec);
  EXPECT_EQ(fm.at("codecType").as_string(), "video");
  EXPECT_EQ(fm.at("width").to_number<int>(), p.width);
  EXPECT_EQ(fm.at("height").to_number<int>(), p.height);
  EXPECT_EQ(fm.at("index").to_number<int>(), p.index);
  EXPECT_EQ(fm.at("framesCount").to_number<std::int64_t>(), p.frames);
  EXPECT_EQ(static_cast<std::int64_t>(fm.at("framesToTimecodes").as_array().size()), p.frames);
  EXPECT_NEAR(fm.at("duration").to_number<double>(), p.duration, 0.1);
  EXPECT_EQ(static_cast<int>(fm.at("streams").as_array().size()), p.streams);
  // Timecodes ascend from the first frame.
  double last = -1;
  for (const auto& t : fm.at("framesToTimecodes").as_array()) {
    EXPECT_GT(t.to_number<double>(), last);
    last = t.to_number<double>();
  }
}

TEST_F(VideosTest, SdkUploadFlowMatchesFfprobeForMp4WebmAndMkv) {
  const std::vector<std::tuple<std::string, std::string>> files = {
      {"clip.mp4", "video/mp4"}, {"clip.webm", "video/webm"}, {"clip.mkv", "video/x-matroska"}};
  for (const auto& [name, mime] : files) {
    SCOPED_TRACE(name);
    const std::string bytes = read_file(dir_ / name);
    ASSERT_FALSE(bytes.empty());
    const auto video = upload_path(name, bytes);
    EXPECT_EQ(video.at("name").as_string(), name);  // the SDK maps results by name
    EXPECT_EQ(video.at("hash").as_string(), sdk_hash(bytes));
    EXPECT_TRUE(video.at("link").is_null());
    expect_matches(video, ffprobe(dir_ / name), bytes.size(), mime);

    const auto info = api_.call("videos.info", {{"id", video.at("id")}, {"forceMetadataForLinks", true}});
    ASSERT_EQ(info.status, 200) << info.body;
    expect_matches(info.json(), ffprobe(dir_ / name), bytes.size(), mime);

    const auto dl = api_.call("videos.download", {{"id", video.at("id")}});
    ASSERT_EQ(dl.status, 200);
    EXPECT_EQ(dl.body, bytes);
    EXPECT_EQ(dl.header("x-content-checksum-sha256"), sdk_hash(bytes));
  }
  const auto list = api_.call("videos.list", {{"datasetId", dataset_},
                                              {"filter", json::array{}},
                                              {"rawVideoMeta", false},
                                              {"forceMetadataForLinks", false}});
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.json().at("total").to_number<int>(), 3);
  // The same bytes again: the hash is known, nothing is stored twice.
  const std::string mp4 = read_file(dir_ / "clip.mp4");
  auto known = api_.call("images.internal.hashes.list", json::array{json::value(sdk_hash(mp4))});
  EXPECT_EQ(known.json().as_array().size(), 1u);
  EXPECT_EQ(server_.objects_with_hash(sdk_hash(mp4)), 1u);
}

TEST_F(VideosTest, RangeSeekingReturnsTheRightBytes) {
  const std::string bytes = read_file(dir_ / "clip.mp4");
  const auto video = upload_path("seek.mp4", bytes);
  const std::string body = json::serialize(json::object{{"id", video.at("id")}});
  auto ranged = [&](const std::string& range) {
    return api_.post("/public/api/v3/videos.download", body, "application/json",
                     {{"Range", range}});
  };
  const std::size_t n = bytes.size();
  auto r = ranged("bytes=1000-4999");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, bytes.substr(1000, 4000));
  EXPECT_EQ(r.header("content-range"), "bytes 1000-4999/" + std::to_string(n));
  r = ranged("bytes=-777");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, bytes.substr(n - 777));
  r = ranged("bytes=" + std::to_string(n / 2) + "-");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, bytes.substr(n / 2));
  r = ranged("bytes=" + std::to_string(n) + "-");
  EXPECT_EQ(r.status, 416);
}

TEST_F(VideosTest, BrokenAndTruncatedFilesAreRefusedAndMakeNoItem) {
  const std::string mp4 = read_file(dir_ / "clip.mp4");
  const std::string mkv = read_file(dir_ / "clip.mkv");
  std::mt19937 rng(7);
  std::string noise(50000, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  // An MP4 with its index in front, cut before the index ends; a Matroska file cut to its header;
  // bytes that are no container; an image.
  const std::vector<std::string> bad = {mp4.substr(0, 600), mkv.substr(0, 200), noise,
                                        make_image(30, 20, "png", 1)};
  auto r = upload(bad);
  ASSERT_EQ(r.status, 200) << r.body;
  const json::value results = r.json();
  for (std::size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(i);
    const auto& entry = results.at(i).as_object();
    ASSERT_TRUE(entry.contains("errors")) << r.body;
    EXPECT_FALSE(entry.contains("hash"));
    auto known = api_.call("images.internal.hashes.list", json::array{json::value(sdk_hash(bad[i]))});
    EXPECT_TRUE(known.json().as_array().empty());
    EXPECT_EQ(server_.objects_with_hash(sdk_hash(bad[i])), 0u);
  }
  // Bytes never stored have no metadata to give.
  auto meta = api_.call("import-storage.internal.meta.list",
                        {{"hashes", json::array{json::value(sdk_hash(noise))}}});
  EXPECT_EQ(meta.status, 404);
  EXPECT_EQ(api_.call("videos.list", {{"datasetId", dataset_}}).json().at("total").to_number<int>(),
            0);
}

TEST_F(VideosTest, FramePreviewIsDecodedAndCached) {
  const std::string bytes = read_file(dir_ / "clip.mp4");
  const auto video = upload_path("frames.mp4", bytes);
  // VideoInfo.image_preview_url, with the item's processingPath.
  const std::string url =
      "/previews/q/ext:jpeg/resize:fill:300:0:0/q:70/plain/image-converter/videoframe/33p/" +
      std::string(video.at("processingPath").as_string()) + "?videoStreamIndex=0";
  auto first = api_.get(url, {{"x-api-key", server_.admin_token()}});
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("content-type"), "image/jpeg");
  const auto [w, h] = image_size(first.body);
  EXPECT_EQ(w, 300);
  EXPECT_EQ(h, 225);  // 320x240 scaled to a width of 300
  auto second = api_.get(url, {{"x-api-key", server_.admin_token()}});
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(second.body, first.body);  // from the preview cache
  // Another frame gives another picture (testsrc moves).
  auto other = api_.get(
      "/previews/q/ext:jpeg/resize:fill:300:0:0/q:70/plain/image-converter/videoframe/90p/" +
          std::string(video.at("processingPath").as_string()),
      {{"x-api-key", server_.admin_token()}});
  ASSERT_EQ(other.status, 200);
  EXPECT_NE(other.body, first.body);
  // No token: refused; the signed previewUrl of the JSON works without one.
  EXPECT_EQ(api_.with_token("").get(url).status, 401);
  const std::string signed_url(video.at("previewUrl").as_string());
  auto by_signature = api_.with_token("").get(signed_url.substr(server_.base_url().size()));
  ASSERT_EQ(by_signature.status, 200) << by_signature.body;
  EXPECT_EQ(by_signature.body, first.body);
  std::string tampered = signed_url.substr(server_.base_url().size());
  tampered.replace(tampered.find("33p"), 3, "34p");
  EXPECT_EQ(api_.with_token("").get(tampered).status, 403);
  // Another team's user may not see it.
  auto outsider = api_.with_token(server_.make_outsider_token()).get(url);
  EXPECT_EQ(outsider.status, 403);
}

class VideoLinksTest : public VideosTest {
 protected:
  void SetUp() override {
    VideosTest::SetUp();
    folder_ = dir_ / "linked";
    const std::string yaml = "videos-conn:\n  provider: fs\n  path: " + folder_.string() +
                             "\n  storage_id: videos\n";
    fs::create_directories(folder_);
    auto config = links::RemoteLinks::parse(yaml, dir_ / "remote_links.yml", {});
    ASSERT_TRUE(config) << config.error().to_string();
    server_.enable_links(std::move(*config));
  }
  fs::path folder_;
};

TEST_F(VideoLinksTest, AVideoLinkIsProbedPlayedAndPreviewed) {
  const std::string bytes = read_file(dir_ / "clip.webm");
  write_file(folder_ / "cams" / "a.webm", bytes);
  auto added = api_.call(
      "videos.bulk.add",
      {{"datasetId", dataset_},
       {"videos", json::array{{{"title", "a.webm"}, {"link", "fs://videos/cams/a.webm"}, {"meta", json::object{}}}}},
       {"forceMetadataForLinks", true}});
  ASSERT_EQ(added.status, 200) << added.body;
  const auto video = added.json().at(0);
  EXPECT_EQ(video.at("link").as_string(), "fs://videos/cams/a.webm");
  EXPECT_TRUE(video.at("hash").is_null());
  expect_matches(video, ffprobe(dir_ / "clip.webm"), bytes.size(), "video/webm");

  const std::string body = json::serialize(json::object{{"id", video.at("id")}});
  auto whole = api_.post("/public/api/v3/videos.download", body, "application/json");
  ASSERT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body, bytes);
  auto part = api_.post("/public/api/v3/videos.download", body, "application/json",
                        {{"Range", "bytes=100-299"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, bytes.substr(100, 200));
  auto frame = api_.get(
      "/previews/q/ext:jpeg/resize:fill:300:0:0/q:70/plain/image-converter/videoframe/33p/" +
          std::string(video.at("processingPath").as_string()) + "?videoStreamIndex=0",
      {{"x-api-key", server_.admin_token()}});
  ASSERT_EQ(frame.status, 200) << frame.body;
  EXPECT_EQ(image_size(frame.body), std::make_pair(160, 120));  // fill 300:0 never enlarges

  // A link to something that is not a video adds nothing.
  write_file(folder_ / "cams" / "not-a-video.mp4", "plain text, not a container");
  auto bad = api_.call(
      "videos.bulk.add",
      {{"datasetId", dataset_},
       {"videos", json::array{{{"title", "b.mp4"}, {"link", "fs://videos/cams/not-a-video.mp4"}}}}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(api_.call("videos.list", {{"datasetId", dataset_}}).json().at("total").to_number<int>(),
            1);
}

TEST_F(VideoLinksTest, SetRemoteSwitchesItemsAllOrNothing) {
  const std::string mp4 = read_file(dir_ / "clip.mp4");
  const std::string mkv = read_file(dir_ / "clip.mkv");
  const auto a = upload_path("a.mp4", mp4);
  const auto b = upload_path("b.mkv", mkv);
  write_file(folder_ / "moved" / "a.mp4", mp4);
  write_file(folder_ / "moved" / "b.mkv", mkv.substr(0, mkv.size() - 1));  // one byte short

  auto set_remote = [&](json::array videos) {
    return api_.call("videos.update.links",
                     {{"videos", std::move(videos)}, {"clearLocalDataSource", true}});
  };
  auto still_stored = [&](const json::value& v) {
    auto info = api_.call("videos.info", {{"id", v.at("id")}}).json();
    return info.at("link").is_null() && !info.at("hash").is_null();
  };
  // One entry whose object has another size, or is missing, or is outside the configuration:
  // the whole call fails and changes nothing.
  auto r = set_remote({{{"id", a.at("id")}, {"link", "fs://videos/moved/a.mp4"}},
                       {{"id", b.at("id")}, {"link", "fs://videos/moved/b.mkv"}}});
  EXPECT_EQ(r.status, 412) << r.body;
  r = set_remote({{{"id", a.at("id")}, {"link", "fs://videos/moved/a.mp4"}},
                  {{"id", b.at("id")}, {"link", "fs://videos/moved/none.mkv"}}});
  EXPECT_EQ(r.status, 404) << r.body;
  r = set_remote({{{"id", a.at("id")}, {"link", "s3://not-configured/a.mp4"}}});
  EXPECT_EQ(r.status, 403) << r.body;
  r = api_.with_token(server_.make_outsider_token())
          .call("videos.update.links",
                {{"videos", json::array{{{"id", a.at("id")}, {"link", "fs://videos/moved/a.mp4"}}}}});
  EXPECT_EQ(r.status, 403) << r.body;
  r = api_.call("images.update.links",
                {{"images", json::array{{{"id", a.at("id")}, {"link", "fs://videos/moved/a.mp4"}}}}});
  EXPECT_EQ(r.status, 400) << r.body;  // a video is not an image
  EXPECT_TRUE(still_stored(a));
  EXPECT_TRUE(still_stored(b));

  write_file(folder_ / "moved" / "b.mkv", mkv);
  r = set_remote({{{"id", a.at("id")}, {"link", "fs://videos/moved/a.mp4"}},
                  {{"id", b.at("id")}, {"link", "fs://videos/moved/b.mkv"}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.json().at("success").as_bool());
  const auto info = api_.call("videos.info", {{"id", a.at("id")}}).json();
  EXPECT_EQ(info.at("link").as_string(), "fs://videos/moved/a.mp4");
  // The same video at a new place: its hash and metadata stay (issue 13).
  EXPECT_EQ(info.at("hash"), a.at("hash"));
  EXPECT_EQ(info.at("hash").as_string(), sdk_hash(mp4));
  EXPECT_EQ(info.at("fileMeta").at("framesCount"), a.at("fileMeta").at("framesCount"));
  // Served from the link now; the stored bytes stay where they were.
  fs::remove(folder_ / "moved" / "a.mp4");
  auto gone = api_.call("videos.download", {{"id", a.at("id")}});
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(server_.objects_with_hash(sdk_hash(mp4)), 1u);
}

TEST_F(VideoLinksTest, SetRemoteOfImages) {
  auto ws = api_.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
  auto p = api_.call("projects.add", {{"workspaceId", ws}, {"name", "imgs"}}).json();
  auto d = id_of(api_.call("datasets.add", {{"projectId", p.at("id")}, {"name", "d"}}).json());
  const std::string png = make_image(40, 30, "png", 5);
  auto up = api_.upload({{"0-file", "0", "image/*", png}});
  ASSERT_EQ(up.status, 200) << up.body;
  auto added = api_.call("images.bulk.add",
                         {{"datasetId", d},
                          {"images", json::array{{{"title", "x.png"}, {"hash", sdk_hash(png)}}}}});
  ASSERT_EQ(added.status, 200) << added.body;
  const auto id = added.json().at(0).at("id");
  write_file(folder_ / "img" / "x.png", png);
  auto r = api_.call("images.update.links",
                     {{"images", json::array{{{"id", id}, {"link", "fs://videos/img/x.png"}}}},
                      {"clearLocalDataSource", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.json().at("success").as_bool());
  auto info = api_.call("images.info", {{"id", id}}).json();
  EXPECT_EQ(info.at("link").as_string(), "fs://videos/img/x.png");
  EXPECT_EQ(info.at("size").to_number<std::size_t>(), png.size());
  EXPECT_EQ(info.at("hash").as_string(), sdk_hash(png));
  EXPECT_EQ(info.at("width").to_number<int>(), 40);
  EXPECT_EQ(info.at("height").to_number<int>(), 30);
  EXPECT_EQ(api_.call("images.download", {{"id", id}}).body, png);
}

/// A public http(s) link to a video: probed by ranged GETs of the URL, played and sought.
TEST_F(VideosTest, APublicUrlVideoLinkIsProbedAndPlayed) {
  const std::string bytes = read_file(dir_ / "clip.mp4");
  LinkHttpServer web;
  web.serve_bytes("/media/clip.mp4", bytes);
  server_.enable_links({}, {.allow_private_networks = true});
  const std::string link = web.base_url() + "/media/clip.mp4";
  auto added = api_.call("videos.bulk.add",
                         {{"datasetId", dataset_},
                          {"videos", json::array{{{"title", "web.mp4"}, {"link", link}}}}});
  ASSERT_EQ(added.status, 200) << added.body;
  const auto video = added.json().at(0);
  expect_matches(video, ffprobe(dir_ / "clip.mp4"), bytes.size(), "video/mp4");
  const std::string body = json::serialize(json::object{{"id", video.at("id")}});
  auto part = api_.post("/public/api/v3/videos.download", body, "application/json",
                        {{"Range", "bytes=-1000"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, bytes.substr(bytes.size() - 1000));

  // A presigned URL whose bytes are no video: the error names the link, never its query.
  web.serve_bytes("/media/notes.mp4", "plain text, not a container");
  auto bad = api_.call(
      "videos.bulk.add",
      {{"datasetId", dataset_},
       {"videos", json::array{{{"title", "notes.mp4"},
                               {"link", web.base_url() +
                                            "/media/notes.mp4?X-Amz-Signature=d0e1secret5ig"}}}}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("/media/notes.mp4"), std::string::npos) << bad.body;
  EXPECT_EQ(bad.body.find("d0e1secret5ig"), std::string::npos) << bad.body;
}

/// A video in a cloud bucket, on whichever test server the environment names, added by link
/// (`<scheme>://<bucket>/<key>`): probed through ranged reads, played, sought and previewed.
void cloud_video_link(const char* env_var, const std::string& provider, const std::string& scheme,
                      const fs::path& video) {
  STOWAGE_REQUIRE_CLOUD(cloud, env_var, provider);
  const config::Config& config = cloud.config;
  store::ObjectStore* direct = cloud.store.get();
  const std::string bytes = read_file(video);
  const std::string key = "linked-videos/" + provider + "/" + video.filename().string();
  auto writer = direct->open_write({config.public_bucket(), key}, {}).value();
  writer->write(std::as_bytes(std::span(bytes))).value();
  writer->commit().value();

  links::RemoteLinks remote;
  remote.connections.push_back(cloud.connection);

  TestServer server;
  server.enable_links(remote);
  auto api = server.client();
  auto ws = api.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
  auto p = api.call("projects.add", {{"workspaceId", ws}, {"name", "v"}, {"type", "videos"}}).json();
  auto d = api.call("datasets.add", {{"projectId", p.at("id")}, {"name", "d"}}).json();
  const std::string link = scheme + "://" + config.public_bucket() + "/" + key;
  auto added = api.call("videos.bulk.add",
                        {{"datasetId", d.at("id")},
                         {"videos", json::array{{{"title", video.filename().string()},
                                                 {"link", link}}}}});
  ASSERT_EQ(added.status, 200) << added.body;
  const auto item = added.json().at(0);
  const Probe probe = ffprobe(video);
  EXPECT_EQ(item.at("fileMeta").at("framesCount").to_number<std::int64_t>(), probe.frames);
  EXPECT_EQ(item.at("fileMeta").at("width").to_number<int>(), probe.width);
  const std::string body = json::serialize(json::object{{"id", item.at("id")}});
  auto part = api.post("/public/api/v3/videos.download", body, "application/json",
                       {{"Range", "bytes=2000-2999"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, bytes.substr(2000, 1000));
  EXPECT_EQ(api.call("videos.download", {{"id", item.at("id")}}).body, bytes);
  auto frame = api.get(
      "/previews/q/ext:jpeg/resize:fill:300:0:0/q:70/plain/image-converter/videoframe/50p/" +
          std::string(item.at("processingPath").as_string()),
      {{"x-api-key", server.admin_token()}});
  EXPECT_EQ(frame.status, 200) << frame.body;
  EXPECT_EQ(image_size(frame.body).first, std::min(300, probe.width));
  (void)direct->remove({config.public_bucket(), key});
}

TEST_F(VideosTest, CloudLinkS3OnRadosgw) {
  cloud_video_link("STOWAGE_TEST_RADOSGW_ENV", "minio", "s3", dir_ / "clip.mp4");
}
TEST_F(VideosTest, CloudLinkAzureOnAzurite) {
  cloud_video_link("STOWAGE_TEST_AZURITE_ENV", "azure", "azure", dir_ / "clip.webm");
}
TEST_F(VideosTest, CloudLinkGoogleCloudStorage) {
  cloud_video_link("STOWAGE_TEST_GCS_ENV", "google", "google", dir_ / "clip.mkv");
}

}  // namespace
}  // namespace stowage::testing
