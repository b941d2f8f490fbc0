//! `rxalign data`: make and describe datasets.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use rxalign_core::metrics::MetricReport;
use rxalign_core::structure::{MIN_DRUG_COUNT, STRONG_PHI, Structure};
use rxalign_core::{Cohort, Predictions, SplitName};
use rxalign_data::mimic::{IMPORT_REPORT, MimicOptions, MimicSources, import_mimic3, import_mimic4};
use rxalign_data::synthetic::Preset;
use rxalign_data::synthetic::REFERENCES;
use rxalign_data::{SyntheticClinic, SyntheticConfig};
use rxalign_env::baseline;
use serde_json::{Value, json};

use super::{GROUND_TRUTH, SplitArgs, load_folder, truth_report};
use crate::output::{out, outln, warnln};
use crate::table;

/// Datasets are folders: `visits.jsonl` (one visit per line: patient_id,
/// visit_id, optional time/age/sex, diagnoses, procedures, optional note,
/// drugs), `drugs.csv` (code,name), optional `diagnoses.csv`,
/// `procedures.csv` (code,name) and `ddi.csv` (code_a,code_b).
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate the synthetic clinic as a dataset folder.
    Synth(SynthArgs),
    /// Describe a dataset: sizes, the ground truth's list sizes and DDI
    /// rates, and where references and baselines land on its test split.
    Stats(StatsArgs),
    /// Import MIMIC-III (ADMISSIONS, PATIENTS, DIAGNOSES_ICD, PROCEDURES_ICD,
    /// PRESCRIPTIONS, NOTEEVENTS where present; .csv or .csv.gz).
    Mimic3(MimicArgs),
    /// Import MIMIC-IV (hosp: admissions, patients, diagnoses_icd,
    /// procedures_icd, prescriptions; notes from MIMIC-IV-Note's discharge).
    Mimic4(Mimic4Args),
}

#[derive(Debug, Args)]
pub struct MimicArgs {
    /// The folder of the raw tables.
    #[arg(long)]
    root: PathBuf,
    /// The dataset folder to write (with import-report.json).
    #[arg(long)]
    out: PathBuf,
    /// NDC to drug code, CSV with a header: `ndc11,atc3` for ATC level 3
    /// (GAMENet, SafeDrug, MoleRec: ndc2atc3_molerec.csv), or NDC to DrugBank
    /// id for FLAME's coding; an optional third column names the drug.
    #[arg(long)]
    ndc_map: PathBuf,
    /// DDI edge list over the drug codes (`code_a,code_b`, for example
    /// GAMENet's TWOSIDES-derived ATC-3 graph), carried into the dataset.
    #[arg(long)]
    ddi: Option<PathBuf>,
    /// WHO ATC index (`atc_code,atc_name,...`) to name ATC codes.
    #[arg(long)]
    atc_names: Option<PathBuf>,
    /// Folder of CMS ICD-9-CM title files (`*_LONG_DX.txt`, `*_LONG_SG.txt`)
    /// naming codes that MIMIC's own D_ICD tables leave unnamed.
    #[arg(long)]
    icd9_titles: Option<PathBuf>,
    /// Patients with fewer visits are dropped (GAMENet and SafeDrug: 2).
    #[arg(long, default_value_t = MimicOptions::default().min_visits)]
    min_visits: usize,
    /// Keep the N most frequent drug codes (SafeDrug: 300); 0 for no limit.
    #[arg(long, default_value_t = MimicOptions::default().top_drugs)]
    top_drugs: usize,
    /// Drop diagnosis and procedure codes seen in fewer visits; 1 for no
    /// filter.
    #[arg(long, default_value_t = MimicOptions::default().min_code_count)]
    min_code_count: usize,
    /// Prescription drug types to keep, comma-separated (MAIN, BASE,
    /// ADDITIVE); all when not given.
    #[arg(long, value_delimiter = ',')]
    drug_types: Vec<String>,
    /// Drop visits without a discharge summary.
    #[arg(long)]
    require_note: bool,
    /// Write into OUT even when it is not empty (its dataset files are
    /// replaced; refused otherwise).
    #[arg(long)]
    overwrite: bool,
}

