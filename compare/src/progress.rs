//! Progress bars on stderr (indicatif): one for the rows, one for the steps of the current row.
//! Hidden when stderr is not a terminal or when asked.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars of one run.
pub struct Progress {
    /// Holds both bars so they draw together.
    multi: MultiProgress,
    /// Rows done out of all rows.
    rows: ProgressBar,
    /// Steps of the row being measured.
    step: ProgressBar,
}

impl Progress {
    pub fn new(rows: u64, show: bool) -> Progress {
        let target = if show && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let style = |t: &str| {
            ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_bar())
        };
        let rows_bar = multi.add(ProgressBar::new(rows));
        rows_bar.set_style(style("{prefix:>8} [{bar:30}] {pos}/{len} rows {msg}"));
        rows_bar.set_prefix("compare");
        let step = multi.add(ProgressBar::new(1));
        step.set_style(style(
            "{prefix:>8} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
        ));
        step.set_prefix("row");
        Progress {
            multi,
            rows: rows_bar,
            step,
        }
    }

    /// A row begins, with `steps` steps.
    pub fn row(&self, name: &str, steps: u64) {
        self.rows.set_message(name.to_owned());
        self.step.reset();
        self.step.set_length(steps.max(1));
        self.step.set_position(0);
        self.step.set_message(String::new());
    }

    /// One step of the current row is done; `what` says what comes next.
    pub fn step(&self, what: &str) {
        self.step.inc(1);
        self.step.set_message(what.to_owned());
    }

    /// Advances the current row by `n` units without a message.
    pub fn inc(&self, n: u64) {
        self.step.inc(n);
    }

    pub fn row_done(&self) {
        self.rows.inc(1);
    }

    /// Prints a line above the bars.
    pub fn println(&self, line: &str) {
        if self.multi.is_hidden() {
            return;
        }
        let _ = self.multi.println(line);
    }

    pub fn finish(&self) {
        self.step.finish_and_clear();
        self.rows.finish_and_clear();
    }
}
