//! MIMIC-III import at the scale of the full database: a generated
//! PRESCRIPTIONS table of 4.2 million rows (about 735 MB, the full table's
//! size) with ADMISSIONS, PATIENTS, DIAGNOSES_ICD and PROCEDURES_ICD to
//! match (58,976 admissions). Reports rows per second and peak memory
//! against the targets: at least 1 million rows per second, under 1 GiB.
//!
//! Run: `cargo bench -p rxalign-data --bench mimic_import`. The tables are
//! generated once into cargo's target folder and reused.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::Rng as _;
use rxalign_core::seeded_rng;
use rxalign_data::mimic::{MimicOptions, MimicSources, import_mimic3};

const PATIENTS: u64 = 46_520;
const ADMISSIONS: u64 = 58_976;
const PRESCRIPTIONS: u64 = 4_156_450;
const DRUG_NAMES: [&str; 6] = [
    "Potassium Chloride",
    "Furosemide",
    "Insulin",
    "Heparin",
    "Metoprolol Tartrate",
    "Acetaminophen",
];

fn generate(dir: &Path) -> std::io::Result<()> {
    let mut rng = seeded_rng(0, "mimic-bench");
    let file =
        |name: &str| std::fs::File::create(dir.join(name)).map(|f| BufWriter::with_capacity(1 << 20, f));
    let mut w = file("PATIENTS.csv")?;
    writeln!(w, "ROW_ID,SUBJECT_ID,GENDER,DOB,DOD,DOD_HOSP,DOD_SSN,EXPIRE_FLAG")?;
    for s in 0..PATIENTS {
        writeln!(
            w,
            "{s},{},{},2080-01-01 00:00:00,,,,0",
            10_000 + s,
            if s % 2 == 0 { "F" } else { "M" }
        )?;
    }
    w.flush()?;
    let subject = |h: u64| 10_000 + h % PATIENTS;
    let mut w = file("ADMISSIONS.csv")?;
    writeln!(w, "ROW_ID,SUBJECT_ID,HADM_ID,ADMITTIME,DISCHTIME,ADMISSION_TYPE")?;
    for h in 0..ADMISSIONS {
        writeln!(
            w,
            "{h},{},{},2150-{:02}-{:02} 10:00:00,,EMERGENCY",
            subject(h),
            100_000 + h,
            1 + h % 12,
            1 + h % 28
        )?;
    }
    w.flush()?;
    for (name, per, codes) in [
        ("DIAGNOSES_ICD.csv", 11, 6_984u64),
        ("PROCEDURES_ICD.csv", 4, 2_009),
    ] {
        let mut w = file(name)?;
        writeln!(w, "ROW_ID,SUBJECT_ID,HADM_ID,SEQ_NUM,ICD9_CODE")?;
        for h in 0..ADMISSIONS {
            for k in 0..per {
                writeln!(
                    w,
                    "0,{},{},{},{}",
                    subject(h),
                    100_000 + h,
                    k + 1,
                    1000 + rng.random_range(0..codes)
                )?;
            }
        }
        w.flush()?;
    }
    let mut w = file("PRESCRIPTIONS.csv")?;
    writeln!(
        w,
        "ROW_ID,SUBJECT_ID,HADM_ID,ICUSTAY_ID,STARTDATE,ENDDATE,DRUG_TYPE,DRUG,DRUG_NAME_POE,DRUG_NAME_GENERIC,\
         FORMULARY_DRUG_CD,GSN,NDC,PROD_STRENGTH,DOSE_VAL_RX,DOSE_UNIT_RX,FORM_VAL_DISP,FORM_UNIT_DISP,ROUTE"
    )?;
    for r in 0..PRESCRIPTIONS {
        let h = rng.random_range(0..ADMISSIONS);
        let drug = DRUG_NAMES[(r % 6) as usize];
        // 15% of rows have no NDC, 10% an unmapped one.
        let ndc: u64 = match rng.random_range(0..20) {
            0..3 => 0,
            3..5 => 90_000_000_000 + rng.random_range(0..500),
            _ => 10_000_000 + rng.random_range(0..2_000),
        };
        writeln!(
            w,
            "{r},{},{},2{:05},2150-03-01 00:00:00,2150-03-04 00:00:00,MAIN,{drug},{drug},{drug},KCL20PM,001275,{ndc:011},20mEq Packet,20,mEq,1,PKT,PO",
            subject(h),
            100_000 + h,
            h % 100_000
        )?;
    }
    w.flush()?;
    let mut w = file("ndc_map.csv")?;
    writeln!(w, "ndc11,atc3")?;
    for n in 0..2_000u64 {
        writeln!(
            w,
            "{:011},A{:02}{}",
            10_000_000 + n,
            n % 100,
            ['A', 'B', 'C'][(n % 3) as usize]
        )?;
    }
    w.flush()
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`)
    // does not, and only checks that this compiles.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mimic-scale");
    let marker = dir.join("complete");
    if !marker.is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        let t = Instant::now();
        generate(&dir).unwrap();
        std::fs::write(&marker, "").unwrap();
        println!("generated the tables in {:.1} s", t.elapsed().as_secs_f64());
    }
    let bytes = std::fs::metadata(dir.join("PRESCRIPTIONS.csv")).unwrap().len();
    // Peak memory from here on: generation is excluded where the kernel
    // lets a process reset its peak (Linux `clear_refs`).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let out = dir.join("dataset");
    let sources = MimicSources {
        ndc_map: dir.join("ndc_map.csv"),
        ddi: None,
        atc_names: None,
        icd9_titles: None,
        notes: None,
    };
    let t = Instant::now();
    let (_, report) = import_mimic3(&dir, &sources, &MimicOptions::default(), &out).unwrap();
    let seconds = t.elapsed().as_secs_f64();
    let rows: u64 = report.tables.values().map(|t| t.rows_read).sum();
    let prescriptions = report.tables["PRESCRIPTIONS"].rows_read;
    let rate = rows as f64 / seconds;
    let peak = peak_mib().unwrap_or(f64::NAN);
    println!(
        "PRESCRIPTIONS: {prescriptions} rows, {:.0} MB",
        bytes as f64 / 1e6
    );
    println!(
        "all tables: {rows} rows in {seconds:.2} s = {:.2} million rows/s (target >= 1)",
        rate / 1e6
    );
    println!(
        "peak memory: {peak:.0} MiB{} (target < 1024)",
        if reset {
            ""
        } else {
            " (including the generation; clear_refs unavailable)"
        }
    );
    println!(
        "visits written: {} of {} admissions",
        report.visits, report.admissions
    );
    println!(
        "{}",
        if rate >= 1e6 && peak < 1024.0 {
            "targets met"
        } else {
            "TARGETS MISSED"
        }
    );
}
