//! akpkg: build authentik from pinned sources into a relocatable prefix.
//!
//! The stages, in the order data flows through them:
//! - [`lock`] reads pinned requirements (uv.lock, requirements.txt, pylock.toml, akpkg's lock);
//! - [`plan`] chooses, for one [`interpreter::Target`], the wheel or build of every distribution;
//! - [`pipeline`] joins the stages in typed steps: a plan's fetch set and build set, akpkg's lock;
//! - [`fetch`] brings every artifact, git source, Go module and npm tarball into the cache,
//!   verified, over the run's one HTTP service ([`http`], below fetch and the registry);
//! - [`patch`] applies the recipe's patches to the source;
//! - [`pep517`] builds wheels from sdists and source trees in isolated environments;
//! - [`server`] builds the Go server, [`web`] the web UI;
//! - [`install`] installs wheels into a relocatable prefix;
//! - [`closure`] makes the prefix's native code need nothing of the build machine;
//! - [`assemble`] runs them into a staged prefix, records and verifies it, and moves it in place;
//! - [`layer`] writes a prefix as a reproducible layer and OCI image; [`registry`] pushes it
//!   and serves the remote cache.
//!
//! Shared by the stages: [`http`] (the one HTTP service, retry policy and bounded body),
//! [`cache`] (the cache's one layout and the only way to write into it),
//! [`contained`] (the one I/O edge for writes into a destination), [`path_io`] (the one path
//! I/O error), [`identity`] (typed identities checked at the boundary), [`archive`] (safe tar
//! reading, deterministic tar writing), [`tags`], [`pep508`], [`metadata`], [`digest`],
//! [`limits`], [`timestamp`], [`progress`], [`redact`], [`runner`] (the one way to run another
//! program), [`oci_layout`] and [`preflight`]. [`cli`] maps arguments to options and prints.

pub mod archive;
pub mod assemble;
mod boundaries;
pub mod cache;
pub mod cli;
pub mod closure;
pub mod contained;
pub mod digest;
pub mod fetch;
pub mod http;
pub mod identity;
pub mod install;
pub mod interpreter;
pub mod layer;
pub mod limits;
pub mod lock;
pub mod metadata;
pub mod oci_layout;
pub mod patch;
pub mod path_io;
pub mod pep508;
pub mod pep517;
pub mod pipeline;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod redact;
pub mod registry;
pub mod release;
pub mod runner;
pub mod server;
pub mod tags;
pub mod timestamp;
pub mod web;
