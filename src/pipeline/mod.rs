//! The steps that join the stages, as typed values that both the CLI and `assemble` take:
//! a plan's fetch set, its build set, and akpkg's lock written from them.
//!
//! ```text
//! plan ──FetchSet::of_plan──▶ FetchSet ──fetch──▶ artifacts, checkouts
//!      ──build_set──────────▶ [PlannedBuild] ──lock_build_environments──▶ LockedBuilds
//!      ──akpkg_lock──────────▶ AkpkgLock ──write_lock_file──▶ FILE
//! ```
//!
//! [`lock`] walks those steps for `akpkg lock` (and `release new`, which runs it).

mod build_set;
mod error;
mod fetch_inputs;
mod fetch_set;
mod lock_run;
mod write_lock;

pub use build_set::{FetchedSources, PlannedBuild, build_set};
pub use error::{EnvironmentFailure, PipelineError};
pub use fetch_inputs::{FetchedInputs, fetch_inputs, write_bundle};
pub use fetch_set::FetchSet;
pub use lock_run::{LockRequest, lock};
pub use write_lock::{
    LockInputs, LockedBuilds, akpkg_lock, lock_build_environments, lock_go, write_lock_file,
};
