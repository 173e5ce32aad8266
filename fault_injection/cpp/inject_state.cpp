// hwgen fault-injection harness, part 1 of 3 (fault_injection/cpp/: inject_state.cpp,
// inject_shortcuts.cpp, inject_main.cpp, concatenated after SIM_CORE by rtl_injector.inject_cpp):
// the job file, the state elements, fingerprints and fault application.
// ---------------------------------------------------------------- fault injection (fault_injection/rtl_injector.py)
//   @EXE@ golden <job> <prefix>   -> <prefix>.txt, .hash (uint64 per cycle), .mem, .state
//   @EXE@ inject <job> <results>  -> one line per fault: "id filled detail_code end_cycle early"
// Job file: "key value..." lines: mem_bytes, image, timeout, jobs, check_gap, early_stop, golden,
// golden_oob, verify, region <lo> <hi>, var <path> <width> <depth>, fault <id> <var> <model> <cycle>
// <bit> <word> <nbits> <duration>; for the memory-liveness shortcut (early stop only): wire <path>
// <width> (an observed net, not state), rport <mem var> <addr wire> <lo> <hi> (a read of word
// addr[hi:lo] at every clock edge), wlane <mem var> <addr wire> <lo> <hi> <en wire> <en bit> <blo> <bhi>
// (bits [blo, bhi] of word addr[hi:lo] written when en[en bit]); for the early SDC stop: control 1,
// ctrl <var> (a state var in the control cone, rtl_control.py), ctrl_fetch 0|1, ctrl_ld 0|1 (the cone
// reads fetch_rdata / ld_rdata).
#include "verilated_syms.h"
#include <algorithm>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct Var { std::string path; uint8_t* p = nullptr; uint32_t width = 0, depth = 1, stride = 0; };
struct FaultSpec { long long id; int var, model; uint64_t cycle; uint32_t bit, word, nbits, duration; };
struct Slot { int32_t filled, detail, early, pad; uint64_t end; };
struct ReadPort { int mem, addr; uint32_t lo, hi; };
struct WriteLane { int mem, addr; uint32_t lo, hi; int en; uint32_t en_bit, blo, bhi; };
enum { M_SEU = 0, M_MBU = 1, M_STUCK0 = 2, M_STUCK1 = 3 };
// Detail codes: rtl_injector.DETAILS holds their names and the outcome of each, in this order.
enum { D_CONVERGED = 0, D_SAME, D_MEMORY, D_OUTPUT, D_ERROR, D_TIMEOUT, D_OOB, D_AFTER_END, D_LATE, D_EARLY,
       D_UNREAD, D_DETECTED, D_CORRECTED };

struct Job {
    uint64_t mem_bytes = 0, timeout = 0, check_gap = 64;
    int jobs = 1, early_stop = 1, golden_oob = 0, verify = 1, control = 0, ctrl_fetch = 0, ctrl_ld = 0;
    std::vector<int> ctrl_vars;
    std::string image, golden, dump;
    std::vector<std::pair<uint64_t, uint64_t>> regions;
    std::vector<Var> vars, wires;
    std::vector<ReadPort> rports;
    std::vector<WriteLane> wlanes;
    std::vector<FaultSpec> faults;
};

static Job g_job;
static std::vector<uint64_t> g_hash;    // golden fingerprint per cycle (inject mode)
static std::vector<uint8_t> g_mem;      // golden final memory (inject mode)
static std::vector<uint8_t> g_scratch;  // gathered design state

