"""Campaign reports: outcomes, AVF, FIT and SPFM per structure, as Markdown, JSON and a PNG chart.

From a campaign database (:mod:`fault_injection.store`):

* per structure: state bits, injections, masked / sdc / due counts;
* AVF (vulnerability) = (sdc + due) / n, and the SDC-only AVF = sdc / n, each with
  a two-sided Clopper-Pearson interval at the campaign's confidence;
* FIT per structure = raw FIT/bit x bits x AVF, and the total (point estimates;
  the JSON also gives the FIT from the AVF upper bounds);
* ISO 26262-5 single-point fault metric: masked -> safe; SDC (no safety
  mechanism) -> single-point; DUE (error flag or hang) -> dangerous unless a
  watchdog is declared (``watchdog=True``: then detected, covered). SPFM =
  1 - dangerous FIT / total FIT with a one-sided lower bound at the campaign's
  confidence (:func:`fault_injection.stats.spfm`, ``pooled`` method: valid
  because :func:`fault_injection.sampling.plan_faults` allocates injections in
  proportion to bits, a self-weighting sample under one FIT/bit; the
  Bonferroni bound, valid for any allocation, is given too), and the ASIL that
  bound supports (B >= 90 %, C >= 97 %, D >= 99 %) "at C % confidence", or "none".

``DEFAULT_FIT_PER_BIT`` = 1e-4 FIT/bit (100 FIT/Mbit): the order of magnitude of
terrestrial (sea-level, JESD89A reference flux) soft-error rates of SRAM cells and
flip-flops in recent bulk CMOS nodes. It is a placeholder: use the technology's
data (``fit_per_bit``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass


from hwgen.errors import HwgenError

from .faults import STRUCTURES
from .stats import StatsError
from .store import CampaignStore

__all__ = ["ReportError", "DEFAULT_FIT_PER_BIT", "StructureReport", "CampaignReport", "campaign_report",
           "build_report", "to_markdown", "to_json", "chart_png", "write_outputs"]

DEFAULT_FIT_PER_BIT = 1e-4

LIMITS = [
    "Single-bit flip (SEU) models have under-estimated error rates against beam tests (up to several times); "
    "multi-bit upsets in memories belong in the fault models (--models seu,mbu).",
    "The raw FIT/bit is one value for every bit (flip-flops and SRAM alike); replace it with technology data.",
    "The latent-fault metric (LFM) and PMHF are not computed: they need the safety mechanisms' multiple-point "
    "analysis.",
    "AVF and SPFM hold for this workload and configuration; other workloads mask differently.",
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


@dataclass
class CampaignReport:
    campaign: dict
    done: int
    fit_per_bit: float
    watchdog: bool
    structures: list[StructureReport]
    total_fit: float
    total_fit_hi: float
    total_sdc_fit: float
    raw_fit: float
    spfm: dict                 #: stats.SpfmResult.to_dict() (pooled) plus "bonferroni_lower", "asil_bonferroni"
    asil: str                  #: "D" / "C" / "B" / "none"
    verdict: str
    limits: list[str]

    @property
    def confidence(self) -> float:
        return float(self.campaign["confidence"])

    def to_dict(self) -> dict:
        return {"campaign": self.campaign, "done": self.done, "fit_per_bit": self.fit_per_bit,
                "watchdog": self.watchdog, "structures": [asdict(s) for s in self.structures],
                "total_fit": self.total_fit, "total_fit_upper": self.total_fit_hi, "total_sdc_fit": self.total_sdc_fit,
                "raw_fit": self.raw_fit, "spfm": self.spfm, "asil": self.asil, "verdict": self.verdict,
                "limits": self.limits}


def build_report(campaign: dict, bits: dict[str, int], counts: dict[str, dict[str, int]],
                 fit_per_bit: float = DEFAULT_FIT_PER_BIT, watchdog: bool = False) -> CampaignReport:
    """The report from campaign parameters (needs "confidence"), bits per structure and outcome counts per
    structure ({"masked", "sdc", "due"}). Pure: no database (the tests use it on synthetic tables)."""
    from .stats import clopper_pearson, spfm

    if isinstance(fit_per_bit, bool) or not isinstance(fit_per_bit, (int, float)) \
            or not 0 < fit_per_bit < math.inf:
        raise ReportError(f"FIT per bit must be a positive finite number, got {fit_per_bit!r:.60}")
    conf = float(campaign["confidence"])
    done = sum(sum(c.get(o, 0) for o in ("masked", "sdc", "due")) for c in counts.values())
    if done == 0:
        raise ReportError("the campaign has no results yet")
    order = [s for s in STRUCTURES if s in bits or s in counts] + sorted((set(bits) | set(counts)) - set(STRUCTURES))
    rows: list[StructureReport] = []
    spfm_in: dict[str, dict[str, int]] = {}
    for s in order:
        c = counts.get(s, {})
        masked, sdc, due = (int(c.get(o, 0)) for o in ("masked", "sdc", "due"))
        n = masked + sdc + due
        b = int(bits.get(s, 0))
        if n:
            avf = (sdc + due) / n
            lo, hi = clopper_pearson(sdc + due, n, conf)
            slo, shi = clopper_pearson(sdc, n, conf)
            raw = fit_per_bit * b
            rows.append(StructureReport(s, STRUCTURES.get(s, ""), b, n, masked, sdc, due, avf, lo, hi, sdc / n, slo,
                                        shi, raw * avf, raw * hi, raw * sdc / n))
        else:
            rows.append(StructureReport(s, STRUCTURES.get(s, ""), b, 0, 0, 0, 0, *([None] * 9)))
        if b:
            spfm_in[s] = {"bits": b, "n": n, "dangerous": sdc + (0 if watchdog else due)}
    pooled = spfm(spfm_in, fit_per_bit, conf, method="pooled")
    bonf = spfm(spfm_in, fit_per_bit, conf, method="bonferroni")
    sp = pooled.to_dict()
    sp["bonferroni_lower"] = bonf.spfm_lower
    sp["asil_bonferroni"] = bonf.asil or "none"
    asil = pooled.asil or "none"
    pct = f"{100 * conf:g}%"
    if asil == "none":
        verdict = (f"SPFM >= {100 * pooled.spfm_lower:.2f}% at {pct} confidence (point estimate "
                   f"{100 * pooled.spfm:.2f}%): supports no ASIL (ASIL B needs 90%)")
    else:
        verdict = (f"SPFM >= {100 * pooled.spfm_lower:.2f}% at {pct} confidence (point estimate "
                   f"{100 * pooled.spfm:.2f}%): supports ASIL {asil} at {pct} confidence")
    total = sum(r.fit or 0.0 for r in rows)
    total_hi = sum(r.fit_hi if r.fit_hi is not None else fit_per_bit * r.bits for r in rows)
    limits = list(LIMITS)
    if any(r.bits and not r.n for r in rows):
        limits.append("Structures without injections count as fully vulnerable in the upper FIT and the "
                      "Bonferroni bound, and as 0 in the point estimates.")
    planned = int(campaign.get("planned", done))
    if done < planned:
        limits.insert(0, f"Partial campaign: {done} of {planned} planned injections have results.")
    return CampaignReport(dict(campaign), done, float(fit_per_bit), bool(watchdog), rows, total, total_hi,
                          sum(r.sdc_fit or 0.0 for r in rows), sum(fit_per_bit * r.bits for r in rows), sp, asil,
                          verdict, limits)


def campaign_report(db_path: str | os.PathLike[str], fit_per_bit: float = DEFAULT_FIT_PER_BIT,
                    watchdog: bool = False) -> CampaignReport:
    """The report of the campaign in ``db_path`` (complete or not).

    The file is opened read-only; whatever is wrong with it (damaged, locked, edited: see
    :mod:`fault_injection.store`) is a StoreError naming it, and what its contents make impossible to report
    (no results, counts the statistics refuse) a ReportError naming it."""
    from .sites import inventory

    from hwgen.config import AcceleratorConfig

    with CampaignStore.open(db_path, readonly=True) as st:
        info = st.info
        bits = {k: v["bits"] for k, v in inventory(sites=st.sites()).items()}
        counts = st.counts()
    campaign = info.to_dict()
    campaign["db"] = str(db_path)
    try:
        rep = build_report(campaign, bits, counts, fit_per_bit, watchdog)
    except (ReportError, StatsError) as e:
        raise ReportError(f"{db_path}: {e}") from None
    try:
        full = inventory(AcceleratorConfig.from_dict(info.config))
    except HwgenError:  # pragma: no cover - the store validated it: a configuration this hwgen no longer accepts
        full = {}
    left_out = {k: v["bits"] for k, v in full.items() if k not in bits}
    if left_out:
        rep.campaign["structures_not_covered"] = left_out
        rep.limits.insert(0, f"The {info.backend} backend does not inject into "
                             f"{', '.join(f'{k} ({b:,} bits)' for k, b in left_out.items())}: "
                             f"FIT and SPFM cover the other structures only.")
    return rep


# ------------------------------------------------------------------ output
def _pct(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def _fit(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def to_markdown(rep: CampaignReport) -> str:
    c = rep.campaign
    cfg = c["config"]
    conf = f"{100 * rep.confidence:g}%"
    lines = [f"# Fault-injection campaign: {c['workload']} on '{cfg.get('name')}' "
             f"({cfg.get('rows')}x{cfg.get('cols')} {cfg.get('dataflow')})", ""]
    lines += [f"- backend: {c['backend']}; fault models: {', '.join(c['models'])}; seed {c['seed']}",
              f"- injections: {rep.done:,} of {c['planned']:,} planned; golden run {c['golden_cycles']:,} cycles",
              f"- confidence {conf}" + (f", planned margin +-{100 * c['margin']:g}%" if c.get("margin") else ""),
              f"- raw FIT/bit {rep.fit_per_bit:g}; DUE (hang / error flag) counted "
              f"{'as detected (a watchdog is declared)' if rep.watchdog else 'as dangerous (no watchdog declared)'}",
              "", f"**{rep.verdict}.**", "",
              f"## Per structure (AVF intervals: two-sided Clopper-Pearson at {conf})", "",
              "| structure | bits | n | masked | sdc | due | AVF | AVF interval | SDC AVF | SDC interval | FIT |",
              "|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|"]
    for r in rep.structures:
        iv = "-" if r.avf is None else f"[{_pct(r.avf_lo)}, {_pct(r.avf_hi)}]"
        siv = "-" if r.sdc_avf is None else f"[{_pct(r.sdc_lo)}, {_pct(r.sdc_hi)}]"
        lines.append(f"| {r.structure} | {r.bits:,} | {r.n:,} | {r.masked:,} | {r.sdc:,} | {r.due:,} | "
                     f"{_pct(r.avf)} | {iv} | {_pct(r.sdc_avf)} | {siv} | {_fit(r.fit)} |")
    n = sum(r.n for r in rep.structures)
    lines.append(f"| **total** | {sum(r.bits for r in rep.structures):,} | {n:,} | "
                 f"{sum(r.masked for r in rep.structures):,} | {sum(r.sdc for r in rep.structures):,} | "
                 f"{sum(r.due for r in rep.structures):,} | | | | | {_fit(rep.total_fit)} |")
    sp = rep.spfm
    lines += ["", "## FIT and SPFM (ISO 26262-5)", "",
              f"- FIT = raw FIT/bit x bits x AVF, summed: **{rep.total_fit:.4g} FIT** (SDC only "
              f"{rep.total_sdc_fit:.4g}; {rep.total_fit_hi:.4g} with the AVF upper bounds; raw {rep.raw_fit:.4g} FIT "
              f"for every bit)",
              f"- dangerous (single-point) FIT: {sp['dangerous_fit']:.4g} (upper bound {sp['dangerous_fit_upper']:.4g} "
              f"at {conf})",
              f"- SPFM point estimate {_pct(sp['spfm'], 3)}; one-sided lower bound at {conf}: "
              f"**{_pct(sp['spfm_lower'], 3)}** (pooled Clopper-Pearson; Bonferroni, valid for any allocation: "
              f"{_pct(sp['bonferroni_lower'], 3)}, ASIL {sp['asil_bonferroni']})",
              f"- targets: ASIL B >= 90%, C >= 97%, D >= 99% -> **ASIL {rep.asil}** at {conf} confidence"
              if rep.asil != "none" else
              f"- targets: ASIL B >= 90%, C >= 97%, D >= 99% -> **none** at {conf} confidence",
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

