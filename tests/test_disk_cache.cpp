// Kiln's disk caches (core/disk_cache.hpp): KILN_CACHE_MAX_SIZE's sizes, trimming a folder to its
// limit by least recent use (a hit renews an entry; kilnc's checksum files go with their blobs;
// dead writers' temporaries go), and reading only this user's regular files — a FIFO, a link, a
// folder or another user's file under an entry's name is passed over, said why, never blocks. The
// JIT's and kilnc's use of them: tests/test_jit_cache.cpp, tests/test_kilnc.cpp.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/disk_cache.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

class DiskCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln-disk-cache-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file of |bytes| bytes last written |age| ago.
  fs::path file(const std::string& name, std::size_t bytes, std::chrono::seconds age) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << std::string(bytes, 'k');
    fs::last_write_time(p, fs::file_time_type::clock::now() - age);
    return p;
  }

  fs::path dir_;
};

using std::chrono::hours;
using std::chrono::seconds;

TEST(CacheSize, ParsesWhatKilnCacheMaxSizeTakes) {
  EXPECT_EQ(parse_cache_size("0"), 0u);
  EXPECT_EQ(parse_cache_size("1048576"), 1048576u);
  EXPECT_EQ(parse_cache_size("512K"), 512u << 10);
  EXPECT_EQ(parse_cache_size("512M"), 512u << 20);
  EXPECT_EQ(parse_cache_size("2g"), std::uint64_t(2) << 30);
  EXPECT_EQ(parse_cache_size("3GiB"), std::uint64_t(3) << 30);
  EXPECT_EQ(parse_cache_size("1TB"), std::uint64_t(1) << 40);
  EXPECT_EQ(parse_cache_size("100B"), 100u);
  EXPECT_EQ(parse_cache_size("18446744073709551615"), UINT64_MAX);
  for (const char* bad : {"", "-1", "1.5G", "G", "12X", " 1G", "1G ", "1 G", "18446744073709551616",
                          "16777216T", "1GG", "1Gi", "0x10"})
    EXPECT_FALSE(parse_cache_size(bad)) << "'" << bad << "'";
}

TEST_F(DiskCache, TrimRemovesTheLeastRecentlyUsedEntriesWithTheirChecksums) {
  file("00000000000000e1.spv", 1000, hours(4));
  file("00000000000000e1.spv.sum", 17, hours(4));
  file("00000000000000e2.spv", 1000, hours(3));
  file("00000000000000e3.spv", 1000, hours(2));
  file("00000000000000e4.spv", 1000, hours(1));
  file("00000000000000e4.spv.sum", 17, seconds(0));
  file("00000000000000e5.bin.tmp-77-0-abc", 500, hours(2));  // a dead writer's
  file("00000000000000e6.bin.tmp-78-0-abc", 500, seconds(0));  // a live writer's
  fs::create_directories(dir_ / "sub");
  std::ofstream(dir_ / "sub" / "big") << std::string(10000, 'x');  // not the folder's own files
  for (const char* theirs : {"notes.txt", "data.bin", "0123456789abcde.spv", "model.onnx.tmp-1-2-3"})
    file(theirs, 10000, hours(100));  // a user's files beside the cache: never counted or removed

  // Under the limit: only the dead writer's temporary goes.
  TrimResult r = trim_cache(dir_.string(), 100000);
  EXPECT_EQ(r.bytes_before, 5034u);
  EXPECT_EQ(r.entries_removed, 1u);
  EXPECT_EQ(r.bytes_removed, 500u);
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000e5.bin.tmp-77-0-abc"));
  // 0: no limit.
  EXPECT_EQ(trim_cache(dir_.string(), 0).entries_removed, 0u);

  // 4534 bytes over a 4000-byte limit: down to 3000 or less, oldest first, e1 with its .sum.
  r = trim_cache(dir_.string(), 4000);
  EXPECT_EQ(r.bytes_before, 4534u);
  EXPECT_EQ(r.entries_removed, 2u);
  EXPECT_EQ(r.bytes_removed, 2017u);
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000e1.spv"));
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000e1.spv.sum"));
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000e2.spv"));
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000e3.spv"));
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000e4.spv"));
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000e4.spv.sum"));
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000e6.bin.tmp-78-0-abc"));
  EXPECT_TRUE(fs::exists(dir_ / "sub" / "big"));
  for (const char* theirs : {"notes.txt", "data.bin", "0123456789abcde.spv", "model.onnx.tmp-1-2-3"})
    EXPECT_TRUE(fs::exists(dir_ / theirs)) << theirs;

  // A limit smaller than any entry empties the folder of entries (the live temporary stays).
  r = trim_cache(dir_.string(), 1);
  EXPECT_EQ(r.entries_removed, 2u);
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000e4.spv.sum"));
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000e6.bin.tmp-78-0-abc"));
  for (const char* theirs : {"notes.txt", "data.bin", "0123456789abcde.spv", "model.onnx.tmp-1-2-3"})
    EXPECT_TRUE(fs::exists(dir_ / theirs)) << theirs;

  // A folder that is not there: nothing to do, no error.
  EXPECT_EQ(trim_cache((dir_ / "none").string(), 1).bytes_before, 0u);
}

