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
       D_UNREAD };

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

// ---- the outcome decision: the one place that turns the end of a faulty run into a detail code
// (rtl_injector.DETAILS maps codes to outcomes). A run ends here when the design halted (done or
// error) or timed out; n is its last cycle. Status the design reports at the end (detected/corrected
// counters of future safety mechanisms) belongs here, read from s.top like done and error.
static int32_t decide_outcome(const Sim& s, uint64_t n, bool timed_out) {
    const uint64_t last = g_hash.size() - 1;   // golden halt cycle
    if (s.top->error) return D_ERROR;
    if (timed_out) return D_TIMEOUT;
    if (s.mem.oob && !g_job.golden_oob) return D_OOB;
    if (regions_differ(s.mem.bytes, g_mem)) return D_OUTPUT;
    if (s.mem.bytes != g_mem) return D_MEMORY;
    if (n > last) return D_LATE;
    if (n < last) return D_EARLY;
    return D_SAME;
}

// ---- early SDC stop (early stop only; rtl_control.py says why it is exact). A byte of an output
// region is final and wrong when the faulty run stores a value other than the golden final one at the
// golden run's last store to that byte, every store command (enable, address, strobe) so far having
// been golden's. If then the control state equals golden's (control_hash), and no input the control
// reads can differ (g_sdc_stop: the golden run never reads, through a port the control cone reads, a
// word stored to earlier: the faulty run's stores went to golden's addresses), the control future is
// golden's: no error, halt at the golden cycle, the same store addresses (the byte is never written
// again). So decide_outcome would say D_OUTPUT at the golden halt: the run stops there.
struct StoreCmd { uint64_t addr; uint32_t strobe; uint8_t we; };
static std::vector<StoreCmd> g_stores;   // golden store command per cycle before the halt
static std::vector<uint64_t> g_chash;    // golden control fingerprint per cycle up to the halt
static std::vector<int64_t> g_lastw;     // per host byte of an output region: golden's last store cycle, else -1
static bool g_sdc_stop = false;          // the early SDC stop applies to this job

struct SdcWatch { bool stores_equal = true, final_wrong = false; };

// Before the edge that ends cycle n of a faulty run.
static inline void watch_store(const Sim& s, uint64_t n, SdcWatch& w) {
    if (!w.stores_equal) return;
    if (n >= g_stores.size()) { w.stores_equal = false; return; }
    const StoreCmd& g = g_stores[n];
    const bool we = s.top->st_we;
    if (we != bool(g.we) ||
        (we && (uint64_t(s.top->st_addr) != g.addr || uint32_t(s.top->st_wstrb) != g.strobe))) {
        w.stores_equal = false;
        return;
    }
    if (!we || w.final_wrong || g.addr >= s.mem.words) return;
    uint8_t wd[PORT_BYTES];
    port_to_bytes(s.top->st_wdata, wd);
    for (int i = 0; i < PORT_BYTES; ++i) {
        const uint64_t b = g.addr * PORT_BYTES + i;
        if ((g.strobe >> i & 1) && g_lastw[b] == int64_t(n) && wd[i] != g_mem[b]) { w.final_wrong = true; return; }
    }
}

// ---- memory liveness (early stop only): when does the golden run read or overwrite a memory word?
// The design reaches a memory's contents only through its read ports (synchronous: the word at the
// port's address is sampled at every clock edge; rtl_injector.memory_ports accepts a memory only if
// every use of it in the Verilog is such a read or a lane write it has listed). So a flip of bits of
// word w held from cycle c changes nothing else in the state until the first cycle r >= c at which a
// port reads w: until then the faulty run equals the golden run outside that word (same addresses,
// enables and write data), hence also writes the same lanes. A bit whose lane is written in [c, r)
// holds the golden value again; the others are still flipped at r. Hence: no bit left, or no read
// before the golden halt: masked, nothing to simulate; otherwise the fault is the same flip of the
// remaining bits at cycle r (the same state at r, so the same run from r on: outcome, detail, end).
// val: offset in MemTrace::values of the word's value after the edge
struct WriteEvent { uint32_t cycle, blo, bhi; int lane; size_t val; };
struct MemTrace {
    std::vector<std::vector<uint32_t>> reads;
    std::vector<std::vector<WriteEvent>> writes;
    std::vector<uint8_t> initial, values, covered;   // contents at cycle 0; written values; bits some lane writes
};
static std::vector<MemTrace> g_trace;        // per state var (empty for a var without listed ports)
static std::vector<uint64_t> g_rhash, g_hhash;   // golden regs_hash, host_hash per cycle (with the trace)
static bool g_mems_traced = false;           // every memory has listed ports

