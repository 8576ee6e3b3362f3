//! A plan as text: a readable table, JSON, or the lines `uv export` would print.

use std::fmt::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::{Action, Plan, PlannedDistribution};
use crate::interpreter::Target;
use crate::lock::{Artifact, Source};

/// One line per distribution: name, version, source, action, why.
pub fn render_table(plan: &Plan, target: &Target) -> String {
    let rows: Vec<[String; 6]> = plan
        .distributions
        .iter()
        .map(|distribution| {
            [
                distribution.name.to_string(),
                version_text(distribution),
                distribution.source.kind().to_string(),
                action_text(&distribution.action),
                distribution.reason.clone(),
                distribution
                    .required_by
                    .as_ref()
                    .map_or_else(|| "(root)".to_string(), ToString::to_string),
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "SOURCE", "ACTION", "WHY", "REQUIRED BY"].map(String::from);
    let mut widths = header.clone().map(|cell| cell.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}", summary(plan, target));
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn summary(plan: &Plan, target: &Target) -> String {
    let count = |wanted: fn(&Action) -> bool| {
        plan.distributions
            .iter()
            .filter(|distribution| wanted(&distribution.action))
            .count()
    };
    let wheels = count(|action| matches!(action, Action::Wheel { .. }));
    let builds = count(|action| matches!(action, Action::Build { .. }));
    let from_index = count(|action| matches!(action, Action::FromIndex { .. }));
    let mut text = format!(
        "{} distributions for CPython {} on {}: {wheels} wheels, {builds} builds",
        plan.distributions.len(),
        target.python_version,
        target.platform,
    );
    if from_index > 0 {
        let _ = write!(text, ", {from_index} chosen from the index by hash");
    }
    text
}

fn version_text(distribution: &PlannedDistribution) -> String {
    distribution
        .version
        .as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

fn action_text(action: &Action) -> String {
    match action {
        Action::Wheel { tag, .. } => format!("wheel {tag}"),
        Action::Build { kind, .. } => format!("build ({})", kind.as_str()),
        Action::FromIndex { .. } => "index (by hash)".to_string(),
        Action::Nothing => "none".to_string(),
    }
}

/// The plan as JSON, with the URL, sha256 and size of each chosen artifact.
pub fn render_json(plan: &Plan, target: &Target, lock_path: &Path) -> Value {
    let mut bytes = Vec::new();
    // Writing to memory cannot fail, and what was written is JSON.
    let _ = write_json(plan, target, lock_path, &mut bytes);
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// The plan as pretty JSON (exactly `serde_json::to_string_pretty` of [`render_json`]'s value),
/// written one distribution at a time: each distribution's chain of dependents is built,
/// written and dropped, so memory stays linear in the lock's size even where the output is not.
pub fn write_json(
    plan: &Plan,
    target: &Target,
    lock_path: &Path,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let by_name = plan.index_by_name();
    // Keys are sorted: `distributions` comes first, then `lock` and `target`.
    out.write_all(b"{\n  \"distributions\": [")?;
    for (index, distribution) in plan.distributions.iter().enumerate() {
        out.write_all(if index == 0 { b"\n" } else { b",\n" })?;
        let text = serde_json::to_string_pretty(&distribution_json(plan, &by_name, distribution))?;
        // JSON strings hold no raw newline: indenting by line is exact.
        for (line_number, line) in text.lines().enumerate() {
            if line_number > 0 {
                out.write_all(b"\n")?;
            }
            out.write_all(b"    ")?;
            out.write_all(line.as_bytes())?;
        }
    }
    out.write_all(if plan.distributions.is_empty() {
        b"]"
    } else {
        b"\n  ]"
    })?;
    let rest = serde_json::to_string_pretty(&plan_json_rest(target, lock_path))?;
    out.write_all(b",\n")?;
    out.write_all(rest.trim_start_matches("{\n").as_bytes())?;
    Ok(())
}

fn distribution_json(
    plan: &Plan,
    by_name: &std::collections::HashMap<&pep508_rs::PackageName, usize>,
    distribution: &PlannedDistribution,
) -> Value {
    let (action, build, artifact, hashes) = match &distribution.action {
        Action::Wheel { artifact, .. } => ("wheel", None, Some(artifact), Vec::new()),
        Action::Build { kind, sdist } => ("build", Some(kind.as_str()), sdist.as_ref(), Vec::new()),
        Action::FromIndex { hashes } => (
            "index",
            None,
            None,
            hashes.iter().map(ToString::to_string).collect(),
        ),
        Action::Nothing => ("none", None, None, Vec::new()),
    };
    json!({
        "name": distribution.name.to_string(),
        "version": distribution.version.as_ref().map(ToString::to_string),
        "source": source_json(&distribution.source),
        "action": action,
        "build": build,
        "tag": match &distribution.action {
            Action::Wheel { tag, .. } => Some(tag.as_str()),
            _ => None,
        },
        "artifact": artifact.map(artifact_json),
        "allowed_hashes": hashes,
        "reason": distribution.reason,
        "required_by": plan.chain(by_name, distribution).iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// The plan's JSON besides its distributions.
fn plan_json_rest(target: &Target, lock_path: &Path) -> Value {
    json!({
        "lock": lock_path,
        "target": {
            "python": target.interpreter.as_ref().map(|interpreter| &interpreter.path),
            "python_version": target.python_version.to_string(),
            "platform": target.platform.to_string(),
            "free_threaded": target.free_threaded,
            "best_tags": target.best_tags(3),
        },
    })
}

/// A source as JSON, with credentials in its URLs redacted.
fn source_json(source: &Source) -> Value {
    let mut value = serde_json::to_value(source).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        for key in ["url", "index", "repository"] {
            if let Some(Value::String(url)) = fields.get_mut(key) {
                *url = crate::redact::redacted(url);
            }
        }
    }
    value
}

fn artifact_json(artifact: &Artifact) -> Value {
    json!({
        "filename": artifact.filename,
        // Credentials in a lock's URL never reach output.
        "url": artifact.url.as_deref().map(crate::redact::redacted),
        "path": artifact.path,
        "sha256": artifact.hash.as_ref().and_then(|hash| hash.sha256()),
        "size": artifact.size,
    })
}

/// One line per distribution, as `uv export --frozen --no-dev --no-hashes --no-header
/// --no-annotate` prints them for this target: without markers, since only the lines whose
/// marker holds are kept.
pub fn render_requirements(plan: &Plan) -> String {
    let mut out = String::new();
    for distribution in &plan.distributions {
        let name = &distribution.name;
        let line = match &distribution.source {
            Source::Virtual { .. } => continue,
            Source::Editable { path } => format!("-e {}", relative(path)),
            Source::Directory { path } | Source::Path { path } => relative(path),
            Source::Git {
                repository,
                commit,
                subdirectory,
                ..
            } => {
                let fragment = subdirectory
                    .as_ref()
                    .map_or_else(String::new, |sub| format!("#subdirectory={sub}"));
                format!("{name} @ git+{repository}@{commit}{fragment}")
            }
            Source::Url { url, subdirectory } => {
                let fragment = subdirectory
                    .as_ref()
                    .map_or_else(String::new, |sub| format!("#subdirectory={sub}"));
                format!("{name} @ {url}{fragment}")
            }
            Source::Registry { .. } => match &distribution.version {
                Some(version) => format!("{name}=={version}"),
                None => name.to_string(),
            },
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// uv writes relative paths with a leading `./` (and the root as `.`).
fn relative(path: &Path) -> String {
    let text = path.to_string_lossy();
    if path.is_absolute() || text == "." || text.starts_with("./") || text.starts_with("../") {
        text.into_owned()
    } else {
        format!("./{text}")
    }
}
