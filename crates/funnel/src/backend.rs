//! Backend choice: burn 0.22 selects the backend at run time through a `Device`; which
//! backends exist is decided at build time by this crate's cargo features (`flex`, on by
//! default; `ndarray`; `blas`, ndarray on the system OpenBLAS; `wgpu`). A backend the binary
//! was built without is refused before anything is read or written, with the feature to enable.

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

/// A burn backend by name (`backend = "…"` in a config, `--backend …` on the command line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendName {
    /// burn's flex CPU backend (cargo feature `flex`, on by default): the fastest CPU backend
    /// in `cargo bench --bench training`.
    #[default]
    Flex,
    /// burn's ndarray CPU backend (cargo feature `ndarray`; `blas` adds the system OpenBLAS).
    Ndarray,
    /// burn's wgpu backend: Vulkan, Metal or DX12 GPUs, NVIDIA included (cargo feature `wgpu`).
    Wgpu,
}

/// The backend options every command that computes shares.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BackendArgs {
    /// Overrides the config's `backend` (commands without a config: the default, flex).
    #[arg(long, value_enum)]
    pub backend: Option<BackendName>,
    /// Which device of the backend: the N-th adapter `funnel devices` lists (wgpu only;
    /// default: the best one wgpu finds). Overrides the config's `device`.
    #[arg(long, value_name = "N")]
    pub device: Option<usize>,
}

impl BackendArgs {
    /// The backend and device these flags pick, falling back to a config's choice.
    pub fn resolve(&self, config: BackendName, config_device: Option<usize>) -> Choice {
        Choice {
            name: self.backend.unwrap_or(config),
            index: self.device.or(config_device),
        }
    }
}

/// A backend and, optionally, the index of one of its devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub name: BackendName,
    pub index: Option<usize>,
}

impl Choice {
    /// `flex`, `wgpu`, `wgpu:1`.
    pub fn label(&self) -> String {
        match self.index {
            Some(i) => format!("{}:{i}", self.name.name()),
            None => self.name.name().to_string(),
        }
    }

    /// The device, or an error naming the cargo feature the binary lacks or the devices there are.
    pub fn device(&self) -> Result<Device, String> {
        if let Some(i) = self.index.filter(|&i| i != 0 && self.name.is_cpu()) {
            return Err(format!(
                "device {i}: backend `{}` has one device (0); `--device` picks among wgpu adapters",
                self.name.name()
            ));
        }
        self.name.device(self.index)
    }
}

impl BackendName {
    pub fn name(self) -> &'static str {
        match self {
            BackendName::Flex => "flex",
            BackendName::Ndarray => "ndarray",
            BackendName::Wgpu => "wgpu",
        }
    }

    /// Whether the backend computes on the CPU.
    pub fn is_cpu(self) -> bool {
        matches!(self, BackendName::Flex | BackendName::Ndarray)
    }

    /// Whether this binary was built with the backend's cargo feature.
    pub fn compiled(self) -> bool {
        match self {
            BackendName::Flex => cfg!(feature = "flex"),
            BackendName::Ndarray => cfg!(feature = "ndarray"),
            BackendName::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The device (`index` only for wgpu), or an error naming the cargo feature the binary lacks.
    #[cfg_attr(not(feature = "wgpu"), allow(unused_variables))]
    pub fn device(self, index: Option<usize>) -> Result<Device, String> {
        if !self.compiled() {
            return Err(format!(
                "backend `{0}` is not built into this binary; rebuild with `cargo build --release --features {0}`{1}",
                self.name(),
                if self == BackendName::Wgpu {
                    " (and a Vulkan, Metal or DX12 driver at run time)"
                } else {
                    ""
                }
            ));
        }
        match self {
            #[cfg(feature = "flex")]
            BackendName::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            BackendName::Ndarray => {
                // burn 0.22 deprecates ndarray in favour of flex; it is the design card's CPU
                // backend and the reference the equivalence tests compare flex against. With
                // the `blas` feature its matmuls go through the system OpenBLAS.
                #[allow(deprecated)]
                Ok(Device::ndarray())
            }
            #[cfg(feature = "wgpu")]
            BackendName::Wgpu => wgpu_device(index),
            #[allow(unreachable_patterns)]
            _ => unreachable!("compiled() was checked"),
        }
    }
}

/// What burn calls the device: `Flex(Cpu)`, `NdArray(Cpu)`, `Cube(Wgpu(…))` — written to the
/// run header and `summary.json`, so a run proves which backend computed it.
pub fn device_kind(device: &Device) -> String {
    let debug = format!("{device:?}");
    debug
        .strip_prefix("Device<")
        .and_then(|s| s.strip_suffix('>'))
        .map(str::to_string)
        .unwrap_or(debug)
}

/// The wgpu adapters this machine offers, in the order `--device N` counts them.
#[cfg(feature = "wgpu")]
pub fn wgpu_devices() -> Vec<Device> {
    use burn::tensor::DeviceType;
    // Enumeration asks every Vulkan/Metal/DX12 driver; a broken driver can panic inside wgpu,
    // which must not take funnel down with it.
    std::panic::catch_unwind(|| Device::enumerate(DeviceType::Wgpu).into_iter().collect())
        .unwrap_or_default()
}

#[cfg(feature = "wgpu")]
fn wgpu_device(index: Option<usize>) -> Result<Device, String> {
    use burn::tensor::DeviceKind;
    let device = match index {
        None => Device::wgpu(DeviceKind::DefaultDevice),
        Some(i) => {
            let all = wgpu_devices();
            let n = all.len();
            all.into_iter().nth(i).ok_or_else(|| {
                format!(
                    "--device {i}: wgpu found {n} adapter(s){}; `funnel devices` lists them",
                    if n == 0 {
                        " (is a Vulkan driver installed? e.g. Debian's mesa-vulkan-drivers and libvulkan1)"
                    } else {
                        ""
                    }
                )
            })?
        }
    };
    // Opening the adapter is lazy in burn; a machine without any Vulkan/Metal/DX12 driver
    // would panic on the first tensor. Touch it once here, so the error is ours and comes
    // before anything is written.
    let probe = device.clone();
    std::panic::catch_unwind(move || {
        let t = burn::tensor::Tensor::<1>::from_floats([1.0f32, 2.0], &probe);
        t.sum().into_scalar::<f32>()
    })
    .map_err(|_| {
        "backend `wgpu`: no usable GPU adapter (install a Vulkan driver, e.g. Debian's mesa-vulkan-drivers and libvulkan1, or pick another backend)".to_string()
    })?;
    Ok(device)
}

/// `funnel devices`: the backends this binary has and the devices each can reach.
pub fn describe() -> Vec<String> {
    let mut lines = Vec::new();
    for name in [BackendName::Flex, BackendName::Ndarray, BackendName::Wgpu] {
        if !name.compiled() {
            lines.push(format!(
                "{:<8} not built (cargo feature `{}`)",
                name.name(),
                name.name()
            ));
            continue;
        }
        match name {
            BackendName::Wgpu => {
                #[cfg(feature = "wgpu")]
                {
                    let all = wgpu_devices();
                    if all.is_empty() {
                        lines.push(
                            "wgpu     built, but no adapter found (no Vulkan/Metal/DX12 driver?)"
                                .into(),
                        );
                    }
                    for (i, d) in all.iter().enumerate() {
                        lines.push(format!("wgpu     --device {i}: {d:?}"));
                    }
                }
            }
            _ => lines.push(format!("{:<8} built: the CPU (all cores)", name.name())),
        }
    }
    lines
}
