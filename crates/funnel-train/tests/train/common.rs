//! Helpers shared by the test modules.

use burn::prelude::*;

/// The device every test runs on.
pub fn device() -> Device {
    Device::flex()
}

/// burn's CPU RNG is global to the process and tests run in parallel threads: every test that
/// seeds it holds this lock for its whole length, so no other test's draws land between a seed
/// and its use.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}