static bool parse_job(const char* path, Job& job) {
    std::ifstream in(path);
    if (!in) return false;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string key;
        if (!(ls >> key)) continue;
        if (key == "mem_bytes") ls >> job.mem_bytes;
        else if (key == "image") ls >> job.image;
        else if (key == "timeout") ls >> job.timeout;
        else if (key == "jobs") ls >> job.jobs;
        else if (key == "check_gap") ls >> job.check_gap;
        else if (key == "early_stop") ls >> job.early_stop;
        else if (key == "golden") ls >> job.golden;
        else if (key == "dump") ls >> job.dump;
        else if (key == "golden_oob") ls >> job.golden_oob;
        else if (key == "verify") ls >> job.verify;
        else if (key == "region") { uint64_t lo, hi; ls >> lo >> hi; job.regions.push_back({lo, hi}); }
        else if (key == "var") { Var v; ls >> v.path >> v.width >> v.depth; job.vars.push_back(v); }
        else if (key == "control") ls >> job.control;
        else if (key == "ctrl") { int i; ls >> i; job.ctrl_vars.push_back(i); }
        else if (key == "ctrl_fetch") ls >> job.ctrl_fetch;
        else if (key == "ctrl_ld") ls >> job.ctrl_ld;
        else if (key == "wire") { Var v; ls >> v.path >> v.width; job.wires.push_back(v); }
        else if (key == "rport") { ReadPort r; ls >> r.mem >> r.addr >> r.lo >> r.hi; job.rports.push_back(r); }
        else if (key == "wlane") {
            WriteLane w;
            ls >> w.mem >> w.addr >> w.lo >> w.hi >> w.en >> w.en_bit >> w.blo >> w.bhi;
            job.wlanes.push_back(w);
        }
        else if (key == "fault") {
            FaultSpec f;
            ls >> f.id >> f.var >> f.model >> f.cycle >> f.bit >> f.word >> f.nbits >> f.duration;
            job.faults.push_back(f);
        } else { std::fprintf(stderr, "job: unknown key %s\n", key.c_str()); return false; }
        if (ls.fail()) { std::fprintf(stderr, "job: bad line: %s\n", line.c_str()); return false; }
    }
    return true;
}

template <typename T>
static bool read_vec(const std::string& path, std::vector<T>& out) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return false;
    const size_t n = static_cast<size_t>(f.tellg());
    out.resize(n / sizeof(T));
    f.seekg(0);
    return static_cast<bool>(f.read(reinterpret_cast<char*>(out.data()), n)) || n == 0;
}
template <typename T>
static bool write_vec(const std::string& path, const std::vector<T>& v) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    return static_cast<bool>(f);
}

static std::string norm_name(const char* s) {
    std::string n(s);
    if (!n.empty() && n[0] == '\\') n.erase(0, 1);
    while (!n.empty() && n.back() == ' ') n.pop_back();
    return n;
}

// Find each state element in Verilator's scope table (public_flat_rw in the .vlt).
static bool resolve_vars(VerilatedContext* ctx, std::vector<Var>& vars) {
    for (Var& v : vars) {
        const auto dot = v.path.rfind('.');
        const std::string scope = "TOP." + v.path.substr(0, dot), name = v.path.substr(dot + 1);
        const VerilatedScope* sc = ctx->scopeFind(scope.c_str());
        if (sc && sc->varsp()) {
            for (auto& kv : *sc->varsp()) {
                if (norm_name(kv.first) == name) {
                    v.p = static_cast<uint8_t*>(kv.second.datap());
                    v.stride = kv.second.entSize();
                    break;
                }
            }
        }
        if (!v.p) {
            std::fprintf(stderr, "state element %s not found (scope %s)\n", v.path.c_str(), scope.c_str());
            return false;
        }
        if (v.stride * 8 < v.width) {
            std::fprintf(stderr, "%s: %u bytes per word for %u bits\n", v.path.c_str(), v.stride, v.width);
            return false;
        }
    }
    return true;
}

// ---- fingerprint: xxh64-style rounds on 4 lanes, then an avalanche
static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }
static constexpr uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull;
static inline uint64_t round64(uint64_t acc, uint64_t x) { return rotl(acc + x * P2, 31) * P1; }
static uint64_t hash_bytes(uint64_t seed, const uint8_t* p, size_t n) {
    uint64_t a = seed + P1, b = seed ^ P2, c = seed + P3, d = seed - P1;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = round64(a, rd64(p + i)); b = round64(b, rd64(p + i + 8));
        c = round64(c, rd64(p + i + 16)); d = round64(d, rd64(p + i + 24));
    }
    uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + n;
    for (; i + 8 <= n; i += 8) h = rotl(h ^ round64(0, rd64(p + i)), 27) * P1 + P3;
    for (; i < n; ++i) h = rotl(h ^ (p[i] * P3), 11) * P1;
    h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32;
    return h;
}

