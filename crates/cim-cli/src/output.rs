//! What a command prints: results on stdout (text, or JSON with `--json`),
//! notes, progress bars and errors on stderr.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::exit::Exit;

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    /// Progress bars only where a person watches: stderr is a terminal and
    /// the output is not for a machine.
    bars: bool,
}

impl Output {
    /// Output in JSON (`--json`) or text.
    pub fn new(json: bool) -> Self {
        Self { json, bars: !json && std::io::stderr().is_terminal() }
    }

    /// Whether results are JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints a result: `value` as JSON with `--json`, else `text()`.
    pub fn emit<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        if self.json {
            self.json_line(value);
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{}", text.trim_end_matches('\n'));
            }
        }
    }

    /// Prints one JSON document on one line (for streams of results too).
    pub fn json_line<T: Serialize>(&self, value: &T) {
        match serde_json::to_string(value) {
            Ok(line) => println!("{line}"),
            Err(error) => eprintln!("error: cannot render the result as JSON: {error}"),
        }
    }

    /// A note for the person at the terminal (stderr; silent with `--json`).
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.json {
            eprintln!("{}", text.as_ref());
        }
    }

    /// A progress bar counting `total` items, or a hidden one.
    pub fn progress(&self, total: u64, what: &str) -> ProgressBar {
        self.bar(total, what, "{msg:>10} [{bar:40}] {pos}/{len} ({eta})")
    }

    /// A progress bar counting `total` bytes, or a hidden one.
    pub fn progress_bytes(&self, total: u64, what: &str) -> ProgressBar {
        self.bar(total, what, "{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({eta})")
    }

    fn bar(&self, total: u64, what: &str, template: &str) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total).with_message(what.to_owned());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// Reports `error` (stderr text, or a JSON object on stdout with
    /// `--json`) and returns its exit code.
    pub fn fail(&self, error: &anyhow::Error) -> Exit {
        let exit = Exit::of(error);
        if self.json {
            let mut report = serde_json::json!({
                "error": format!("{error:#}"),
                "kind": exit.name(),
                "exit_code": exit as u8,
            });
            // A service's refusal keeps its code and details (e.g. the JSON
            // pointers of schema violations) for machines.
            if let Some(remote) = error.chain().find_map(crate::services::refusal_of) {
                report["service_error"] = serde_json::to_value(remote).unwrap_or_default();
            }
            self.json_line(&report);
        } else {
            eprintln!("error: {error:#}");
        }
        exit
    }
}
