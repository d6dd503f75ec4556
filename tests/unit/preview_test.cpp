// SPDX-License-Identifier: Apache-2.0
// Preview URLs as the SDK writes them, previews of every input format at the SDK's options, the
// pixel limit (decompression bombs) and signed URLs.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include <array>
#include <fstream>
#include <mutex>

#include "stowage/preview/options.hpp"
#include "stowage/preview/render.hpp"
#include "stowage/preview/signer.hpp"

namespace stowage::preview {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::string_view kSource =
    "/test-public/images/original/ab/cd/"
    "abcd000000000000000000000000000000000000000000000000000000000000.png";

TEST(PreviewPath, TheSdkPreviewUrl) {
  // _utils.resize_image_url(): /previews/q/ext:jpeg/resize:auto:0:0:0/q:70/plain + pathOriginal
  auto p =
      parse_preview_path("q/ext:jpeg/resize:auto:0:0:0/q:70/plain" + std::string(kSource)).value();
  EXPECT_EQ(p.source, kSource);
  EXPECT_EQ(p.options.resize, ResizeType::Auto);
  EXPECT_EQ(p.options.width, 0);
  EXPECT_EQ(p.options.height, 0);
  EXPECT_FALSE(p.options.enlarge);
  EXPECT_EQ(p.options.quality, 70);
  EXPECT_EQ(p.options.format, Format::Jpeg);
  EXPECT_EQ(p.options.canonical(), "rs:fit:0:0:0/q:70/f:jpeg");
}

TEST(PreviewPath, TheVideoApisImagePreviewUrlOptions) {
  auto p = parse_preview_path("q/ext:jpeg/resize:fill:300:0:0/q:70/plain/b-public/x.jpg").value();
  EXPECT_EQ(p.options.resize, ResizeType::Fill);
  EXPECT_EQ(p.options.width, 300);
  EXPECT_EQ(p.options.canonical(), "rs:fit:300:0:0/q:70/f:jpeg");  // fill with one side = fit
}

TEST(PreviewPath, ShortFormsAndSuffixesNormalizeToOneKey) {
  auto a = parse_preview_path("_/rs:fill:64:64/q:80/f:webp/plain/b/k.png").value();
  auto b = parse_preview_path("sig/resize:fill:64:64:0:0/quality:80/plain/b/k.png@webp").value();
  auto c = parse_preview_path("x/rt:fill/w:64/h:64/el:0/plain/b/k.png@webp").value();
  EXPECT_EQ(a.options.canonical(), "rs:fill:64:64:0/q:80/f:webp");
  EXPECT_EQ(a.options.canonical(), b.options.canonical());
  EXPECT_EQ(a.options.canonical(), c.options.canonical());
  EXPECT_EQ(b.source, "/b/k.png");
  auto png = parse_preview_path("q/ext:png/q:10/plain/b/k").value();
  EXPECT_EQ(png.options.canonical(), "rs:fit:0:0:0/f:png");
  EXPECT_EQ(parse_preview_path("q/plain/b/a%20b.jpg").value().source, "/b/a b.jpg");
  EXPECT_EQ(parse_preview_path("q/plain/b/a@b.jpg").value().source, "/b/a@b.jpg");
}

TEST(PreviewPath, RefusesWhatItDoesNotUnderstand) {
  for (const char* bad : {"q/resize:auto:0:0:0/q:70",       // no plain
                          "q/blur:5/plain/b/k",             // unknown option
                          "q/resize:squash:1:1/plain/b/k",  // unknown type
                          "q/w:abc/plain/b/k",              // not a number
                          "q/w:100000/plain/b/k",           // too large a box
                          "q/q:101/plain/b/k",              // quality
                          "q/ext:gif/plain/b/k",            // output format
                          "q/plain/"}) {
    auto r = parse_preview_path(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument) << bad;
  }
}

// --- Rendering --------------------------------------------------------------------------------

void init_vips() {
  static std::once_flag once;
  std::call_once(once, [] { VIPS_INIT("stowage-tests"); });
}

/// A w x h RGB image, encoded with libvips' saver for `suffix` (".png", ".jpg", ".webp", ".tif").
std::string make_image(int w, int h, const std::string& suffix, bool alpha = false) {
  init_vips();
  VipsImage* xyz = nullptr;
  vips_xyz(&xyz, w, h, nullptr);
  VipsImage* bands[4] = {};
  vips_extract_band(xyz, &bands[0], 0, nullptr);
  vips_extract_band(xyz, &bands[1], 1, nullptr);
  vips_linear1(bands[0], &bands[2], 0.5, 10.0, nullptr);
  vips_linear1(bands[1], &bands[3], 1.0, 100.0, nullptr);
  VipsImage* joined = nullptr;
  vips_bandjoin(bands, &joined, alpha ? 4 : 3, nullptr);
  VipsImage* rgb = nullptr;
  vips_cast_uchar(joined, &rgb, nullptr);
  void* buf = nullptr;
  size_t len = 0;
  if (vips_image_write_to_buffer(rgb, suffix.c_str(), &buf, &len, nullptr) != 0) {
    ADD_FAILURE() << vips_error_buffer();
  }
  std::string out(static_cast<const char*>(buf), len);
  g_free(buf);
  for (auto* b : bands) g_object_unref(b);
  g_object_unref(xyz);
  g_object_unref(joined);
  g_object_unref(rgb);
  return out;
}

/// The bytes as a file (unlinked; the descriptor keeps it).
io::File as_file(const std::string& bytes) {
  const auto path = io::unique_temp_path(fs::temp_directory_path(), "stowage-preview-test");
  auto out = io::File::create_exclusive(path).value();
  out.write_all(std::as_bytes(std::span(bytes))).value();
  out.close().value();
  auto f = io::File::open_read(path).value();
  ::unlink(path.c_str());
  return f;
}

struct Decoded {
  int width = 0;
  int height = 0;
  std::string loader;
};

Decoded decode(const std::string& bytes) {
  init_vips();
  VipsImage* img = vips_image_new_from_buffer(bytes.data(), bytes.size(), "", nullptr);
  if (img == nullptr) return {};
  Decoded d{vips_image_get_width(img), vips_image_get_height(img), ""};
  const char* loader = nullptr;
  if (vips_image_get_string(img, "vips-loader", &loader) == 0 && loader) d.loader = loader;
  g_object_unref(img);
  return d;
}

PreviewOptions options_of(std::string_view url_options) {
  return parse_preview_path(std::string(url_options) + "/plain/b/k").value().options;
}

class RenderEveryFormat : public ::testing::TestWithParam<std::string> {};

TEST_P(RenderEveryFormat, AtTheSdksOptions) {
  const auto source = as_file(make_image(640, 480, GetParam()));
  struct Case {
    std::string_view options;
    int width;
    int height;
    std::string_view loader;
  };
  const Case cases[] = {
      // SDK preview_url: the original size, as JPEG q70.
      {"q/ext:jpeg/resize:auto:0:0:0/q:70", 640, 480, "jpegload_buffer"},
      // Video image_preview_url options (a 300-wide picture).
      {"q/ext:jpeg/resize:fill:300:0:0/q:70", 300, 225, "jpegload_buffer"},
      // A square thumbnail, cropped.
      {"q/resize:fill:128:128:0/ext:webp", 128, 128, "webpload_buffer"},
      // Fit in a box.
      {"q/resize:fit:100:100:0/ext:png", 100, 75, "pngload_buffer"},
      // Auto with a portrait box for a landscape picture: fit.
      {"q/resize:auto:100:200:0", 100, 75, "jpegload_buffer"},
      // No enlargement unless asked.
      {"q/resize:fit:1280:0:0", 640, 480, "jpegload_buffer"},
      {"q/resize:fit:1280:0:1", 1280, 960, "jpegload_buffer"},
  };
  for (const auto& c : cases) {
    auto r = render_preview(source, options_of(c.options));
    ASSERT_TRUE(r) << c.options << ": " << r.error().to_string();
    const auto d = decode(r->bytes);
    EXPECT_EQ(d.width, c.width) << GetParam() << " " << c.options;
    EXPECT_EQ(d.height, c.height) << GetParam() << " " << c.options;
    EXPECT_EQ(d.loader, c.loader) << GetParam() << " " << c.options;
    EXPECT_EQ(r->width, c.width);
  }
}

INSTANTIATE_TEST_SUITE_P(Inputs, RenderEveryFormat,
                         ::testing::Values(".png", ".jpg", ".webp", ".tif"),
                         [](const auto& info) { return info.param.substr(1); });

TEST(Render, AlphaIsFlattenedForJpeg) {
  const auto source = as_file(make_image(50, 40, ".png", /*alpha=*/true));
  auto r = render_preview(source, options_of("q/ext:jpeg")).value();
  EXPECT_EQ(decode(r.bytes).loader, "jpegload_buffer");
  auto png = render_preview(source, options_of("q/ext:png")).value();
  EXPECT_EQ(decode(png.bytes).width, 50);
}

TEST(Render, RefusesImagesOverThePixelLimit) {
  const auto source = as_file(make_image(1200, 1000, ".png"));
  auto r = render_preview(source, options_of("q/resize:fit:64:64"), {.max_pixels = 1'000'000});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::TooLarge);
  EXPECT_TRUE(render_preview(source, options_of("q/resize:fit:64:64"), {.max_pixels = 1'200'000}));
}

