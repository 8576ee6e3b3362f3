//! Progress bars on stderr (indicatif), drawn only when stderr is a terminal and not `--quiet`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Set once from `--quiet`.
static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

fn target() -> ProgressDrawTarget {
    if QUIET.load(Ordering::Relaxed) || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

/// Downloads: bytes against the total, files done against the count.
pub struct DownloadBar {
    bar: ProgressBar,
    files: AtomicUsize,
    total_files: AtomicUsize,
}

impl DownloadBar {
    pub fn new() -> DownloadBar {
        let bar = ProgressBar::with_draw_target(Some(0), target());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix("fetch");
        DownloadBar {
            bar,
            files: AtomicUsize::new(0),
            total_files: AtomicUsize::new(0),
        }
    }
}

impl crate::fetch::DownloadProgress for DownloadBar {
    fn start(&self, files: usize, bytes: u64) {
        // One bar serves each fetch of a run in turn (the lock's artifacts, then the Go client's
        // generator): each starts from nothing.
        self.bar.reset();
        self.files.store(0, Ordering::Relaxed);
        self.total_files.store(files, Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.bar.set_message(format!("0/{files} files"));
    }

    fn bytes(&self, count: i64) {
        if count >= 0 {
            self.bar.inc(count.unsigned_abs());
        } else {
            self.bar
                .set_position(self.bar.position().saturating_sub(count.unsigned_abs()));
        }
    }

    fn file_done(&self, _filename: &str) {
        let done = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total_files.load(Ordering::Relaxed);
        self.bar.set_message(format!("{done}/{total} files"));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A pipeline's progress on stderr for a person: a line as each stage starts and ends, a bar
/// with the items in flight when stderr is a terminal (one line per finished item otherwise),
/// and warnings when they arise. Under `--json` the stage ends and warnings are JSON events
/// on stdout instead. Nothing under `--quiet` (but JSON, which was asked for).
pub struct StageReporter {
    json: bool,
    state: std::sync::Mutex<StageState>,
}

#[derive(Default)]
struct StageState {
    stage: &'static str,
    bar: Option<ProgressBar>,
    total: Option<usize>,
    done: usize,
    running: Vec<String>,
}

impl StageReporter {
    pub fn new(json: bool) -> StageReporter {
        StageReporter {
            json,
            state: std::sync::Mutex::new(StageState::default()),
        }
    }

    fn quiet(&self) -> bool {
        QUIET.load(Ordering::Relaxed)
    }

    /// A line on stderr, above the bar if there is one.
    fn line(&self, state: &StageState, text: &str) {
        if self.quiet() {
            return;
        }
        match &state.bar {
            Some(bar) if !bar.is_hidden() => bar.println(text),
            _ => {
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("{text}\n").as_bytes(),
                );
            }
        }
    }

    fn event(&self, value: serde_json::Value) {
        let _ = super::print(&format!("{value}\n"));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StageState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn counter(state: &StageState) -> String {
        let running = state.running.join(", ");
        match state.total {
            Some(total) => format!("{}/{total} {running}", state.done),
            None => running,
        }
    }
}

impl crate::progress::Progress for StageReporter {
    fn stage_started(&self, stage: &'static str, total: Option<usize>) {
        let mut state = self.lock();
        if let Some(bar) = state.bar.take() {
            bar.finish_and_clear();
        }
        *state = StageState {
            stage,
            total,
            ..StageState::default()
        };
        if self.json {
            return;
        }
        let bar = ProgressBar::with_draw_target(None, target());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>9} {spinner} {elapsed} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(super::style::stage(stage));
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        if bar.is_hidden() {
            self.line(&state, &format!("{} …", super::style::stage_column(stage)));
        }
        state.bar = Some(bar);
    }

    fn set_total(&self, total: usize) {
        self.lock().total = Some(total);
    }

    fn step(&self, text: &str) {
        let state = self.lock();
        if let Some(bar) = state.bar.as_ref().filter(|bar| !bar.is_hidden()) {
            bar.set_message(text.to_string());
        } else if !self.json {
            self.line(
                &state,
                &format!("{} {text}", super::style::stage_column(state.stage)),
            );
        }
    }

    fn item_started(&self, name: &str) {
        let mut state = self.lock();
        state.running.push(name.to_string());
        if let Some(bar) = &state.bar {
            bar.set_message(StageReporter::counter(&state));
        }
    }

    fn item_finished(&self, name: &str) {
        let mut state = self.lock();
        state.running.retain(|running| running != name);
        state.done += 1;
        let hidden = state.bar.as_ref().is_none_or(ProgressBar::is_hidden);
        if let Some(bar) = &state.bar {
            bar.set_message(StageReporter::counter(&state));
        }
        if hidden && !self.json {
            let total = state
                .total
                .map_or_else(String::new, |total| format!("/{total}"));
            let text = format!(
                "{} {}{total} {name}",
                super::style::stage_column(state.stage),
                state.done
            );
            self.line(&state, &text);
        }
    }

    fn stage_finished(&self, stage: &crate::progress::StageTime) {
        let mut state = self.lock();
        if let Some(bar) = state.bar.take() {
            bar.finish_and_clear();
        }
        if self.json {
            self.event(serde_json::json!({ "event": "stage", "stage": stage.stage, "seconds": stage.seconds, "detail": stage.detail }));
            return;
        }
        let text = format!(
            "{} {:>7.1}s  {}",
            super::style::stage_column(stage.stage),
            stage.seconds,
            stage.detail
        );
        self.line(&state, &text);
    }

    fn warning(&self, message: &str) {
        let state = self.lock();
        if self.json {
            self.event(serde_json::json!({ "event": "warning", "message": message }));
            return;
        }
        self.line(
            &state,
            &format!("{} {message}", super::style::warning_label()),
        );
    }
}
