//! Progress bars on stderr (indicatif), drawn only when stderr is a terminal and not `--quiet`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Set once from `--quiet`.
static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
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

impl crate::fetch::Progress for DownloadBar {
    fn start(&self, files: usize, bytes: u64) {
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
