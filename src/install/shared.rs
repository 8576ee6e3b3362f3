//! Files that two distributions both ship.
//!
//! pip and uv write such a file twice and keep whichever was written last, in an order that is
//! not fixed. akpkg decides before anything is written, the same way on every builder:
//! - identical bytes: the file is placed once and stays in both RECORDs;
//! - different bytes outside both distributions' importable code (a stray `docs/Makefile`
//!   that two sdists' backends both packed): the distribution whose normalized name sorts
//!   first keeps its file, the other's copy is left out (and out of its RECORD), and the
//!   install reports it;
//! - different bytes anywhere else (inside a regular package of either, a module, a script,
//!   metadata, headers): refused, naming both.
//!
//! A recipe can declare a shared path expected (no warning) or an error ([`SharedFileRules`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{InstallError, WheelPlan};

/// What a recipe says of a path (relative to site-packages) that two distributions ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharedFileRule {
    /// Known and resolved by the rule above: reported in the manifest, not warned about.
    Expected,
    /// Never resolved: the install stops.
    Error,
}

/// The recipe's `[shared-files]`: path relative to site-packages → rule.
pub type SharedFileRules = BTreeMap<String, SharedFileRule>;

/// A path two distributions ship with different bytes, and which copy was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SharedFile {
    /// Relative to the prefix.
    pub path: PathBuf,
    /// The distribution whose copy is installed.
    pub kept: String,
    /// The distribution whose copy was left out.
    pub dropped: String,
    /// The recipe declared it expected.
    pub expected: bool,
}

impl SharedFile {
    /// The warning a person reads.
    pub fn warning(&self) -> String {
        format!(
            "{} and {} both ship {} with different contents, outside their importable code; \
             {}'s copy is installed (the first name in order wins). A recipe's [shared-files] \
             can declare it expected or make it an error",
            self.kept,
            self.dropped,
            self.path.display(),
            self.kept
        )
    }
}

/// Which plan writes a path, with the RECORD hash of what it writes.
struct Owner {
    plan: usize,
    hash: String,
}

/// Decide every path that more than one plan writes; mark or drop the extra copies in `plans`.
pub(super) fn resolve(
    plans: &mut [WheelPlan],
    rules: &SharedFileRules,
) -> Result<Vec<SharedFile>, InstallError> {
    let mut decisions: Vec<(usize, PathBuf, Decision)> = Vec::new();
    let mut resolved = Vec::new();
    for (path, owners) in shared_paths(plans) {
        let keeper = keeper(plans, &owners);
        for owner in owners.iter().filter(|owner| owner.plan != keeper.plan) {
            if owner.hash == keeper.hash {
                decisions.push((owner.plan, path.to_path_buf(), Decision::RecordOnly));
                continue;
            }
            resolved.push(check_resolvable(
                plans,
                path,
                keeper.plan,
                owner.plan,
                rules,
            )?);
            decisions.push((owner.plan, path.to_path_buf(), Decision::Drop));
        }
    }
    for (plan, path, decision) in decisions {
        apply(&mut plans[plan], &path, decision);
    }
    resolved.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(resolved)
}

enum Decision {
    /// Placed by another plan with the same bytes: listed in this one's RECORD only.
    RecordOnly,
    /// Another plan's different copy is kept: this one is neither placed nor listed.
    Drop,
}

fn apply(plan: &mut WheelPlan, path: &Path, decision: Decision) {
    match decision {
        Decision::RecordOnly => {
            for file in plan
                .files
                .iter_mut()
                .filter(|file| file.destination == path)
            {
                file.placed_by_another = true;
            }
        }
        Decision::Drop => plan.files.retain(|file| file.destination != path),
    }
    // A launcher is generated from the entry point: an identical one is written once.
    plan.launchers
        .retain(|(destination, _)| destination != path);
}