static inline uint64_t wire_value(const Var& w) {
    uint64_t v = 0;
    std::memcpy(&v, w.p, std::min<uint32_t>(w.stride, 8));
    return v;
}
static inline uint64_t field(uint64_t v, uint32_t lo, uint32_t hi) {
    const uint32_t n = hi - lo + 1;
    return n >= 64 ? v >> lo : (v >> lo) & ((uint64_t(1) << n) - 1);
}

// Replay the golden run from cycle 0 (s; left at the halt) and record what the shortcuts need: for
// every cycle before the halt, the words each memory read port reads and the lanes each write lane
// writes; the store commands, the control fingerprints and each output byte's last store.
static void trace_golden(Sim& s, uint64_t last) {
    g_trace.assign(g_job.vars.size(), MemTrace());
    for (const ReadPort& r : g_job.rports) g_trace[r.mem].reads.resize(g_job.vars[r.mem].depth);
    for (const WriteLane& w : g_job.wlanes) g_trace[w.mem].writes.resize(g_job.vars[w.mem].depth);
    g_sdc_stop = g_job.control != 0;
    const bool liveness = !g_job.rports.empty();
    g_mems_traced = liveness;
    for (size_t i = 0; i < g_job.vars.size(); ++i) {
        const Var& v = g_job.vars[i];
        MemTrace& t = g_trace[i];
        if (v.depth == 1) continue;
        if (t.reads.empty()) { g_mems_traced = false; continue; }
        t.initial.assign(v.p, v.p + size_t(v.stride) * v.depth);
        t.covered.assign(v.stride, 0);
        for (const WriteLane& w : g_job.wlanes)
            if (size_t(w.mem) == i)
                for (uint32_t k = w.blo; k <= w.bhi; ++k) t.covered[k >> 3] |= uint8_t(1u << (k & 7));
    }
    g_rhash.assign(liveness ? last + 1 : 0, 0);
    g_hhash.assign(liveness ? last + 1 : 0, 0);
    std::vector<std::pair<int, uint32_t>> written;   // (mem, word) written at this edge
    g_stores.assign(last, StoreCmd{0, 0, 0});
    g_chash.assign(last + 1, 0);
    g_lastw.assign(g_job.mem_bytes, -1);
    std::vector<uint8_t> in_region(g_job.mem_bytes, 0), stored(s.mem.words, 0);
    for (auto& r : g_job.regions) std::fill(in_region.begin() + r.first, in_region.begin() + r.second, 1);
    for (uint64_t n = 0; n <= last; ++n) {
        if (g_job.control) g_chash[n] = control_hash(s);
        if (liveness) { g_rhash[n] = regs_hash(s); g_hhash[n] = host_hash(s); }
        if (n == last) break;
        const uint64_t words = s.mem.words;
        if (g_job.ctrl_fetch && s.top->fetch_re && stored[uint64_t(s.top->fetch_addr) & (words - 1)]) g_sdc_stop = false;
        if (g_job.ctrl_ld && s.top->ld_re && stored[uint64_t(s.top->ld_addr) & (words - 1)]) g_sdc_stop = false;
        if (s.top->st_we) {
            const uint64_t a = s.top->st_addr;
            const uint32_t strobe = s.top->st_wstrb;
            g_stores[n] = StoreCmd{a, strobe, 1};
            if (a < words) {
                stored[a] = 1;
                for (int i = 0; i < PORT_BYTES; ++i)
                    if ((strobe >> i & 1) && in_region[a * PORT_BYTES + i]) g_lastw[a * PORT_BYTES + i] = int64_t(n);
            }
        }
        // the state of cycle n is settled: these are its edge's accesses
        for (const ReadPort& r : g_job.rports) {
            const uint64_t word = field(wire_value(g_job.wires[r.addr]), r.lo, r.hi);
            if (word < g_job.vars[r.mem].depth) {
                auto& v = g_trace[r.mem].reads[word];
                if (v.empty() || v.back() != n) v.push_back(uint32_t(n));
            }
        }
        for (const WriteLane& w : g_job.wlanes) {
            if (!(wire_value(g_job.wires[w.en]) >> w.en_bit & 1)) continue;
            const uint64_t word = field(wire_value(g_job.wires[w.addr]), w.lo, w.hi);
            if (word < g_job.vars[w.mem].depth) {
                g_trace[w.mem].writes[word].push_back({uint32_t(n), w.blo, w.bhi, int(&w - g_job.wlanes.data()), 0});
                written.push_back({w.mem, uint32_t(word)});
            }
        }
        s.tick();
        std::sort(written.begin(), written.end());
        written.erase(std::unique(written.begin(), written.end()), written.end());
        for (const auto& mw : written) {   // the written words' values after the edge
            const Var& v = g_job.vars[mw.first];
            MemTrace& t = g_trace[mw.first];
            for (auto it = t.writes[mw.second].rbegin(); it != t.writes[mw.second].rend() && it->cycle == n; ++it)
                it->val = t.values.size();
            t.values.insert(t.values.end(), v.p + size_t(mw.second) * v.stride, v.p + size_t(mw.second + 1) * v.stride);
        }
        written.clear();
    }
}

