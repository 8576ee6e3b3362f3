//! Errors of the `plan` stage: each names the distribution and what would resolve it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{lock} requires Python {requires_python}, but the target is Python {python}; choose another interpreter with --python or --python-version"
    )]
    PythonMismatch {
        lock: PathBuf,
        requires_python: String,
        python: String,
    },

    #[error("two versions of `{name}` would be installed:\n  {first}\n  {second}")]
    Conflict {
        name: String,
        first: String,
        second: String,
    },

    #[error("no dependency group named `{group}`; the lock's groups: {available}")]
    UnknownGroup { group: String, available: String },

    #[error(
        "`{name}` {version} has no wheel for this target and no sdist to build.\n  its wheels' tags: {wheel_tags}\n  the target's best tags: {target_tags}"
    )]
    NoUsableArtifact {
        name: String,
        version: String,
        wheel_tags: String,
        target_tags: String,
    },

    #[error(
        "`{name}` {version} may only be installed from a wheel ({origin}), but none fits this target.\n  its wheels' tags: {wheel_tags}\n  the target's best tags: {target_tags}"
    )]
    OnlyBinaryWithoutWheel {
        name: String,
        version: String,
        origin: String,
        wheel_tags: String,
        target_tags: String,
    },

    #[error(
        "`{name}` {version} must be built from source ({origin}), but the lock has no sdist for it"
    )]
    NoBinaryWithoutSdist {
        name: String,
        version: String,
        origin: String,
    },

    #[error(
        "`{name}` must be built from source ({source_kind}), but only wheels are allowed for it ({origin})"
    )]
    OnlyBinaryButSource {
        name: String,
        source_kind: String,
        origin: String,
    },
}
