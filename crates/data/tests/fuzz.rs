//! Seeded mutation fuzzing of the two batch readers: thousands of damaged copies of valid
//! files (truncations, bit flips, inserted, deleted and duplicated bytes, huge length fields,
//! stray pickle opcodes) must each give `Ok` (a dataset that keeps the `Dataset` invariant)
//! or an error naming the file, never a panic, an abort or a slow parse.
//!
//! Every case is reproducible from the printed seed and case number. A panic is caught and
//! reported with its case; a case that aborts the process (a stack overflow) cannot be, so run
//! with `FUZZ_TRACE=1` to have each case written to stderr before it runs:
//! `FUZZ_TRACE=1 cargo test -p data --test fuzz 2>&1 | tail`.

mod common;

use std::io::Write;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{binary_records, fixture, split_records, Py3Batch};
use data::{parse_python_batch, parse_records, read_binary_batch, read_python_batch, DataError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Values that make length fields interesting: zero, one, sign boundaries, all ones, and
/// sizes far beyond any file.
const INTERESTING: [u64; 14] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
    u64::MAX - 7,
];

/// Pickle opcodes (with arguments where they take one) that drive the stack machine.
const OPCODES: [&[u8]; 28] = [
    b"(", b"]", b"}", b")", b"a", b"e", b"s", b"u", b"t", b"l", b"d", b"0", b"1", b"2", b"R", b"b",
    b"\x85", b"\x86", b"\x87", b"\x94", b"h\x01", b"h\x00", b"q\x07", b"K\x05", b"N", b"\x8f",
    b"\x90", b"\x81",
];

/// One seeded mutator over a valid file. `hot` is where mutations mostly land (a pickle's
/// header and tail, not its pixels); `lengths` are (offset, width) of length fields.
struct Mutator<'a> {
    valid: &'a [u8],
    hot: Vec<Range<usize>>,
    lengths: Vec<(usize, usize)>,
    pickle: bool,
}

impl Mutator<'_> {
    fn pos(&self, rng: &mut StdRng, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        if !self.hot.is_empty() && rng.random_bool(0.8) {
            let r = &self.hot[rng.random_range(0..self.hot.len())];
            let p = rng.random_range(r.clone());
            if p < len {
                return p;
            }
        }
        rng.random_range(0..len)
    }

    /// A mutated copy and what was done to it.
    fn mutate(&self, rng: &mut StdRng) -> (Vec<u8>, String) {
        let mut b = self.valid.to_vec();
        let mut what = Vec::new();
        for _ in 0..rng.random_range(1..=3) {
            let kinds = if self.pickle { 9 } else { 8 };
            match rng.random_range(0..kinds) {
                0 => {
                    let at = rng.random_range(0..=b.len());
                    b.truncate(at);
                    what.push(format!("truncate to {at}"));
                }
                1 => {
                    let at = self.pos(rng, b.len());
                    if at < b.len() {
                        let bit = rng.random_range(0..8);
                        b[at] ^= 1 << bit;
                        what.push(format!("flip bit {bit} of byte {at}"));
                    }
                }
                2 => {
                    let at = self.pos(rng, b.len());
                    if at < b.len() {
                        let v = rng.random();
                        b[at] = v;
                        what.push(format!("byte {at} = {v:#04x}"));
                    }
                }
                3 => {
                    let at = self.pos(rng, b.len());
                    let n = rng.random_range(1..=16);
                    let ins: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                    b.splice(at..at, ins.iter().copied());
                    what.push(format!("insert {ins:02x?} at {at}"));
                }
                4 => {
                    let at = self.pos(rng, b.len());
                    let end = (at + rng.random_range(1..=64)).min(b.len());
                    b.drain(at..end);
                    what.push(format!("delete {at}..{end}"));
                }
                6 if !self.lengths.is_empty() => {
                    if let Some(&(at, width)) = self
                        .lengths
                        .get(rng.random_range(0..self.lengths.len().max(1)))
                    {
                        if at + width <= b.len() {
                            let v = INTERESTING[rng.random_range(0..INTERESTING.len())];
                            b[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
                            what.push(format!("length field at {at} ({width} bytes) = {v:#x}"));
                        }
                    }
                }
                5 | 6 => {
                    let at = self.pos(rng, b.len());
                    let width = [1, 2, 4, 8][rng.random_range(0..4)];
                    let v = INTERESTING[rng.random_range(0..INTERESTING.len())];
                    let end = (at + width).min(b.len());
                    b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
                    what.push(format!("{width} bytes at {at} = {v:#x}"));
                }
                7 => {
                    let from = self.pos(rng, b.len());
                    let end = (from + rng.random_range(1..=256)).min(b.len());
                    let chunk = b[from..end].to_vec();
                    let at = self.pos(rng, b.len());
                    b.splice(at..at, chunk);
                    what.push(format!("copy {from}..{end} to {at}"));
                }
                _ => {
                    let at = self.pos(rng, b.len());
                    let ops: Vec<u8> = (0..rng.random_range(1..=32))
                        .flat_map(|_| OPCODES[rng.random_range(0..OPCODES.len())].iter().copied())
                        .collect();
                    what.push(format!(
                        "insert opcodes {:?} at {at}",
                        String::from_utf8_lossy(&ops)
                    ));
                    b.splice(at..at, ops);
                }
            }
        }
        (b, what.join(", "))
    }
}