// The fault to simulate instead of f (true), or false if f is masked without simulation.
static bool live_fault(const FaultSpec& f, uint64_t last, FaultSpec& eff) {
    eff = f;
    if (f.model != M_SEU && f.model != M_MBU) return true;   // stuck-at faults persist: no shortcut
    if (size_t(f.var) >= g_trace.size() || g_trace[f.var].reads.empty()) return true;
    const MemTrace& t = g_trace[f.var];
    const auto& rd = t.reads[f.word];
    const auto it = std::lower_bound(rd.begin(), rd.end(), uint32_t(f.cycle));
    if (it == rd.end() || *it >= last) return false;   // never read again before the halt
    const uint32_t r = *it;
    const uint32_t n = std::max<uint32_t>(1, f.nbits);
    uint32_t lo = UINT32_MAX, hi = 0, alive = 0;
    for (uint32_t k = f.bit; k < f.bit + n && k < g_job.vars[f.var].width; ++k) {
        bool dead = false;
        if (!t.writes.empty())
            for (const WriteEvent& w : t.writes[f.word])
                if (w.cycle >= f.cycle && w.cycle < r && w.blo <= k && k <= w.bhi) { dead = true; break; }
        if (dead) continue;
        lo = std::min(lo, k); hi = std::max(hi, k); ++alive;
    }
    if (alive == 0) return false;                        // every flipped bit overwritten before the read
    if (hi - lo + 1 != alive) return true;               // not one run of adjacent bits: simulate as given
    eff.cycle = r; eff.bit = lo; eff.nbits = alive;
    return true;
}

static bool lane_equal(const uint8_t* a, const uint8_t* b, uint32_t blo, uint32_t bhi) {
    if (blo % 8 == 0 && (bhi + 1) % 8 == 0) return std::memcmp(a + blo / 8, b + blo / 8, (bhi + 1 - blo) / 8) == 0;
    for (uint32_t k = blo; k <= bhi; ++k)
        if (((a[k >> 3] ^ b[k >> 3]) >> (k & 7)) & 1) return false;
    return true;
}

// The golden value of word w of memory m held during cycle n (after the edges before it).
static const uint8_t* golden_word(const MemTrace& t, const Var& v, uint32_t w, uint64_t n) {
    const auto& ws = t.writes[w];
    auto it = std::lower_bound(ws.begin(), ws.end(), n, [](const WriteEvent& e, uint64_t c) { return e.cycle < c; });
    if (it == ws.begin()) return t.initial.data() + size_t(w) * v.stride;
    return t.values.data() + std::prev(it)->val;
}

