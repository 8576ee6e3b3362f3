//! Walk the lock's graph from its roots for one target.
//!
//! Breadth first, so the chain recorded for each distribution is a shortest one. A package
//! reached again with new extras is revisited for those extras only.

use std::collections::{BTreeSet, HashMap, VecDeque};

use pep508_rs::ExtraName;

use super::{GroupSelection, PlanError};
use crate::interpreter::Target;
use crate::lock::{Dependency, Lock};

/// A package the walk reached.
#[derive(Debug)]
pub(super) struct Reached {
    pub package: usize,
    /// The package through which the walk first reached this one (`None` for roots): a link
    /// to the parent, never a copied chain, so memory stays linear in the lock's size however
    /// deep its graph is.
    pub parent: Option<usize>,
}

pub(super) fn walk(
    lock: &Lock,
    target: &Target,
    groups: &GroupSelection,
) -> Result<Vec<Reached>, PlanError> {
    check_groups_exist(lock, groups)?;

    struct Entry {
        extras: BTreeSet<ExtraName>,
        parent: Option<usize>,
    }
    let mut entries: HashMap<usize, Entry> = HashMap::new();
    let mut order: Vec<usize> = Vec::new();
    let mut queue: VecDeque<(usize, Vec<ExtraName>, Option<usize>)> = VecDeque::new();

    let applies = |dependency: &Dependency, extras: &[ExtraName]| {
        dependency.marker.evaluate(&target.markers, extras)
    };

    for &root in &lock.roots {
        let package = &lock.packages[root];
        if !package.marker.evaluate(&target.markers, &[]) {
            continue;
        }
        queue.push_back((root, Vec::new(), None));
        for (group, dependencies) in &package.dependency_groups {
            if groups.all_groups || groups.groups.contains(group) {
                for dependency in dependencies.iter().filter(|d| applies(d, &[])) {
                    queue.push_back((dependency.package, dependency.extras.clone(), Some(root)));
                }
            }
        }
    }

    while let Some((index, requested_extras, parent)) = queue.pop_front() {
        let package = &lock.packages[index];
        let (first_visit, new_extras) = match entries.get_mut(&index) {
            None => {
                let extras: BTreeSet<ExtraName> = requested_extras.into_iter().collect();
                let new_extras: Vec<ExtraName> = extras.iter().cloned().collect();
                entries.insert(index, Entry { extras, parent });
                order.push(index);
                (true, new_extras)
            }
            Some(entry) => {
                let new_extras: Vec<ExtraName> = requested_extras
                    .into_iter()
                    .filter(|extra| entry.extras.insert(extra.clone()))
                    .collect();
                (false, new_extras)
            }
        };
        let active: Vec<ExtraName> = entries[&index].extras.iter().cloned().collect();
        let mut follow = |dependency: &Dependency| {
            if applies(dependency, &active) {
                queue.push_back((dependency.package, dependency.extras.clone(), Some(index)));
            }
        };
        if first_visit {
            package.dependencies.iter().for_each(&mut follow);
        }
        for extra in &new_extras {
            match package.optional_dependencies.get(extra) {
                Some(dependencies) => dependencies.iter().for_each(&mut follow),
                None => tracing::debug!(
                    package = %package.name,
                    %extra,
                    "extra requested but not in the lock; it adds nothing"
                ),
            }
        }
    }

    let reached: Vec<Reached> = order
        .iter()
        .map(|&index| Reached {
            package: index,
            parent: entries[&index].parent,
        })
        .collect();
    check_conflicts(lock, &reached)?;
    Ok(reached)
}

fn check_groups_exist(lock: &Lock, groups: &GroupSelection) -> Result<(), PlanError> {
    let available: BTreeSet<&String> = lock
        .roots
        .iter()
        .flat_map(|&root| lock.packages[root].dependency_groups.keys())
        .collect();
    for group in &groups.groups {
        if !available.contains(group) {
            return Err(PlanError::UnknownGroup {
                group: group.clone(),
                available: if available.is_empty() {
                    "none".to_string()
                } else {
                    available
                        .iter()
                        .map(|name| name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
    }
    Ok(())
}

/// Two versions (or sources) of one name cannot both be installed.
fn check_conflicts(lock: &Lock, reached: &[Reached]) -> Result<(), PlanError> {
    let parents: HashMap<usize, Option<usize>> = reached
        .iter()
        .map(|node| (node.package, node.parent))
        .collect();
    let mut first_by_name: HashMap<&pep508_rs::PackageName, &Reached> = HashMap::new();
    for node in reached {
        let package = &lock.packages[node.package];
        if let Some(first) = first_by_name.insert(&package.name, node) {
            let describe = |node: &Reached| {
                let package = &lock.packages[node.package];
                let version = package
                    .version
                    .as_ref()
                    .map_or_else(|| package.source.to_string(), ToString::to_string);
                let mut chain: Vec<String> = chain_of(&parents, node.package)
                    .iter()
                    .map(|&index| lock.packages[index].name.to_string())
                    .collect();
                chain.push(format!("{} {version}", package.name));
                chain.join(" → ")
            };
            return Err(PlanError::Conflict {
                name: package.name.to_string(),
                first: describe(first),
                second: describe(node),
            });
        }
    }
    Ok(())
}

/// Package indices from a root down to (not including) `index`, following parent links.
fn chain_of(parents: &HashMap<usize, Option<usize>>, mut index: usize) -> Vec<usize> {
    let mut chain = Vec::new();
    while let Some(Some(parent)) = parents.get(&index) {
        chain.push(*parent);
        index = *parent;
        // A walk's parents form a tree; this only guards against a broken map.
        if chain.len() > parents.len() {
            break;
        }
    }
    chain.reverse();
    chain
}