/// The (offset, width) of the length prefixes of a pickle's strings and longs, found by
/// looking for each length opcode whose length fits the file (so not in pixel data, mostly).
fn pickle_length_fields(p: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for i in 0..p.len() {
        let rest = p.len() - i - 1;
        let width = match p[i] {
            b'T' | b'B' | b'X' | 0x8b => 4,
            0x8e | 0x8d | 0x96 | 0x95 => 8,
            b'U' | b'C' | 0x8c | 0x8a => 1,
            _ => continue,
        };
        if rest < width {
            continue;
        }
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(&p[i + 1..i + 1 + width]);
        let n = u64::from_le_bytes(le);
        let fits = n as usize <= rest - width;
        let outside_pixels = i < 300 || i + 300 > p.len() || n > 1000;
        if fits && n > 0 && outside_pixels {
            out.push((i + 1, width));
        }
    }
    out
}

/// Runs `cases` mutations of `m` through `read`, checking each outcome (an error must start
/// with `path`, the name `read` gives the data); returns (ok, err).
fn fuzz(
    name: &str,
    path: &str,
    seed: u64,
    cases: usize,
    m: &Mutator,
    read: &dyn Fn(&[u8]) -> Result<data::Dataset, DataError>,
) -> (usize, usize) {
    let trace = std::env::var_os("FUZZ_TRACE").is_some();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut ok, mut err) = (0, 0);
    let mut slowest = (Duration::ZERO, String::new());
    let mut failures = Vec::new();
    for case in 0..cases {
        let (bytes, what) = m.mutate(&mut rng);
        let label = format!("{name} seed {seed} case {case}: {what}");
        if trace {
            let _ = writeln!(std::io::stderr(), "{label}");
        }
        let start = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| read(&bytes)));
        let took = start.elapsed();
        if took > slowest.0 {
            slowest = (took, label.clone());
        }
        match outcome {
            Ok(Ok(ds)) => {
                ok += 1;
                if ds.images.len() != ds.labels.len() * data::IMAGE_BYTES
                    || ds.labels.iter().any(|&l| l >= 10)
                {
                    failures.push(format!("{label}: Ok with a broken dataset"));
                }
            }
            Ok(Err(e)) => {
                err += 1;
                let msg = e.to_string();
                if !msg.starts_with(path) {
                    failures.push(format!("{label}: error does not name the file: {msg}"));
                } else if msg.len() > 2000 {
                    failures.push(format!("{label}: a {}-byte message: {msg:.300}", msg.len()));
                }
            }
            Err(_) => failures.push(format!("{label}: PANICKED")),
        }
    }
    println!(
        "{name}: {cases} mutations, {ok} read, {err} refused; slowest {:?} ({})",
        slowest.0, slowest.1
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
fn binary_reader_survives_mutations() {
    let valid = binary_records(3, 4, 11);
    let m = Mutator {
        valid: &valid,
        // The label bytes, and the ends of the file.
        hot: vec![0..1, 3073..3074, 6146..6147, 9210..9219],
        lengths: vec![],
        pickle: false,
    };
    let parse = |b: &[u8]| parse_records(Path::new("fuzz"), b);
    assert_eq!(parse(&valid).unwrap().len(), 3);
    let (ok, err) = fuzz("binary", "fuzz", 1, 6000, &m, &parse);
    // Both outcomes must occur: mutations in pixels read fine, bad sizes and labels do not.
    assert!(ok > 100 && err > 1000, "ok {ok}, err {err}");

    // A few hundred through the file path too (size check, then read).
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fuzz");
    let read = |b: &[u8]| {
        std::fs::write(&path, b).unwrap();
        read_binary_batch(&path)
    };
    let (ok, err) = fuzz(
        "binary-file",
        &path.display().to_string(),
        2,
        300,
        &m,
        &read,
    );
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}

fn pickles() -> Vec<(&'static str, Vec<u8>)> {
    let records = std::fs::read(fixture("tiny_batch.bin")).unwrap();
    let (labels, raw) = split_records(&records);
    let batch = |str_keys| Py3Batch {
        raw: &raw,
        shape: &[3, 3072],
        labels: &labels,
        filenames: &["tiny_000000.png", "tiny_000001.png", "tiny_000002.png"],
        str_keys,
    };
    vec![
        ("py2", std::fs::read(fixture("tiny_batch_py2")).unwrap()),
        ("py3-protocol2", common::py3_protocol2(&batch(false))),
        ("py3-protocol5", common::py3_protocol5(&batch(true))),
    ]
}

#[test]
fn pickle_reader_survives_mutations() {
    let expected = read_binary_batch(&fixture("tiny_batch.bin")).unwrap();
    let parse = |b: &[u8]| parse_python_batch(Path::new("fuzz"), b);
    let mut total = (0, 0);
    for (i, (name, valid)) in pickles().into_iter().enumerate() {
        assert_eq!(parse(&valid).unwrap(), expected, "{name}");
        let n = valid.len();
        let lengths = pickle_length_fields(&valid);
        assert!(!lengths.is_empty(), "{name}: no length fields found");
        let m = Mutator {
            valid: &valid,
            hot: vec![0..300.min(n), n.saturating_sub(300)..n],
            lengths,
            pickle: true,
        };
        let (ok, err) = fuzz(name, "fuzz", 100 + i as u64, 6000, &m, &parse);
        total = (total.0 + ok, total.1 + err);
    }
    assert!(total.0 > 100 && total.1 > 10_000, "{total:?}");

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fuzz");
    let read = |b: &[u8]| {
        std::fs::write(&path, b).unwrap();
        read_python_batch(&path)
    };
    let (name, valid) = &pickles()[0];
    let n = valid.len();
    let m = Mutator {
        valid,
        hot: vec![0..300, n - 300..n],
        lengths: pickle_length_fields(valid),
        pickle: true,
    };
    fuzz(
        &format!("{name}-file"),
        &path.display().to_string(),
        200,
        300,
        &m,
        &read,
    );
}
