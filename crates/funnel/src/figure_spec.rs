//! `[[figure]]` in a study file: a figure of `summary.csv` columns the study asks for, read
//! with the study (`sweep::study`), recorded in `sweep.json` (`results::sweep_dir`) and drawn by
//! `plots::study`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A figure a study asks for (`[[figure]]` in the study TOML): columns of `summary.csv`
/// against one column, averaged over seeds, one line per y column and `group` value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureSpec {
    /// File name under `plots/` (letters, digits, `_`, `-`).
    pub name: String,
    pub title: String,
    /// The x column (an axis or any numeric column); its distinct values are equally spaced,
    /// in numeric order (a doubling n is a log axis).
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_label: Option<String>,
    /// The y columns, one line each.
    pub y: Vec<String>,
    /// Legend names of the y columns (default: the column names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// y columns drawn dashed with square markers (e.g. the measured gaps beside bounds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dashed: Vec<String>,
    /// One line per value of this column (e.g. a width axis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_label: Option<String>,
    /// Force a log (true) or linear (false) y axis; default: log when positive values span
    /// more than a factor 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_y: Option<bool>,
    /// A horizontal reference line at this y (e.g. 0 or 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hline: Option<f64>,
    /// Only rows whose column has this value (as written in summary.csv), e.g.
    /// `select = { "data.n_train" = "200" }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub select: BTreeMap<String, String>,
}

impl FigureSpec {
    /// Checks what can be checked without the data; the message names the figure and key.
    pub fn validate(&self, i: usize) -> Result<(), String> {
        let at = format!("figure[{i}]");
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "{at}.name: `{}` must be letters, digits, `_` or `-` (it names a file)",
                self.name
            ));
        }
        if self.y.is_empty() {
            return Err(format!(
                "{at}.y: needs at least one column (with x = \"layer\": column prefixes such as \"w1_bound_l\")"
            ));
        }
        if !self.labels.is_empty() && self.labels.len() != self.y.len() {
            return Err(format!(
                "{at}.labels: {} labels for {} y columns",
                self.labels.len(),
                self.y.len()
            ));
        }
        if let Some(d) = self.dashed.iter().find(|d| !self.y.contains(d)) {
            return Err(format!("{at}.dashed: `{d}` is not one of the y columns"));
        }
        Ok(())
    }
}
