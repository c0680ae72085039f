//! JSON's missing NaN: `serde_json` writes NaN and ±∞ as `null`; [`nan_if_null`] reads them back.

/// Reads a number that `serde_json` wrote as `null` (it writes NaN and ±∞ so) back as NaN, so
/// that a saved `summary.json` deserializes (`funnel report`).
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Writes ±∞ as the strings `"inf"`/`"-inf"` (JSON has no infinity, and `null` reads back as
/// NaN: an unbounded interval end must not come back as "undefined"); NaN as `null`, finite
/// numbers as numbers.
pub fn serialize_inf<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_infinite() {
        s.serialize_str(if *x > 0.0 { "inf" } else { "-inf" })
    } else if x.is_nan() {
        s.serialize_none()
    } else {
        s.serialize_f64(*x)
    }
}

/// Reads what [`serialize_inf`] wrote: a number, `null` (NaN) or `"inf"`/`"-inf"`.
pub fn deserialize_inf<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Text(String),
    }
    match <Option<Value> as serde::Deserialize>::deserialize(d)? {
        None => Ok(f64::NAN),
        Some(Value::Number(x)) => Ok(x),
        Some(Value::Text(t)) => match t.as_str() {
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            other => Err(serde::de::Error::custom(format!(
                "expected a number, null, \"inf\" or \"-inf\", got {other:?}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Row {
        #[serde(
            serialize_with = "super::serialize_inf",
            deserialize_with = "super::deserialize_inf"
        )]
        x: f64,
    }

    #[test]
    fn infinities_survive_json() {
        for x in [f64::INFINITY, f64::NEG_INFINITY, 1.5, 0.0] {
            let text = serde_json::to_string(&Row { x }).unwrap();
            assert_eq!(serde_json::from_str::<Row>(&text).unwrap().x, x, "{text}");
        }
        let text = serde_json::to_string(&Row { x: f64::NAN }).unwrap();
        assert_eq!(text, r#"{"x":null}"#);
        assert!(serde_json::from_str::<Row>(&text).unwrap().x.is_nan());
        assert!(serde_json::from_str::<Row>(r#"{"x":"big"}"#).is_err());
    }
}
