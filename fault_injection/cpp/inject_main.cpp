// hwgen fault-injection harness, part 3 of 3: the outcome decision, one faulty run, the golden and
// inject modes, main (inject_state.cpp and inject_shortcuts.cpp before).

// ---- the outcome decision: the one place that turns the end of a faulty run into a detail code
// (rtl_injector.DETAILS maps codes to outcomes). A run ends here when the design halted (done or
// error) or timed out; n is its last cycle. Status the design reports at the end (detected/corrected
// counters of future safety mechanisms) belongs here, read from s.top like done and error.
static int32_t decide_outcome(const Sim& s, uint64_t n, bool timed_out) {
    const uint64_t last = g_hash.size() - 1;   // golden halt cycle
#ifdef HWGEN_SAFETY_COUNTERS
    // a safety mechanism that detected the fault put the system in its safe state, whatever followed;
    // one that corrected it leaves a right output (checked below) counted as corrected
    if (s.top->safety_detected) return D_DETECTED;
#endif
    if (s.top->error) return D_ERROR;
    if (timed_out) return D_TIMEOUT;
    if (s.mem.oob && !g_job.golden_oob) return D_OOB;
    if (regions_differ(s.mem.bytes, g_mem)) return D_OUTPUT;
#ifdef HWGEN_SAFETY_COUNTERS
    if (s.top->safety_corrected) return D_CORRECTED;
#endif
    if (s.mem.bytes != g_mem) return D_MEMORY;
    if (n > last) return D_LATE;
    if (n < last) return D_EARLY;
    return D_SAME;
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

// One worker (k of step): trace the golden run if a shortcut needs it (s at cycle 0, restored after),
// classify the faults (after the end, not read again: no simulation; worker 0 records those), sort the
// rest by the cycle they are simulated from, and run every step-th from the k-th.
static int prepare_and_run(Sim& s, uint64_t last, size_t k, size_t step, Slot* slots) {
    const bool liveness = g_job.early_stop && !g_job.rports.empty();
    if (g_job.early_stop && (liveness || g_job.control)) {
        Snapshot start;
        start.save(s);
        trace_golden(s, last);
        start.restore(s);
    }
    std::vector<Task> tasks;
    for (size_t i = 0; i < g_job.faults.size(); ++i) {
        const FaultSpec& f = g_job.faults[i];
        Slot& slot = slots[i];
        FaultSpec eff = f;
        if (f.cycle >= last) {   // the design has halted (or halts in this very cycle): nothing to corrupt
            if (k == 0) { slot.detail = D_AFTER_END; slot.early = 1; slot.end = last; slot.filled = 1; }
        } else if (liveness && !live_fault(f, last, eff)) {
            if (k == 0) { slot.detail = D_UNREAD; slot.early = 1; slot.end = f.cycle; slot.filled = 1; }
        } else {
            tasks.push_back({i, eff});
        }
    }
    std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) { return a.spec.cycle < b.spec.cycle; });
    return run_share(s, tasks, k, step, slots);
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
    // jobs workers forked once, each preparing in parallel what the whole batch needs (the golden
    // trace, the classification: deterministic, so the same in every worker), then running its share;
    // or this process alone
    const size_t workers = std::max<size_t>(1, std::min<size_t>(size_t(std::max(1, g_job.jobs)), nf));
    int rc = 0;
    if (workers == 1) {
        rc = prepare_and_run(s, last, 0, 1, slots);
    } else {
        std::fflush(nullptr);
        std::vector<pid_t> pids;
        for (size_t k = 0; k < workers; ++k) {
            const pid_t pid = fork();
            if (pid < 0) { std::perror("fork"); rc = 3; break; }
            if (pid == 0) { std::fflush(nullptr); _exit(prepare_and_run(s, last, k, workers, slots)); }
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
