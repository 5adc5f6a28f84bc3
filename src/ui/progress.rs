//! The progress of a run, per host and phase: bars on a terminal (indicatif), plain lines on
//! stderr otherwise, nothing with --json.

use crate::apply::Reporter;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub enum Progress {
    Bars {
        multi: MultiProgress,
        bars: Mutex<BTreeMap<String, ProgressBar>>,
        /// Hosts done of all, under the per-host lines.
        overall: ProgressBar,
        verbose: bool,
    },
    Lines {
        verbose: bool,
    },
    Quiet,
}

impl Progress {
    pub fn new(hosts: &[String], json: bool, verbose: bool) -> Progress {
        if json {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Lines { verbose };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {prefix:<12} {wide_msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = hosts
            .iter()
            .map(|h| {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(style.clone());
                b.set_prefix(h.clone());
                b.set_message("waiting");
                b.enable_steady_tick(Duration::from_millis(120));
                (h.clone(), b)
            })
            .collect();
        let overall = multi.add(ProgressBar::new(hosts.len() as u64));
        overall.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} host(s) done  {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress::Bars {
            multi,
            bars: Mutex::new(bars),
            overall,
            verbose,
        }
    }

    fn with_bar(&self, host: &str, f: impl FnOnce(&ProgressBar)) {
        if let Progress::Bars { bars, .. } = self {
            if let Some(b) = bars.lock().ok().and_then(|m| m.get(host).cloned()) {
                f(&b);
            }
        }
    }
}

impl Reporter for Progress {
    fn phase(&self, host: &str, phase: &str) {
        match self {
            Progress::Bars { .. } => self.with_bar(host, |b| b.set_message(phase.to_string())),
            Progress::Lines { .. } => eprintln!("{host}: {phase}"),
            Progress::Quiet => {}
        }
    }

    fn note(&self, host: &str, text: &str) {
        match self {
            Progress::Bars { multi, .. } => {
                let _ = multi.println(format!("{host}: {text}"));
            }
            Progress::Lines { .. } => eprintln!("{host}: {text}"),
            Progress::Quiet => {}
        }
    }

    fn command(&self, host: &str, command: &str) {
        let text = format!(
            "{host}: $ {}",
            command.trim_end().replace('\n', &format!("\n{host}:   "))
        );
        match self {
            Progress::Bars {
                multi,
                verbose: true,
                ..
            } => {
                let _ = multi.println(text);
            }
            Progress::Lines { verbose: true } => eprintln!("{text}"),
            _ => {}
        }
    }

    fn finish(&self, host: &str, ok: bool, summary: &str) {
        let mark = if ok { "ok" } else { "FAILED" };
        match self {
            Progress::Bars { overall, .. } => {
                self.with_bar(host, |b| {
                    b.finish_with_message(format!("{mark}: {}", first_line(summary)))
                });
                overall.inc(1);
            }
            Progress::Lines { .. } => eprintln!("{host}: {mark}: {}", first_line(summary)),
            Progress::Quiet => {}
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