// A faulty run whose registers and host memory equal golden's at cycle n (regs_hash, host_hash) differs
// from it at most in memory words. The argument of live_fault, for every differing lane at once: if
// none is read, from n on, before golden overwrites it, the run's future is golden's (masked).
static bool memories_dead(uint64_t n, uint64_t last) {
    if (!g_mems_traced) return false;
    for (size_t i = 0; i < g_job.vars.size(); ++i) {
        const Var& v = g_job.vars[i];
        if (v.depth == 1) continue;
        const MemTrace& t = g_trace[i];
        for (uint32_t w = 0; w < v.depth; ++w) {
            const uint8_t* cur = v.p + size_t(w) * v.stride;
            const uint8_t* gold = golden_word(t, v, w, n);
            if (std::memcmp(cur, gold, v.stride) == 0) continue;
            const auto& rd = t.reads[w];
            const auto r = std::lower_bound(rd.begin(), rd.end(), uint32_t(n));
            if (r == rd.end() || *r >= last) continue;                // never read again
            for (uint32_t b = 0; b < v.stride; ++b)
                if ((cur[b] ^ gold[b]) & ~t.covered[b]) return false;  // bits no lane writes: read while wrong
            for (const WriteLane& l : g_job.wlanes) {
                if (size_t(l.mem) != i || lane_equal(cur, gold, l.blo, l.bhi)) continue;
                bool overwritten = false;
                const int lane = int(&l - g_job.wlanes.data());
                for (const WriteEvent& e : t.writes[w])
                    if (e.cycle >= n && e.cycle < *r && e.lane == lane) { overwritten = true; break; }
                if (!overwritten) return false;
            }
        }
    }
    return true;
}

// One faulty run: apply the fault at cycle n (the Sim holds the golden state of cycle n) and run on;
// early stop on a golden fingerprint (equal state, equal future: masked). Leaves the Sim wherever the
// run ended (the caller restores its snapshot).
static void run_fault(Sim& s, const FaultSpec& f, uint64_t n, Slot& out) {
    const bool stuck = f.model == M_STUCK0 || f.model == M_STUCK1;
    const uint64_t win_end = n + (stuck ? std::max<uint32_t>(1, f.duration) : 1);
    const uint64_t last = g_hash.size() - 1;   // golden halt cycle
    uint64_t next_check = win_end, gap = 1;
    bool timed_out = false;
    const bool sdc_stop = g_job.early_stop && g_sdc_stop && g_job.dump.empty();
    SdcWatch watch;
    for (;;) {
        if (n < win_end) { apply_fault(f); s.top->eval(); }
        if (s.top->done || s.top->error) break;
        if (n >= g_job.timeout) { timed_out = true; break; }
        if (sdc_stop && watch.final_wrong && watch.stores_equal && n >= win_end && n <= last &&
            control_hash(s) == g_chash[n]) {
            out.detail = D_OUTPUT; out.early = 1; out.end = last; out.filled = 1;
            return;
        }
        if (sdc_stop) watch_store(s, n, watch);
        if (g_job.early_stop && n == next_check) {
            // with the trace: registers and host memory first (cheap), then the whole state, then the memories
            if (n <= last && (g_rhash.empty() || (regs_hash(s) == g_rhash[n] && host_hash(s) == g_hhash[n]))) {
                if (state_hash(s) == g_hash[n]) {
                    out.detail = D_CONVERGED; out.early = 1; out.end = n; out.filled = 1;
                    return;
                }
                if (!g_rhash.empty() && g_job.dump.empty() && memories_dead(n, last)) {
                    out.detail = D_UNREAD; out.early = 1; out.end = n; out.filled = 1;
                    return;
                }
            }
            gap = std::min<uint64_t>(gap * 2, g_job.check_gap);
            next_check = n + gap;
        }
        s.tick();
        ++n;
    }
    out.end = n;
    if (!g_job.dump.empty()) write_vec(g_job.dump + "/fault_" + std::to_string(f.id) + ".mem", s.mem.bytes);
    out.detail = decide_outcome(s, n, timed_out);
    out.filled = 1;
}

static bool load_image(Sim& s) {
    std::ifstream f(g_job.image, std::ios::binary | std::ios::ate);
    if (!f) return false;
    const uint64_t n = static_cast<uint64_t>(f.tellg());
    if (n > g_job.mem_bytes) return false;
    f.seekg(0);
    return static_cast<bool>(f.read(reinterpret_cast<char*>(s.mem.bytes.data()), n)) || n == 0;
}

