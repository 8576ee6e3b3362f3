//! What a long-running pipeline tells the person waiting for it: stages as they start and end,
//! the items of a stage (the wheels being built), the step within a stage, and warnings when
//! they arise. The stages only call these; the CLI decides how they look (a line, a bar, a JSON
//! event, or nothing under `--quiet`).

/// One finished stage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageTime {
    pub stage: &'static str,
    pub seconds: f64,
    pub detail: String,
}

/// Receives a pipeline's progress. Every method has a default that ignores it.
pub trait Progress: Sync {
    /// A stage begins; `total` is how many items it will report, when known.
    fn stage_started(&self, _stage: &'static str, _total: Option<usize>) {}
    /// The current stage will report `total` items (known only once it has begun).
    fn set_total(&self, _total: usize) {}
    /// What the current stage is doing now (`placing files`, `byte-compiling 23,000 modules`).
    fn step(&self, _text: &str) {}
    /// One item of the current stage (a wheel to build) begins.
    fn item_started(&self, _name: &str) {}
    /// One item of the current stage ends.
    fn item_finished(&self, _name: &str) {}
    fn stage_finished(&self, _stage: &StageTime) {}
    /// Something the user should know now, not only in the summary.
    fn warning(&self, _message: &str) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}