#[derive(Debug, Args)]
pub struct Mimic4Args {
    #[command(flatten)]
    common: MimicArgs,
    /// The folder of MIMIC-IV-Note's discharge.csv(.gz) (default: ROOT/note).
    #[arg(long)]
    notes: Option<PathBuf>,
    /// Keep only patients of these anchor_year_groups, comma-separated (for
    /// example "2017 - 2019"): build one dataset from earlier years and one
    /// from later years for temporal validation.
    #[arg(long, value_delimiter = ',')]
    anchor_year_groups: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// The world: `clinic` (the quickstart's) or `icu` (intensive-care
    /// stays in the papers' regime, with exact posteriors).
    #[arg(long, default_value = "clinic")]
    preset: Preset,
    /// Number of patients.
    #[arg(long, default_value_t = SyntheticConfig::default().patients)]
    patients: usize,
    /// The seed: the same seed and settings write the same bytes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Probability that each prescribed drug is dropped from, and a wrong
    /// drug added to, the ground truth.
    #[arg(long, default_value_t = SyntheticConfig::default().noise)]
    noise: f64,
    /// Probability that a note reveals each fact the codes do not
    /// (allergies, home medications, severity).
    #[arg(long, default_value_t = SyntheticConfig::default().note_reveal)]
    note_reveal: f64,
    /// Fewest visits per patient.
    #[arg(long, default_value_t = SyntheticConfig::default().visits_min)]
    visits_min: usize,
    /// Most visits per patient.
    #[arg(long, default_value_t = SyntheticConfig::default().visits_max)]
    visits_max: usize,
    /// Probability that a condition is severe at a visit.
    #[arg(long, default_value_t = SyntheticConfig::default().severe_rate)]
    severe_rate: f64,
    /// Write into OUT even when it is not empty (its dataset files are
    /// replaced; refused otherwise).
    #[arg(long)]
    overwrite: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The dataset folder.
    dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also describe the co-prescription structure averaged over disjoint
    /// blocks of this many consecutive visits: phi's quantiles depend on
    /// the number of visits (its noise alone is about 1/sqrt(visits)), so
    /// compare two datasets at the same size (the MIMIC-III demo: 107).
    #[arg(long)]
    block: Option<usize>,
    #[command(flatten)]
    split: SplitArgs,
}

pub fn run(command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Synth(a) => synth(&a),
        DataCommand::Stats(a) => stats(&a),
        DataCommand::Mimic3(a) => import(&a, None),
        DataCommand::Mimic4(a) => import(&a.common, Some(&a)),
    }
}

fn import(a: &MimicArgs, v4: Option<&Mimic4Args>) -> anyhow::Result<()> {
    super::refuse_non_empty(&a.out, a.overwrite, "the dataset files")?;
    let options = MimicOptions {
        min_visits: a.min_visits,
        top_drugs: a.top_drugs,
        min_code_count: a.min_code_count,
        drug_types: a.drug_types.clone(),
        require_note: a.require_note,
        anchor_year_groups: v4.map(|v| v.anchor_year_groups.clone()).unwrap_or_default(),
    };
    let sources = MimicSources {
        ndc_map: a.ndc_map.clone(),
        ddi: a.ddi.clone(),
        atc_names: a.atc_names.clone(),
        icd9_titles: a.icd9_titles.clone(),
        notes: v4.and_then(|v| v.notes.clone()),
    };
    let (cohort, report) = match v4 {
        None => import_mimic3(&a.root, &sources, &options, &a.out),
        Some(_) => import_mimic4(&a.root, &sources, &options, &a.out),
    }
    .with_context(|| format!("importing {}", a.root.display()))?;
    outln!(
        "{}: {} admissions -> {} visits of {} patients, written to {}",
        report.source,
        report.admissions,
        report.visits,
        report.patients,
        a.out.display()
    );
    for (reason, n) in &report.visits_dropped {
        outln!("  dropped {n} visits: {}", &reason[2..]);
    }
    if let Some(p) = report
        .tables
        .get("PRESCRIPTIONS")
        .or_else(|| report.tables.get("prescriptions"))
    {
        outln!(
            "  prescription rows: {} read; dropped: {:?}",
            p.rows_read,
            p.rows_dropped
        );
    }
    outln!(
        "  {} distinct NDCs not in the map; notes: {} discharge summaries, {} visits with a note",
        report.unmapped_ndcs.len(),
        report.notes_discharge_summaries,
        report.visits_with_note
    );
    outln!("  full report: {}", a.out.join(IMPORT_REPORT).display());
    if let Some(w) = cohort.ddi.warning() {
        warnln!("warning: {w}");
    }
    Ok(())
}