static void start_run(Sim& s) {
    s.reset();
    s.set_inputs(false, true);
    s.tick();   // the edge that samples start: the state of cycle 0 follows
    s.set_inputs(false, false);
}

static int golden_mode(Sim& s, const std::string& prefix) {
    std::vector<uint64_t> hashes;
    const auto t0 = std::chrono::steady_clock::now();
    start_run(s);
    uint64_t n = 0;
    double hash_s = 0;
    for (;;) {
        const auto h0 = std::chrono::steady_clock::now();
        hashes.push_back(state_hash(s));
        hash_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - h0).count();
        if (s.top->done || s.top->error || n >= g_job.timeout) break;
        s.tick();
        ++n;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const bool timed_out = !(s.top->done || s.top->error);
    gather_state(g_scratch);
    if (!write_vec(prefix + ".hash", hashes) || !write_vec(prefix + ".mem", s.mem.bytes) ||
        !write_vec(prefix + ".state", g_scratch)) {
        std::fprintf(stderr, "cannot write %s.*\n", prefix.c_str());
        return 3;
    }
    FILE* t = std::fopen((prefix + ".txt").c_str(), "w");
    if (!t) return 3;
    std::fprintf(t, "%" PRIu64 " %" PRIu64 " %d %d %d %" PRIu64 " %.9f %.9f\n",
                 static_cast<uint64_t>(s.top->cycles), static_cast<uint64_t>(s.top->busy_pe), s.top->error ? 1 : 0,
                 timed_out ? 1 : 0, s.mem.oob ? 1 : 0, n, wall, hash_s);
    std::fclose(t);
    return 0;
}

struct Task { size_t index; FaultSpec spec; };

// One worker's share of the tasks (every step-th from first, in cycle order): replay the golden run
// from cycle 0 (s), and at each task's cycle check the state against the golden fingerprint (this
// also checks the previous restore), save it, run the fault, restore. Returns 0 or an exit status.
static int run_share(Sim& s, const std::vector<Task>& tasks, size_t first, size_t step, Slot* slots) {
    Snapshot snap;
    uint64_t n = 0;
    for (size_t k = first; k < tasks.size(); k += step) {
        const FaultSpec& f = tasks[k].spec;
        while (n < f.cycle) { s.tick(); ++n; }
        if (g_job.verify && state_hash(s) != g_hash[n]) {
            std::fprintf(stderr, "replay diverged from the golden run at cycle %" PRIu64 "\n", n);
            return 4;
        }
        snap.save(s);
        run_fault(s, f, n, slots[tasks[k].index]);
        snap.restore(s);
    }
    return 0;
}

