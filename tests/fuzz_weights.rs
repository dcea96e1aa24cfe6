//! Seeded mutation fuzzing of the weights loader: thousands of damaged copies of a `plain8`
//! weights file and of a resumable (Adam) checkpoint, fed to `nn::checkpoint::load`,
//! `load_training` and `metadata`, must each give `Ok` or an error naming the file: never a
//! panic, an abort, a huge allocation or a slow load. A failed load must leave the model as it
//! was.
//!
//! Mutations: truncations, bit flips, inserted and deleted bytes, the safetensors 8-byte
//! header length overwritten with huge values, and edits inside the JSON header (numbers in
//! shapes and data offsets replaced by huge ones, dtypes swapped, characters dropped), with the
//! header length fixed up so that the edit reaches the JSON parser and the offset checks.
//! Each case is reproducible from its seed and number; with `FUZZ_TRACE=1` each is written to
//! stderr before it runs (for a case that aborts the process).

mod common;

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{random, temp_dir};
use nn::optim::Adam;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const INTERESTING: [u64; 12] = [
    0,
    1,
    7,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    1 << 62,
    i64::MAX as u64,
    u64::MAX,
    u64::MAX - 7,
];

const NUMBERS: [&str; 10] = [
    "0",
    "1",
    "-1",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1e30",
    "3.5",
];

const DTYPES: [&str; 8] = ["F64", "BF16", "U8", "BOOL", "I64", "F8_E4M3", "F4", "X"];

/// The header's length and its JSON, if the file still has them.
fn header(b: &[u8]) -> Option<(usize, &[u8])> {
    let n = u64::from_le_bytes(b.get(..8)?.try_into().ok()?) as usize;
    Some((n, b.get(8..8usize.checked_add(n)?)?))
}

/// `b` with its JSON header replaced by `json` (and the length field updated).
fn with_header(b: &[u8], old_len: usize, json: &[u8]) -> Vec<u8> {
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json);
    out.extend_from_slice(&b[8 + old_len..]);
    out
}

fn mutate(valid: &[u8], rng: &mut StdRng) -> (Vec<u8>, String) {
    let mut b = valid.to_vec();
    let mut what = Vec::new();
    for _ in 0..rng.random_range(1..=2) {
        let hdr = header(&b).map(|(n, _)| n).unwrap_or(0);
        // Most mutations land in the header, where the structure is.
        let pos = |rng: &mut StdRng, len: usize| {
            if len == 0 {
                0
            } else if rng.random_bool(0.8) && hdr + 8 <= len {
                rng.random_range(0..hdr + 8)
            } else {
                rng.random_range(0..len)
            }
        };
        match rng.random_range(0..9) {
            0 => {
                let at = rng.random_range(0..=b.len());
                b.truncate(at);
                what.push(format!("truncate to {at}"));
            }
            1 => {
                let at = pos(rng, b.len());
                if at < b.len() {
                    let bit = rng.random_range(0..8);
                    b[at] ^= 1 << bit;
                    what.push(format!("flip bit {bit} of byte {at}"));
                }
            }
            2 => {
                let at = pos(rng, b.len());
                let n = rng.random_range(1..=8);
                let ins: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                b.splice(at..at, ins.iter().copied());
                what.push(format!("insert {ins:02x?} at {at}"));
            }
            3 => {
                let at = pos(rng, b.len());
                let end = (at + rng.random_range(1..=32)).min(b.len());
                b.drain(at..end);
                what.push(format!("delete {at}..{end}"));
            }
            4 => {
                // The safetensors header length.
                let v = INTERESTING[rng.random_range(0..INTERESTING.len())];
                if b.len() >= 8 {
                    b[..8].copy_from_slice(&v.to_le_bytes());
                    what.push(format!("header length = {v:#x}"));
                }
            }
            5..=7 => {
                let Some((n, json)) = header(&b) else {
                    continue;
                };
                let json = json.to_vec();
                let text = String::from_utf8_lossy(&json).into_owned();
                let new = match rng.random_range(5..=7) {
                    5 => {
                        // A number (shape, data offset) replaced.
                        let runs: Vec<(usize, usize)> = digit_runs(&text);
                        if runs.is_empty() {
                            continue;
                        }
                        let (s, e) = runs[rng.random_range(0..runs.len())];
                        let num = NUMBERS[rng.random_range(0..NUMBERS.len())];
                        what.push(format!("header number {} at {s} = {num}", &text[s..e]));
                        format!("{}{num}{}", &text[..s], &text[e..])
                    }
                    6 => {
                        let dt = DTYPES[rng.random_range(0..DTYPES.len())];
                        let count = text.matches("\"F32\"").count().max(1);
                        let k = rng.random_range(0..count);
                        let mut i = 0;
                        let replaced = text.replace("\"F32\"", "\u{0}");
                        let out: String = replaced
                            .split('\u{0}')
                            .enumerate()
                            .map(|(j, part)| {
                                i = j;
                                if j == 0 {
                                    part.to_string()
                                } else if j - 1 == k {
                                    format!("\"{dt}\"{part}")
                                } else {
                                    format!("\"F32\"{part}")
                                }
                            })
                            .collect();
                        what.push(format!("dtype {k} of {i} = {dt}"));
                        out
                    }
                    _ => {
                        // One character of the JSON dropped or doubled.
                        if json.is_empty() {
                            continue;
                        }
                        let at = rng.random_range(0..json.len());
                        let mut j = json.clone();
                        if rng.random_bool(0.5) {
                            j.remove(at);
                            what.push(format!("header byte {at} dropped"));
                        } else {
                            j.insert(at, json[at]);
                            what.push(format!("header byte {at} doubled"));
                        }
                        b = with_header(&b, n, &j);
                        continue;
                    }
                };
                b = with_header(&b, n, new.as_bytes());
            }
            _ => {
                let at = pos(rng, b.len());
                let width = [1, 2, 4, 8][rng.random_range(0..4)];
                let v = INTERESTING[rng.random_range(0..INTERESTING.len())];
                let end = (at + width).min(b.len());
                b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
                what.push(format!("{width} bytes at {at} = {v:#x}"));
            }
        }
    }
    (b, what.join(", "))
}

