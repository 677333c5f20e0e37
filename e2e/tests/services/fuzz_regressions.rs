//! Replays every fuzz seed and every input a fuzzer ever crashed (fuzz/seeds/TARGET and
//! fuzz/regressions/TARGET) through the same harnesses the libFuzzer targets run, on stable, so a
//! fixed crash stays fixed without nightly.

use sigstack_e2e::fuzz::TARGETS;
use sigstack_e2e::workspace_root;

#[test]
fn seeds_and_found_crashes_replay_cleanly() {
    let mut replayed = 0;
    for (name, harness) in TARGETS {
        let mut inputs = 0;
        for kind in ["seeds", "regressions"] {
            let dir = workspace_root().join("fuzz").join(kind).join(name);
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let data = std::fs::read(entry.path()).unwrap();
                let outcome = std::panic::catch_unwind(|| harness(&data));
                assert!(outcome.is_ok(), "{name}: {} makes the harness fail", entry.path().display());
                inputs += 1;
            }
        }
        assert!(inputs > 0, "target {name} has no seeds in fuzz/seeds/{name}");
        eprintln!("{name}: {inputs} inputs replayed");
        replayed += inputs;
    }
    eprintln!("{replayed} fuzz inputs replayed");
}
