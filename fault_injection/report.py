"""Campaign reports: outcomes, AVF, FIT, SPFM/LFM/PMHF per structure, as Markdown, JSON and a PNG chart.

From a campaign database (:mod:`fault_injection.store`, any readable schema version):

* per structure: state bits, injections, counts of every outcome (masked, corrected, detected, latent, sdc,
  due: :class:`fault_injection.faults.Outcome`);
* AVF (vulnerability) = (sdc + due) / n, and the SDC-only AVF = sdc / n, each with
  a two-sided Clopper-Pearson interval at the campaign's confidence;
* FIT per structure = raw FIT/bit x bits x AVF, and the total (point estimates;
  the JSON also gives the FIT from the AVF upper bounds);
* ISO 26262-5 hardware metrics (:func:`fault_injection.stats.hardware_metrics`): SPFM, LFM and PMHF with
  one-sided bounds holding jointly at the campaign's confidence, the FIT assumptions (flip-flops and SRAM
  separately, :class:`fault_injection.stats.FitRates`; the lifetime the latent faults accumulate over), the
  ASIL the bounds support, the binding metric and the structure that limits it. Outcomes count by
  :func:`fault_injection.stats.fault_class`: DUE is dangerous unless a watchdog is declared
  (``watchdog=True``: then detected). The bound is pooled when one FIT per bit serves every bit (then
  :func:`fault_injection.sampling.plan_faults`'s allocation in proportion to bits is self-weighting) and
  Bonferroni over the strata otherwise (valid for any allocation); the choice depends on the FIT
  assumptions only, never on the outcomes, so it costs no confidence;
* the single-point fault metric alone (:func:`fault_injection.stats.spfm`, pooled and Bonferroni), as
  before the other metrics existed: a bound on SPFM by itself, tighter than the joint one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field


from hwgen.errors import HwgenError

from .faults import OUTCOMES, STRUCTURES
from .stats import (ASIL_LFM, ASIL_PMHF_FIT, ASIL_SPFM, DEFAULT_FIT_PER_BIT_MEM, DEFAULT_LIFETIME_HOURS, Asil,
                    BoundMethod, FaultClass, FitRates, StatsError, fault_class)
from .store import CampaignStore

__all__ = ["ReportError", "DEFAULT_FIT_PER_BIT", "StructureReport", "CampaignReport", "campaign_report",
           "build_report", "to_markdown", "to_json", "chart_png", "write_outputs"]

#: the one rate ``hwgen fi report --fit-per-bit`` replaces for flip-flops and SRAM alike; by default both
#: kinds have it (stats.DEFAULT_FIT_PER_BIT_FF == stats.DEFAULT_FIT_PER_BIT_MEM; sources there)
DEFAULT_FIT_PER_BIT = DEFAULT_FIT_PER_BIT_MEM

LIMITS = [
    "Single-bit flip (SEU) models have under-estimated error rates against beam tests (up to several times); "
    "multi-bit upsets in memories belong in the fault models (--models seu,mbu).",
    "The raw FIT/bit values are placeholders (flip-flops and SRAM alike 1e-4 FIT/bit unless given); replace "
    "them with the technology's data.",
    "LFM and PMHF count as latent only the injections the injector reported latent (output right, nothing "
    "fired, state still different at the end); an injector that reports such faults as masked makes LFM "
    "optimistic.",
    "AVF and the metrics hold for this workload and configuration; other workloads mask differently.",
]


class ReportError(HwgenError, ValueError):
    """A campaign that cannot be reported (no results yet, bad parameter, unwritable output)."""


@dataclass(frozen=True)
class StructureReport:
    structure: str
    description: str
    bits: int
    n: int
    masked: int
    sdc: int
    due: int
    avf: float | None          #: (sdc + due) / n
    avf_lo: float | None
    avf_hi: float | None
    sdc_avf: float | None      #: sdc / n
    sdc_lo: float | None
    sdc_hi: float | None
    fit: float | None          #: raw FIT/bit x bits x AVF
    fit_hi: float | None       #: with the AVF upper bound
    sdc_fit: float | None
    corrected: int = 0
    detected: int = 0
    latent: int = 0
    raw_fit: float = 0.0       #: lambda: bits x FIT/bit of their kind


@dataclass
class CampaignReport:
    campaign: dict
    done: int
    fit_per_bit: float | None  #: the FIT per bit every bit shares, None when flip-flops and SRAM differ
    watchdog: bool
    structures: list[StructureReport]
    total_fit: float
    total_fit_hi: float
    total_sdc_fit: float
    raw_fit: float
    spfm: dict                 #: stats.SpfmResult.to_dict() (pooled) plus "bonferroni_lower", "asil_bonferroni"
    asil: str                  #: "D" / "C" / "B" (SPFM, LFM and PMHF bounds together) or "none"
    verdict: str
    limits: list[str]
    metrics: dict = field(default_factory=dict)   #: stats.HardwareMetrics.to_dict()
    fit: FitRates = field(default_factory=FitRates)

    @property
    def confidence(self) -> float:
        return float(self.campaign["confidence"])

    def to_dict(self) -> dict:
        return {"campaign": self.campaign, "done": self.done, "fit_per_bit": self.fit_per_bit,
                "fit_per_bit_ff": self.fit.ff, "fit_per_bit_mem": self.fit.mem,
                "watchdog": self.watchdog, "structures": [asdict(s) for s in self.structures],
                "total_fit": self.total_fit, "total_fit_upper": self.total_fit_hi, "total_sdc_fit": self.total_sdc_fit,
                "raw_fit": self.raw_fit, "spfm": self.spfm, "metrics": self.metrics, "asil": self.asil,
                "verdict": self.verdict, "limits": self.limits}


def _fit_rates(fit_per_bit: object) -> FitRates:
    if fit_per_bit is None:
        return FitRates()
    if isinstance(fit_per_bit, FitRates):
        return fit_per_bit
    if isinstance(fit_per_bit, bool) or not isinstance(fit_per_bit, (int, float)) \
            or not 0 < fit_per_bit < math.inf:
        raise ReportError(f"FIT per bit must be a positive finite number, got {fit_per_bit!r:.60}")
    return FitRates.uniform(float(fit_per_bit))


def _by_structure(table: Mapping, what: str) -> dict[str, list]:
    """structure -> the values of ``table`` (keyed by structure or (structure, kind)) that belong to it."""
    out: dict[str, list] = {}
    for key, value in table.items():
        structure = key[0] if isinstance(key, tuple) and key else key
        if not isinstance(structure, str):
            raise ReportError(f"{what} key {key!r:.60} names no structure")
        out.setdefault(structure, []).append((key, value))
    return out


def build_report(campaign: dict, bits: Mapping, counts: Mapping, fit_per_bit: float | FitRates | None = None,
                 watchdog: bool = False, *, lifetime_hours: float = DEFAULT_LIFETIME_HOURS,
                 method: BoundMethod | str | None = None) -> CampaignReport:
    """The report from campaign parameters (needs "confidence"), bits and outcome counts, both keyed by
    structure or by (structure, site kind) as :meth:`CampaignStore.tally` gives them (by kind when the FIT
    per bit differs between flip-flops and SRAM). ``fit_per_bit``: one number for every bit, a
    :class:`FitRates`, or None for the defaults. ``method``: the joint bound's (default: pooled under one
    FIT per bit, Bonferroni otherwise). Pure: no database (the tests use it on synthetic tables)."""
    from .stats import clopper_pearson, hardware_metrics, spfm

    fit = _fit_rates(fit_per_bit)
    conf = float(campaign["confidence"])
    done = sum(int(v) for c in counts.values() for o, v in c.items() if o in OUTCOMES)
    if done == 0:
        raise ReportError("the campaign has no results yet")
    bits_of = _by_structure(bits, "bits")
    counts_of = _by_structure(counts, "counts")
    order = [s for s in STRUCTURES if s in bits_of or s in counts_of] + \
        sorted((set(bits_of) | set(counts_of)) - set(STRUCTURES))
    try:
        raw_of = {s: sum(int(b) * fit.of(k[1] if isinstance(k, tuple) else None) for k, b in bits_of.get(s, []))
                  for s in order}
        rows: list[StructureReport] = []
        spfm_in: dict[str, dict[str, int]] = {}
        for s in order:
            c = {o: sum(int(v.get(o, 0)) for _, v in counts_of.get(s, [])) for o in OUTCOMES}
            n = sum(c.values())
            b = sum(int(v) for _, v in bits_of.get(s, []))
            sdc, due = c["sdc"], c["due"]
            new = {o: c[o] for o in ("corrected", "detected", "latent")}
            if n:
                avf = (sdc + due) / n
                lo, hi = clopper_pearson(sdc + due, n, conf)
                slo, shi = clopper_pearson(sdc, n, conf)
                raw = raw_of[s]
                rows.append(StructureReport(s, STRUCTURES.get(s, ""), b, n, c["masked"], sdc, due, avf, lo, hi,
                                            sdc / n, slo, shi, raw * avf, raw * hi, raw * sdc / n, **new,
                                            raw_fit=raw))
            else:
                rows.append(StructureReport(s, STRUCTURES.get(s, ""), b, 0, 0, 0, 0, *([None] * 9),
                                            raw_fit=raw_of[s]))
            if b:
                spfm_in[s] = {"bits": b, "n": n,
                              "dangerous": sum(k for o, k in c.items()
                                               if fault_class(o, watchdog=watchdog) is FaultClass.SPF_RF)}
        mean_fit = {s: raw_of[s] / v["bits"] for s, v in spfm_in.items()}  # per structure: lambda / bits
        pooled = spfm(spfm_in, mean_fit, conf, method="pooled")
        bonf = spfm(spfm_in, mean_fit, conf, method="bonferroni")
        if method is None:
            method = BoundMethod.POOLED if fit.single is not None else BoundMethod.BONFERRONI
        hm = hardware_metrics(bits, counts, fit=fit, confidence=conf, method=method, watchdog=watchdog,
                              lifetime_hours=lifetime_hours)
    except StatsError as e:
        raise ReportError(str(e)) from None
    sp = pooled.to_dict()
    sp["bonferroni_lower"] = bonf.spfm_lower
    sp["asil_bonferroni"] = bonf.asil or "none"
    asil = str(hm.asil) if hm.asil in (Asil.B, Asil.C, Asil.D) else "none"
    pct = f"{100 * conf:g}%"
    bounds = (f"SPFM >= {100 * hm.spfm_lower:.2f}%, LFM >= {100 * hm.lfm_lower:.2f}%, PMHF <= "
              f"{hm.pmhf_fit_upper:.4g} FIT (one-sided bounds holding together at {pct} confidence; point "
              f"estimates {100 * hm.spfm:.2f}%, {100 * hm.lfm:.2f}%, {hm.pmhf_fit:.4g} FIT)")
    if asil == "none":
        verdict = (f"{bounds}: supports no ASIL with hardware-metric targets (ASIL B needs SPFM >= "
                   f"{100 * ASIL_SPFM['B']:g}%, LFM >= {100 * ASIL_LFM['B']:g}%, PMHF < "
                   f"{ASIL_PMHF_FIT['B']:g} FIT). {hm.reason}")
    else:
        verdict = f"{bounds}: supports ASIL {asil} at {pct} confidence. {hm.reason}"
    total = sum(r.fit or 0.0 for r in rows)
    total_hi = sum(r.fit_hi if r.fit_hi is not None else r.raw_fit for r in rows)
    limits = list(LIMITS) + list(hm.notes)
    if any(r.bits and not r.n for r in rows):
        limits.append("Structures without injections count as fully vulnerable in the upper FIT and the "
                      "metrics' bounds, and as 0 in the point estimates.")
    planned = int(campaign.get("planned", done))
    if done < planned:
        limits.insert(0, f"Partial campaign: {done} of {planned} planned injections have results.")
    return CampaignReport(campaign=dict(campaign), done=done, fit_per_bit=fit.single, watchdog=bool(watchdog),
                          structures=rows, total_fit=total, total_fit_hi=total_hi,
                          total_sdc_fit=sum(r.sdc_fit or 0.0 for r in rows), raw_fit=sum(r.raw_fit for r in rows),
                          spfm=sp, asil=asil, verdict=verdict, limits=limits, metrics=hm.to_dict(), fit=fit)


def campaign_report(db_path: str | os.PathLike[str], fit_per_bit: float | FitRates | None = None,
                    watchdog: bool = False, *, lifetime_hours: float = DEFAULT_LIFETIME_HOURS,
                    method: BoundMethod | str | None = None) -> CampaignReport:
    """The report of the campaign in ``db_path`` (complete or not; schema version 1 or 2, read as it is).

    The file is opened read-only; whatever is wrong with it (damaged, locked, edited: see
    :mod:`fault_injection.store`) is a StoreError naming it, and what its contents make impossible to report
    (no results, counts the statistics refuse) a ReportError naming it."""
    from .sites import inventory

    from hwgen.config import AcceleratorConfig

    with CampaignStore.open(db_path, readonly=True) as st:
        info = st.info
        kind_bits: dict[tuple[str, str], int] = {}
        for site in st.sites():
            key = (site.structure, site.kind)
            kind_bits[key] = kind_bits.get(key, 0) + site.bits
        tally = st.tally()
    campaign = info.to_dict()
    campaign["db"] = str(db_path)
    try:
        rep = build_report(campaign, kind_bits, tally, fit_per_bit, watchdog, lifetime_hours=lifetime_hours,
                           method=method)
    except (ReportError, StatsError) as e:
        raise ReportError(f"{db_path}: {e}") from None
    try:
        full = inventory(AcceleratorConfig.from_dict(info.config))
    except HwgenError:  # pragma: no cover - the store validated it: a configuration this hwgen no longer accepts
        full = {}
    covered = {structure for structure, _ in kind_bits}
    left_out = {k: v["bits"] for k, v in full.items() if k not in covered}
    if left_out:
        rep.campaign["structures_not_covered"] = left_out
        rep.limits.insert(0, f"The {info.backend} backend does not inject into "
                             f"{', '.join(f'{k} ({b:,} bits)' for k, b in left_out.items())}: "
                             f"FIT and the metrics cover the other structures only.")
    return rep


# ------------------------------------------------------------------ output
def _pct(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def _fit(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def _fit_line(rep: CampaignReport) -> str:
    m = rep.metrics
    due = 'as detected (a watchdog is declared)' if rep.watchdog else 'as dangerous (no watchdog declared)'
    rates = (f"raw FIT/bit {rep.fit_per_bit:g} (flip-flops and SRAM)" if rep.fit_per_bit is not None else
             f"raw FIT/bit {rep.fit.ff:g} for flip-flops, {rep.fit.mem:g} for SRAM")
    return (f"- {rates}; latent faults accumulate over {m.get('lifetime_hours', DEFAULT_LIFETIME_HOURS):,.0f} h; "
            f"DUE (hang / error flag) counted {due}")


def _metrics_lines(rep: CampaignReport, conf: str) -> list[str]:
    m = rep.metrics
    by = m["asil_by_metric"]
    lines = ["", f"## ISO 26262-5 hardware metrics (one-sided bounds holding together at {conf})", "",
             f"- raw FIT, every bit: {m['total_fit']:.4g} (flip-flops {rep.fit.ff:g} FIT/bit, SRAM "
             f"{rep.fit.mem:g} FIT/bit: placeholders, see fault_injection.stats for the sources)",
             f"- bound: {m['method']} ({m['bounds']} Clopper-Pearson bounds sharing alpha = "
             f"{1 - rep.confidence:.3g}); dual-point term over {m['lifetime_hours']:,.0f} h, second-fault rate "
             f"= all {m['total_fit']:.4g} FIT", "",
             "| metric | point estimate | bound | ASIL B | ASIL C | ASIL D | supports |",
             "|---|---:|---:|---:|---:|---:|---|",
             f"| SPFM = 1 - sum lambda_SPF+RF / sum lambda | {_pct(m['spfm'], 3)} | >= {_pct(m['spfm_lower'], 3)} | "
             + " | ".join(f">= {100 * ASIL_SPFM[a]:g}%" for a in "BCD") + f" | {by['SPFM']} |",
             f"| LFM = 1 - sum lambda_latent / sum (lambda - lambda_SPF+RF) | {_pct(m['lfm'], 3)} | >= "
             f"{_pct(m['lfm_lower'], 3)} | " + " | ".join(f">= {100 * ASIL_LFM[a]:g}%" for a in "BCD")
             + f" | {by['LFM']} |",
             f"| PMHF (FIT) = lambda_SPF+RF + lambda_latent x lambda x T | {m['pmhf_fit']:.4g} | <= "
             f"{m['pmhf_fit_upper']:.4g} | " + " | ".join(f"< {ASIL_PMHF_FIT[a]:g}" for a in "BCD")
             + f" | {by['PMHF']} |", "",
             f"- **supported: ASIL {m['asil']}** at {conf} confidence (point estimates alone: ASIL "
             f"{m['asil_point']}); binding metric {m['binding']}; limiting structure "
             f"{m['limiting_structure'] or '-'}", f"- why: {m['reason']}", "",
             "| structure | lambda (FIT) | n | lambda_SPF+RF | its bound share | lambda_latent | its bound share | "
             "PMHF bound share |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in m["structures"]:
        lines.append(f"| {r['structure']} | {r['raw_fit']:.4g} | {r['n']:,} | {r['dangerous_fit']:.4g} | "
                     f"{r['dangerous_fit_upper']:.4g} | {r['latent_fit']:.4g} | {r['latent_fit_upper']:.4g} | "
                     f"{r['pmhf_fit_upper']:.4g} |")
    return lines


def to_markdown(rep: CampaignReport) -> str:
    c = rep.campaign
    cfg = c["config"]
    conf = f"{100 * rep.confidence:g}%"
    lines = [f"# Fault-injection campaign: {c['workload']} on '{cfg.get('name')}' "
             f"({cfg.get('rows')}x{cfg.get('cols')} {cfg.get('dataflow')})", ""]
    lines += [f"- backend: {c['backend']}; fault models: {', '.join(c['models'])}; seed {c['seed']}",
              f"- injections: {rep.done:,} of {c['planned']:,} planned; golden run {c['golden_cycles']:,} cycles",
              f"- confidence {conf}" + (f", planned margin +-{100 * c['margin']:g}%" if c.get("margin") else ""),
              _fit_line(rep), "", f"**{rep.verdict}.**", "",
              f"## Per structure (AVF intervals: two-sided Clopper-Pearson at {conf})", "",
              "| structure | bits | n | masked | corrected | detected | latent | sdc | due | AVF | AVF interval | "
              "SDC AVF | SDC interval | FIT |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|"]
    for r in rep.structures:
        iv = "-" if r.avf is None else f"[{_pct(r.avf_lo)}, {_pct(r.avf_hi)}]"
        siv = "-" if r.sdc_avf is None else f"[{_pct(r.sdc_lo)}, {_pct(r.sdc_hi)}]"
        lines.append(f"| {r.structure} | {r.bits:,} | {r.n:,} | {r.masked:,} | {r.corrected:,} | {r.detected:,} | "
                     f"{r.latent:,} | {r.sdc:,} | {r.due:,} | {_pct(r.avf)} | {iv} | {_pct(r.sdc_avf)} | {siv} | "
                     f"{_fit(r.fit)} |")
    tot = {k: sum(getattr(r, k) for r in rep.structures)
           for k in ("bits", "n", "masked", "corrected", "detected", "latent", "sdc", "due")}
    lines.append(f"| **total** | {tot['bits']:,} | {tot['n']:,} | {tot['masked']:,} | {tot['corrected']:,} | "
                 f"{tot['detected']:,} | {tot['latent']:,} | {tot['sdc']:,} | {tot['due']:,} | | | | | "
                 f"{_fit(rep.total_fit)} |")
    lines += _metrics_lines(rep, conf)
    sp = rep.spfm
    lines += ["", "## FIT and SPFM alone", "",
              f"- FIT = raw FIT/bit x bits x AVF, summed: **{rep.total_fit:.4g} FIT** (SDC only "
              f"{rep.total_sdc_fit:.4g}; {rep.total_fit_hi:.4g} with the AVF upper bounds; raw {rep.raw_fit:.4g} FIT "
              f"for every bit)",
              f"- dangerous (single-point) FIT: {sp['dangerous_fit']:.4g} (upper bound {sp['dangerous_fit_upper']:.4g} "
              f"at {conf})",
              f"- SPFM by itself, point estimate {_pct(sp['spfm'], 3)}; one-sided lower bound at {conf}: "
              f"{_pct(sp['spfm_lower'], 3)} (pooled Clopper-Pearson; Bonferroni, valid for any allocation: "
              f"{_pct(sp['bonferroni_lower'], 3)}, ASIL {sp['asil_bonferroni']}): a statement on SPFM alone, "
              f"tighter than the joint bound above, which also carries LFM and PMHF",
              f"- verdict of the three metrics together: **ASIL {rep.asil}** at {conf} confidence"
              if rep.asil != "none" else
              f"- verdict of the three metrics together: **none** (no ASIL B target met) at {conf} confidence",
              "", "## Limits", ""]
    lines += [f"- {t}" for t in rep.limits]
    return "\n".join(lines) + "\n"


def to_json(rep: CampaignReport) -> str:
    return json.dumps(rep.to_dict(), indent=2) + "\n"


def chart_png(rep: CampaignReport) -> bytes:
    """A PNG bar chart of AVF and SDC AVF per structure with Clopper-Pearson error bars."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rep.structures if r.n]
    x = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(rows) + 2), 4.5))
    try:
        w = 0.4
        for off, key, label in ((-w / 2, "avf", "AVF (SDC + DUE)"), (w / 2, "sdc_avf", "SDC AVF")):
            vals = [100 * getattr(r, key) for r in rows]
            lo = [100 * (getattr(r, key) - getattr(r, "avf_lo" if key == "avf" else "sdc_lo")) for r in rows]
            hi = [100 * (getattr(r, "avf_hi" if key == "avf" else "sdc_hi") - getattr(r, key)) for r in rows]
            ax.bar([i + off for i in x], vals, w, yerr=[lo, hi], capsize=3, label=label)
        ax.set_xticks(x)
        ax.set_xticklabels([r.structure for r in rows], rotation=40, ha="right")
        ax.set_ylabel("vulnerability (%)")
        ax.set_title(f"{rep.campaign['workload']}: AVF per structure, {100 * rep.confidence:g}% Clopper-Pearson "
                     f"intervals (n = {rep.done:,})", fontsize=10)
        ax.legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
    finally:
        plt.close(fig)
    return buf.getvalue()


def write_outputs(rep: CampaignReport, md: str | os.PathLike[str] | None = None,
                  json_path: str | os.PathLike[str] | None = None, png: str | os.PathLike[str] | None = None,
                  *, force: bool = False) -> None:
    """Write the requested outputs together or not at all (hwgen.outputs: existing files only with ``force``;
    ``-`` is standard output, for the Markdown or the JSON)."""
    from hwgen.outputs import OutputError, Outputs

    outs = Outputs(force=force, command="fi report")
    with outs:
        keys = [(outs.file(path), make) for path, make in ((md, to_markdown), (json_path, to_json)) if path]
        if png:
            if str(png) == "-":
                raise OutputError("--png cannot go to standard output; give a file name")
            keys.append((outs.file(png), None))
        for key, make in keys:
            outs.put(key, make(rep).encode() if make is not None else chart_png(rep))
        outs.commit()