static int inject_mode(Sim& s, const std::string& results_path) {
    if (!read_vec(g_job.golden + ".hash", g_hash) || g_hash.empty() || !read_vec(g_job.golden + ".mem", g_mem) ||
        g_mem.size() != g_job.mem_bytes) {
        std::fprintf(stderr, "cannot read the golden run %s.*\n", g_job.golden.c_str());
        return 3;
    }
    const uint64_t last = g_hash.size() - 1;
    const size_t nf = g_job.faults.size();
    Slot* slots = static_cast<Slot*>(mmap(nullptr, sizeof(Slot) * std::max<size_t>(nf, 1), PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (slots == MAP_FAILED) { std::perror("mmap"); return 3; }
    std::memset(slots, 0, sizeof(Slot) * std::max<size_t>(nf, 1));
    start_run(s);
    const bool liveness = g_job.early_stop && !g_job.rports.empty();
    if (g_job.early_stop && (liveness || g_job.control)) {
        Snapshot start;
        start.save(s);
        trace_golden(s, last);
        start.restore(s);
    }
    std::vector<Task> tasks;
    for (size_t i = 0; i < nf; ++i) {
        const FaultSpec& f = g_job.faults[i];
        Slot& slot = slots[i];
        FaultSpec eff = f;
        if (f.cycle >= last) {   // the design has halted (or halts in this very cycle): nothing to corrupt
            slot.detail = D_AFTER_END; slot.early = 1; slot.end = last; slot.filled = 1;
        } else if (liveness && !live_fault(f, last, eff)) {
            slot.detail = D_UNREAD; slot.early = 1; slot.end = f.cycle; slot.filled = 1;
        } else {
            tasks.push_back({i, eff});
        }
    }
    std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) { return a.spec.cycle < b.spec.cycle; });
    // jobs workers forked once (each replays the golden run for its share), or this process alone
    const size_t workers = std::max<size_t>(1, std::min<size_t>(size_t(std::max(1, g_job.jobs)), tasks.size()));
    int rc = 0;
    if (workers == 1) {
        rc = run_share(s, tasks, 0, 1, slots);
    } else {
        std::fflush(nullptr);
        std::vector<pid_t> pids;
        for (size_t k = 0; k < workers; ++k) {
            const pid_t pid = fork();
            if (pid < 0) { std::perror("fork"); rc = 3; break; }
            if (pid == 0) { std::fflush(nullptr); _exit(run_share(s, tasks, k, workers, slots)); }
            pids.push_back(pid);
        }
        for (pid_t pid : pids) {
            int st = 0;
            if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st)) rc = rc ? rc : 5;
            else if (WEXITSTATUS(st) != 0) rc = rc ? rc : WEXITSTATUS(st);
        }
    }
    if (rc) return rc;
    FILE* r = std::fopen(results_path.c_str(), "w");
    if (!r) return 3;
    for (size_t i = 0; i < nf; ++i)
        std::fprintf(r, "%lld %d %d %" PRIu64 " %d\n", g_job.faults[i].id, slots[i].filled, slots[i].detail,
                     slots[i].end, slots[i].early);
    std::fclose(r);
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s golden|inject <job file> <output>\n", argv[0]);
        return 2;
    }
    if (!parse_job(argv[2], g_job) || g_job.mem_bytes < PORT_BYTES || (g_job.mem_bytes & (g_job.mem_bytes - 1))) {
        std::fprintf(stderr, "job %s: bad job\n", argv[2]);
        return 2;
    }
    Sim sim;
    sim.mem.resize(g_job.mem_bytes);
    if (!load_image(sim)) { std::fprintf(stderr, "cannot read image %s\n", g_job.image.c_str()); return 3; }
    if (!resolve_vars(sim.ctx.get(), g_job.vars) || !resolve_vars(sim.ctx.get(), g_job.wires)) return 3;
    init_regs();
    for (const Var& v : g_job.vars) {
        if (!Snapshot::covers(sim, v.p, size_t(v.stride) * v.depth)) {   // a snapshot would miss it
            std::fprintf(stderr, "state element %s lies outside the model's root object\n", v.path.c_str());
            return 3;
        }
    }
    for (const ReadPort& r : g_job.rports)
        if (r.mem < 0 || size_t(r.mem) >= g_job.vars.size() || r.addr < 0 || size_t(r.addr) >= g_job.wires.size() ||
            r.hi < r.lo || r.hi - r.lo >= 32) { std::fprintf(stderr, "bad rport\n"); return 2; }
    for (int i : g_job.ctrl_vars)
        if (i < 0 || size_t(i) >= g_job.vars.size()) { std::fprintf(stderr, "bad ctrl\n"); return 2; }
    for (const WriteLane& w : g_job.wlanes)
        if (w.mem < 0 || size_t(w.mem) >= g_job.vars.size() || w.addr < 0 || size_t(w.addr) >= g_job.wires.size() ||
            w.en < 0 || size_t(w.en) >= g_job.wires.size() || w.hi < w.lo || w.hi - w.lo >= 32 || w.en_bit >= 64 ||
            w.bhi < w.blo || w.bhi >= g_job.vars[w.mem].width) { std::fprintf(stderr, "bad wlane\n"); return 2; }
    for (const FaultSpec& f : g_job.faults) {
        if (f.var < 0 || size_t(f.var) >= g_job.vars.size() || f.word >= g_job.vars[f.var].depth ||
            f.bit >= g_job.vars[f.var].width || f.model < 0 || f.model > 3) {
            std::fprintf(stderr, "fault %lld: bad site, word, bit or model\n", f.id);
            return 2;
        }
    }
    const std::string mode = argv[1];
    int rc = 2;
    if (mode == "golden") rc = golden_mode(sim, argv[3]);
    else if (mode == "inject") rc = inject_mode(sim, argv[3]);
    else std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    // no destructors: Verilator's scope teardown is not needed and a forked process must not run it
    std::fflush(nullptr);
    _exit(rc);
}