std::uint32_t crc32(std::string_view bytes) {
  std::uint32_t crc = 0xffffffffu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string png_chunk(std::string_view type, std::string_view data) {
  const std::string body = std::string(type) + std::string(data);
  return be32(static_cast<std::uint32_t>(data.size())) + body + be32(crc32(body));
}

TEST(Render, RefusesADecompressionBombBeforeDecodingIt) {
  // A PNG of a few dozen bytes that declares 100000 x 100000 RGB pixels (30 GB decoded).
  std::string ihdr = be32(100000) + be32(100000);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no interlace
  const std::string idat("\x78\x9c\x63\x00\x00\x00\x01\x00\x01", 9);
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
                          png_chunk("IDAT", idat) + png_chunk("IEND", "");
  ASSERT_LT(png.size(), 100u);
  auto r = render_preview(as_file(png), options_of("q/ext:jpeg/resize:auto:0:0:0/q:70"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::TooLarge) << r.error().to_string();
}

TEST(Render, NotAnImageIsInvalid) {
  auto r = render_preview(as_file("this is text, not pixels"), options_of("q/ext:jpeg"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
}

// --- Signed URLs ------------------------------------------------------------------------------

TEST(UrlSigner, SignsAndVerifies) {
  UrlSigner signer(std::string(64, 'k'));
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  const std::string query = signer.query("/b/k.png", now);
  const auto amp = query.find('&');
  const std::string expires = query.substr(8, amp - 8);
  const std::string signature = query.substr(amp + 11);
  const std::int64_t e = std::stoll(expires);
  EXPECT_GE(e, 1'700'000'000 + UrlSigner::kLifetime.count());
  EXPECT_EQ(e % UrlSigner::kStep.count(), 0);
  EXPECT_EQ(signer.query("/b/k.png", now + 1s), query);  // stable within a step
  EXPECT_TRUE(signer.verify("/b/k.png", expires, signature, now));
  EXPECT_FALSE(signer.verify("/b/other.png", expires, signature, now));
  EXPECT_FALSE(signer.verify("/b/k.png", std::to_string(e + 3600), signature, now));
  std::string tampered = signature;
  tampered[0] = tampered[0] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(signer.verify("/b/k.png", expires, tampered, now));
  auto expired = signer.verify("/b/k.png", expires, signature, now + 49h);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code, ErrorCode::PermissionDenied);
  EXPECT_EQ(expired.error().message.find(std::string(64, 'k')), std::string::npos);
  EXPECT_FALSE(UrlSigner(std::string(64, 'x')).verify("/b/k.png", expires, signature, now));
}

TEST(UrlSigner, TheSecretIsCreatedOnceOwnerOnly) {
  const auto dir = fs::temp_directory_path() / ("stowage-signer-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto file = dir / "preview-secret";
  auto a = UrlSigner::load_or_create(file).value();
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = UrlSigner::load_or_create(file).value();
  EXPECT_EQ(a.signature("/x", 1), b.signature("/x", 1));
  std::ofstream(file, std::ios::trunc) << "short\n";
  EXPECT_FALSE(UrlSigner::load_or_create(file));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace stowage::preview
