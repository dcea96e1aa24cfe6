//! The run directory: what one training run leaves behind, and the rules that keep it
//! consistent when the run is interrupted, killed or out of disk space.
//!
//! | file | written | holds |
//! |---|---|---|
//! | `config.json` | once, at the start | the model, the recipe and the flags of the run |
//! | `checkpoint.safetensors` | every epoch, and on Ctrl-C / SIGTERM | weights, optimiser state, position and history: what `--resume` continues from |
//! | `weights.safetensors` | every epoch | the last epoch's weights (for `eval` and `--init-weights`) |
//! | `best.safetensors` | when the monitored metric improves | the best epoch's weights, the epoch in its metadata |
//! | `history.csv` | one row per epoch, appended | the epoch's metrics |
//! | `curves.svg`, `curves.png` | every epoch | loss and accuracy against epochs |
//!
//! Every file but `history.csv` is replaced atomically ([`nn::atomic_file`]). An epoch's row
//! is appended to `history.csv` (and fsynced) only once its checkpoint is on disk, so the
//! history never lists an epoch that a resume would not find; a row that a kill or a full
//! disk kept from being written is appended by the next `--resume` from the checkpoint, which
//! carries the whole history. `.lock` (an advisory lock, released by the kernel when the
//! process dies) keeps two processes from training into the same directory.

use crate::output::info;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::train::EpochRecord;

pub const CONFIG: &str = "config.json";
pub const HISTORY: &str = "history.csv";
pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const WEIGHTS: &str = "weights.safetensors";
pub const BEST: &str = "best.safetensors";
pub const CURVES_SVG: &str = "curves.svg";
pub const CURVES_PNG: &str = "curves.png";
const LOCK: &str = ".lock";

/// The files a run writes atomically, whose stale temporary files a resume removes.
const ATOMIC_FILES: [&str; 6] = [CONFIG, CHECKPOINT, WEIGHTS, BEST, CURVES_SVG, CURVES_PNG];

pub const HISTORY_HEADER: &str = "epoch,loss,acc,val_loss,val_acc,lr,seconds,images_per_sec";

/// An open run directory, locked against other trainers while this value lives.
pub struct RunDir {
    path: PathBuf,
    _lock: File,
}

impl RunDir {
    /// A directory for a new run: created if needed, and refused if it already holds a run.
    pub fn create(path: &Path) -> anyhow::Result<RunDir> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("creating run directory {}", path.display()))?;
        // Locked first, so that two runs started at once cannot both find it empty.
        let dir = Self::lock(path)?;
        Self::refuse_existing(path)?;
        // The new folder's name, durable in its parent.
        nn::atomic_file::sync_folder(path)
            .with_context(|| format!("creating run directory {}", path.display()))?;
        Ok(dir)
    }

    /// An error naming `--resume` if `path` already holds a run.
    pub fn refuse_existing(path: &Path) -> anyhow::Result<()> {
        if let Some(found) = [CONFIG, HISTORY, CHECKPOINT, WEIGHTS, BEST, CURVES_SVG]
            .iter()
            .find(|f| path.join(f).exists())
        {
            anyhow::bail!(
                "{} already holds a training run (it has {found}): continue it with `--resume {}`, or pass a fresh --run-dir",
                path.display(),
                path.display()
            );
        }
        Ok(())
    }

    /// The directory of an earlier run, for `--resume`: its temporary files left by a killed
    /// write are removed (and reported).
    pub fn open(path: &Path) -> anyhow::Result<RunDir> {
        anyhow::ensure!(
            path.join(CONFIG).is_file(),
            "{} is not a run directory (it has no {CONFIG}); --resume takes the directory a `train` run wrote",
            path.display()
        );
        let dir = Self::lock(path)?;
        let removed = nn::atomic_file::remove_stale_temporaries(path, &ATOMIC_FILES)
            .with_context(|| format!("cleaning up {}", path.display()))?;
        for p in removed {
            info!("removed {}, left by an interrupted write", p.display());
        }
        Ok(dir)
    }

    fn lock(path: &Path) -> anyhow::Result<RunDir> {
        let lock_path = path.join(LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("creating {}", lock_path.display()))?;
        if let Err(e) = lock.try_lock() {
            anyhow::bail!(
                "another scratchnet process is training in {} ({e}); wait for it, or use another --run-dir",
                path.display()
            );
        }
        Ok(RunDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `config.json` (atomically).
    pub fn write_config(&self, json: &str) -> anyhow::Result<()> {
        let p = self.file(CONFIG);
        nn::atomic_file::write_atomic(&p, json.as_bytes())
            .with_context(|| format!("writing {}", p.display()))
    }

    pub fn read_config(&self) -> anyhow::Result<String> {
        let p = self.file(CONFIG);
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    }

    /// Starts `history.csv` with its header (a new run).
    pub fn start_history(&self) -> anyhow::Result<()> {
        let p = self.file(HISTORY);
        nn::atomic_file::write_atomic(&p, format!("{HISTORY_HEADER}\n").as_bytes())
            .with_context(|| format!("writing {}", p.display()))
    }

    /// Appends one epoch's row to `history.csv` and fsyncs it.
    pub fn append_history(&self, r: &EpochRecord) -> anyhow::Result<()> {
        let p = self.file(HISTORY);
        let mut f = File::options()
            .append(true)
            .open(&p)
            .with_context(|| format!("opening {}", p.display()))?;
        f.write_all(history_row(r).as_bytes())
            .and_then(|()| f.sync_data())
            .with_context(|| format!("appending to {}", p.display()))
    }

    /// Brings `history.csv` in line with the checkpoint's `records` before a resume: cuts a
    /// row that a kill or a full disk left half-written, and appends the rows of epochs whose
    /// checkpoint was written but whose row was not. Rows already there are never rewritten.
    /// Returns how many rows were appended.
    pub fn reconcile_history(&self, records: &[EpochRecord]) -> anyhow::Result<usize> {
        let p = self.file(HISTORY);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.start_history()?;
                format!("{HISTORY_HEADER}\n")
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        };
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            let f = File::options().write(true).open(&p)?;
            f.set_len(complete as u64)
                .and_then(|()| f.sync_data())
                .with_context(|| format!("cutting a half-written row of {}", p.display()))?;
            info!(
                "{}: removed a half-written last row ({:?})",
                p.display(),
                &text[complete..]
            );
        }
        let rows = text[..complete].lines().skip(1).count();
        anyhow::ensure!(
            rows <= records.len(),
            "{} lists {rows} epochs but its checkpoint holds {}: the two do not belong together (was one of them copied from another run?)",
            p.display(),
            records.len()
        );
        for r in &records[rows..] {
            self.append_history(r)?;
        }
        Ok(records.len() - rows)
    }
}

