// call_async.cpp — offloading blocking file I/O.
//
// Reader tasklets read files with std::ifstream from a slow disk (each read takes 20 ms more), a
// blocking call that would stall every tasklet of the thread. Wrapped in stackless::call_async it
// runs on a worker thread instead, and only the calling tasklet waits: a heartbeat tasklet of the
// same thread keeps beating, every millisecond, until the last read is back. A failed read (a
// missing file) comes back as the exception it threw. Then the same files are read with async(),
// which returns futures at once, and collected with get().
//
// The output is always the same: readers print before they wait (in creation order), results are
// printed afterwards in file order, and nothing that depends on timing (such as how often the
// heartbeat beat) is printed.
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <stackless/stackless.hpp>

namespace sl = stackless;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// read_file: blocking I/O — the kind of call that must not run on a tasklet's own thread. The
// sleep stands for a slow disk or network file system.
std::string read_file(const fs::path& path) {
  std::this_thread::sleep_for(20ms);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.filename().string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// first_line: the text up to the first newline.
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

int main() {
  // Three files in a fresh temporary directory; "missing.txt" is never written.
  const fs::path dir =
      fs::temp_directory_path() / ("stackless-call_async-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::vector<std::string> names = {"alpha.txt", "beta.txt", "missing.txt", "gamma.txt"};
  const std::vector<std::string> contents = {
      "Alpha: the first file.\nIt has two lines.\n",
      "Beta: the second file.\n",
      "",
      "Gamma: the third file.\nLine two.\nLine three.\n",
  };
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] != "missing.txt") std::ofstream(dir / names[i]) << contents[i];

  // One reader tasklet per file. Each prints, then waits in call_async; the job runs on a worker.
  struct outcome {
    std::string text;
    std::string error;
  };
  std::vector<outcome> outcomes(names.size());
  int in_flight = 0;
  std::vector<sl::tasklet> readers;
  for (std::size_t i = 0; i < names.size(); ++i) {
    readers.emplace_back([&, i] {
      std::printf("reader %zu: reading %s\n", i, names[i].c_str());
      ++in_flight;
      try {
        outcomes[i].text = sl::call_async([path = dir / names[i]] { return read_file(path); });
      } catch (const std::exception& e) {
        outcomes[i].error = e.what();
      }
      --in_flight;
    });
  }
  // The heartbeat runs once every reader waits (they are ahead of it in the run queue). It beats
  // every millisecond until all reads are done.
  sl::tasklet heartbeat([&] {
    std::printf("heartbeat: running while the readers wait for their files\n");
    while (in_flight > 0) sl::sleep_for(1ms);  // one beat; blocks only the heartbeat
    std::printf("heartbeat: the last read is back, stopping\n");
  });
  for (sl::tasklet& r : readers) r.join();
  heartbeat.join();

  for (std::size_t i = 0; i < names.size(); ++i) {
    const outcome& o = outcomes[i];
    if (!o.error.empty())
      std::printf("%s: error: %s\n", names[i].c_str(), o.error.c_str());
    else
      std::printf("%s: %zu bytes, first line \"%s\"\n", names[i].c_str(), o.text.size(),
                  first_line(o.text).c_str());
  }

  // The same reads with futures: async() returns at once, so every read is in flight together;
  // get() waits (only the calling tasklet) and returns the text or rethrows the error.
  std::vector<sl::future<std::string>> futures;
  for (const std::string& name : names)
    futures.push_back(sl::async([path = dir / name] { return read_file(path); }));
  std::size_t bytes = 0, failed = 0;
  for (sl::future<std::string>& f : futures) {
    try {
      bytes += f.get().size();
    } catch (const std::runtime_error&) {
      ++failed;
    }
  }
  std::printf("async: %zu files read, %zu bytes in total, %zu failed\n", names.size() - failed,
              bytes, failed);

  fs::remove_all(dir);
}