TEST_F(DiskCache, AHitRenewsAnEntry) {
  const fs::path used = file("kernel-00000000000000aa.bin", 1000, hours(5));
  file("kernel-00000000000000bb.bin", 1000, hours(1));
  const fs::path fresh = file("kernel-00000000000000cc.bin", 1000, seconds(10));
  const auto fresh_time = fs::last_write_time(fresh);
  touch_cache_entry(used.string());
  touch_cache_entry(fresh.string());  // renewed at most once a minute: unchanged
  EXPECT_EQ(fs::last_write_time(fresh), fresh_time);
  touch_cache_entry((dir_ / "none").string());  // nothing there: nothing done
  const TrimResult r = trim_cache(dir_.string(), 2700);  // down to 2025: one entry goes
  EXPECT_EQ(r.entries_removed, 1u);
  EXPECT_TRUE(fs::exists(used));
  EXPECT_FALSE(fs::exists(dir_ / "kernel-00000000000000bb.bin"));
}

TEST_F(DiskCache, ReadsOnlyRegularFilesItsUserOwns) {
  std::string why = "x";
  const fs::path entry = file("entry.bin", 3, seconds(0));
  auto bytes = read_cache_entry(entry.string(), &why);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(std::string(bytes->begin(), bytes->end()), "kkk");
  EXPECT_EQ(why, "");

  EXPECT_FALSE(read_cache_entry((dir_ / "none.bin").string(), &why));
  EXPECT_EQ(why, "") << "a missing entry is a plain miss";
  EXPECT_FALSE(read_cache_entry((dir_ / "entry.bin" / "below").string(), &why));
  EXPECT_EQ(why, "");

  // A FIFO would block a plain open until a writer came.
  ASSERT_EQ(::mkfifo((dir_ / "fifo.bin").c_str(), 0600), 0);
  EXPECT_FALSE(read_cache_entry((dir_ / "fifo.bin").string(), &why));
  EXPECT_NE(why.find("not a regular file"), std::string::npos) << why;

  fs::create_directories(dir_ / "folder.bin");
  EXPECT_FALSE(read_cache_entry((dir_ / "folder.bin").string(), &why));
  EXPECT_NE(why.find("not a regular file"), std::string::npos) << why;

  fs::create_symlink(entry, dir_ / "link.bin");
  EXPECT_FALSE(read_cache_entry((dir_ / "link.bin").string(), &why));
  EXPECT_NE(why.find("symbolic link"), std::string::npos) << why;
}

// Another user's file is not loaded, wherever it is: in a shared KILN_CACHE_DIR it could hold any
// kernel with a valid checksum, and a link on the path defeats any check of the folders. Root's
// own files are. Changing a file's owner needs root.
TEST_F(DiskCache, AnotherUsersEntryIsNotLoaded) {
  if (::geteuid() != 0) GTEST_SKIP() << "changing a file's owner needs root";
  const fs::path entry = file("planted.bin", 8, seconds(0));
  ASSERT_EQ(::chown(entry.c_str(), 54321, 54321), 0);
  std::string why;
  EXPECT_FALSE(read_cache_entry(entry.string(), &why));
  EXPECT_NE(why.find("belongs to another user (uid 54321)"), std::string::npos) << why;
  ASSERT_EQ(::chown(dir_.c_str(), 54321, 54321), 0);  // in that user's own folder: still not
  EXPECT_FALSE(read_cache_entry(entry.string(), &why));
  ASSERT_EQ(::chown(dir_.c_str(), 0, 0), 0);
  ASSERT_EQ(::chown(entry.c_str(), 0, 0), 0);  // root's own: taken
  EXPECT_TRUE(read_cache_entry(entry.string(), &why)) << why;
}

}  // namespace
}  // namespace kiln
