// Replays inputs through a fuzz harness in the normal build: every file named, and every file under every folder named.
// ctest runs it over the seeds (the repository's models, vocabularies, .bin files and streams) and the regressions
// (each crash `make fuzz` ever found, kept in examples/cpp/fuzz/regressions/<harness>/).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    size_t n = 0, bytes = 0;
    for (int i = 1; i < argc; ++i) {
        std::vector<fs::path> files;
        if (fs::is_directory(argv[i])) { for (auto& e : fs::recursive_directory_iterator(argv[i])) if (e.is_regular_file()) files.push_back(e.path()); }
        else if (fs::is_regular_file(argv[i])) files.push_back(argv[i]);
        for (auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            std::vector<uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            static const uint8_t none = 0;                       // (as libFuzzer does: never a null pointer, even for an empty input)
            LLVMFuzzerTestOneInput(d.empty() ? &none : d.data(), d.size());
            ++n; bytes += d.size();
        }
    }
    std::cout << n << " inputs (" << bytes << " bytes) replayed without a crash\n";
    return n ? 0 : 1;
}
