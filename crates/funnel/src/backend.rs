//! Backend choice: burn 0.22 selects the backend at run time through a `Device`; which
//! backends exist is decided at build time by this crate's cargo features.

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

/// A burn backend by name (`backend = "…"` in a config, `--backend …` on the command line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendName {
    /// burn's ndarray CPU backend (cargo feature `ndarray`, on by default).
    #[default]
    Ndarray,
}

impl BackendName {
    pub fn name(self) -> &'static str {
        match self {
            BackendName::Ndarray => "ndarray",
        }
    }

    /// The device, or an error naming the cargo feature the binary lacks.
    pub fn device(self) -> Result<Device, String> {
        match self {
            BackendName::Ndarray => {
                #[cfg(feature = "ndarray")]
                {
                    #[allow(deprecated)]
                    // burn 0.22 prefers flex; ndarray is the design card's CPU backend
                    Ok(Device::ndarray())
                }
                #[cfg(not(feature = "ndarray"))]
                {
                    Err("backend `ndarray` is not built into this binary; rebuild with `--features ndarray`".into())
                }
            }
        }
    }
}