/// Every destination written by more than one plan, with its owners in plan order.
fn shared_paths<'p>(plans: &'p [WheelPlan]) -> BTreeMap<&'p Path, Vec<Owner>> {
    // Keyed by the raw path text: hashing a `Path` goes component by component, which
    // dominates this step for ~30,000 files.
    let mut owners: HashMap<&std::ffi::OsStr, Vec<Owner>> = HashMap::new();
    for (index, plan) in plans.iter().enumerate() {
        let files = plan
            .files
            .iter()
            .map(|file| (file.destination.as_path(), file.hash.clone()));
        let launchers = plan
            .launchers
            .iter()
            .map(|(path, content)| (path.as_path(), super::record_hash(content)));
        for (path, hash) in files.chain(launchers) {
            owners
                .entry(path.as_os_str())
                .or_default()
                .push(Owner { plan: index, hash });
        }
    }
    owners
        .into_iter()
        .filter(|(_, owners)| owners.len() > 1)
        .map(|(path, owners)| (Path::new(path), owners))
        .collect()
}

/// The owner whose copy is kept: the first distribution by normalized name.
fn keeper<'o>(plans: &[WheelPlan], owners: &'o [Owner]) -> &'o Owner {
    owners
        .iter()
        .min_by(|a, b| name(&plans[a.plan]).cmp(&name(&plans[b.plan])))
        .unwrap_or(&owners[0])
}

fn name(plan: &WheelPlan) -> String {
    plan.unpacked.filename.name.to_string()
}

/// `name version`, for people.
fn distribution(plan: &WheelPlan) -> String {
    format!(
        "{} {}",
        plan.unpacked.filename.name, plan.unpacked.filename.version
    )
}

/// A shared path with different bytes may be resolved only outside both distributions'
/// importable code, and only where the recipe does not forbid it.
fn check_resolvable(
    plans: &[WheelPlan],
    path: &Path,
    kept: usize,
    dropped: usize,
    rules: &SharedFileRules,
) -> Result<SharedFile, InstallError> {
    let conflict = |reason: String| InstallError::Conflict {
        path: path.to_path_buf(),
        first: plans[kept].unpacked.filename.to_string(),
        second: plans[dropped].unpacked.filename.to_string(),
        reason,
    };
    let inside_lib = [kept, dropped]
        .iter()
        .map(|&index| path.strip_prefix(&plans[index].lib_directory).ok())
        .collect::<Option<Vec<_>>>();
    let Some(relative) = inside_lib.and_then(|paths| paths.first().copied()) else {
        return Err(conflict("outside site-packages".to_string()));
    };
    if let Some(reason) = [kept, dropped]
        .iter()
        .find_map(|&index| importable_reason(&plans[index], relative))
    {
        return Err(conflict(reason));
    }
    let key = relative.to_string_lossy().replace('\\', "/");
    let expected = match rules.get(&key) {
        Some(SharedFileRule::Error) => {
            return Err(conflict(format!(
                "the recipe's [shared-files] makes `{key}` an error"
            )));
        }
        Some(SharedFileRule::Expected) => true,
        None => false,
    };
    Ok(SharedFile {
        path: path.to_path_buf(),
        kept: distribution(&plans[kept]),
        dropped: distribution(&plans[dropped]),
        expected,
    })
}

/// Why `relative` (to site-packages) is part of `plan`'s importable code, if it is.
fn importable_reason(plan: &WheelPlan, relative: &Path) -> Option<String> {
    let is_code = relative.extension().is_some_and(|extension| {
        ["py", "pyc", "pyi", "so", "pyd"]
            .iter()
            .any(|code| extension == *code)
    });
    if is_code {
        return Some("it is a Python module".to_string());
    }
    let first = relative.components().next()?.as_os_str().to_string_lossy();
    if first.ends_with(".dist-info") || first.ends_with(".data") {
        return Some("it is a distribution's metadata".to_string());
    }
    let packages = regular_packages(plan);
    relative
        .ancestors()
        .skip(1)
        .filter(|ancestor| !ancestor.as_os_str().is_empty())
        .find(|ancestor| packages.contains(*ancestor))
        .map(|package| {
            format!(
                "it is inside {}'s package `{}`",
                distribution(plan),
                package.display()
            )
        })
}

/// The directories (relative to site-packages) holding an `__init__.py` of `plan`.
fn regular_packages(plan: &WheelPlan) -> HashSet<PathBuf> {
    plan.files
        .iter()
        .filter(|file| {
            file.destination
                .file_name()
                .is_some_and(|name| name == "__init__.py")
        })
        .filter_map(|file| {
            let relative = file.destination.strip_prefix(&plan.lib_directory).ok()?;
            Some(relative.parent()?.to_path_buf())
        })
        .collect()
}