fn digit_runs(text: &str) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

/// The parameters' values, to check a failed load changed nothing.
fn values(m: &nn::Sequential) -> Vec<Vec<f32>> {
    m.store.iter().map(|(_, p)| p.value.to_vec()).collect()
}

/// `cases` mutations of `valid` through `load` (which gets the file path); returns (ok, err).
fn fuzz(
    name: &str,
    seed: u64,
    cases: usize,
    valid: &[u8],
    load: &mut dyn FnMut(&Path) -> Result<(), String>,
) -> (usize, usize) {
    let trace = std::env::var_os("FUZZ_TRACE").is_some();
    let scratch = temp_dir("fuzz");
    let path = scratch.join(format!("{name}.safetensors"));
    let shown = path.display().to_string();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut ok, mut err) = (0, 0);
    let mut slowest = (Duration::ZERO, String::new());
    let mut failures = Vec::new();
    let run = Instant::now();
    for case in 0..cases {
        let (bytes, what) = mutate(valid, &mut rng);
        let label = format!("{name} seed {seed} case {case}: {what}");
        if trace {
            let _ = writeln!(std::io::stderr(), "{label}");
        }
        std::fs::write(&path, &bytes).unwrap();
        let start = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| load(&path)));
        let took = start.elapsed();
        if took > slowest.0 {
            slowest = (took, label.clone());
        }
        match outcome {
            Ok(Ok(())) => ok += 1,
            Ok(Err(msg)) => {
                err += 1;
                if !msg.contains(&shown) {
                    failures.push(format!("{label}: error does not name the file: {msg}"));
                } else if msg.len() > 2000 {
                    failures.push(format!("{label}: a {}-byte message: {msg:.300}", msg.len()));
                }
            }
            Err(_) => failures.push(format!("{label}: PANICKED")),
        }
    }
    let _ = std::fs::remove_file(&path);
    println!(
        "{name}: {cases} mutations in {:?}, {ok} loaded, {err} refused; slowest {:?} ({})",
        run.elapsed(),
        slowest.0,
        slowest.1
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        slowest.0 < Duration::from_secs(2),
        "a case took {:?}: {}",
        slowest.0,
        slowest.1
    );
    (ok, err)
}

