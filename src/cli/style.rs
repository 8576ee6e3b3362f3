//! Colour on stderr: `--color auto|always|never`, where `auto` means a terminal and no
//! `NO_COLOR` (<https://no-color.org>).

use std::sync::atomic::{AtomicBool, Ordering};

use anstyle::{AnsiColor, Style};

/// Set once from `--color`.
static ENABLED: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// When stderr is a terminal and NO_COLOR is not set.
    Auto,
    Always,
    Never,
}

pub fn set(choice: ColorChoice) {
    let enabled = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
                && std::io::IsTerminal::is_terminal(&std::io::stderr())
        }
    };
    ENABLED.store(enabled, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn paint(text: &str, style: Style) -> String {
    if enabled() {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// A stage's name, as the bars show it.
pub fn stage(name: &str) -> String {
    paint(name, AnsiColor::Green.on_default().bold())
}

/// A stage's name in the column every stage line starts with.
pub fn stage_column(name: &str) -> String {
    stage(&format!("{name:>8}"))
}

pub fn warning_label() -> String {
    paint("warning:", AnsiColor::Yellow.on_default().bold())
}

pub fn error_label() -> String {
    paint("error:", AnsiColor::Red.on_default().bold())
}
