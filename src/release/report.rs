//! The report of `release new`: what changed that a person must act on, then the facts.

use std::fmt;

use super::{Interpreter, NewRelease};

/// One thing a person should do or know before the new release is built.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Action(pub String);

impl NewRelease {
    /// What needs attention, in the order of the pipeline.
    pub fn actions(&self) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some(own) = &self.source_tree_differs {
            actions.push(format!(
                "the source's files hash to tree {own}, not the pinned {}: `akpkg assemble --allow-unverified-source` builds it until the source is the release's",
                self.tree
            ));
        }
        for requirement in self.requirements.iter().filter(|r| !r.satisfied) {
            let line = match (requirement.tool, &self.interpreter) {
                ("Python", Interpreter::Found { python, version }) => format!(
                    "Python: the release now needs {}, where {} targeted {}; found Python {version} at {}",
                    requirement.now,
                    self.previous_version,
                    requirement.previous,
                    python.display()
                ),
                ("Python", Interpreter::Missing { how, .. }) => format!(
                    "Python: the release now needs {}, where {} targeted {}; none is on this machine: {how}",
                    requirement.now, self.previous_version, requirement.previous
                ),
                (tool, _) => format!(
                    "{tool}: the release now needs {}, and the recipe pins {}: pin one that fits in the recipe",
                    requirement.now, requirement.previous
                ),
            };
            actions.push(line);
        }
        for patch in &self.patches {
            if let Some(fails) = &patch.fails {
                actions.push(format!(
                    "patch {} no longer applies ({fails}): edit it in {}",
                    patch.patch,
                    self.patch_directory.display()
                ));
            }
        }
        for finding in self.overrides.iter().filter(|finding| !finding.needed) {
            actions.push(format!(
                "npm override {} is no longer needed ({}): left out of the new recipe",
                finding.package, finding.why
            ));
        }
        for missing in &self.missing_tarballs {
            actions.push(format!(
                "npm: the registry does not serve the locked {} {}{}: add a [[web.override]] for it",
                missing.package,
                missing.version,
                missing
                    .nearest
                    .as_ref()
                    .map_or_else(String::new, |nearest| format!(" (nearest published: {nearest})"))
            ));
        }
        for module in &self.unavailable_go_modules {
            actions.push(format!(
                "Go: no module proxy has {module}, which go.sum pins (the lock stage asks the go command whether the server reads it; if it does, give a proxy that has it with --go-proxy)"
            ));
        }
        for file in &self.build_files {
            actions.push(format!(
                "build file {} {}: read it for what the recipe should follow",
                file.path, file.change
            ));
        }
        actions.into_iter().map(Action).collect()
    }
}

impl fmt::Display for NewRelease {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            out,
            "{} {} from {}: tree {}{}, commit date {}",
            self.name,
            self.version,
            self.previous_version,
            self.tree,
            self.commit
                .as_ref()
                .map_or_else(String::new, |commit| format!(", commit {commit}")),
            crate::timestamp::rfc3339(self.source_date_epoch)
        )?;
        writeln!(out, "wrote {}", self.recipe.display())?;
        writeln!(out, "wrote {}", self.files_listing.display())?;
        writeln!(out, "wrote {}/", self.patch_directory.display())?;
        for requirement in &self.requirements {
            writeln!(
                out,
                "requires {}: {} (was {}){}",
                requirement.tool,
                requirement.now,
                requirement.previous,
                if requirement.satisfied {
                    ""
                } else {
                    ": changed"
                }
            )?;
        }
        for patch in &self.patches {
            let state = if patch.fails.is_some() {
                "FAILS"
            } else {
                "applies"
            };
            writeln!(out, "patch {state}: {}", patch.patch)?;
        }
        for finding in &self.overrides {
            let state = if finding.needed { "kept" } else { "left out" };
            writeln!(
                out,
                "npm override {state}: {} ({})",
                finding.package, finding.why
            )?;
        }
        let actions = self.actions();
        if actions.is_empty() {
            writeln!(out, "nothing needs attention")?;
        } else {
            writeln!(out, "needs attention ({}):", actions.len())?;
            for Action(action) in &actions {
                writeln!(out, "  - {action}")?;
            }
        }
        Ok(())
    }
}