fn synth(a: &SynthArgs) -> anyhow::Result<()> {
    super::refuse_non_empty(&a.out, a.overwrite, "the dataset files")?;
    let config = SyntheticConfig {
        preset: a.preset,
        patients: a.patients,
        seed: a.seed,
        noise: a.noise,
        note_reveal: a.note_reveal,
        visits_min: a.visits_min,
        visits_max: a.visits_max,
        severe_rate: a.severe_rate,
        ..SyntheticConfig::default()
    };
    let clinic = SyntheticClinic::generate(&config)?;
    clinic
        .write(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let all: Vec<usize> = (0..clinic.cohort.visits.len()).collect();
    let ceiling = clinic.score(clinic.ceiling(), &all);
    let knobs = match a.preset {
        Preset::Clinic => format!("noise {}, note_reveal {}", a.noise, a.note_reveal),
        Preset::Icu => "preset icu: rates from assets/clinic/icu.ron".to_string(),
    };
    outln!(
        "wrote {} visits of {} patients to {} (seed {}, {knobs})",
        clinic.cohort.visits.len(),
        clinic.cohort.patient_count(),
        a.out.display(),
        a.seed,
    );
    let what = match a.preset {
        Preset::Clinic => "noise-free clinician rule against the noisy ground truth",
        Preset::Icu => "each slot likely under the true latent state",
    };
    outln!(
        "ceiling ({what}, all visits): jaccard {:.4} (per-visit mean)",
        ceiling.get("jaccard").unwrap_or(0.0)
    );
    Ok(())
}

/// References (when the folder has them) and baselines on the test split.
fn method_rows(
    dir: &Path,
    cohort: &Cohort,
    split: &SplitArgs,
) -> anyhow::Result<Vec<(String, MetricReport)>> {
    let s = split.split(cohort)?;
    let test: std::collections::HashSet<usize> = s.test.iter().copied().collect();
    let mut rows = vec![(GROUND_TRUTH.to_string(), truth_report(cohort, &s.test))];
    for (name, file) in REFERENCES {
        let path = dir.join(file);
        if path.is_file() {
            let p = Predictions::read(&path, cohort)?;
            rows.push((name.to_string(), p.evaluate(cohort, |i| test.contains(&i))));
        }
    }
    let registry = baseline::registry();
    for kind in baseline::BUILTIN {
        let mut r = registry.build(kind, &Value::Null, &())?;
        r.fit(cohort, &s.train);
        rows.push((
            kind.to_string(),
            baseline::predict(r.as_ref(), cohort, &s.test).evaluate(cohort, |_| true),
        ));
    }
    Ok(rows)
}

fn stats(a: &StatsArgs) -> anyhow::Result<()> {
    let cohort = load_folder(&a.dir)?;
    let all: Vec<usize> = (0..cohort.visits.len()).collect();
    let truth = truth_report(&cohort, &all);
    let rows = method_rows(&a.dir, &cohort, &a.split)?;
    let s = a.split.split(&cohort)?;
    let split_record = rxalign_core::run::SplitRecord::of(&cohort, &s);
    let ddi = cohort.ddi.source();
    let mean = truth.get("med_count").unwrap_or(0.0);
    let structure = Structure::of(&cohort, &all);
    let blocks = a.block.map(|n| Structure::of_blocks(&cohort, n)).transpose()?;
    if a.json {
        let methods: serde_json::Map<String, Value> =
            rows.iter().map(|(n, r)| (n.clone(), r.to_json())).collect();
        let out = json!({
            "dataset": a.dir.display().to_string(),
            "visits": cohort.visits.len(),
            "patients": cohort.patient_count(),
            "drugs": cohort.drugs.len(),
            "diagnoses": cohort.diagnoses.len(),
            "procedures": cohort.procedures.len(),
            "mean_drugs_per_visit": mean,
            "ddi_rate": truth.get("ddi_rate"),
            "ddi_rate_pooled": truth.get("ddi_rate_pooled"),
            "ground_truth_scope": "all visits",
            "structure": structure,
            "structure_in_blocks": blocks,
            "structure_definitions": {
                "list_size_std": "sample standard deviation of drugs per visit",
                "phi": format!("Pearson correlation of two drugs' presence over visits, for drugs seen in at least {MIN_DRUG_COUNT} visits (and not in every visit); quantiles interpolate linearly between ranks"),
                "strongly_coupled_share": format!("share of those pairs with phi > {STRONG_PHI}"),
            },
            "ddi_graph": {
                "edges": cohort.ddi.edge_count(),
                "origin": ddi.origin,
                "sha256": ddi.sha256,
                "edges_outside_vocab": ddi.edges_outside_vocab,
                "warning": cohort.ddi.warning(),
            },
            "split": {
                "seed": a.split.split_seed,
                "train_visits": s.train.len(),
                "val_visits": s.val.len(),
                "test_visits": s.test.len(),
                "train_share": split_record.train,
                "val_share": split_record.val,
                "fingerprint": split_record.fingerprint,
                "parts": split_record.parts,
                "warnings": split_record.warnings(),
            },
            "methods_on": SplitName::Test.to_string(),
            "methods": methods,
            "definitions": rxalign_core::metrics::definitions()
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect::<serde_json::Map<_, _>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    outln!("dataset       {}", a.dir.display());
    outln!("visits        {}", cohort.visits.len());
    outln!("patients      {}", cohort.patient_count());
    outln!("drugs         {}", cohort.drugs.len());
    outln!("diagnoses     {}", cohort.diagnoses.len());
    outln!("procedures    {}", cohort.procedures.len());
    outln!(
        "DDI graph     {} interacting pairs from {}",
        cohort.ddi.edge_count(),
        ddi.origin
    );
    if let Some(w) = cohort.ddi.warning() {
        warnln!("warning: {w}");
    }
    if ddi.edges_outside_vocab > 0 {
        outln!(
            "              ({} listed pairs name drugs outside drugs.csv and are left out)",
            ddi.edges_outside_vocab
        );
    }
    outln!("\nground truth, all visits:");
    outln!(
        "  drugs per visit       {mean:.4} ± {:.4}  (mean ± sample std)",
        structure.list_size_std
    );
    outln!(
        "  ddi_rate              {:.4}  (per-visit: interacting pairs / all pairs, averaged over visits)",
        truth.get("ddi_rate").unwrap_or(0.0)
    );
    outln!(
        "  ddi_rate_pooled       {:.4}  (pooled: interacting pairs / all pairs over all visits, SafeDrug/PyHealth)",
        truth.get("ddi_rate_pooled").unwrap_or(0.0)
    );
    let opt = |x: Option<f64>| x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"));
    outln!(
        "\nco-prescription, all visits ({} drugs seen in at least {MIN_DRUG_COUNT} visits, {} pairs; phi: correlation of two drugs' presence):",
        structure.drugs_counted,
        structure.pairs
    );
    outln!(
        "  phi median {}  90th pct {}  99th pct {}",
        opt(structure.phi_median),
        opt(structure.phi_p90),
        opt(structure.phi_p99)
    );
    outln!(
        "  strongly coupled pairs (phi > {STRONG_PHI})  {}",
        structure
            .strongly_coupled_share
            .map_or_else(|| "n/a".to_string(), |s| format!("{:.1}%", 100.0 * s))
    );
    if let Some(b) = &blocks {
        outln!(
            "  in {} blocks of {} visits (mean over blocks): drugs per visit {:.4} ± {:.4}; phi median {}  90th pct {}  99th pct {}; strongly coupled {}",
            b.blocks,
            b.block,
            b.mean.list_size_mean,
            b.mean.list_size_std,
            opt(b.mean.phi_median),
            opt(b.mean.phi_p90),
            opt(b.mean.phi_p99),
            b.mean
                .strongly_coupled_share
                .map_or_else(|| "n/a".to_string(), |s| format!("{:.1}%", 100.0 * s))
        );
    }
    outln!(
        "\nsplit by patient ({}; fingerprint {}: SHA-256 of each part's sorted patient ids):",
        a.split.describe(),
        split_record.short_fingerprint()
    );
    for part in &split_record.parts {
        outln!("  {}", part.describe());
    }
    for warning in split_record.warnings() {
        warnln!("warning: {warning}");
    }
    outln!(
        "\nmethods on the test split ({} visits; {}; baselines fit on the {} train visits):\n",
        s.test.len(),
        a.split.describe(),
        s.train.len()
    );
    out!("{}", table::render(&rows));
    Ok(())
}