static void gather_state(std::vector<uint8_t>& buf) {
    size_t n = 0;
    for (const Var& v : g_job.vars) n += size_t(v.stride) * v.depth;
    buf.resize(n);
    uint8_t* o = buf.data();
    for (const Var& v : g_job.vars) {
        const size_t k = size_t(v.stride) * v.depth;
        std::memcpy(o, v.p, k);
        o += k;
    }
}

static uint64_t state_hash(Sim& s) {
    gather_state(g_scratch);
    uint64_t h = hash_bytes(0x6877676e, g_scratch.data(), g_scratch.size());
    h = hash_bytes(h, s.mem.bytes.data(), s.mem.bytes.size());
    uint8_t tail[2 * PORT_BYTES + 1];
    std::memcpy(tail, s.rdata, PORT_BYTES);
    std::memcpy(tail + PORT_BYTES, s.ld_rdata, PORT_BYTES);
    tail[2 * PORT_BYTES] = s.mem.oob ? 1 : 0;
    return hash_bytes(h, tail, sizeof tail);
}

// Fingerprints of parts of the state (a cheap first test before state_hash, and the condition of
// memories_dead): every register (state var of depth 1) with the harness's read registers and
// out-of-range flag; the host memory.
static std::vector<std::pair<const uint8_t*, uint32_t>> g_regs;   // (data, bytes) of each register
static std::vector<uint8_t> g_regbuf;
static void init_regs() {
    size_t n = 2 * PORT_BYTES + 1;
    for (const Var& v : g_job.vars)
        if (v.depth == 1) { g_regs.push_back({v.p, v.stride}); n += v.stride; }
    g_regbuf.resize(n);
}
static uint64_t regs_hash(const Sim& s) {
    uint8_t* o = g_regbuf.data();
    for (const auto& r : g_regs) { std::memcpy(o, r.first, r.second); o += r.second; }
    std::memcpy(o, s.rdata, PORT_BYTES); o += PORT_BYTES;
    std::memcpy(o, s.ld_rdata, PORT_BYTES); o += PORT_BYTES;
    *o++ = s.mem.oob ? 1 : 0;
    return hash_bytes(0x72656773, g_regbuf.data(), size_t(o - g_regbuf.data()));
}
static uint64_t host_hash(const Sim& s) { return hash_bytes(0x686f7374, s.mem.bytes.data(), s.mem.bytes.size()); }

// fingerprint of the control state only (rtl_control.py): the cone's registers, the host read-data
// registers the cone reads, the out-of-range flag
static uint64_t control_hash(const Sim& s) {
    uint64_t h = 0x63746c;
    for (int i : g_job.ctrl_vars) {
        const Var& v = g_job.vars[i];
        h = hash_bytes(h, v.p, size_t(v.stride) * v.depth);
    }
    uint8_t tail[2 * PORT_BYTES + 1] = {};
    if (g_job.ctrl_fetch) std::memcpy(tail, s.rdata, PORT_BYTES);
    if (g_job.ctrl_ld) std::memcpy(tail + PORT_BYTES, s.ld_rdata, PORT_BYTES);
    tail[2 * PORT_BYTES] = s.mem.oob ? 1 : 0;
    return hash_bytes(h, tail, sizeof tail);
}

// ---- faults
static inline void bit_op(const Var& v, uint32_t word, uint32_t bit, int op) {   // 0 flip, 1 clear, 2 set
    uint8_t* w = v.p + size_t(word) * v.stride + (bit >> 3);
    const uint8_t m = uint8_t(1u << (bit & 7));
    if (op == 0) *w ^= m; else if (op == 1) *w &= uint8_t(~m); else *w |= m;
}
static void apply_fault(const FaultSpec& f) {
    const Var& v = g_job.vars[f.var];
    const int op = f.model == M_STUCK0 ? 1 : f.model == M_STUCK1 ? 2 : 0;
    const uint32_t n = f.nbits ? f.nbits : 1;
    for (uint32_t k = 0; k < n && f.bit + k < v.width; ++k) bit_op(v, f.word, f.bit + k, op);
}

static bool regions_differ(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    for (auto& r : g_job.regions)
        if (std::memcmp(a.data() + r.first, b.data() + r.first, r.second - r.first)) return true;
    return false;
}

