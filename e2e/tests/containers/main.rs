//! End-to-end tests on a real container engine: compose.yaml and the testcontainers module.
//! scripts/test.sh starts the engine and builds the images; without them each test fails at once
//! with one line naming what is missing.

mod compose;
mod testcontainers;

/// The tests of this binary take turns: they share one engine, and the testcontainers test points
/// `DOCKER_HOST` at an API-version shim for the length of its turn (the environment is the
/// process's, so nothing else may run meanwhile).
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
