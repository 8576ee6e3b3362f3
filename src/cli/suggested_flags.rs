//! Every flag a stage's message suggests exists on every command that runs that stage: a
//! message that names `--no-verify-record` is no help from a command that lacks it.
//!
//! The test reads the stages' sources (not `cli/`, whose messages sit beside their own
//! arguments), takes each `--flag` in a string literal outside tests, and looks it up in clap's
//! definition of each command listed for that stage below. Flags that are another tool's
//! arguments (npm's, git's, patchelf's, requirements.txt options) are listed as such.

use std::collections::BTreeSet;
use std::path::Path;

use clap::CommandFactory;

/// Which commands run a stage (the top-level module under `src/`, or one file of it when its
/// messages reach other commands than the rest), and so show its messages.
const STAGE_COMMANDS: &[(&str, &[&str])] = &[
    ("assemble", &["assemble"]),
    ("closure", &["assemble"]),
    ("fetch", &["fetch", "lock", "assemble"]),
    ("install", &["install", "assemble"]),
    ("interpreter", &["plan", "fetch", "lock", "assemble"]),
    (
        "limits.rs",
        &["fetch", "lock", "assemble", "build-wheel", "install"],
    ),
    ("plan", &["plan", "fetch", "lock"]),
    ("preflight.rs", &["doctor", "assemble"]),
    ("registry", &["push"]),
    ("registry/cache.rs", &["fetch", "lock", "assemble"]),
    ("release", &["release new"]),
    ("server", &["assemble", "lock"]),
    ("web", &["assemble", "lock"]),
];

/// (file, flag): arguments of other programs or formats that akpkg writes or parses.
const NOT_AKPKG_FLAGS: &[(&str, &str)] = &[
    ("closure/patchelf.rs", "--remove-rpath"),
    ("closure/patchelf.rs", "--replace-needed"),
    ("closure/patchelf.rs", "--set-rpath"),
    ("closure/patchelf.rs", "--set-soname"),
    ("closure/patchelf.rs", "--version"),
    ("fetch/git.rs", "--depth"),
    ("fetch/git.rs", "--quiet"),
    ("fetch/index.rs", "--hash"),
    ("fetch/index.rs", "--index-url"),
    ("preflight.rs", "--modversion"),
    ("preflight.rs", "--version"),
    ("server/toolchain.rs", "--version"),
    ("web/run.rs", "--ignore-scripts"),
    ("web/run.rs", "--no-audit"),
    ("web/run.rs", "--no-fund"),
    ("web/run.rs", "--offline"),
    ("web/run.rs", "--pack-destination"),
];

/// Each `--flag` in a string literal of `text`, before its tests, with the command it is
/// spelled out with (`` `akpkg assemble --no-server` `` is right from any command).
fn flags_in(text: &str) -> BTreeSet<(String, Option<String>)> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut flags = BTreeSet::new();
    for literal in code.split('"').skip(1).step_by(2) {
        let mut offset = 0;
        while let Some(found) = literal[offset..].find("--") {
            let start = offset + found;
            let before = literal[..start].chars().last();
            let tail = &literal[start + 2..];
            let length = tail
                .find(|character: char| !(character.is_ascii_lowercase() || character == '-'))
                .unwrap_or(tail.len());
            let name = tail[..length].trim_end_matches('-');
            if !name.is_empty()
                && name.starts_with(|character: char| character.is_ascii_lowercase())
                && !before.is_some_and(|character| character.is_alphanumeric() || character == '-')
            {
                flags.insert((format!("--{name}"), spelled_command(&literal[..start])));
            }
            offset = start + 2 + length;
        }
    }
    flags
}

/// The command of the code span still open at the end of `before`: `` `akpkg NAME … `` gives
/// `NAME`; a span of another program (`` `git log --format=…` ``) gives `-` (not akpkg's flag).
fn spelled_command(before: &str) -> Option<String> {
    if before.matches('`').count().is_multiple_of(2) {
        return None;
    }
    let span = &before[before.rfind('`')? + 1..];
    let mut words = span.split_whitespace();
    match words.next() {
        Some("akpkg") => Some(words.next().unwrap_or_default().to_string()),
        Some(word) if !word.starts_with('-') => Some("-".to_string()),
        _ => None,
    }
}

/// `release new` → that nested command.
fn subcommand<'c>(cli: &'c clap::Command, path: &str) -> Option<&'c clap::Command> {
    path.split_whitespace()
        .try_fold(cli, |command, name| command.find_subcommand(name))
}

fn command_has(command: &clap::Command, flag: &str) -> bool {
    let long = flag.trim_start_matches("--");
    command
        .get_arguments()
        .any(|argument| argument.get_long() == Some(long))
}

#[test]
fn messages_suggest_only_flags_of_the_commands_that_show_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut cli = super::Cli::command();
    cli.build();
    let mut wrong = Vec::new();
    for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(&root).unwrap();
        let relative_text = relative.to_string_lossy().replace('\\', "/");
        let stage = relative_text.split('/').next().unwrap_or_default();
        let Some((_, commands)) = STAGE_COMMANDS
            .iter()
            .find(|(name, _)| *name == relative_text)
            .or_else(|| STAGE_COMMANDS.iter().find(|(name, _)| *name == stage))
        else {
            continue;
        };
        if !relative_text.ends_with(".rs") || relative_text.ends_with("tests.rs") {
            continue;
        }
        let text = fs_err::read_to_string(entry.path()).unwrap();
        for (flag, spelled) in flags_in(&text) {
            if NOT_AKPKG_FLAGS.contains(&(relative_text.as_str(), flag.as_str())) {
                continue;
            }
            let names: Vec<&str> = match spelled.as_deref() {
                Some("-") => continue,
                Some(name) => vec![name],
                None => commands.to_vec(),
            };
            for name in names {
                let has = subcommand(&cli, name).is_some_and(|command| command_has(command, &flag));
                if !has && !command_has(&cli, &flag) {
                    wrong.push(format!("{relative_text}: `akpkg {name}` has no {flag}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn flags_are_found_in_literals_and_not_in_words() {
    let text = r#"let a = "(--no-verify-record installs it)"; let b = "a--b"; let c = "---";
        let e = "`akpkg assemble --no-server` leaves it out"; let f = "`akpkg x` then --offline";
        let g = "the date (`git log -1 --format=%ct`)";
        #[cfg(test)] let d = "--in-tests";"#;
    assert_eq!(
        flags_in(text),
        BTreeSet::from([
            ("--format".to_string(), Some("-".to_string())),
            ("--no-server".to_string(), Some("assemble".to_string())),
            ("--no-verify-record".to_string(), None),
            ("--offline".to_string(), None),
        ])
    );
}
