static bool read_file(const std::string& path, std::vector<uint8_t>& out, uint64_t max_bytes) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return false;
    const uint64_t n = static_cast<uint64_t>(f.tellg());
    if (n > max_bytes) return false;
    std::fill(out.begin(), out.end(), 0);
    f.seekg(0);
    return static_cast<bool>(f.read(reinterpret_cast<char*>(out.data()), n)) || n == 0;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s <job file> <results file>\n", argv[0]);
        return 2;
    }
    std::ifstream job(argv[1]);
    uint64_t mem_bytes = 0;
    if (!(job >> mem_bytes) || mem_bytes < PORT_BYTES || (mem_bytes & (mem_bytes - 1))) {
        std::fprintf(stderr, "job %s: bad memory size\n", argv[1]);
        return 2;
    }
    FILE* results = std::fopen(argv[2], "w");
    if (!results) {
        std::fprintf(stderr, "cannot write %s\n", argv[2]);
        return 2;
    }
    Sim sim;
    sim.mem.resize(mem_bytes);
    uint64_t timeout;
    std::string image_path, final_path;
    for (int index = 0; job >> timeout >> image_path >> final_path; ++index) {
        if (!read_file(image_path, sim.mem.bytes, mem_bytes)) {
            std::fprintf(stderr, "image %d: cannot read %s (or larger than %" PRIu64 " bytes)\n", index,
                         image_path.c_str(), mem_bytes);
            return 3;
        }
        sim.reset();
        bool timed_out = false;
        const auto t0 = std::chrono::steady_clock::now();
        const uint64_t host_cycles = sim.run(timeout, timed_out);
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::ofstream out(final_path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(sim.mem.bytes.data()), mem_bytes);
        if (!out) {
            std::fprintf(stderr, "image %d: cannot write %s\n", index, final_path.c_str());
            return 3;
        }
        std::fprintf(results, "%d %" PRIu64 " %" PRIu64 " %d %d %d %" PRIu64 " %.9f\n", index,
                     static_cast<uint64_t>(sim.top->cycles), static_cast<uint64_t>(sim.top->busy_pe),
                     sim.top->error ? 1 : 0, timed_out ? 1 : 0, sim.mem.oob ? 1 : 0, host_cycles, wall);
        std::fflush(results);
    }
    std::fclose(results);
    return 0;
}
