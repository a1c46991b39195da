//! Quick mode, order statistics, and the table every benchmark prints: one row per measure,
//! the median of each side over the interleaved pairs, and the median of the per-pair ratios
//! with their spread (min–max).

use std::fmt::Write as _;

/// Whether `WINDLASS_BENCH_QUICK` is set: run every scenario once at a small size, so CI proves
/// the benchmarks still run without judging their speed.
pub fn quick() -> bool {
    std::env::var_os("WINDLASS_BENCH_QUICK").is_some()
}

/// Whether `WINDLASS_BENCH_VERBOSE` is set: benchmarks then print every sample they take.
pub fn verbose() -> bool {
    std::env::var_os("WINDLASS_BENCH_VERBOSE").is_some()
}

/// The median (the upper one of an even count); NaN for no values.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The `p`-th percentile by the nearest-rank method; NaN for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The smallest and largest value; NaNs for no values.
pub fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::NAN, f64::NAN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// A Markdown table of paired measures: windlass against a baseline.
#[derive(Debug)]
pub struct Table {
    baseline: String,
    out: String,
}

impl Table {
    /// A table comparing windlass with `baseline` (a column heading); prints its heading.
    pub fn new(title: &str, baseline: &str) -> Self {
        let t = Self {
            baseline: baseline.to_string(),
            out: String::new(),
        };
        println!("{title}");
        println!(
            "| scenario | windlass (median) | {b} (median) | ratio windlass/{b}, median (min–max) |",
            b = t.baseline
        );
        println!("|---|---|---|---|");
        t
    }

    /// Prints a row for `pairs` of (windlass, baseline) values in `unit`. Pairs where the
    /// baseline is zero give no ratio.
    pub fn row(&mut self, name: &str, unit: &str, pairs: &[(f64, f64)]) {
        let ours: Vec<f64> = pairs.iter().map(|p| p.0).collect();
        let theirs: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let ratios: Vec<f64> = pairs
            .iter()
            .filter(|p| p.1 != 0.0)
            .map(|p| p.0 / p.1)
            .collect();
        let (lo, hi) = min_max(&ratios);
        let line = format!(
            "| {name} | {} | {} | {:.2} ({lo:.2}–{hi:.2}) |",
            value(median(&ours), unit),
            value(median(&theirs), unit),
            median(&ratios),
        );
        println!("{line}");
        let _ = writeln!(self.out, "{line}");
    }

    /// Prints a row with one value per side and no ratio (a count, a setting).
    pub fn note(&mut self, name: &str, ours: &str, theirs: &str) {
        let line = format!("| {name} | {ours} | {theirs} | |");
        println!("{line}");
        let _ = writeln!(self.out, "{line}");
    }

    /// The rows printed so far.
    pub fn rows(&self) -> &str {
        &self.out
    }
}

/// A value with three significant digits and its unit.
pub fn value(v: f64, unit: &str) -> String {
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else if v.abs() >= 1.0 {
        2
    } else {
        3
    };
    if unit.is_empty() {
        format!("{v:.digits$}")
    } else {
        format!("{v:.digits$} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn min_max_of_nothing_is_nan() {
        assert!(min_max(&[]).0.is_nan());
        assert_eq!(min_max(&[2.0, 1.0, 3.0]), (1.0, 3.0));
    }
}
