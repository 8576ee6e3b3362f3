//! akpkg: build authentik's Python backend from pinned sources into a relocatable prefix.
//!
//! One module per pipeline stage; data flows one way:
//! - [`lock`] reads pinned requirements (uv.lock, requirements.txt, pylock.toml) into a `Lock`;
//! - [`plan`] chooses, for one [`target`], the wheel or build of every distribution;
//! - [`fetch`] brings every artifact and git source of a plan into the cache, verified;
//! - [`install`] installs wheel files into a relocatable, venv-style prefix.
//!
//! [`tags`] holds wheel file names and tag ranking, [`pep508`] guarded requirement and marker
//! parsing, [`digest`] the shared sha256 helpers,
//! [`archive`] safe tar reading and deterministic tar writing, [`contained`] the one I/O edge
//! for writes into a destination, [`identity`] the typed identities checked at the boundary, and
//! [`cli`] parses arguments and prints.

pub mod archive;
pub mod assemble;
pub mod cache;
pub mod cli;
pub mod closure;
pub mod contained;
pub mod digest;
pub mod fetch;
pub mod identity;
pub mod install;
pub mod interpreter;
pub mod layer;
pub mod limits;
pub mod lock;
pub mod metadata;
pub mod patch;
pub mod path_io;
pub mod pep508;
pub mod pep517;
pub mod pipeline;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod registry;
pub mod server;
pub mod tags;
pub mod timestamp;
pub mod web;
