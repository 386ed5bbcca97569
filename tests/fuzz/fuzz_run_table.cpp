// The tables of split runs (io/run_parts): a part's table as an interrupted, corrupted or hostile process may have
// left it, read back and joined with another part. The first byte picks the rows per item and the unit, the second
// the item count; the rest is the table after its header.
#include "io/run_parts.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  if (size < 2) return 0;
  RunTable table{"t.csv", "index,value\n", 1u + data[0] % 4, 1u + data[1] % 16, 1u + (data[0] >> 2) % 4};
  const std::string body = table.header + std::string(fuzz::as_bytes(data + 2, size - 2));
  const std::string path = fuzz::put_file("run/shard-1-of-2/t.csv", body);
  fuzz::put_file("run/shard-1-of-2/run.json", "{}");
  fuzz::only_input_errors([&] {
    const TableBlocks b = read_table_blocks(path, table);
    if (b.blocks.size() != table.items) fuzz::invariant_failed("one block slot per item");
    if (b.complete_bytes < table.header.size() || b.complete_bytes > body.size())
      fuzz::invariant_failed("complete_bytes outside the file");
    for (std::size_t i = 0; i < b.blocks.size(); ++i)
      if (!b.blocks[i].empty() && (b.blocks[i].back() != '\n' || b.blocks[i].rfind(std::to_string(i), 0) != 0))
        fuzz::invariant_failed("a block that does not start with its index or end a line");
    const std::string out = (fuzz::scratch_dir() / "run").string();
    const std::vector<RunPart> parts = find_run_parts(out, table.name);
    const RunRows rows = read_run_parts(parts, table, "{}");
    if (rows.blocks.size() != table.items) fuzz::invariant_failed("one block slot per item in the join");
    (void)missing_items_message(rows.missing, table, parts, out);
    (void)rows.table_text(table);
  });
  return 0;
}
