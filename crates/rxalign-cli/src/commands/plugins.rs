//! `rxalign plugins`: every plugin kind the command knows, per slot of the
//! experiment file, with its fields, their types, defaults and
//! documentation, read from the schemas files are checked against.

use clap::Args;
use rxalign_experiment::Plugins;
use rxalign_experiment::catalog::{KindListing, SlotListing, ron_text};

use crate::output::{out, outln};

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Only the kinds of this name (`sft`), or of this slot (`stage`,
    /// `reward term`).
    name: Option<String>,
    /// Print JSON: per slot, each kind with its fields and the JSON Schema
    /// of its parameters.
    #[arg(long)]
    json: bool,
}

pub fn run(a: &PluginsArgs, plugins: &Plugins) -> anyhow::Result<()> {
    let mut catalog = plugins.catalog();
    if let Some(name) = &a.name {
        for slot in &mut catalog {
            if slot.slot != name {
                slot.kinds.retain(|k| &k.kind == name);
            }
        }
        catalog.retain(|s| !s.kinds.is_empty());
        anyhow::ensure!(
            !catalog.is_empty(),
            "no plugin kind or slot `{name}`; known slots: {}",
            plugins
                .catalog()
                .iter()
                .map(|s| s.slot)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&catalog)?);
        return Ok(());
    }
    out!("{}", render(&catalog));
    Ok(())
}

/// The catalog as text: a block per slot, a paragraph per kind.
fn render(catalog: &[SlotListing]) -> String {
    let mut s = String::new();
    for (i, slot) in catalog.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&format!("{} kinds, as `{}`:\n", slot.slot, slot.usage));
        for kind in &slot.kinds {
            s.push_str(&render_kind(kind));
        }
    }
    s
}

fn render_kind(kind: &KindListing) -> String {
    let mut s = format!("\n  {}: {}\n", kind.kind, kind.doc);
    if kind.fields.is_empty() {
        s.push_str("      (no parameters)\n");
    }
    let cells: Vec<(String, String)> = kind
        .fields
        .iter()
        .map(|f| {
            let value = match (&f.default, f.required) {
                (Some(d), _) => format!("{}, default {}", f.ty, ron_text(d)),
                (None, true) => format!("{}, required", f.ty),
                (None, false) => format!("{}, optional", f.ty),
            };
            (f.name.clone(), value)
        })
        .collect();
    let name_w = cells.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(0);
    let value_w = cells
        .iter()
        .map(|(_, v)| v.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    for ((name, value), f) in cells.iter().zip(&kind.fields) {
        let line = format!("      {name:name_w$}  {value:value_w$}  {}", f.doc);
        s.push_str(line.trim_end());
        s.push('\n');
    }
    for (name, written) in &kind.types {
        s.push_str(&format!("      where {name} = {written}\n"));
    }
    s
}
