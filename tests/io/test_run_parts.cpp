// The parts of a split run (io/run_parts.hpp): which share owns which unit, reading back a table an interrupted
// process left, and joining the parts of a folder, with the errors that name what is wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "core/array.hpp"
#include "io/atomic_file.hpp"
#include "io/csv_record.hpp"
#include "io/run_parts.hpp"

namespace attnlens {
namespace {

namespace fs = std::filesystem;

class RunPartsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("attnlens_run_parts_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// Two lines per item; items 0..4 in units of 2 (units 0: items 0-1, 1: 2-3, 2: 4).
RunTable table() { return {"t.csv", "index,value\n", 2, 5, 2}; }
std::string block(int i) { return std::to_string(i) + ",a\n" + std::to_string(i) + ",\"b,\n\"\"q\"\"\"\n"; }

TEST(WorkShareTest, UnitsAreDealtRoundRobinAndTheTextIsOneBased) {
  const WorkShare s = WorkShare::parse("2/3");
  EXPECT_EQ(s.index, 1);
  EXPECT_EQ(s.count, 3);
  EXPECT_FALSE(s.owns(0));
  EXPECT_TRUE(s.owns(1));
  EXPECT_TRUE(s.owns(4));
  EXPECT_EQ(s.folder(), "shard-2-of-3");
  EXPECT_EQ(s.label(), "2 of 3");
  for (const char* bad : {"0/3", "4/3", "3", "a/b", "-1/2", "1/0", "", "1/2/3"})
    EXPECT_THROW(WorkShare::parse(bad), InputError) << bad;
  const RunTable t = table();
  EXPECT_EQ(t.units(), 3u);
  EXPECT_EQ(t.unit_of(3), 1u);
  EXPECT_EQ(t.unit_of(4), 2u);
}

TEST(CsvRecordTest, QuotedFieldsAndCutLines) {
  std::size_t pos = 0;
  std::vector<std::string> f;
  const std::string text = "1,\"x,\ny\"\"\",3\r\n4,5";
  ASSERT_TRUE(next_csv_record(text, pos, f));
  EXPECT_EQ(f, (std::vector<std::string>{"1", "x,\ny\"", "3"}));
  EXPECT_FALSE(next_csv_record(text, pos, f));  // "4,5" has no line end: cut short
  EXPECT_EQ(pos, text.size());
  EXPECT_TRUE(std::isnan(parse_csv_number("", "here")));
  EXPECT_DOUBLE_EQ(parse_csv_number("0.25", "here"), 0.25);
  EXPECT_THROW(parse_csv_number("1x", "here"), InputError);
}

TEST_F(RunPartsTest, ABlockCutShortIsIgnoredAndCompleteBytesSaysWhereToTruncate) {
  const std::string whole = "index,value\n" + block(3) + block(0);
  const std::string cut = whole + "4,a\n4,partial";
  write_file_atomic((dir_ / "t.csv").string(), cut);
  const TableBlocks b = read_table_blocks((dir_ / "t.csv").string(), table());
  ASSERT_EQ(b.blocks.size(), 5u);
  EXPECT_EQ(b.blocks[3], block(3));
  EXPECT_EQ(b.blocks[0], block(0));
  EXPECT_EQ(b.blocks[4], "");  // one complete line of two, then a line without its end
  EXPECT_EQ(b.complete_bytes, whole.size());
}

TEST_F(RunPartsTest, HostileTablesAreInputErrors) {
  const std::string path = (dir_ / "t.csv").string();
  for (const std::string& text : std::vector<std::string>{std::string("other\n") + block(0),
                                                         "index,value\n0,a\n1,b\n",  // mixed block
                                  "index,value\n9,a\n9,b\n",                                     // beyond the items
                                  "index,value\nx,a\n", "index,value\n-1,a\n", "index,value\n1.5,a\n",
                                  "index,value\n\f1,a\n1,b\n", "index,value\n+1,a\n+1,b\n",
                                  "index,value\n01,a\n01,b\n", "index,value\n\"\"1,a\n1,b\n"}) {  // leniencies
    write_file_atomic(path, text);
    EXPECT_THROW(read_table_blocks(path, table()), InputError) << text;
  }
  EXPECT_THROW(read_table_blocks((dir_ / "absent.csv").string(), table()), InputError);
}

TEST_F(RunPartsTest, PartsJoinByIndexAndMissingItemsNameTheirShards) {
  const std::string id = R"({"kind":"x"})";
  const RunTable t = table();
  // Shard 1 of 2 owns units 0 and 2 (items 0, 1, 4) and has written items 0 and 4; shard 2 of 2 has no folder.
  write_file_atomic((dir_ / "shard-1-of-2" / "run.json").string(), id);
  write_file_atomic((dir_ / "shard-1-of-2" / "t.csv").string(), t.header + block(4) + block(0));
  fs::create_directories(dir_ / "shard-9-of-9x");  // not a shard name: ignored
  std::vector<RunPart> parts = find_run_parts(dir_.string(), t.name);
  ASSERT_EQ(parts.size(), 1u);
  ASSERT_TRUE(parts[0].share.has_value());
  RunRows rows = read_run_parts(parts, t, id);
  EXPECT_EQ(rows.missing, (std::vector<std::size_t>{1, 2, 3}));
  const std::string msg = missing_items_message(rows.missing, t, parts, dir_.string());
  EXPECT_NE(msg.find("3 of 5 items are missing (1, 2, 3)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shard 1 of 2 lacks 1 of its items"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shard 2 of 2 has no folder"), std::string::npos) << msg;

  write_file_atomic((dir_ / "shard-1-of-2" / "t.csv").string(), t.header + block(4) + block(0) + block(1));
  write_file_atomic((dir_ / "shard-2-of-2" / "run.json").string(), id);
  write_file_atomic((dir_ / "shard-2-of-2" / "t.csv").string(), t.header + block(3) + block(2));
  parts = find_run_parts(dir_.string(), t.name);
  rows = read_run_parts(parts, t, id);
  EXPECT_TRUE(rows.missing.empty());
  EXPECT_EQ(rows.table_text(t), t.header + block(0) + block(1) + block(2) + block(3) + block(4));

  // A part of another run, and an item in the wrong shard, are refused naming the part.
  EXPECT_THROW(read_run_parts(parts, t, R"({"kind":"y"})"), InputError);
  write_file_atomic((dir_ / "shard-2-of-2" / "t.csv").string(), t.header + block(4));
  try {
    read_run_parts(find_run_parts(dir_.string(), t.name), t, id);
    FAIL() << "an item of shard 1 in shard 2 was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("does not belong to shard 2 of 2"), std::string::npos) << e.what();
  }
  fs::create_directories(dir_ / "shard-3-of-2");
  EXPECT_THROW(find_run_parts(dir_.string(), t.name), InputError);
}

}  // namespace
}  // namespace attnlens
