//! JSON's missing NaN: `serde_json` writes NaN and ±∞ as `null`; [`nan_if_null`] reads them back.

/// Reads a number that `serde_json` wrote as `null` (it writes NaN and ±∞ so) back as NaN, so
/// that a saved `summary.json` deserializes (`funnel report`).
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}