#[test]
fn weights_loader_survives_mutations() {
    let saved = models::build("plain8", 1).unwrap();
    let scratch = temp_dir("fuzz");
    let path = scratch.join("plain8-valid.safetensors");
    nn::checkpoint::save(&saved, &path).unwrap();
    let valid = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    println!("plain8 weights: {} bytes", valid.len());

    // One model for all cases: a failed load must leave it exactly as it was.
    let mut model = models::build("plain8", 2).unwrap();
    let mut before = values(&model);
    let mut load = |p: &Path| {
        let r = nn::checkpoint::load(&mut model, p).map_err(|e| e.to_string());
        let after = values(&model);
        if r.is_err() {
            assert_eq!(after, before, "a failed load changed the model");
        }
        before = after;
        r
    };
    let (ok, err) = fuzz("load", 7, 800, &valid, &mut load);
    assert!(ok > 5 && err > 600, "ok {ok}, err {err}");

    let mut meta = |p: &Path| {
        nn::checkpoint::metadata(p)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let (ok, err) = fuzz("metadata", 8, 500, &valid, &mut meta);
    assert!(ok > 5 && err > 300, "ok {ok}, err {err}");
}

#[test]
fn training_checkpoint_loader_survives_mutations() {
    let mut a = models::build("plain8", 1).unwrap();
    let mut opt = Adam::default();
    let x = random([2, 32, 32, 3], 5, 0.0, 1.0);
    let mut metrics = nn::step::Metrics::new(&a.device()).unwrap();
    let batch = nn::step::TrainBatch {
        images: x,
        labels: &[1, 2],
        seed: 9,
        step: 0,
    };
    nn::step::record_train_step(&mut a, &mut opt, batch, 0.0, &mut metrics).unwrap();
    let scratch = temp_dir("fuzz");
    let path = scratch.join("plain8-training.safetensors");
    nn::checkpoint::save_training(&a, &opt, "{\"epoch\": 1}", &path).unwrap();
    let valid = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    println!("plain8 Adam checkpoint: {} bytes", valid.len());

    let mut model = models::build("plain8", 2).unwrap();
    let mut adam = Adam::default();
    let mut before = values(&model);
    let mut load = |p: &Path| {
        let r = nn::checkpoint::load_training(&mut model, &mut adam, p)
            .map(|_| ())
            .map_err(|e| e.to_string());
        let after = values(&model);
        if r.is_err() {
            assert_eq!(after, before, "a failed load changed the model");
        }
        before = after;
        r
    };
    let (ok, err) = fuzz("load_training", 9, 600, &valid, &mut load);
    assert!(ok > 5 && err > 400, "ok {ok}, err {err}");
    assert!(adam.steps() <= 1, "{}", adam.steps());
}

/// Hand-picked headers: one tensor's shape and data offsets set to overflowing, reversed,
/// out-of-file and empty values. Every one must be refused (none describes the real data),
/// by an error naming the file.
#[test]
fn absurd_shapes_and_offsets_are_refused() {
    let model = models::build("plain8", 1).unwrap();
    let scratch = temp_dir("fuzz");
    let path = scratch.join("absurd.safetensors");
    nn::checkpoint::save(&model, &path).unwrap();
    let valid = std::fs::read(&path).unwrap();
    let (n, json) = header(&valid).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(json).unwrap();
    let name = model.store.iter().nth(1).unwrap().1.name.clone();
    let entry = &parsed[&name];
    let (begin, end) = (
        entry["data_offsets"][0].as_u64().unwrap(),
        entry["data_offsets"][1].as_u64().unwrap(),
    );
    let big = u64::MAX;
    let cases: Vec<(serde_json::Value, [u64; 2])> = vec![
        (serde_json::json!([1u64 << 32, 1u64 << 32]), [begin, end]),
        (serde_json::json!([big, 2]), [begin, end]),
        (serde_json::json!([big / 4 + 1]), [begin, end]),
        (serde_json::json!([0]), [begin, begin]),
        (entry["shape"].clone(), [end, begin]),
        (entry["shape"].clone(), [begin, big]),
        (entry["shape"].clone(), [big - 3, big]),
        (entry["shape"].clone(), [begin + 1, end + 1]),
        (serde_json::json!([]), [begin, begin + 4]),
    ];
    let mut m = models::build("plain8", 2).unwrap();
    let before = values(&m);
    for (shape, offsets) in cases {
        let mut h = parsed.clone();
        h[&name]["shape"] = shape.clone();
        h[&name]["data_offsets"] = serde_json::json!(offsets);
        let bytes = with_header(&valid, n, &serde_json::to_vec(&h).unwrap());
        std::fs::write(&path, &bytes).unwrap();
        println!("shape {shape}, offsets {offsets:?}");
        let err = nn::checkpoint::load(&mut m, &path).unwrap_err().to_string();
        println!("  -> {err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        let mut adam = Adam::default();
        assert!(nn::checkpoint::load_training(&mut m, &mut adam, &path).is_err());
        if let Err(e) = nn::checkpoint::metadata(&path) {
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
    }
    assert_eq!(values(&m), before);
    std::fs::remove_file(&path).unwrap();
}
