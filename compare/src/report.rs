//! The result: one row per claim with both figures and a verdict, rendered as a markdown table,
//! JSON, and an SVG bar chart of the main ratios.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// What the numbers say about a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Holds,
    DoesNotHold,
    Mixed,
    NotMeasured,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Mixed => "mixed",
            Verdict::NotMeasured => "not measured",
        }
    }

    /// From how many of `n` comparisons favour the claim.
    pub fn from_count(favouring: usize, n: usize) -> Verdict {
        if n == 0 {
            Verdict::NotMeasured
        } else if favouring == n {
            Verdict::Holds
        } else if favouring == 0 {
            Verdict::DoesNotHold
        } else {
            Verdict::Mixed
        }
    }
}

/// One bar of the chart: a cost of the stateless side divided by the same cost of the stateful
/// side (bytes, round trips, time, memory, CPU), so above 1 means HTTP pays more.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Names the ratio, e.g. "request bytes, HTTP ÷ FTP (download)".
    pub label: String,
    pub value: f64,
}

/// One claim, measured on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: u8,
    /// A short name ("Request size and round trips").
    pub name: String,
    /// The claim as the articles make it.
    pub claim: String,
    /// The stateful side's figure, in words and numbers.
    pub ftp: String,
    /// The stateless side's figure.
    pub http: String,
    pub verdict: Verdict,
    /// Why the verdict follows from the numbers.
    pub why: String,
    /// Every number behind the figures, by name (units in the names).
    pub metrics: BTreeMap<String, f64>,
    /// The ratios drawn in the chart.
    pub ratios: Vec<Ratio>,
    /// Seconds the row took to measure.
    pub seconds: f64,
}

impl Row {
    pub fn new(id: u8, name: &str, claim: &str) -> Row {
        Row {
            id,
            name: name.to_owned(),
            claim: claim.to_owned(),
            ftp: String::new(),
            http: String::new(),
            verdict: Verdict::NotMeasured,
            why: String::new(),
            metrics: BTreeMap::new(),
            ratios: Vec::new(),
            seconds: 0.0,
        }
    }

    /// A row that could not be measured, and why.
    pub fn not_measured(mut self, reason: &str) -> Row {
        self.verdict = Verdict::NotMeasured;
        self.ftp = format!("not measured: {reason}");
        self.http = format!("not measured: {reason}");
        self.why = reason.to_owned();
        self
    }

    pub fn metric(&mut self, name: &str, value: f64) {
        self.metrics.insert(name.to_owned(), value);
    }

    pub fn ratio(&mut self, label: &str, value: Option<f64>) {
        if let Some(value) = value.filter(|v| v.is_finite() && *v > 0.0) {
            self.ratios.push(Ratio {
                label: label.to_owned(),
                value,
            });
        }
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// "embedded" or "remote".
    pub mode: String,
    pub quick: bool,
    /// Seconds the whole run took.
    pub seconds: f64,
    /// What ran it: cores, kernel.
    pub machine: String,
    pub rows: Vec<Row>,
    /// Remarks that belong to no single row.
    pub notes: Vec<String>,
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl Report {
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "filegate compare ({} server{}, {}; {:.0} s)\n\n",
            self.mode,
            if self.quick { ", --quick" } else { "" },
            self.machine,
            self.seconds
        ));
        out.push_str("| # | claim | FTP (stateful) | HTTP (stateless) | verdict |\n");
        out.push_str("|---|---|---|---|---|\n");
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | **{}**: {} | {} | {} | **{}**: {} |\n",
                r.id,
                cell(&r.name),
                cell(&r.claim),
                cell(&r.ftp),
                cell(&r.http),
                r.verdict.label(),
                cell(&r.why)
            ));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }

    pub fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// A horizontal bar chart of every row's ratios on a log scale around 1.
    pub fn write_svg(&self, path: &Path) -> anyhow::Result<()> {
        use plotters::prelude::*;
        let bars: Vec<(String, f64)> = self
            .rows
            .iter()
            .flat_map(|r| {
                r.ratios
                    .iter()
                    .map(move |x| (format!("{}. {}", r.id, x.label), x.value))
            })
            .collect();
        let n = bars.len().max(1);
        let height = 100 + 34 * n as u32;
        let lo = bars.iter().map(|b| b.1).fold(1.0f64, f64::min).min(0.5) / 1.5;
        let hi = bars.iter().map(|b| b.1).fold(1.0f64, f64::max).max(2.0) * 1.5;
        let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (left, right) = root.split_horizontally(290);
        let mut chart = ChartBuilder::on(&right)
            .caption(
                "HTTP cost ÷ FTP cost (log scale): right of 1, the stateless side pays more",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(40)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..n as f64)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("ratio")
            .x_label_formatter(&|v| format!("{v:.2}"))
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (i, (label, value)) in bars.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let colour = if *value >= 1.0 {
                RGBColor(70, 120, 190)
            } else {
                RGBColor(210, 120, 50)
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(1.0, y + 0.2), (*value, y + 0.8)],
                    colour.filled(),
                )))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{value:.2}"),
                    (if *value >= 1.0 { *value } else { 1.0 }, y + 0.65),
                    ("sans-serif", 13),
                )))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            // The label in the left area, level with its bar.
            let (_, py) = chart.backend_coord(&(1.0, y + 0.5));
            left.draw(&Text::new(
                label.clone(),
                (8, py - 7),
                ("sans-serif", 13).into_font(),
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(1.0, 0.0), (1.0, n as f64)],
                BLACK.stroke_width(1),
            )))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present()
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

/// Formats bytes as B, KiB, MiB.
pub fn bytes(n: f64) -> String {
    if n.abs() >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / 1024.0 / 1024.0)
    } else if n.abs() >= 10.0 * 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n:.0} B")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn report() -> Report {
        let mut r = Row::new(1, "Size", "smaller | requests");
        r.ftp = "10 B".into();
        r.http = "20 B".into();
        r.verdict = Verdict::Holds;
        r.ratio("bytes", Some(2.0));
        r.ratio("rt", Some(0.25));
        r.ratio("bad", Some(f64::NAN));
        Report {
            mode: "embedded".into(),
            quick: true,
            seconds: 1.0,
            machine: "2 cores".into(),
            rows: vec![r, Row::new(2, "Other", "x").not_measured("no pid")],
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn markdown_has_a_row_per_claim_and_escapes_pipes() {
        let md = report().to_markdown();
        assert!(md.contains("| 1 | **Size**: smaller \\| requests | 10 B | 20 B | **holds**"));
        assert!(md.contains("not measured: no pid"));
    }

    #[test]
    fn verdicts_from_counts() {
        assert_eq!(Verdict::from_count(2, 2), Verdict::Holds);
        assert_eq!(Verdict::from_count(0, 2), Verdict::DoesNotHold);
        assert_eq!(Verdict::from_count(1, 2), Verdict::Mixed);
        assert_eq!(Verdict::from_count(0, 0), Verdict::NotMeasured);
    }

    #[test]
    fn svg_chart_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.svg");
        let r = report();
        assert_eq!(r.rows[0].ratios.len(), 2);
        r.write_svg(&path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<svg") && svg.contains("1. bytes"));
    }
}
