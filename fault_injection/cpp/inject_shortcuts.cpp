// hwgen fault-injection harness, part 2 of 3: the shortcuts of early stop (inject_state.cpp before,
// inject_main.cpp after). Each is exact, off without early_stop, and checked against full runs.

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

