//! `model.bpk`: the trained network's parameters as a burn record, written by `funnel run` and
//! read back by `funnel measure`.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use funnel_model::Mlp;

use crate::error::{io_err, CliError};
use crate::results::RunDir;

/// The file in a run folder that holds the trained network's parameters (a burn record).
pub const MODEL_FILE: &str = "model.bpk";

/// Writes the trained network into the (still staged) run folder, for `funnel measure`.
pub fn save(run: &RunDir, model: &Mlp) -> Result<(), CliError> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| CliError::internal(format!("cannot serialise the model: {e}")))?;
    run.write(MODEL_FILE, &bytes)
        .map_err(io_err("cannot write the model"))
}

/// The network `empty` (built from the run's config) with the parameters of `bytes`; the error
/// says why they do not fit.
pub fn load(empty: Mlp, bytes: Vec<u8>) -> Result<Mlp, String> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| format!("{MODEL_FILE} is not a model record: {e}"))?;
    empty
        .try_load_record(record)
        .map_err(|e| format!("{MODEL_FILE} does not fit the network of config.toml: {e}"))
}