/// One `history.csv` row (with its newline).
pub fn history_row(r: &EpochRecord) -> String {
    format!(
        "{},{},{},{},{},{},{},{}\n",
        r.epoch, r.loss, r.acc, r.val_loss, r.val_acc, r.lr, r.seconds, r.images_per_sec
    )
}

/// The rows of a `history.csv`, for `plot`.
pub fn read_history(path: &Path) -> anyhow::Result<Vec<EpochRecord>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    anyhow::ensure!(
        lines.next() == Some(HISTORY_HEADER),
        "{} is not a scratchnet history.csv (its first line is not `{HISTORY_HEADER}`)",
        path.display()
    );
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            parse_row(line)
                .with_context(|| format!("{} line {}: cannot read `{line}`", path.display(), i + 2))
        })
        .collect()
}

fn parse_row(line: &str) -> anyhow::Result<EpochRecord> {
    let f: Vec<&str> = line.split(',').collect();
    anyhow::ensure!(f.len() == 8, "expected 8 fields, found {}", f.len());
    let num = |i: usize| -> anyhow::Result<f32> { Ok(f[i].trim().parse()?) };
    Ok(EpochRecord {
        epoch: f[0].trim().parse()?,
        loss: num(1)?,
        acc: num(2)?,
        val_loss: num(3)?,
        val_acc: num(4)?,
        lr: num(5)?,
        seconds: num(6)?,
        images_per_sec: num(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            loss: 2.0 / epoch as f32,
            acc: 0.1 * epoch as f32,
            val_loss: 2.5,
            val_acc: 0.3,
            lr: 0.001,
            seconds: 1.5,
            images_per_sec: 100.0,
        }
    }

    /// A path that does not exist yet, inside a fresh folder that is removed when the test ends.
    fn fresh(name: &str) -> (tempfile::TempDir, PathBuf) {
        let scratch = tempfile::Builder::new()
            .prefix(&format!("scratchnet-rundir-{name}-"))
            .tempdir()
            .unwrap();
        let d = scratch.path().join("run");
        (scratch, d)
    }

    #[test]
    fn history_rows_round_trip_and_reconcile_without_rewriting() {
        let (_scratch, d) = fresh("history");
        let run = RunDir::create(&d).unwrap();
        run.start_history().unwrap();
        run.append_history(&record(1)).unwrap();
        // A kill in the middle of the second row's write.
        let mut f = File::options()
            .append(true)
            .open(run.file(HISTORY))
            .unwrap();
        f.write_all(b"2,1.0,0.2").unwrap();
        drop(f);
        let records: Vec<EpochRecord> = (1..=3).map(record).collect();
        assert_eq!(run.reconcile_history(&records).unwrap(), 2);
        let back = read_history(&run.file(HISTORY)).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].epoch, 3);
        assert_eq!(back[1].loss, records[1].loss);
        // In line already: nothing to do.
        assert_eq!(run.reconcile_history(&records).unwrap(), 0);
        // More rows than the checkpoint knows: an error, and nothing is cut.
        let err = run
            .reconcile_history(&records[..1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("lists 3 epochs"), "{err}");
        assert_eq!(read_history(&run.file(HISTORY)).unwrap().len(), 3);
    }

    #[test]
    fn an_existing_run_is_not_overwritten_and_is_locked() {
        let (_scratch, d) = fresh("exists");
        let run = RunDir::create(&d).unwrap();
        run.write_config("{}").unwrap();
        // Locked while `run` lives, even for a resume.
        let err = RunDir::open(&d).err().unwrap().to_string();
        assert!(err.contains("another scratchnet process"), "{err}");
        drop(run);
        let err = RunDir::create(&d).err().unwrap().to_string();
        assert!(
            err.contains("--resume") && err.contains("config.json"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(d.join(CONFIG)).unwrap(), "{}");
        assert!(RunDir::open(&d).is_ok());
        let (_nothing, missing) = fresh("nothing");
        let err = RunDir::open(&missing).err().unwrap().to_string();
        assert!(err.contains("not a run directory"), "{err}");
    }

    #[test]
    fn a_damaged_history_is_a_clear_error() {
        let (_scratch, d) = fresh("badhistory");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(HISTORY);
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        assert!(read_history(&p)
            .unwrap_err()
            .to_string()
            .contains("not a scratchnet"));
        std::fs::write(&p, format!("{HISTORY_HEADER}\n1,2,x,4,5,6,7,8\n")).unwrap();
        let err = format!("{:#}", read_history(&p).unwrap_err());
        assert!(err.contains("line 2"), "{err}");
    }
}
